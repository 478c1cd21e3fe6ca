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
Model input (single-sequence encoder): the (question, context) pair.  Primary metric: F1.

Fetching (``flare data fetch tydiqa``): the per-language files ``tydiqa-goldp-dev-<name>.json``
of the GoldP v1.1 dev archive become ``tydiqa.goldp.<lang>.dev.json`` unchanged; the English
questions (id prefix ``english-``) of the mixed GoldP train file become
``tydiqa.goldp.en.train.json``.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from flare.tasks.base import BaseTask
from flare.tasks.data_root import DataRoot
from flare.tasks.examples import QAExample
from flare.tasks.fetch import Fetcher, TaskSource, write_file
from flare.tasks.readers import SquadQuestion, read_squad
from flare.tasks.splits import assign_groups

LANGUAGES = ("ar", "bn", "en", "fi", "id", "ko", "ru", "sw", "te")
VALIDATION_FRACTION = 0.1
SALT = "tydiqa"
SOURCE = TaskSource(
    "tydiqa",
    homepage="https://github.com/google-research-datasets/tydiqa",
    license="Apache-2.0 (TyDi QA, Clark et al., 2020)",
    urls={
        "train": "https://storage.googleapis.com/tydiqa/v1.1/tydiqa-goldp-v1.1-train.json",
        "dev": "https://storage.googleapis.com/tydiqa/v1.1/tydiqa-goldp-v1.1-dev.tgz",
    },
)
#: TyDiQA-GoldP names its languages in file names and question-id prefixes
TYDIQA_NAMES = {
    "ar": "arabic", "bn": "bengali", "en": "english", "fi": "finnish", "id": "indonesian",
    "ko": "korean", "ru": "russian", "sw": "swahili", "te": "telugu",
}


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
    options = ("allow_unanswered",)
    source = SOURCE

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

    # -- fetching ---------------------------------------------------------------------------------
    def fetch_files(self, codes: Sequence[str]) -> list[str]:
        return [f"tydiqa.goldp.{c}.dev.json" for c in codes] + ["tydiqa.goldp.en.train.json"]

    def fetch_layout(self, fetch: Fetcher, codes: Sequence[str], out: Path) -> list[str]:
        train_url, dev_url = fetch.source.urls["train"], fetch.source.urls["dev"]
        dev_archive = fetch.get(dev_url)
        train = fetch.check_squad(fetch.get(train_url).read_bytes(), train_url)
        written = []
        try:
            with tarfile.open(dev_archive, "r:*") as bundle:
                by_name = {PurePosixPath(m.name).name: m for m in bundle.getmembers() if m.isfile()}
                for code in codes:
                    wanted = f"tydiqa-goldp-dev-{TYDIQA_NAMES[code]}.json"
                    if wanted not in by_name:
                        raise fetch.bad(dev_url, f"the archive holds no {wanted}")
                    raw = bundle.extractfile(by_name[wanted]).read()
                    fetch.check_squad(raw, f"{dev_url} ({wanted})")
                    write_file(out / f"tydiqa.goldp.{code}.dev.json", raw)
                    written.append(f"tydiqa.goldp.{code}.dev.json")
        except tarfile.TarError as err:
            raise fetch.bad(dev_url, f"not a tar archive ({err})") from None
        english = _english_only(train)
        if not english["data"]:
            raise fetch.bad(train_url, "no question id starts with 'english-' (not the TyDiQA-GoldP train file?)")
        write_file(out / "tydiqa.goldp.en.train.json", json.dumps(english, ensure_ascii=False).encode("utf-8"))
        return [*written, "tydiqa.goldp.en.train.json"]


def _english_only(document: dict) -> dict:
    """The GoldP train file with only the questions whose id starts with 'english-'."""
    data = []
    for article in document["data"]:
        paragraphs = []
        for paragraph in article.get("paragraphs", []):
            qas = [qa for qa in paragraph.get("qas", []) if str(qa.get("id", "")).split("-", 1)[0] == "english"]
            if qas:
                paragraphs.append({**paragraph, "qas": qas})
        if paragraphs:
            data.append({**article, "paragraphs": paragraphs})
    return {**document, "data": data}
