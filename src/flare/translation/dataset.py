"""Translate the text fields of a data set: each field separately, all rows of a field at once.

Records are dicts, dataclasses (frozen ones too: ``flare.tasks.examples.ClassificationExample``)
or named tuples. A field holds a string or a tuple/list of strings (``texts`` of a
ClassificationExample: each element is translated, the shape is kept). The result is a list of
copies, one per input record in the same order, with the named fields replaced by their
translations (or, for dicts with ``suffix``, added next to them as ``field + suffix``); all other
fields are kept as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from flare.errors import ConfigError, DataError
from flare.translation.records import get_field, replace_fields
from flare.translation.translator import TranslationStats


@dataclass
class DatasetTranslationReport:
    records: int = 0
    fields: dict[str, Any] = field(default_factory=dict)  # field -> TranslationStats (or None)

    @property
    def stats(self) -> TranslationStats:
        total = TranslationStats()
        for stats in self.fields.values():
            if isinstance(stats, TranslationStats):
                total = total + stats
        return total

    def summary(self) -> str:
        lines = [f"{self.records} records"]
        for name, stats in self.fields.items():
            lines.append(f"  {name}: {stats.summary() if hasattr(stats, 'summary') else 'translated'}")
        return "\n".join(lines)


def translate_records(
    records: Sequence[Any],
    fields: Sequence[str],
    translator: Any,
    src: Any,
    tgt: Any,
    *,
    suffix: str | None = None,
) -> tuple[list[Any], DatasetTranslationReport]:
    """Translate ``fields`` of every record from ``src`` to ``tgt``.

    ``translator`` is a ``Translator`` or any object with ``translate(texts, src, tgt)``;
    its ``last_stats`` (when present) go into the report, one entry per field.
    """
    if isinstance(fields, str):
        fields = [fields]
    if not fields:
        raise ConfigError("translate_records needs at least one field name")
    if suffix is not None and any(not isinstance(r, dict) for r in records):
        raise ConfigError("suffix= adds new keys, which only dict records can take")
    report = DatasetTranslationReport(records=len(records))
    changes: list[dict[str, Any]] = [{} for _ in records]
    for name in fields:
        flat: list[str] = []
        shapes: list[tuple[type, int] | None] = []  # None: a plain string
        for row, record in enumerate(records):
            value = get_field(record, name, row)
            if isinstance(value, str):
                flat.append(value)
                shapes.append(None)
            elif isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
                flat.extend(value)
                shapes.append((type(value), len(value)))
            else:
                raise DataError(
                    f"record {row}: field {name!r} holds a {type(value).__name__}, "
                    "not a string or a tuple of strings",
                    row=row,
                )
        translated = translator.translate(flat, src, tgt)
        if len(translated) != len(flat):
            raise DataError(f"translation of field {name!r} returned {len(translated)} texts for {len(flat)}")
        report.fields[name] = getattr(translator, "last_stats", None)
        position = 0
        for row, shape in enumerate(shapes):
            if shape is None:
                value = translated[position]
                position += 1
            else:
                kind, size = shape
                value = kind(translated[position : position + size])
                position += size
            changes[row][name + suffix if suffix is not None else name] = value
    out = [replace_fields(record, change) for record, change in zip(records, changes, strict=True)]
    return out, report
