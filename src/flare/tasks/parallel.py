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
e.g. "2" < "10"); several languages: the union over their training data; with
``on_label_mismatch="target"`` the target rows' labels count too.  A label outside the set raises
DataError naming the value and the set.

Languages: ``language`` (the configured target code, any non-empty string other than "en") and
``"en"``: ``load("en", split)`` returns the English side (for stage-1 training) with
``english=None``; ``load(language, split)`` returns the target side with ``english`` set.

Label mismatches (two-file layouts): a target row whose label differs from its English row's
label is a DataError by default (``on_label_mismatch="error"``); ``"drop"`` leaves the row out,
``"target"`` keeps the target's label, ``"english"`` the English one.  Each target load records
what it did in ``task.label_mismatches[(language, split)]`` (a :class:`LabelMismatches`) and
logs a warning when it found any; the English side (stage 1) keeps every row, with its English
label.

Hugging Face ``datasets`` (optional extra ``flare-xl[datasets]``): a ``datasets.Dataset`` stands
wherever a file path does (``DataFiles(target=ds_sw, english=ds_en)``, ``data=ds``), a
``DatasetDict`` can be given as ``splits`` (one-file layout) or through :func:`dataset_splits`;
in options (a config) ``{dataset: <hub id or load_dataset arguments>}`` stands wherever a path
does, and a top-level ``dataset`` key gives every split at once (see :mod:`flare.tasks.hf_data`).

Several target languages (one experiment, one stage 1): :func:`parallel_configs` reads options
with ``languages: [de, ja]`` (``{language}`` in any string option, e.g. a path, is replaced by
each code) or ``languages: {de: {...}, ja: {...}}`` (per-language options over the shared ones);
``ParallelTask`` takes the resulting configs.  The English side comes from the first language's
data.

