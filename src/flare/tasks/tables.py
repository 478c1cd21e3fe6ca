"""Classification data from tables: read one side, pair a target side with its English side.

Used by NusaX (CSV ``id,text,label`` per language) and by user data (:mod:`flare.tasks.parallel`).

* ids are strings (a JSON integer id becomes its decimal string), non-empty, unique per file;
* text fields must be strings that are not empty or whitespace-only; they are kept verbatim;
* labels are compared as strings (a JSON integer label becomes its decimal string);
* pairing: the target and English files must hold exactly the same ids (order may differ);
  where both carry a label, the labels must agree.  The target file's order is kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from flare.errors import DataError
from flare.tasks.examples import ClassificationExample
from flare.tasks.readers import Record, read_table

_SHOW_IDS = 5
_INTEGER = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class Row:
    """One checked table row: id, text fields, label (a string; None when the file has none)."""

    id: str
    texts: tuple[str, ...]
    label: str | None
    line: int


def _scalar_text(value, path: Path, line: int, column: str, what: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and what != "text":
        return str(value)
    if not isinstance(value, str):
        raise DataError(
            f"{what} column {column!r} holds {type(value).__name__} {value!r}, expected a string",
            path, line,
        )
    return value


def rows_from_records(
    path: Path,
    header: Sequence[str] | None,
    records: Sequence[Record],
    id_column: str,
    text_columns: Sequence[str],
    label_column: str | None,
) -> tuple[list[Row], bool]:
    """Check and extract rows; returns (rows, whether the file carries labels)."""
    path = Path(path)
    wanted = [id_column, *text_columns]
    if header is not None:
        missing = [c for c in wanted if c not in header]
        if missing:
            raise DataError(
                f"no column {', '.join(repr(c) for c in missing)} in the header (columns: {', '.join(header)})",
                path, 1,
                hint="set the id / text / label column names to the ones the file uses",
            )
        has_label = label_column is not None and label_column in header
    else:
        has_label = label_column is not None and any(label_column in r.values for r in records)
    rows: list[Row] = []
    first_line: dict[str, int] = {}
    for record in records:
        values, line = record.values, record.line
        for column in wanted + ([label_column] if has_label else []):
            if column not in values:
                raise DataError(f"no {column!r} field", path, line, hint=f"every row needs {', '.join(wanted)}")
        row_id = _scalar_text(values[id_column], path, line, id_column, "id")
        if not row_id.strip():
            raise DataError(f"empty id in column {id_column!r}", path, line, hint="every row needs a unique id")
        if row_id in first_line:
            raise DataError(
                f"id {row_id!r} appears twice (first at row {first_line[row_id]})", path, line,
                hint="ids must be unique within a file",
            )
        first_line[row_id] = line
        texts = []
        for column in text_columns:
            text = _scalar_text(values[column], path, line, column, "text")
            if not text.strip():
                raise DataError(
                    f"empty text in column {column!r} (id {row_id!r})", path, line,
                    hint="fill in the text or remove the row",
                )
            texts.append(text)
        label = None
        if has_label:
            label = _scalar_text(values[label_column], path, line, label_column, "label")
            if not label.strip():
                raise DataError(f"empty label in column {label_column!r} (id {row_id!r})", path, line)
        rows.append(Row(row_id, tuple(texts), label, line))
    if not rows:
        raise DataError("no data rows", path, hint="the file holds a header only, or nothing")
    return rows, has_label


def read_rows(
    path: Path,
    id_column: str,
    text_columns: Sequence[str],
    label_column: str | None,
    fmt: str | None = None,
) -> tuple[list[Row], bool]:
    """Read a CSV/TSV/JSONL file and extract checked rows (see :func:`rows_from_records`)."""
    header, records = read_table(Path(path), fmt)
    return rows_from_records(Path(path), header, records, id_column, text_columns, label_column)


def show_ids(ids: Sequence[str], noun: str = "id") -> str:
    """``id 'a' has`` / ``ids 'a', 'b' ... (7 in all) have``: the first few ids, counted."""
    shown = ", ".join(repr(i) for i in ids[:_SHOW_IDS])
    if len(ids) == 1:
        return f"{noun} {shown} has"
    return f"{noun}s {shown}" + (f" ... ({len(ids)} in all)" if len(ids) > _SHOW_IDS else "") + " have"


def pair_rows(
    target: Sequence[Row], target_path: Path, english: Sequence[Row], english_path: Path,
    check_labels: bool = True,
) -> list[tuple[Row, Row]]:
    """Pair every target row with the English row of the same id (exactly the same id sets);
    ``check_labels=False`` keeps pairs whose labels disagree (see :func:`label_mismatches`)."""
    by_id = {row.id: row for row in english}
    target_ids = {row.id for row in target}
    unpaired_target = [row for row in target if row.id not in by_id]
    if unpaired_target:
        raise DataError(
            f"{show_ids([r.id for r in unpaired_target])} no partner in the English file {english_path}",
            target_path, unpaired_target[0].line,
            hint="target and English files must hold the same ids",
        )
    unpaired_english = [row for row in english if row.id not in target_ids]
    if unpaired_english:
        raise DataError(
            f"{show_ids([r.id for r in unpaired_english])} no partner in the target file {target_path}",
            english_path, unpaired_english[0].line,
            hint="target and English files must hold the same ids",
        )
    pairs = []
    for row in target:
        partner = by_id[row.id]
        if check_labels and _disagree(row, partner):
            raise DataError(
                f"id {row.id!r} has label {row.label!r} here but {partner.label!r} in the English file "
                f"{english_path}, row {partner.line}",
                target_path, row.line,
                hint="a translated example must keep its label",
            )
        pairs.append((row, partner))
    return pairs


def _disagree(row: Row, partner: Row) -> bool:
    return row.label is not None and partner.label is not None and row.label != partner.label


def label_mismatches(pairs: Sequence[tuple[Row, Row]]) -> list[tuple[Row, Row]]:
    """The (target, English) pairs where both rows carry a label and the labels differ."""
    return [(row, partner) for row, partner in pairs if _disagree(row, partner)]


def label_index(label: str | None, labels: Mapping[str, int], path: Path, line: int, row_id: str) -> int:
    """The index of ``label`` in the label set, or DataError naming the value and the set."""
    if label is None:
        raise DataError(
            f"no label for id {row_id!r}", path, line,
            hint="the target file or its English file must have a label column",
        )
    if label not in labels:
        raise DataError(
            f"unknown label {label!r} (id {row_id!r}); the label set is {', '.join(labels)}",
            path, line,
            hint="fix the label, or give a label set that includes it",
        )
    return labels[label]


def build_examples(
    target: Sequence[Row],
    target_path: Path,
    english: Sequence[Row] | None,
    english_path: Path | None,
    labels: Mapping[str, int],
) -> list[ClassificationExample]:
    """ClassificationExamples from target rows, paired with English rows when given."""
    examples = []
    if english is None:
        for row in target:
            examples.append(
                ClassificationExample(row.id, row.texts, label_index(row.label, labels, target_path, row.line, row.id))
            )
        return examples
    for row, partner in pair_rows(target, target_path, english, english_path):
        if row.label is not None:
            label = label_index(row.label, labels, target_path, row.line, row.id)
        else:
            label = label_index(partner.label, labels, english_path, partner.line, row.id)
        examples.append(ClassificationExample(row.id, row.texts, label, partner.texts))
    return examples


def infer_label_set(values: Sequence[str]) -> tuple[str, ...]:
    """Sorted distinct labels: numerically when every label is an ASCII integer ("-1", "2",
    "10"), else by string (code point order)."""
    distinct = set(values)
    if all(_INTEGER.fullmatch(v) for v in distinct):
        return tuple(sorted(distinct, key=lambda v: (int(v), v)))
    return tuple(sorted(distinct))
