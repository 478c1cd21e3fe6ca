"""User data: the user's own parallel classification data (CSV, TSV or JSONL).

Two layouts, per split or for one file that is split here:

* **two files** (``DataFiles(target=..., english=...)``): a target-language file and an English
  file paired by the id column; both hold the id and the text columns (the English file's text
  columns are ``english_columns``, by default the same names as ``text_columns``); the label
  column may be in either file or both (then the labels must agree);
* **one file** (``DataFiles(target=...)``): target text columns ``text_columns`` and English
  text columns ``english_columns`` (required) side by side in one file, with the id and label.

Splits: ``splits={"train": DataFiles(...), "validation": ..., "test": ...}`` (any subset), or
``data=DataFiles(...)``: the rows are split deterministically by the hash-rank rule of
:mod:`flare.tasks.splits` (salt "parallel") over their id, or over ``group_column`` when given
(rows sharing that value, e.g. a premise, stay in one split), with ``proportions``
(default 80 / 10 / 10).

Labels: ``labels`` (the label names in index order) when given, else inferred from the training
data -- the train split's labels (one-file layout: all rows), taken from the English file where
it has a label column -- as the sorted distinct values (numerically sorted when all are integers,
e.g. "2" < "10").  A label outside the set raises DataError naming the value and the set.

Languages: ``language`` (the configured target code, any non-empty string other than "en") and
``"en"``: ``load("en", split)`` returns the English side (for stage-1 training) with
``english=None``; ``load(language, split)`` returns the target side with ``english`` set.

Formats (by suffix .csv / .tsv / .jsonl, or ``format``) and every check: see
:mod:`flare.tasks.readers` and :mod:`flare.tasks.tables`.  Relative paths are used as given
(relative to the working directory); :meth:`ParallelConfig.from_dict` resolves them against a
base directory (e.g. the config file's folder).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flare.errors import ConfigError, DataError
from flare.tasks.base import BaseTask
from flare.tasks.data_root import DataRoot
from flare.tasks.examples import ClassificationExample
from flare.tasks.readers import read_table
from flare.tasks.splits import SPLITS, assign_groups, check_proportions
from flare.tasks.tables import Row, build_examples, infer_label_set, pair_rows, read_rows, rows_from_records

SALT = "parallel"
ENGLISH = "en"


@dataclass(frozen=True)
class DataFiles:
    """The files of one split (or of the one file to split): target, and English if separate."""

    target: Path
    english: Path | None = None

    def __post_init__(self):
        object.__setattr__(self, "target", Path(self.target))
        if self.english is not None:
            object.__setattr__(self, "english", Path(self.english))


def _as_tuple(value, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    try:
        items = tuple(value)
    except TypeError:
        raise ConfigError(f"{name} must be a column name or a list of column names, got {value!r}") from None
    if not items or not all(isinstance(v, str) and v for v in items):
        raise ConfigError(f"{name} must be one or more non-empty column names, got {value!r}")
    return items


@dataclass(frozen=True)
class ParallelConfig:
    language: str
    splits: Mapping[str, DataFiles] | None = None
    data: DataFiles | None = None
    proportions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    id_column: str = "id"
    text_columns: tuple[str, ...] = ("text",)
    english_columns: tuple[str, ...] | None = None
    label_column: str = "label"
    labels: tuple[str, ...] | None = None
    group_column: str | None = None
    format: str | None = None
    splits_given: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self):
        if not isinstance(self.language, str) or not self.language.strip():
            raise ConfigError("user data needs the target language code (language: e.g. sw)")
        if self.language.strip().lower() == ENGLISH:
            raise ConfigError("the target language of user data cannot be 'en' (English is the source side)")
        object.__setattr__(self, "text_columns", _as_tuple(self.text_columns, "text_columns"))
        if self.english_columns is not None:
            object.__setattr__(self, "english_columns", _as_tuple(self.english_columns, "english_columns"))
            if len(self.english_columns) != len(self.text_columns):
                raise ConfigError(
                    f"english_columns {self.english_columns} must match text_columns {self.text_columns} one to one"
                )
        if (self.splits is None) == (self.data is None):
            raise ConfigError(
                "give either per-split files (splits: train/validation/test) or one file to split (data), not both",
            )
        if self.splits is not None:
            if not self.splits:
                raise ConfigError("splits is empty; give files for at least one of train, validation, test")
            unknown = [s for s in self.splits if s not in SPLITS]
            if unknown:
                raise ConfigError(f"unknown split {unknown[0]!r}; valid splits: {', '.join(SPLITS)}")
            files = {s: f if isinstance(f, DataFiles) else DataFiles(f) for s, f in self.splits.items()}
            object.__setattr__(self, "splits", files)
            object.__setattr__(self, "splits_given", tuple(s for s in SPLITS if s in files))
            all_files = list(files.values())
        else:
            if not isinstance(self.data, DataFiles):
                object.__setattr__(self, "data", DataFiles(self.data))
            object.__setattr__(self, "proportions", check_proportions(self.proportions))
            object.__setattr__(self, "splits_given", SPLITS)
            all_files = [self.data]
        if self.english_columns is None and any(f.english is None for f in all_files):
            raise ConfigError(
                "one-file user data needs english_columns: the columns that hold the English text "
                "(or give a separate English file per split)"
            )
        if self.labels is not None:
            labels = _as_tuple(self.labels, "labels")
            if len(set(labels)) != len(labels):
                raise ConfigError(f"labels lists a label twice: {labels}")
            object.__setattr__(self, "labels", labels)

    @classmethod
    def from_dict(cls, options: Mapping[str, Any], base_dir: str | os.PathLike | None = None) -> ParallelConfig:
        """Build from plain values (a YAML mapping); relative paths are resolved against base_dir.

        Keys: language; train / validation / test or data, each a path (one-file layout) or a
        mapping {target: path, english: path}; proportions; id_column; text_columns (a name or a
        list); english_columns; label_column; labels; group_column; format.
        """
        allowed = {
            "language", "train", "validation", "test", "data", "proportions", "id_column", "text_columns",
            "english_columns", "label_column", "labels", "group_column", "format",
        }
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ConfigError(f"unknown user-data option {unknown[0]!r}; valid options: {', '.join(sorted(allowed))}")
        base = Path(base_dir) if base_dir is not None else None

        def files(value, key) -> DataFiles:
            def resolve(p):
                if not isinstance(p, (str, os.PathLike)):
                    raise ConfigError(f"{key}: expected a file path, got {p!r}")
                p = Path(p).expanduser()
                return base / p if base is not None and not p.is_absolute() else p

            if isinstance(value, Mapping):
                extra = set(value) - {"target", "english"}
                if extra or "target" not in value:
                    raise ConfigError(f"{key}: expected a path or {{target: path, english: path}}, got {dict(value)!r}")
                return DataFiles(resolve(value["target"]), resolve(value["english"]) if value.get("english") else None)
            return DataFiles(resolve(value))

        kwargs = {k: v for k, v in options.items() if k not in {"train", "validation", "test", "data"}}
        for key in ("proportions", "labels", "english_columns", "text_columns"):
            if key in kwargs and isinstance(kwargs[key], list):
                kwargs[key] = tuple(kwargs[key])
        split_files = {s: files(options[s], s) for s in SPLITS if options.get(s) is not None}
        if split_files:
            kwargs["splits"] = split_files
        if options.get("data") is not None:
            kwargs["data"] = files(options["data"], "data")
        if "language" not in kwargs:
            raise ConfigError("user data needs the target language code (language: e.g. sw)")
        return cls(**kwargs)


@dataclass(frozen=True)
class _Side:
    """Checked rows of one split: target rows paired with English rows."""

    pairs: list[tuple[Row, Row]]
    target_path: Path
    english_path: Path


class ParallelTask(BaseTask):
    name = "parallel"
    kind = "classification"
    english_language = ENGLISH
    folder = ""

    def __init__(self, config: ParallelConfig | Mapping[str, Any]):
        if isinstance(config, Mapping):
            config = ParallelConfig.from_dict(config)
        if not isinstance(config, ParallelConfig):
            raise ConfigError("the parallel task needs a ParallelConfig (or a mapping of its options)")
        self.config = config
        self.languages = (config.language, ENGLISH)
        self.text_fields = config.text_columns
        self.label_names = self._label_set()

    # -- splits and labels -------------------------------------------------------------------
    def splits(self, language: str) -> tuple[str, ...]:
        self.resolve_language(language)
        return self.config.splits_given

    def _missing_split_hint(self, language: str, split: str) -> str:
        return f"; configure a file for the {split} split"

    def _label_set(self) -> tuple[str, ...]:
        """The given label set, or the one inferred from the training data (module docstring);
        inferring reads the training file when the task is built, so its problems show early."""
        if self.config.labels is not None:
            return self.config.labels
        if self.config.data is not None:
            sides = [self._read(self.config.data)]
        elif "train" in self.config.splits:
            sides = [self._read(self.config.splits["train"])]
        else:
            raise ConfigError(
                "cannot infer the label set of user data without a train split; give labels: [...]"
            )
        values = []
        for side in sides:
            for target, english in side.pairs:
                label = english.label if english.label is not None else target.label
                if label is None:
                    raise DataError(
                        f"no label for id {target.id!r}", side.target_path, target.line,
                        hint=f"the target or the English file needs a {self.config.label_column!r} column",
                    )
                values.append(label)
        return infer_label_set(values)

    # -- reading ---------------------------------------------------------------------------------
    def _read(self, files: DataFiles) -> _Side:
        c = self.config
        if files.english is None:
            header, records = read_table(files.target, c.format)
            target, _ = rows_from_records(files.target, header, records, c.id_column, c.text_columns, c.label_column)
            english, _ = rows_from_records(files.target, header, records, c.id_column, c.english_columns, c.label_column)
            return _Side(list(zip(target, english)), files.target, files.target)
        target, _ = read_rows(files.target, c.id_column, c.text_columns, c.label_column, c.format)
        english, _ = read_rows(files.english, c.id_column, c.english_columns or c.text_columns, c.label_column, c.format)
        return _Side(pair_rows(target, files.target, english, files.english), files.target, files.english)

    def _groups(self, files: DataFiles) -> dict[str, str]:
        """Row id -> group key for the one-file split (the id itself without a group column)."""
        c = self.config
        if c.group_column is None:
            return {}
        header, records = read_table(files.target, c.format)
        if header is not None and c.group_column not in header:
            raise DataError(
                f"no group column {c.group_column!r} in the header (columns: {', '.join(header)})",
                files.target, 1,
            )
        groups = {}
        for record in records:
            if c.group_column not in record.values:
                raise DataError(f"no {c.group_column!r} field", files.target, record.line)
            groups[str(record.values[c.id_column])] = str(record.values[c.group_column])
        return groups

    def load(
        self, language: str, split: str, data_root: str | os.PathLike | DataRoot | None = None
    ) -> list[ClassificationExample]:
        """Examples of one split; ``data_root`` is ignored (user data has its own paths)."""
        code = self.check_split(language, split)
        c = self.config
        files = c.data if c.data is not None else c.splits[split]
        side = self._read(files)
        pairs = side.pairs
        if c.data is not None:
            groups = self._groups(files)
            keys = {t.id: groups.get(t.id, t.id) if groups else t.id for t, _ in pairs}
            assignment = assign_groups(keys.values(), c.proportions, SALT)
            pairs = [(t, e) for t, e in pairs if assignment[keys[t.id]] == split]
        labels = {name: i for i, name in enumerate(self.label_names)}
        examples = build_examples(
            [t for t, _ in pairs], side.target_path, [e for _, e in pairs], side.english_path, labels
        )
        if code == ENGLISH:
            return [ClassificationExample(ex.id, ex.english, ex.label) for ex in examples]
        return examples