Formats (by suffix .csv / .tsv / .jsonl, or ``format``) and every check: see
:mod:`flare.tasks.readers` and :mod:`flare.tasks.tables`.  Relative paths are used as given
(relative to the working directory); :meth:`ParallelConfig.from_dict` resolves them against a
base directory (e.g. the config file's folder).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flare.errors import ConfigError, DataError
from flare.tasks import hf_data
from flare.tasks.base import BaseTask
from flare.tasks.data_root import DataRoot
from flare.tasks.examples import ClassificationExample
from flare.tasks.readers import read_table
from flare.tasks.splits import SPLITS, assign_groups, check_proportions
from flare.tasks.tables import (
    Row, build_examples, infer_label_set, label_mismatches, pair_rows, rows_from_records, show_ids,
)

SALT = "parallel"
ENGLISH = "en"
MISMATCH_POLICIES = ("error", "drop", "target", "english")
PLACEHOLDER = "{language}"
log = logging.getLogger(__name__)


def _source(value, what: str):
    """A table source: a file Path, or a ``datasets.Dataset`` kept as given."""
    if hf_data.is_dataset(value):
        return value
    if hf_data.is_dataset_dict(value):
        raise ConfigError(
            f"{what}: a DatasetDict holds several splits; give it as splits=... (or "
            "dataset_splits(target, english)), or pick one split (ds['train'])"
        )
    if hf_data.is_iterable_dataset(value):
        raise ConfigError(f"{what}: streaming (iterable) datasets are not supported; load without streaming")
    if isinstance(value, (str, os.PathLike)):
        return Path(value)
    raise ConfigError(f"{what}: expected a file path or a datasets.Dataset, got {type(value).__name__} {value!r}")


@dataclass(frozen=True)
class DataFiles:
    """The tables of one split (or of the one table to split): target, and English if separate.
    Each is a file path or a ``datasets.Dataset``."""

    target: Any
    english: Any = None

    def __post_init__(self):
        object.__setattr__(self, "target", _source(self.target, "target"))
        if self.english is not None:
            object.__setattr__(self, "english", _source(self.english, "english"))


def dataset_splits(target, english=None) -> dict[str, DataFiles]:
    """Per-split DataFiles from a target ``DatasetDict`` (and the English one, two-table layout)."""
    for what, value in (("target", target), ("english", english)):
        if value is not None and not isinstance(value, Mapping):
            raise ConfigError(
                f"dataset_splits: {what} must be a DatasetDict (split -> Dataset), got {type(value).__name__}"
            )
    unknown = [s for s in target if s not in SPLITS]
    if unknown:
        raise ConfigError(
            f"the dataset has split {unknown[0]!r}, not one of {', '.join(SPLITS)}; "
            "select the splits (e.g. {'train': ds['train'], 'test': ds['dev']})"
        )
    if english is not None:
        missing = [s for s in target if s not in english]
        if missing:
            raise ConfigError(
                f"the English dataset has no {missing[0]!r} split (it has: {', '.join(english) or 'none'})"
            )
    return {s: DataFiles(target[s], english[s] if english is not None else None) for s in SPLITS if s in target}


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
    on_label_mismatch: str = "error"
    splits_given: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self):
        if not isinstance(self.language, str) or not self.language.strip():
            raise ConfigError("user data needs the target language code (language: e.g. sw)")
        if self.language.strip().lower() == ENGLISH:
            raise ConfigError("the target language of user data cannot be 'en' (English is the source side)")
        if self.on_label_mismatch not in MISMATCH_POLICIES:
            raise ConfigError(
                f"on_label_mismatch must be one of {', '.join(MISMATCH_POLICIES)}, got {self.on_label_mismatch!r}"
            )
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
            if not isinstance(self.splits, Mapping):
                raise ConfigError(f"splits must map split names to DataFiles, got {type(self.splits).__name__}")
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

        Keys: language; train / validation / test or data, each a path (one-file layout), a
        mapping {target: path, english: path} or {dataset: spec} in place of any path (spec: a hub
        id or load_dataset arguments); or dataset: spec (or {target: spec, english: spec}) for every
        split at once; proportions; id_column; text_columns (a name or a list); english_columns;
        label_column; labels; group_column; format; on_label_mismatch.  Several languages:
        :func:`parallel_configs`.
        """
        allowed = {
            "language", "train", "validation", "test", "data", "dataset", "proportions", "id_column",
            "text_columns", "english_columns", "label_column", "labels", "group_column", "format",
            "on_label_mismatch",
        }
        if "languages" in options:
            raise ConfigError("ParallelConfig is one language; for languages: [...] use parallel_configs "
                              "(or get_task('parallel', options))")
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ConfigError(f"unknown user-data option {unknown[0]!r}; valid options: {', '.join(sorted(allowed))}")
        base = Path(base_dir) if base_dir is not None else None
        kwargs = {k: v for k, v in options.items() if k not in {"train", "validation", "test", "data", "dataset"}}
        for key in ("proportions", "labels", "english_columns", "text_columns"):
            if key in kwargs and isinstance(kwargs[key], list):
                kwargs[key] = tuple(kwargs[key])
        split_files = {s: _files(options[s], s, base) for s in SPLITS if options.get(s) is not None}
        if split_files:
            kwargs["splits"] = split_files
        if options.get("data") is not None:
            kwargs["data"] = _files(options["data"], "data", base)
        if options.get("dataset") is not None:
            if split_files or "data" in kwargs:
                raise ConfigError("give dataset (every split) or train/validation/test/data, not both")
            kwargs.update(_whole_dataset(options["dataset"], base))
        if "language" not in kwargs:
            raise ConfigError("user data needs the target language code (language: e.g. sw)")
        return cls(**kwargs)


# ----------------------------------------------------------------------------- options -> sources
def _path(p, key: str, base: Path | None) -> Path:
    if not isinstance(p, (str, os.PathLike)):
        raise ConfigError(f"{key}: expected a file path or {{dataset: ...}}, got {p!r}")
    p = Path(p).expanduser()
    return base / p if base is not None and not p.is_absolute() else p


def _pick_split(loaded, key: str, where: str):
    """One Dataset of a loaded DatasetDict for the ``key`` position (train/validation/test/data)."""
    if not hf_data.is_dataset_dict(loaded):
        return loaded
    if key in loaded:
        return loaded[key]
    if len(loaded) == 1:
        return next(iter(loaded.values()))
    raise ConfigError(
        f"{where}: the dataset has splits {', '.join(loaded)}; add split: <name> to its arguments"
    )


def _side(value, key: str, base: Path | None):
    if isinstance(value, Mapping):
        if set(value) != {"dataset"}:
            raise ConfigError(
                f"{key}: expected a path or {{dataset: <hub id or load_dataset arguments>}}, got {dict(value)!r}"
            )
        return _pick_split(hf_data.load_spec(value["dataset"], key, base), key.split(".")[0], key)
    return _path(value, key, base)


def _files(value, key: str, base: Path | None) -> DataFiles:
    if isinstance(value, Mapping) and "target" in value:
        extra = set(value) - {"target", "english"}
        if extra:
            raise ConfigError(f"{key}: expected a path or {{target: ..., english: ...}}, got {dict(value)!r}")
        english = value.get("english")
        return DataFiles(
            _side(value["target"], f"{key}.target", base),
            _side(english, f"{key}.english", base) if english else None,
        )
    if isinstance(value, Mapping) and set(value) != {"dataset"}:
        raise ConfigError(
            f"{key}: expected a path, {{target: ..., english: ...}} or {{dataset: ...}}, got {dict(value)!r}"
        )
    return DataFiles(_side(value, key, base))


def _whole_dataset(value, base: Path | None) -> dict[str, Any]:
    """``dataset:`` for every split: a DatasetDict gives the splits, a Dataset the one table to split."""
    if isinstance(value, Mapping) and "target" in value:
        extra = set(value) - {"target", "english"}
        if extra:
            raise ConfigError(f"dataset: expected a spec or {{target: spec, english: spec}}, got {dict(value)!r}")
        target = hf_data.load_spec(value["target"], "dataset.target", base)
        english = hf_data.load_spec(value["english"], "dataset.english", base) if value.get("english") else None
    else:
        target, english = hf_data.load_spec(value, "dataset", base), None
    if hf_data.is_dataset(target):
        if english is not None and not hf_data.is_dataset(english):
            english = _pick_split(english, "data", "dataset.english")
        return {"data": DataFiles(target, english)}
    if english is not None and not hf_data.is_dataset_dict(english):
        raise ConfigError("dataset: the target gives several splits but the English side one; give both the same way")
    return {"splits": dataset_splits(target, english)}


def _fill(value, code: str):
    """``value`` with every ``{language}`` in its strings replaced by ``code``."""
    if isinstance(value, str):
        return value.replace(PLACEHOLDER, code)
    if isinstance(value, Mapping):
        return {k: _fill(v, code) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_fill(v, code) for v in value)
    return value


def parallel_configs(
    options: Mapping[str, Any], base_dir: str | os.PathLike | None = None
) -> tuple[ParallelConfig, ...]:
    """One ParallelConfig per target language.

    ``language: sw`` gives one; ``languages: [de, ja]`` one per code, with ``{language}`` in every
    string option replaced by the code; ``languages: {de: {...}, ja: {...}}`` merges each code's
    options over the shared ones (then ``{language}`` is filled in too).
    """
    if "languages" not in options:
        return (ParallelConfig.from_dict(options, base_dir),)
    if "language" in options:
        raise ConfigError("give language (one) or languages (several), not both")
    shared = {k: v for k, v in options.items() if k != "languages"}
    languages = options["languages"]
    if isinstance(languages, str):
        languages = [languages]
    if isinstance(languages, Mapping):
        own = {code: value for code, value in languages.items()}
    elif isinstance(languages, (list, tuple)):
        own = {code: None for code in languages}
        if len(own) != len(languages):
            raise ConfigError(f"languages lists a language twice: {list(languages)}")
    else:
        raise ConfigError(f"languages must be a list of codes or a mapping code -> options, got {languages!r}")
    if not own:
        raise ConfigError("languages is empty: name at least one target language")
    configs = []
    for code, extra in own.items():
        if not isinstance(code, str) or not code.strip():
            raise ConfigError(f"languages: a language code must be a non-empty string, got {code!r}")
        if extra is not None and not isinstance(extra, Mapping):
            raise ConfigError(f"languages.{code}: expected a mapping of options (or nothing), got {extra!r}")
        extra = dict(extra or {})
        if "language" in extra or "languages" in extra:
            raise ConfigError(f"languages.{code}: the code is the key; drop language/languages there")
        configs.append(ParallelConfig.from_dict({**_fill({**shared, **extra}, code), "language": code}, base_dir))
    seen = [c.language.lower() for c in configs]
    if len(set(seen)) != len(seen):
        raise ConfigError(f"languages lists a language twice (case is ignored): {[c.language for c in configs]}")
    first = configs[0]
    for other in configs[1:]:
        if dataclasses.replace(other, language=first.language) == first:
            raise ConfigError(
                f"languages {first.language} and {other.language} would read the same data; put {PLACEHOLDER} "
                "in the paths (or dataset arguments) or give per-language options"
            )
    return tuple(configs)


# ----------------------------------------------------------------------------- the task
@dataclass(frozen=True)
class LabelMismatches:
    """What one target load did with rows whose label differs from their English row's label."""

    language: str
    split: str
    policy: str
    count: int  # rows with a mismatch
    rows: int  # rows of the split before any was dropped
    ids: tuple[str, ...]  # their ids, in file order

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def effect(self) -> str:
        return {"drop": "dropped", "target": "kept with the target's label",
                "english": "kept with the English label", "error": "none allowed"}[self.policy]


