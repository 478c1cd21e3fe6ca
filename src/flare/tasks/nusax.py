"""NusaX-Senti: 3-class sentiment in 12 languages, human-parallel with English.

Data: ``<root>/nusax/<folder>/{train,valid,test}.csv`` with columns ``id,text,label`` and string
labels ``negative`` / ``neutral`` / ``positive`` (label indices 0 / 1 / 2, the order of the
Hugging Face ``indonlp/NusaX-senti`` release).  500 / 100 / 400 rows per language (train /
validation / test); ``valid.csv`` is the validation split.

Languages (ISO 639-3 code <-> folder; the folder name is accepted as an alias):
    eng english (the English side)   ind indonesian   ace acehnese   ban balinese
    bjn banjarese   bug buginese     jav javanese     mad madurese   min minangkabau
    nij ngaju       sun sundanese    bbc toba_batak

Every target example is paired by id with the English file of the same split
(``english/<split>.csv``); ids must match exactly and labels must agree, else DataError.
``example.english`` = the English text as a 1-tuple (human translation; the paper used MT for
the English side of the test set).  English examples themselves have ``english=None``.
Model input (single-sequence encoder): the text; decoders: ``"{text}\nSentiment:"`` then the label
word.  Primary metric: macro-F1.

Fetching (``flare data fetch nusax``): ``datasets/sentiment/<folder>/{train,valid,test}.csv`` and
``datasets/LICENSE`` of github.com/IndoNLP/nusax at a pinned commit, copied unchanged (the CSV
header must be ``id,text,label``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from flare.tasks.base import BaseTask
from flare.tasks.data_root import DataRoot
from flare.tasks.examples import ClassificationExample
from flare.tasks.fetch import Fetcher, TaskSource, write_file
from flare.tasks.tables import build_examples, read_rows

LANGUAGE_FOLDERS: dict[str, str] = {
    "eng": "english",
    "ind": "indonesian",
    "ace": "acehnese",
    "ban": "balinese",
    "bjn": "banjarese",
    "bug": "buginese",
    "jav": "javanese",
    "mad": "madurese",
    "min": "minangkabau",
    "nij": "ngaju",
    "sun": "sundanese",
    "bbc": "toba_batak",
}
SPLIT_FILES = {"train": "train.csv", "validation": "valid.csv", "test": "test.csv"}
NUSAX_COMMIT = "75b0be5d982348332509f296e10d9bf9cb66d60f"  # IndoNLP/nusax, 2023-05-08
_NUSAX_RAW = f"https://raw.githubusercontent.com/IndoNLP/nusax/{NUSAX_COMMIT}/datasets"
SOURCE = TaskSource(
    "nusax",
    homepage="https://github.com/IndoNLP/nusax",
    license="CC BY-SA 4.0 (NusaX, Winata et al., 2023)",
    urls={
        "csv": _NUSAX_RAW + "/sentiment/{folder}/{file}",
        "license": _NUSAX_RAW + "/LICENSE",
    },
)
NUSAX_FILES = tuple(SPLIT_FILES.values())


class NusaXTask(BaseTask):
    name = "nusax"
    kind = "classification"
    label_names = ("negative", "neutral", "positive")
    english_language = "eng"
    folder = "nusax"
    layout_names = LANGUAGE_FOLDERS
    languages = tuple(LANGUAGE_FOLDERS)
    text_fields = ("text",)
    primary_metric = "macro_f1"
    prompt = "{0}\nSentiment:"
    source = SOURCE

    def path(self, root: Path, language: str, split: str) -> Path:
        return root / self.folder / self.layout_name(language) / SPLIT_FILES[split]

    def load(
        self, language: str, split: str, data_root: str | os.PathLike | DataRoot | None = None
    ) -> list[ClassificationExample]:
        code = self.check_split(language, split)
        root = self.root(data_root)
        labels = {name: i for i, name in enumerate(self.label_names)}
        english_path = self.path(root, self.english_language, split)
        english_rows, _ = read_rows(english_path, "id", ("text",), "label", "csv")
        if code == self.english_language:
            return build_examples(english_rows, english_path, None, None, labels)
        target_path = self.path(root, code, split)
        target_rows, _ = read_rows(target_path, "id", ("text",), "label", "csv")
        return build_examples(target_rows, target_path, english_rows, english_path, labels)

    # -- fetching ---------------------------------------------------------------------------------
    def fetch_files(self, codes: Sequence[str]) -> list[str]:
        return [f"{LANGUAGE_FOLDERS[c]}/{name}" for c in codes for name in NUSAX_FILES]

    def fetch_layout(self, fetch: Fetcher, codes: Sequence[str], out: Path) -> list[str]:
        written = []
        for code in codes:
            folder = LANGUAGE_FOLDERS[code]
            for name in NUSAX_FILES:
                url = fetch.source.urls["csv"].format(folder=folder, file=name)
                raw = fetch.get(url).read_bytes()
                header = raw.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").strip().lower()
                if [c.strip() for c in header.split(",")] != ["id", "text", "label"]:
                    raise fetch.bad(url, f"expected the CSV header id,text,label, found {header[:80]!r}")
                write_file(out / folder / name, raw)
                written.append(f"{folder}/{name}")
        write_file(out / "LICENSE", fetch.get(fetch.source.urls["license"]).read_bytes())
        return [*written, "LICENSE"]
