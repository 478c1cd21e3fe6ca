"""XNLI: 3-class natural language inference, 15 languages, parallel by row.

Data: ``<root>/xnli/dev-<lang>.tsv`` (XNLI 1.0 development sets in the XTREME layout): no header,
``premise<TAB>hypothesis<TAB>label``, one pair per line, no quoting (a line is split on its tabs;
it must have exactly three fields).  2,490 rows per language; row k is the same pair in every
language.  Labels ``entailment`` / ``neutral`` / ``contradiction`` -> 0 / 1 / 2 (the order of
the Hugging Face ``xnli`` release).

Languages (ISO 639-1, also the file names): ar bg de el en es fr hi ru sw th tr ur vi zh;
``en`` is the English side.

Split protocol (only the labelled dev sets are available here): rows are grouped by their
**English premise** (row k of the English file; target-language premises are not used because
translation can merge or split them -- dev-ur has 829 distinct premises for 830 English ones).
The premise groups are split 60 / 20 / 20 (train / validation / test) with the hash-rank rule of
:mod:`flare.tasks.splits` (salt "xnli").  On the shared data: 830 groups of 3 rows (one per
label) -> 498 / 166 / 166 groups = 1,494 / 498 / 498 rows, balanced 498 / 166 / 166 per label;
no premise is in two splits, and the split of row k is the same in every language.

Example ids are ``dev-<line>`` (1-based line number, ``dev-0001`` .. ``dev-2490``), the same in
every language.  ``example.english`` = (English premise, English hypothesis) of the same row; the
row's label must equal the English row's label.  English examples have ``english=None``.
Model input (single-sequence encoder): the pair (premise, hypothesis) as the tokenizer's text
pair, or one string, e.g. the authors' "Premise: {p} Hypothesis: {h}" -- the pipeline chooses;
decoders: ``"Premise: {p}\nHypothesis: {h}\nLabel:"`` then the label word.  Primary metric: accuracy.

Fetching (``flare data fetch xnli``): ``xnli.dev.tsv`` of the XNLI 1.0 zip (all languages in one
TSV with a header; columns language, gold_label, sentence1, sentence2 used) becomes
``dev-<lang>.tsv`` = premise<TAB>hypothesis<TAB>label, rows in file order.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from flare.errors import DataError
from flare.tasks.base import BaseTask
from flare.tasks.data_root import DataRoot
from flare.tasks.examples import ClassificationExample
from flare.tasks.fetch import Fetcher, TaskSource, write_file
from flare.tasks.readers import read_text
from flare.tasks.splits import assign_groups

LANGUAGES = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
PROPORTIONS = (0.6, 0.2, 0.2)
SALT = "xnli"
SOURCE = TaskSource(
    "xnli",
    homepage="https://github.com/facebookresearch/XNLI",
    license="CC BY-NC 4.0 (XNLI, Conneau et al., 2018)",
    urls={"zip": "https://dl.fbaipublicfiles.com/XNLI/XNLI-1.0.zip"},
)
XNLI_MEMBER = "xnli.dev.tsv"
XNLI_LABELS = {"entailment": "entailment", "neutral": "neutral", "contradiction": "contradiction",
               "contradictory": "contradiction"}  # the MultiNLI spelling, should it appear


@dataclass(frozen=True)
class _Pair:
    line: int
    premise: str
    hypothesis: str
    label: int


class XNLITask(BaseTask):
    name = "xnli"
    kind = "classification"
    label_names = ("entailment", "neutral", "contradiction")
    english_language = "en"
    folder = "xnli"
    languages = LANGUAGES
    text_fields = ("premise", "hypothesis")
    proportions = PROPORTIONS
    prompt = "Premise: {0}\nHypothesis: {1}\nLabel:"
    source = SOURCE

    def path(self, root: Path, language: str) -> Path:
        return root / self.folder / f"dev-{language}.tsv"

    def read(self, path: Path) -> list[_Pair]:
        """All rows of one dev file, checked (three fields, non-empty texts, known label)."""
        labels = {name: i for i, name in enumerate(self.label_names)}
        text = read_text(path, "XNLI file")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        pairs = []
        for number, line in enumerate(lines, start=1):
            if line.endswith("\r"):
                line = line[:-1]
            fields = line.split("\t")
            if len(fields) != 3:
                raise DataError(
                    f"{len(fields)} tab-separated fields, expected 3 (premise, hypothesis, label)",
                    path, number, hint="XNLI rows are premise<TAB>hypothesis<TAB>label, no header",
                )
            premise, hypothesis, label = fields
            for name, value in (("premise", premise), ("hypothesis", hypothesis)):
                if not value.strip():
                    raise DataError(f"empty {name}", path, number, hint="every row needs a premise and a hypothesis")
            if label not in labels:
                raise DataError(
                    f"unknown label {label!r}; the label set is {', '.join(self.label_names)}",
                    path, number,
                )
            pairs.append(_Pair(number, premise, hypothesis, labels[label]))
        if not pairs:
            raise DataError("no rows", path, hint="the XNLI dev file is empty")
        return pairs

    def split_of_rows(self, english: list[_Pair]) -> list[str]:
        """The split of each row, from the English premises."""
        assignment = assign_groups((p.premise for p in english), self.proportions, SALT)
        return [assignment[p.premise] for p in english]

    def load(
        self, language: str, split: str, data_root: str | os.PathLike | DataRoot | None = None
    ) -> list[ClassificationExample]:
        code = self.check_split(language, split)
        root = self.root(data_root)
        english_path = self.path(root, self.english_language)
        english = self.read(english_path)
        row_splits = self.split_of_rows(english)
        if code == self.english_language:
            return [
                ClassificationExample(f"dev-{p.line:04d}", (p.premise, p.hypothesis), p.label)
                for p, s in zip(english, row_splits) if s == split
            ]
        target_path = self.path(root, code)
        target = self.read(target_path)
        if len(target) != len(english):
            shorter, longer = (target_path, english_path) if len(target) < len(english) else (english_path, target_path)
            raise DataError(
                f"{len(target)} rows here but {len(english)} in the English file {english_path}; "
                f"row {min(len(target), len(english)) + 1} of {longer} has no partner in {shorter}",
                target_path, min(len(target), len(english)) + 1,
                hint="XNLI files are parallel by row: every language needs the same rows in the same order",
            )
        examples = []
        for t, e, s in zip(target, english, row_splits):
            if t.label != e.label:
                raise DataError(
                    f"label {self.label_names[t.label]!r} here but {self.label_names[e.label]!r} in row {e.line} "
                    f"of the English file {english_path}",
                    target_path, t.line,
                    hint="XNLI files are parallel by row; the rows are out of order or the file is not XNLI dev",
                )
            if s == split:
                examples.append(
                    ClassificationExample(f"dev-{t.line:04d}", (t.premise, t.hypothesis), t.label, (e.premise, e.hypothesis))
                )
        return examples

    # -- fetching ---------------------------------------------------------------------------------
    def fetch_files(self, codes: Sequence[str]) -> list[str]:
        return [f"dev-{c}.tsv" for c in codes]

    def fetch_layout(self, fetch: Fetcher, codes: Sequence[str], out: Path) -> list[str]:
        url = fetch.source.urls["zip"]
        archive = fetch.get(url)
        try:
            with zipfile.ZipFile(archive) as bundle:
                members = [m for m in bundle.namelist()
                           if PurePosixPath(m).name == XNLI_MEMBER and not m.startswith("__MACOSX")]
                if not members:
                    raise fetch.bad(url, f"the archive holds no {XNLI_MEMBER}")
                raw = bundle.read(members[0])
        except zipfile.BadZipFile as err:
            raise fetch.bad(url, f"not a zip archive ({err})") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise fetch.bad(url, f"{XNLI_MEMBER} is not UTF-8 ({err})") from None
        written = []
        for code, lines in _upstream_rows(text, url, codes, fetch).items():
            write_file(out / f"dev-{code}.tsv", ("\n".join(lines) + "\n").encode("utf-8"))
            written.append(f"dev-{code}.tsv")
        return written


def _upstream_rows(text: str, url: str, codes: Sequence[str], fetch: Fetcher) -> dict[str, list[str]]:
    """`xnli.dev.tsv` (header; language, gold_label, sentence1, sentence2 among its columns) ->
    language -> our lines (premise<TAB>hypothesis<TAB>label), in file order."""
    lines = text.split("\n")
    header = lines[0].rstrip("\r").split("\t")
    try:
        at = {name: header.index(name) for name in ("language", "gold_label", "sentence1", "sentence2")}
    except ValueError as err:
        raise fetch.bad(url, f"{XNLI_MEMBER}: {err} in the header {header}") from None
    rows: dict[str, list[str]] = {code: [] for code in codes}
    for number, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) <= max(at.values()):
            raise fetch.bad(url, f"{XNLI_MEMBER}, row {number}: {len(fields)} fields, expected {len(header)}")
        language = fields[at["language"]].strip()
        if language not in rows:
            continue
        label = XNLI_LABELS.get(fields[at["gold_label"]].strip())
        if label is None:
            raise fetch.bad(url, f"{XNLI_MEMBER}, row {number}: unknown label {fields[at['gold_label']]!r}")
        premise, hypothesis = fields[at["sentence1"]].strip(), fields[at["sentence2"]].strip()
        rows[language].append(f"{premise}\t{hypothesis}\t{label}")
    english = len(rows["en"])
    for code, kept in rows.items():
        if not kept:
            raise fetch.bad(url, f"{XNLI_MEMBER} holds no rows for language {code!r}")
        if len(kept) != english:
            raise fetch.bad(url, f"{XNLI_MEMBER}: {len(kept)} rows for {code!r} but {english} for 'en' "
                                 "(the files must be parallel by row)")
    return rows
