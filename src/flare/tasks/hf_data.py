"""Tables from the Hugging Face ``datasets`` library (an optional extra: ``flare-xl[datasets]``).

* :func:`is_dataset` / :func:`is_dataset_dict` tell a ``datasets.Dataset`` / ``DatasetDict`` without
  importing ``datasets`` (a program that never made one has not imported it);
* :func:`records_from_dataset` turns a Dataset into the ``(header, records)`` pair that
  :func:`flare.tasks.readers.read_table` returns for a file, so every check of
  :mod:`flare.tasks.tables` applies unchanged.  A column with a ``ClassLabel`` feature gives the
  label's name (``"entailment"``), not its index.  "Row" in an error is the row's index in the
  Dataset (``ds[i]``, counted from 0);
* :func:`load_spec` loads a config's ``dataset`` value: a hub id (``"org/name"``) or the keyword
  arguments of ``datasets.load_dataset`` (``{path: csv, data_files: {train: a.csv}}``; relative
  ``data_files`` are resolved against the config's folder).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flare.errors import ConfigError, DataError
from flare.tasks.readers import Record

INSTALL_HINT = "pip install 'flare-xl[datasets]'"


def require_datasets():
    """The ``datasets`` module, or ConfigError naming the extra to install."""
    try:
        import datasets
    except ImportError:
        raise ConfigError(
            f"loading data through Hugging Face datasets needs the datasets library: {INSTALL_HINT}"
        ) from None
    return datasets


def _loaded(name: str):
    module = sys.modules.get("datasets")
    return getattr(module, name, None) if module is not None else None


def is_dataset(value: Any) -> bool:
    cls = _loaded("Dataset")
    return cls is not None and isinstance(value, cls)


def is_dataset_dict(value: Any) -> bool:
    cls = _loaded("DatasetDict")
    return cls is not None and isinstance(value, cls)


def is_iterable_dataset(value: Any) -> bool:
    classes = tuple(c for c in (_loaded("IterableDataset"), _loaded("IterableDatasetDict")) if c is not None)
    return bool(classes) and isinstance(value, classes)


def describe_dataset(dataset) -> str:
    """``dataset 'name' [split]``: how errors name a Dataset (it has no file path)."""
    name = getattr(dataset.info, "dataset_name", None) or "(in memory)"
    split = f" [{dataset.split}]" if dataset.split is not None else ""
    return f"dataset {name!r}{split}"


def records_from_dataset(dataset) -> tuple[list[str], list[Record]]:
    """(column names, one Record per row with ``line`` = the row's index)."""
    header = list(dataset.column_names)
    ClassLabel = _loaded("ClassLabel")
    names = {
        column: feature.names
        for column, feature in dataset.features.items()
        if ClassLabel is not None and isinstance(feature, ClassLabel)
    }
    records = []
    for index, row in enumerate(dataset):
        values = dict(row)
        for column, label_names in names.items():
            value = values.get(column)
            if isinstance(value, int) and 0 <= value < len(label_names):
                values[column] = label_names[value]
        records.append(Record(index, values))
    return header, records


def _resolve_data_files(value, base: Path | None):
    if base is None:
        return value
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if "://" in text or Path(text).expanduser().is_absolute():
            return text
        return str(base / Path(text).expanduser())
    if isinstance(value, Mapping):
        return {k: _resolve_data_files(v, base) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_resolve_data_files(v, base) for v in value]
    return value


def spec_arguments(spec: Any, where: str, base: Path | None = None) -> dict[str, Any]:
    """The ``load_dataset`` keyword arguments of a config's ``dataset`` value."""
    if isinstance(spec, str) and spec.strip():
        return {"path": spec}
    if isinstance(spec, Mapping):
        arguments = dict(spec)
        if not isinstance(arguments.get("path"), str) or not arguments["path"].strip():
            raise ConfigError(
                f"{where}: the dataset needs a path (a hub id such as org/name, or a builder such as csv "
                f"or json with data_files), got {dict(spec)!r}"
            )
        if "data_files" in arguments:
            arguments["data_files"] = _resolve_data_files(arguments["data_files"], base)
        return arguments
    raise ConfigError(
        f"{where}: dataset must be a hub id or a mapping of load_dataset arguments "
        f"({{path: csv, data_files: ...}}), got {spec!r}"
    )


def load_spec(spec: Any, where: str, base: Path | None = None):
    """``datasets.load_dataset(**arguments)``: a Dataset (with ``split``) or a DatasetDict."""
    arguments = spec_arguments(spec, where, base)
    datasets = require_datasets()
    try:
        loaded = datasets.load_dataset(**arguments)
    except (ConfigError, DataError):
        raise
    except Exception as err:  # the library raises many types (missing file, unknown id, no network)
        raise DataError(
            f"{where}: load_dataset({', '.join(f'{k}={v!r}' for k, v in arguments.items())}) failed: "
            f"{type(err).__name__}: {err}",
            hint="check the dataset id or data_files (hub datasets need the network or a local cache)",
        ) from err
    if is_iterable_dataset(loaded):
        raise ConfigError(f"{where}: streaming datasets are not supported; drop streaming: true")
    return loaded
