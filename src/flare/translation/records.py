"""Read and copy the fields of a data-set record: a dict, a dataclass (frozen ones too) or a named
tuple. Used by the translation of whole data sets (``dataset``, ``qa_projection``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from flare.errors import DataError


def get_field(record: Any, name: str, row: int) -> Any:
    """The value of field `name` of record number `row` (a DataError where it has none)."""
    if isinstance(record, Mapping):
        if name not in record:
            raise DataError(f"record {row} has no field {name!r}", row=row)
        return record[name]
    if not hasattr(record, name):
        raise DataError(f"record {row} has no field {name!r}", row=row)
    return getattr(record, name)


def replace_fields(record: Any, changes: dict[str, Any]) -> Any:
    """A copy of `record` with `changes` (field -> value) applied; the record itself is unchanged."""
    if isinstance(record, Mapping):
        return {**record, **changes}
    if dataclasses.is_dataclass(record):
        return dataclasses.replace(record, **changes)
    if hasattr(record, "_replace"):
        return record._replace(**changes)
    raise DataError(f"cannot build a translated copy of a {type(record).__name__}")
