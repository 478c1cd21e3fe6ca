"""Low-level readers shared by the task loaders: tables (CSV / TSV / JSONL) and SQuAD 1.1 JSON.

Every problem is a :class:`flare.errors.DataError` that names the file, the row and what to do.
"Row" is the 1-based line number in the file where the record starts (for CSV/TSV the header is
line 1, so the first data record is row 2, as a spreadsheet numbers it; for JSONL row N is line N).

Tables
    * encoding UTF-8 (a leading byte-order mark is ignored);
    * CSV: comma-separated with standard double-quote quoting (RFC 4180, what ``csv.writer``,
      pandas and spreadsheets write); fields holding commas, quotes or line breaks are quoted;
    * TSV: the same rules with a tab as the delimiter (fields holding tabs, quotes or line breaks
      must be quoted, as ``csv.writer(f, delimiter="\\t")`` or ``pandas.to_csv(sep="\\t")`` do);
    * CSV/TSV need a header row naming the columns; empty lines are skipped;
    * JSONL: one JSON object per line (lines are split on "\\n" only, so U+2028 and other
      Unicode line separators inside strings are fine); blank lines are skipped;
    * values are kept verbatim (no stripping), field size is not limited.

SQuAD 1.1 JSON
    ``{"data": [{"paragraphs": [{"context": str, "qas": [{"id", "question",
    "answers": [{"text", "answer_start"}]}]}]}]}``; each answer must sit at ``answer_start``
    in the context (character offsets), each question needs at least one answer.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flare.errors import ConfigError, DataError
from flare.tasks.examples import Answer

FORMATS = ("csv", "tsv", "jsonl")
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class Record:
    """One table row: its line number and its values by column name."""

    line: int
    values: dict[str, Any]


def table_format(path: Path, fmt: str | None = None) -> str:
    """The table format: ``fmt`` when given, else from the file suffix."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ConfigError(f"unknown data format {fmt!r}; valid formats: {', '.join(FORMATS)}")
        return fmt
    found = _SUFFIXES.get(Path(path).suffix.lower())
    if found is None:
        raise ConfigError(
            f"cannot tell the format of {path} from its suffix; name it .csv, .tsv or .jsonl "
            f"or set the format explicitly (one of {', '.join(FORMATS)})"
        )
    return found


