"""XQuAD: extractive QA, professionally translated and parallel by question id.

Data (SQuAD 1.1 JSON): ``<root>/xquad/xquad.<lang>.json``; 1,190 questions over 240
paragraphs, the same question ids in every language.  (Paragraphs are recognised by their context
text, so both the original layout and the XTREME one, a one-paragraph article per question, work.)

Languages (ISO 639-1, as in the file names): en ar de el es hi ro ru th tr vi zh (the twelve of
XQuAD); ``en`` is the English side.

Gold answers: every question carries one (the shared data root and the public repository alike).
Some older copies (the XTREME layout) have every answer blanked (``{"text": "", "answer_start":
0}``); loading such a file raises DataError saying so, and ``XQuADTask(allow_unanswered=True)``
(``get_task("xquad", {"allow_unanswered": True})``) loads its questions with ``answers == ()`` for
prediction-only use.

Split protocol: questions are grouped by the **English paragraph** of their id (the context of
the same id in ``xquad.en.json``), so a paragraph and all its translations land in one split, the
same one in every language.  The 240 paragraph groups are split 60 / 20 / 20 (train / validation
/ test) with the hash-rank rule of :mod:`flare.tasks.splits` (salt "xquad"): 144 / 48 / 48
paragraphs = 694 / 246 / 250 questions on the shared data.  No paragraph is in two splits.

``example.english`` = the English ``QAExample`` with the same id (its ``english`` is ``None``);
target and English files must hold exactly the same ids, else DataError naming the ids and both
files.  English examples have ``english=None``.
Model input (single-sequence encoder): the (question, context) pair.  Primary metric: F1.

Fetching (``flare data fetch xquad``): ``xquad.<lang>.json`` of github.com/google-deepmind/xquad,
copied unchanged (checked to be SQuAD 1.1 JSON).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from flare.errors import DataError
from flare.tasks.base import BaseTask
from flare.tasks.data_root import DataRoot
from flare.tasks.examples import QAExample
from flare.tasks.fetch import Fetcher, TaskSource, write_file
from flare.tasks.readers import SquadQuestion, read_squad
from flare.tasks.splits import assign_groups
from flare.tasks.tables import show_ids

LANGUAGES = ("en", "ar", "de", "el", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
PROPORTIONS = (0.6, 0.2, 0.2)
SALT = "xquad"
SOURCE = TaskSource(
    "xquad",
    homepage="https://github.com/google-deepmind/xquad",
    license="CC BY-SA 4.0 (XQuAD, Artetxe et al., 2020)",
    urls={"json": "https://raw.githubusercontent.com/google-deepmind/xquad/master/xquad.{lang}.json"},
)


class XQuADTask(BaseTask):
    name = "xquad"
    kind = "qa"
    label_names = ()
    english_language = "en"
    folder = "xquad"
    languages = LANGUAGES
    proportions = PROPORTIONS
    options = ("allow_unanswered",)
    source = SOURCE

    def __init__(self, allow_unanswered: bool = False):
        #: load questions whose gold answers are blanked, with ``answers == ()`` (prediction only)
        self.allow_unanswered = bool(allow_unanswered)

    def path(self, root: Path, language: str) -> Path:
        return root / self.folder / f"xquad.{language}.json"

    def split_of_ids(self, english: list[SquadQuestion]) -> dict[str, str]:
        """Question id -> split, from the English paragraphs."""
        assignment = assign_groups((q.context for q in english), self.proportions, SALT)
        return {q.id: assignment[q.context] for q in english}

    def load(
        self, language: str, split: str, data_root: str | os.PathLike | DataRoot | None = None
    ) -> list[QAExample]:
        code = self.check_split(language, split)
        root = self.root(data_root)
        english_path = self.path(root, self.english_language)
        english = read_squad(english_path, allow_unanswered=self.allow_unanswered)
        split_of = self.split_of_ids(english)
        english_examples = {q.id: QAExample(q.id, q.question, q.context, q.answers) for q in english}
        if code == self.english_language:
            return [e for e in english_examples.values() if split_of[e.id] == split]
        target_path = self.path(root, code)
        target = read_squad(target_path, allow_unanswered=self.allow_unanswered)
        target_ids = {q.id for q in target}
        missing = [q.id for q in target if q.id not in english_examples]
        if missing:
            raise DataError(
                f"{show_ids(missing, 'question id')} no partner in the English file {english_path}",
                target_path, hint="XQuAD files must hold the same question ids in every language",
            )
        extra = [q.id for q in english if q.id not in target_ids]
        if extra:
            raise DataError(
                f"{show_ids(extra, 'question id')} no partner here (in the English file {english_path})",
                target_path, hint="XQuAD files must hold the same question ids in every language",
            )
        return [
            QAExample(q.id, q.question, q.context, q.answers, english_examples[q.id])
            for q in target
            if split_of[q.id] == split
        ]

    # -- fetching ---------------------------------------------------------------------------------
    def fetch_files(self, codes: Sequence[str]) -> list[str]:
        return [f"xquad.{c}.json" for c in codes]

    def fetch_layout(self, fetch: Fetcher, codes: Sequence[str], out: Path) -> list[str]:
        written = []
        for code in codes:
            url = fetch.source.urls["json"].format(lang=code)
            raw = fetch.get(url).read_bytes()
            fetch.check_squad(raw, url)
            write_file(out / f"xquad.{code}.json", raw)
            written.append(f"xquad.{code}.json")
        return written
