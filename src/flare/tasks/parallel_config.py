"""User data options: ``DataFiles``, ``ParallelConfig`` and the options -> config readers
(``ParallelConfig.from_dict``, :func:`parallel_configs`, :func:`dataset_splits`).

What the options mean (layouts, splits, labels, several languages) is described in
:mod:`flare.tasks.parallel`, the task that reads the data.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flare.errors import ConfigError
from flare.tasks import hf_data
from flare.tasks.splits import SPLITS, check_proportions

ENGLISH = "en"
MISMATCH_POLICIES = ("error", "drop", "target", "english")
PLACEHOLDER = "{language}"


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
