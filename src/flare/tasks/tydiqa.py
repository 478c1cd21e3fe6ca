"""TyDiQA-GoldP: extractive QA; English training data, development sets in 9 languages.

Data (SQuAD 1.1 JSON, XTREME layout): ``<root>/tydiqa/tydiqa.goldp.<lang>.dev.json`` for
ar bn en fi id ko ru sw te, and ``tydiqa.goldp.en.train.json`` (3,696 questions, 3,429 distinct
paragraphs).  Not parallel: ``example.english`` is always ``None``.

Gold answers: every file carries them (the shared data root included).  Some older copies of
the dev files have every answer blanked (``{"text": "", "answer_start": 0}``); loading such a
file raises DataError saying so, and ``TyDiQATask(allow_unanswered=True)`` loads its questions
with ``answers == ()`` (prediction only).

Languages (ISO 639-1, as in the file names; the authors' codes ben / ind / tel are accepted as
aliases): ar bn en fi id ko ru sw te.  ``en`` is the English side.

Splits
    en   train       the English training file minus the validation questions
         validation  carved from the English training file: its paragraphs (distinct context
                     strings) are split 90 / 10 with the hash-rank rule of
                     :mod:`flare.tasks.splits` (salt "tydiqa"), so no paragraph is in both;
                     on the shared data 3,086 / 343 paragraphs = 3,326 / 370 questions
         test        ``tydiqa.goldp.en.dev.json`` (440)
    other test       ``tydiqa.goldp.<lang>.dev.json`` (ar 921, bn 113, fi 782, id 565, ko 276,
                     ru 812, sw 499, te 669); there is no target-language training or
                     validation data here (loading it raises ConfigError): train on ``en``
                     (zero-shot) or on machine-translated English data.

Ids: as in the files, except that the English training file of the XTREME layout carries
non-unique ids ("0", "1", ...); when a file's ids are not unique, every question of it gets
the id ``train-<n>`` (n = 1-based position of the question in the file, ``train-0001``).
Model input (single-sequence encoder): the (question, context) pair.
"""

from __future__ import annotations

import os
from pathlib import Path

from flare.tasks.base import BaseTask
from flare.tasks.data_root import DataRoot
from flare.tasks.examples import QAExample
from flare.tasks.readers import SquadQuestion, read_squad
from flare.tasks.splits import assign_groups

LANGUAGES = ("ar", "bn", "en", "fi", "id", "ko", "ru", "sw", "te")
VALIDATION_FRACTION = 0.1
SALT = "tydiqa"


def _examples(questions: list[SquadQuestion]) -> list[QAExample]:
    return [QAExample(q.id, q.question, q.context, q.answers) for q in questions]


class TyDiQATask(BaseTask):
    name = "tydiqa"
    kind = "qa"
    label_names = ()
    english_language = "en"
    folder = "tydiqa"
    languages = LANGUAGES
    aliases = {"ben": "bn", "ind": "id", "tel": "te"}
    validation_fraction = VALIDATION_FRACTION

    def __init__(self, allow_unanswered: bool = False):
        #: load questions whose gold answers are blanked, with ``answers == ()`` (prediction only)
        self.allow_unanswered = bool(allow_unanswered)

    def splits(self, language: str) -> tuple[str, ...]:
        code = self.resolve_language(language)
        return ("train", "validation", "test") if code == self.english_language else ("test",)

    def _missing_split_hint(self, language: str, split: str) -> str:
        return (
            "; TyDiQA-GoldP has training data only in English here: train on 'en' (zero-shot) "
            "or on machine-translated English training data"
        )

    def train_path(self, root: Path) -> Path:
        return root / self.folder / "tydiqa.goldp.en.train.json"

    def dev_path(self, root: Path, language: str) -> Path:
        return root / self.folder / f"tydiqa.goldp.{language}.dev.json"

    def read_train(self, root: Path) -> list[SquadQuestion]:
        """The English training questions, with unique ids (see the module docstring)."""
        questions = read_squad(self.train_path(root), unique_ids=False, allow_unanswered=self.allow_unanswered)
        if len({q.id for q in questions}) != len(questions):
            questions = [
                SquadQuestion(f"train-{n:04d}", q.question, q.context, q.answers, q.where)
                for n, q in enumerate(questions, start=1)
            ]
        return questions

    def load(
        self, language: str, split: str, data_root: str | os.PathLike | DataRoot | None = None
    ) -> list[QAExample]:
        code = self.check_split(language, split)
        root = self.root(data_root)
        if split == "test":
            return _examples(read_squad(self.dev_path(root, code), allow_unanswered=self.allow_unanswered))
        questions = self.read_train(root)
        assignment = assign_groups(
            (q.context for q in questions),
            (1 - self.validation_fraction, self.validation_fraction),
            SALT,
            names=("train", "validation"),
        )
        return _examples([q for q in questions if assignment[q.context] == split])
