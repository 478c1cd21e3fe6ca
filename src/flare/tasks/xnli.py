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
pair, or one string, e.g. the authors' "Premise: {p} Hypothesis: {h}" -- the pipeline chooses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from flare.errors import DataError
from flare.tasks.base import BaseTask
from flare.tasks.data_root import DataRoot
from flare.tasks.examples import ClassificationExample
from flare.tasks.readers import read_text
from flare.tasks.splits import assign_groups

LANGUAGES = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
PROPORTIONS = (0.6, 0.2, 0.2)
SALT = "xnli"


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