@dataclass(frozen=True)
class _Side:
    """Checked rows of one split: target rows paired with English rows."""

    pairs: list[tuple[Row, Row]]
    target_path: Any
    english_path: Any


def _table(source, fmt: str | None):
    """(header, records, how errors name it) of a file or a ``datasets.Dataset``."""
    if hf_data.is_dataset(source):
        header, records = hf_data.records_from_dataset(source)
        return header, records, hf_data.describe_dataset(source)
    header, records = read_table(source, fmt)
    return header, records, source


def _resolve(pairs: list[tuple[Row, Row]], policy: str) -> list[tuple[Row, Row]]:
    """Pairs after ``policy`` dealt with label mismatches (``error``: there are none left)."""
    resolved = []
    for row, partner in pairs:
        if row.label is None or partner.label is None or row.label == partner.label:
            resolved.append((row, partner))
        elif policy == "target":
            resolved.append((row, dataclasses.replace(partner, label=row.label)))
        elif policy == "english":
            resolved.append((dataclasses.replace(row, label=partner.label), partner))
        # "drop": left out
    return resolved


def _configs(config) -> tuple[ParallelConfig, ...]:
    if isinstance(config, ParallelConfig):
        return (config,)
    if isinstance(config, Mapping):
        return parallel_configs(config)
    if isinstance(config, Sequence) and not isinstance(config, str) and config \
            and all(isinstance(c, ParallelConfig) for c in config):
        return tuple(config)
    raise ConfigError(
        "the parallel task needs a ParallelConfig, a list of them (one per language) or a mapping of its options"
    )


