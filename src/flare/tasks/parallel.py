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

The options and their readers are in :mod:`flare.tasks.parallel_config` (importable from here too).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flare.errors import ConfigError, DataError
from flare.tasks import hf_data
from flare.tasks.base import BaseTask
from flare.tasks.data_root import DataRoot
from flare.tasks.examples import ClassificationExample
from flare.tasks.parallel_config import (  # noqa: F401 (the option types are importable here too)
    ENGLISH, MISMATCH_POLICIES, PLACEHOLDER, DataFiles, ParallelConfig, dataset_splits, parallel_configs,
)
from flare.tasks.readers import read_table
from flare.tasks.splits import assign_groups
from flare.tasks.tables import (
    Row, build_examples, infer_label_set, label_mismatches, pair_rows, rows_from_records, show_ids,
)

SALT = "parallel"
log = logging.getLogger(__name__)


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

    @classmethod
    def from_options(cls, config=None) -> ParallelTask:
        """``get_task("parallel", config)``: the configuration is required."""
        if config is None:
            raise ConfigError(
                "the parallel task (user data) needs a configuration: language, the files "
                "(train/validation/test or data) and the column names"
            )
        return cls(config)

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