def read_text(path: Path, what: str = "data file", hint: str | None = None) -> str:
    """The whole file decoded as UTF-8 (BOM dropped); missing or undecodable files raise DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"{what} not found" if not path.exists() else f"{what} is not a file",
            path,
            hint=hint or "check the path, or the data root (--data-dir / $FLARE_DATA)",
        )
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            f"not valid UTF-8 ({err.reason} at byte {err.start})", path, line,
            hint="save the file as UTF-8",
        ) from None


def read_table(path: Path, fmt: str | None = None) -> tuple[list[str] | None, list[Record]]:
    """Read a CSV / TSV / JSONL file: (header columns or None for JSONL, records)."""
    path = Path(path)
    fmt = table_format(path, fmt)
    text = read_text(path)
    if fmt == "jsonl":
        return None, _read_jsonl(path, text)
    return _read_delimited(path, text, "," if fmt == "csv" else "\t")


def _read_delimited(path: Path, text: str, delimiter: str) -> tuple[list[str], list[Record]]:
    if csv.field_size_limit() < 2**31 - 1:
        csv.field_size_limit(2**31 - 1)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    records: list[Record] = []
    previous_end = 0
    kind = "CSV" if delimiter == "," else "TSV"
    while True:
        start = previous_end + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            raise DataError(
                f"malformed {kind}: {err}", path, start,
                hint='quote fields that hold the delimiter, quotes or line breaks ("..."), doubling inner quotes',
            ) from None
        previous_end = reader.line_num
        if not fields:  # empty line
            continue
        if header is None:
            header = fields
            blank = [i + 1 for i, name in enumerate(header) if not name.strip()]
            if blank:
                raise DataError(
                    f"header has an empty column name (column {blank[0]})", path, start,
                    hint="the first line must name every column",
                )
            seen: set[str] = set()
            for name in header:
                if name in seen:
                    raise DataError(f"header names column {name!r} twice", path, start)
                seen.add(name)
            continue
        if len(fields) != len(header):
            raise DataError(
                f"{len(fields)} fields where the header has {len(header)} ({', '.join(header)})",
                path, start,
                hint=f"check for an unquoted {'comma' if delimiter == ',' else 'tab'} or a missing field",
            )
        records.append(Record(start, dict(zip(header, fields))))
    if header is None:
        raise DataError(f"empty {kind} file (no header row)", path, hint="the first line must name the columns")
    return header, records


def _read_jsonl(path: Path, text: str) -> list[Record]:
    records: list[Record] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.endswith("\r"):
            line = line[:-1]
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(
                f"malformed JSON: {err.msg} (column {err.colno})", path, number,
                hint="each line must hold one complete JSON object",
            ) from None
        if not isinstance(value, dict):
            raise DataError(
                f"expected a JSON object, found {type(value).__name__}", path, number,
                hint='each line must be an object such as {"id": ..., "text": ..., "label": ...}',
            )
        records.append(Record(number, value))
    return records


# ----------------------------------------------------------------------------- SQuAD 1.1 JSON
@dataclass(frozen=True)
class SquadQuestion:
    id: str
    question: str
    context: str
    answers: tuple[Answer, ...]
    where: str  # e.g. "data[3].paragraphs[0].qas[1]"


def _expect(value: Any, kind: type, path: Path, where: str, what: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DataError(
            f"{where}: {what} must be a {kind.__name__}, found {type(value).__name__}", path,
            hint="the file must follow the SQuAD 1.1 JSON layout",
        )
    return value


def read_squad(path: Path, unique_ids: bool = True, allow_unanswered: bool = False) -> list[SquadQuestion]:
    """Read and check a SQuAD 1.1 JSON file (answers must sit at their offsets).

    An answer with an empty text is a blanked gold answer (some public copies of XQuAD and
    TyDiQA-GoldP dev ship every answer as ``{"text": "", "answer_start": 0}``).  By default any
    such answer is a DataError that counts them; with ``allow_unanswered`` they are dropped and
    a question left without answers gets ``answers == ()`` (usable for prediction, not for
    training or scoring).
    """
    path = Path(path)
    text = read_text(path, "SQuAD JSON file")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(
            f"malformed JSON: {err.msg} (column {err.colno})", path, err.lineno,
            hint="the file must be one JSON document in the SQuAD 1.1 layout",
        ) from None
    _expect(document, dict, path, "top level", "the document")
    if "data" not in document:
        raise DataError("no 'data' list at the top level", path, hint="the file must follow the SQuAD 1.1 JSON layout")
    questions: list[SquadQuestion] = []
    seen: dict[str, str] = {}
    blanked: list[str] = []
    for i, article in enumerate(_expect(document["data"], list, path, "top level", "'data'")):
        _expect(article, dict, path, f"data[{i}]", "an article")
        for j, paragraph in enumerate(_expect(article.get("paragraphs"), list, path, f"data[{i}]", "'paragraphs'")):
            where_p = f"data[{i}].paragraphs[{j}]"
            _expect(paragraph, dict, path, where_p, "a paragraph")
            context = _expect(paragraph.get("context"), str, path, where_p, "'context'")
            if not context.strip():
                raise DataError(f"{where_p}: empty context", path, hint="every paragraph needs its text")
            for k, qa in enumerate(_expect(paragraph.get("qas"), list, path, where_p, "'qas'")):
                where = f"{where_p}.qas[{k}]"
                _expect(qa, dict, path, where, "a question")
                qid = qa.get("id")
                if isinstance(qid, int) and not isinstance(qid, bool):
                    qid = str(qid)
                qid = _expect(qid, str, path, where, "'id'")
                label = f"question {qid!r} ({where})"
                if unique_ids:
                    if qid in seen:
                        raise DataError(
                            f"{label}: id already used at {seen[qid]}", path,
                            hint="question ids must be unique within a file",
                        )
                    seen[qid] = where
                question = _expect(qa.get("question"), str, path, label, "'question'")
                if not question.strip():
                    raise DataError(f"{label}: empty question", path, hint="remove the question or fill it in")
                raw_answers = _expect(qa.get("answers"), list, path, label, "'answers'")
                if not raw_answers:
                    raise DataError(
                        f"{label}: no answers", path,
                        hint="extractive QA (SQuAD 1.1) needs at least one answer per question",
                    )
                answers: list[Answer] = []
                for m, answer in enumerate(raw_answers):
                    _expect(answer, dict, path, f"{label} answer {m}", "an answer")
                    a_text = _expect(answer.get("text"), str, path, f"{label} answer {m}", "'text'")
                    start = _expect(answer.get("answer_start"), int, path, f"{label} answer {m}", "'answer_start'")
                    if not a_text:
                        blanked.append(label)
                        continue
                    if not (0 <= start <= len(context) - len(a_text)) or context[start:start + len(a_text)] != a_text:
                        found = context[max(0, start):max(0, start) + len(a_text)]
                        raise DataError(
                            f"{label}: answer {m} {a_text!r} is not at answer_start {start} of its context "
                            f"(found {found!r} there)",
                            path,
                            hint="answer_start must be the 0-based character offset of the answer text in the context",
                        )
                    answers.append(Answer(a_text, start))
                questions.append(SquadQuestion(qid, question, context, tuple(answers), where))
    if blanked and not allow_unanswered:
        raise DataError(
            f"{len(blanked)} gold answers are empty (first: {blanked[0]}); "
            + (f"all {len(questions)} questions are without an answer: this copy of the file has its gold "
               "answers removed" if all(not q.answers for q in questions) else
               "answers must be non-empty spans of the context"),
            path,
            hint="use a copy of the data set with its gold answers (see docs/data.md); "
            "to load the questions for prediction only, pass allow_unanswered=True",
        )
    if not questions:
        raise DataError("no questions in the file", path, hint="the file must follow the SQuAD 1.1 JSON layout")
    return questions