class ParallelTask(BaseTask):
    name = "parallel"
    kind = "classification"
    english_language = ENGLISH
    folder = ""

    def __init__(self, config: ParallelConfig | Sequence[ParallelConfig] | Mapping[str, Any]):
        configs = _configs(config)
        codes = [c.language for c in configs]
        if len({c.lower() for c in codes}) != len(codes):
            raise ConfigError(f"the parallel task lists a language twice: {codes}")
        if len({len(c.text_columns) for c in configs}) != 1:
            raise ConfigError(
                "every language of the parallel task needs the same number of text columns, got "
                + ", ".join(f"{c.language}: {c.text_columns}" for c in configs)
            )
        self.configs: dict[str, ParallelConfig] = {c.language: c for c in configs}
        self.config = configs[0]  # also the English side (stage 1)
        self.languages = (*codes, ENGLISH)
        self.text_fields = self.config.text_columns
        #: (language, split) -> LabelMismatches of the latest load of that target split
        self.label_mismatches: dict[tuple[str, str], LabelMismatches] = {}
        self._logged: set[LabelMismatches] = set()
        self.label_names = self._label_set()

    # -- splits and labels -------------------------------------------------------------------
    def _config_of(self, code: str) -> ParallelConfig:
        return self.config if code == ENGLISH else self.configs[code]

    def splits(self, language: str) -> tuple[str, ...]:
        return self._config_of(self.resolve_language(language)).splits_given

    def _missing_split_hint(self, language: str, split: str) -> str:
        return f"; configure a file for the {split} split"

    def _label_set(self) -> tuple[str, ...]:
        """The given label set, or the one inferred from the training data (module docstring) of
        every language; inferring reads the training files when the task is built, so their
        problems show early."""
        given = {c.labels for c in self.configs.values() if c.labels is not None}
        if len(given) > 1:
            raise ConfigError(f"the languages give different label sets: {sorted(given)}; give one labels: [...]")
        if given:
            return given.pop()
        values = []
        for c in self.configs.values():
            if c.data is not None:
                side = self._read(c, c.data)
            elif "train" in c.splits:
                side = self._read(c, c.splits["train"])
            else:
                raise ConfigError(
                    "cannot infer the label set of user data without a train split; give labels: [...]"
                )
            for target, english in side.pairs:
                label = english.label if english.label is not None else target.label
                if label is None:
                    raise DataError(
                        f"no label for id {target.id!r}", side.target_path, target.line,
                        hint=f"the target or the English file needs a {c.label_column!r} column",
                    )
                values.append(label)
                if c.on_label_mismatch == "target" and target.label is not None and target.label != label:
                    values.append(target.label)  # the target examples keep their own label
        return infer_label_set(values)

    # -- reading ---------------------------------------------------------------------------------
    def _read(self, c: ParallelConfig, files: DataFiles) -> _Side:
        if files.english is None:
            header, records, where = _table(files.target, c.format)
            target, _ = rows_from_records(where, header, records, c.id_column, c.text_columns, c.label_column)
            english, _ = rows_from_records(where, header, records, c.id_column, c.english_columns, c.label_column)
            return _Side(list(zip(target, english)), where, where)
        header, records, target_where = _table(files.target, c.format)
        target, _ = rows_from_records(target_where, header, records, c.id_column, c.text_columns, c.label_column)
        header, records, english_where = _table(files.english, c.format)
        english, _ = rows_from_records(
            english_where, header, records, c.id_column, c.english_columns or c.text_columns, c.label_column
        )
        pairs = pair_rows(target, target_where, english, english_where, check_labels=c.on_label_mismatch == "error")
        return _Side(pairs, target_where, english_where)

    def _groups(self, c: ParallelConfig, files: DataFiles) -> dict[str, str]:
        """Row id -> group key for the one-file split (the id itself without a group column)."""
        if c.group_column is None:
            return {}
        header, records, where = _table(files.target, c.format)
        if header is not None and c.group_column not in header:
            raise DataError(
                f"no group column {c.group_column!r} in the header (columns: {', '.join(header)})",
                where, 1,
            )
        groups = {}
        for record in records:
            if c.group_column not in record.values:
                raise DataError(f"no {c.group_column!r} field", where, record.line)
            groups[str(record.values[c.id_column])] = str(record.values[c.group_column])
        return groups

    def _record(self, code: str, split: str, policy: str, pairs: list[tuple[Row, Row]]) -> None:
        mismatched = label_mismatches(pairs)
        report = LabelMismatches(code, split, policy, len(mismatched), len(pairs), tuple(t.id for t, _ in mismatched))
        self.label_mismatches[(code, split)] = report
        if report.count and report not in self._logged:
            self._logged.add(report)
            log.warning(
                "user data %s/%s: %d of %d rows carry another label than their English row "
                "(%s another label); on_label_mismatch=%s: %s",
                code, split, report.count, report.rows, show_ids(list(report.ids)), policy, report.effect,
            )

    def load(
        self, language: str, split: str, data_root: str | os.PathLike | DataRoot | None = None
    ) -> list[ClassificationExample]:
        """Examples of one split; ``data_root`` is ignored (user data has its own paths)."""
        code = self.check_split(language, split)
        c = self._config_of(code)
        files = c.data if c.data is not None else c.splits[split]
        side = self._read(c, files)
        pairs = side.pairs
        if c.data is not None:  # the split is drawn over every row, before any mismatch is dropped
            groups = self._groups(c, files)
            keys = {t.id: groups.get(t.id, t.id) if groups else t.id for t, _ in pairs}
            assignment = assign_groups(keys.values(), c.proportions, SALT)
            pairs = [(t, e) for t, e in pairs if assignment[keys[t.id]] == split]
        policy = c.on_label_mismatch
        if code == ENGLISH:  # the English rows keep their own labels, whatever the policy
            pairs = _resolve(pairs, "english")
        else:
            self._record(code, split, policy, pairs)
            pairs = _resolve(pairs, policy)
        labels = {name: i for i, name in enumerate(self.label_names)}
        examples = build_examples(
            [t for t, _ in pairs], side.target_path, [e for _, e in pairs], side.english_path, labels
        )
        if code == ENGLISH:
            return [ClassificationExample(ex.id, ex.english, ex.label) for ex in examples]
        return examples
