"""Carry an extractive-QA answer span through machine translation.

The answer is wrapped in a pair of markers, the marked context is translated, the markers are
looked up in the translation and removed; the text between them is the projected answer and the
position of the opening marker its offset.

Markers. A *family* is a set of marker characters that translation may turn into one another
(a model may render ``"`` as ``“`` ... ``”`` or ``«`` ... ``»``): after translation *any* two
characters of the family count as the pair, and anything but exactly two is a failure. So a
family can only be used when the context contains none of its characters. The families are
tried in order (quotes, as in the paper, then square brackets); a context that contains
characters of every family gets its quote characters replaced by an apostrophe, one character
for one character, so every offset stays valid and the answer text is re-read from the altered
context (the authors' code deleted the quotes instead, without shifting the answer offset).

Failures (``ProjectionFailure.reason``):
``empty_answer``, ``answer_mismatch`` (the source offset does not point at the answer text),
``marker_missing``, ``marker_duplicated`` (more than two marker characters after translation),
``marker_order`` (closing bracket before the opening one), ``empty_projection`` (nothing left
between the markers).

``project_answers`` does a batch with one translation call and counts failures by reason;
``translate_qa_records`` translates a QA data set (context with projection, question plainly)
and drops the examples whose projection failed, reporting which were kept.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flare.errors import ConfigError, DataError
from flare.translation.records import get_field, replace_fields


@dataclass(frozen=True)
class MarkerFamily:
    name: str
    open: str  # inserted before the answer
    close: str  # inserted after it
    opening: frozenset[str]  # characters accepted as the opening marker after translation
    closing: frozenset[str]

    @property
    def chars(self) -> frozenset[str]:
        return self.opening | self.closing


_QUOTES = frozenset('"“”„‟«»「」『』＂')
QUOTES = MarkerFamily("quotes", '"', '"', _QUOTES, _QUOTES)
BRACKETS = MarkerFamily("brackets", "[", "]", frozenset("[［【〔"), frozenset("]］】〕"))
DEFAULT_FAMILIES: tuple[MarkerFamily, ...] = (QUOTES, BRACKETS)
SUBSTITUTE = "'"  # replaces the first family's characters when no family is free

REASONS = (
    "empty_answer",
    "answer_mismatch",
    "marker_missing",
    "marker_duplicated",
    "marker_order",
    "empty_projection",
)


@dataclass(frozen=True)
class MarkedContext:
    text: str  # the context with the answer wrapped in markers: translate this
    family: MarkerFamily
    substituted: int  # marker characters of the context replaced by SUBSTITUTE


@dataclass(frozen=True)
class ProjectedAnswer:
    context: str
    answer_text: str
    answer_start: int

    @property
    def answer_end(self) -> int:
        return self.answer_start + len(self.answer_text)


@dataclass(frozen=True)
class ProjectionFailure:
    reason: str  # one of REASONS
    detail: str = ""


def mark_answer(
    context: str,
    answer_start: int,
    answer_text: str,
    families: Sequence[MarkerFamily] = DEFAULT_FAMILIES,
) -> MarkedContext | ProjectionFailure:
    """Wrap ``context[answer_start:answer_start+len(answer_text)]`` in markers."""
    if not families:
        raise ConfigError("mark_answer needs at least one marker family")
    if not answer_text or not answer_text.strip():
        return ProjectionFailure("empty_answer", "the answer text is empty")
    end = answer_start + len(answer_text)
    if answer_start < 0 or end > len(context) or context[answer_start:end] != answer_text:
        return ProjectionFailure(
            "answer_mismatch",
            f"context[{answer_start}:{end}] is {context[answer_start:end]!r}, not {answer_text!r}",
        )
    chosen, substituted = None, 0
    for family in families:
        if not any(ch in family.chars for ch in context):
            chosen = family
            break
    if chosen is None:  # every family occurs: free the first one, keeping every offset
        chosen = families[0]
        substituted = sum(ch in chosen.chars for ch in context)
        context = "".join(SUBSTITUTE if ch in chosen.chars else ch for ch in context)
    answer = context[answer_start:end]
    text = context[:answer_start] + chosen.open + answer + chosen.close + context[end:]
    return MarkedContext(text, chosen, substituted)


def unmark_answer(translated: str, family: MarkerFamily) -> ProjectedAnswer | ProjectionFailure:
    """Find the two markers in a translation, remove them, and return the answer span."""
    positions = [i for i, ch in enumerate(translated) if ch in family.chars]
    if len(positions) < 2:
        return ProjectionFailure("marker_missing", f"{len(positions)} of 2 markers in the translation")
    if len(positions) > 2:
        return ProjectionFailure("marker_duplicated", f"{len(positions)} markers in the translation")
    first, second = positions
    if translated[first] not in family.opening or translated[second] not in family.closing:
        return ProjectionFailure("marker_order", f"markers {translated[first]!r} ... {translated[second]!r}")
    before, inner, after = translated[:first], translated[first + 1 : second], translated[second + 1 :]
    answer = inner.strip()
    if not answer:
        return ProjectionFailure("empty_projection", "nothing between the markers")
    lead = inner[: len(inner) - len(inner.lstrip())]
    trail = inner[len(inner.rstrip()) :]
    # '... kota " Jakarta " ...' must not become '... kota  Jakarta  ...': where a marker had
    # white space on both sides, keep only the outer white space (none at the ends of the text)
    if lead and (not before or before[-1].isspace()):
        lead = ""
    if trail and (not after or after[0].isspace()):
        trail = ""
    context = before + lead + answer + trail + after
    start = len(before) + len(lead)
    assert context[start : start + len(answer)] == answer
    return ProjectedAnswer(context, answer, start)


@dataclass
class ProjectionReport:
    total: int = 0
    projected: int = 0
    substituted_contexts: int = 0  # contexts whose quote characters were replaced
    failures: Counter = field(default_factory=Counter)  # reason -> count

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def summary(self) -> str:
        text = f"answer projection: {self.projected} of {self.total} kept"
        if self.failed:
            reasons = ", ".join(f"{n} {reason}" for reason, n in self.failures.most_common())
            text += f", {self.failed} dropped ({reasons})"
        if self.substituted_contexts:
            text += f"; {self.substituted_contexts} contexts had their quotes replaced by {SUBSTITUTE!r}"
        return text


TranslateFn = Callable[[list[str]], list[str]]


def project_answers(
    items: Sequence[tuple[str, int, str]],
    translate: TranslateFn,
    families: Sequence[MarkerFamily] = DEFAULT_FAMILIES,
) -> tuple[list[ProjectedAnswer | ProjectionFailure], ProjectionReport]:
    """Project (context, answer_start, answer_text) triples through one ``translate`` call.

    ``translate`` maps a list of texts to their translations (for a ``Translator``:
    ``lambda texts: translator.translate(texts, src, tgt)``).
    """
    report = ProjectionReport(total=len(items))
    results: list[ProjectedAnswer | ProjectionFailure | None] = [None] * len(items)
    marked: list[tuple[int, MarkedContext]] = []
    for index, (context, start, answer) in enumerate(items):
        mark = mark_answer(context, start, answer, families)
        if isinstance(mark, ProjectionFailure):
            results[index] = mark
        else:
            marked.append((index, mark))
            report.substituted_contexts += mark.substituted > 0
    if marked:
        outputs = translate([mark.text for _, mark in marked])
        if len(outputs) != len(marked):
            raise DataError(f"translation returned {len(outputs)} texts for {len(marked)}")
        for (index, mark), output in zip(marked, outputs, strict=True):
            results[index] = unmark_answer(output, mark.family)
    for result in results:
        if isinstance(result, ProjectionFailure):
            report.failures[result.reason] += 1
        else:
            report.projected += 1
    return results, report  # type: ignore[return-value]


# -- whole QA data sets ---------------------------------------------------------------------------


def first_answer(answers: Any, row: int) -> tuple[str, int]:
    """(text, start) of the first answer in any of the usual shapes.

    Shapes: a sequence of objects with ``text``/``start`` (``flare.tasks.examples.Answer``) or
    of dicts with ``text`` and ``answer_start`` (or ``start``); a SQuAD/Hugging Face dict of
    lists ``{"text": [...], "answer_start": [...]}``.
    """
    try:
        if isinstance(answers, Mapping):
            return str(answers["text"][0]), int(answers["answer_start"][0])
        first = answers[0]
        if isinstance(first, Mapping):
            return str(first["text"]), int(first.get("answer_start", first.get("start")))
        return str(first.text), int(first.start)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as err:
        raise DataError(
            f"record {row}: cannot read the first answer ({type(err).__name__}: {err})", row=row
        ) from err


def _answers_like(answers: Any, text: str, start: int) -> Any:
    """A one-answer value of the same shape as ``answers``."""
    if isinstance(answers, Mapping):
        return {**answers, "text": [text], "answer_start": [start]}
    first = answers[0]
    if isinstance(first, Mapping):
        key = "answer_start" if "answer_start" in first else "start"
        one = {**first, "text": text, key: start}
    elif hasattr(first, "_replace"):
        one = first._replace(text=text, start=start)
    elif dataclasses.is_dataclass(first):
        one = dataclasses.replace(first, text=text, start=start)
    else:
        one = type(first)(text, start)
    return type(answers)([one]) if isinstance(answers, (tuple, list)) else [one]


@dataclass
class QATranslationReport:
    total: int = 0
    kept_indices: list[int] = field(default_factory=list)  # input rows that were kept, in order
    projection: ProjectionReport = field(default_factory=ProjectionReport)
    question_stats: Any = None  # TranslationStats of the questions (when the translator has them)
    context_stats: Any = None

    def summary(self) -> str:
        parts = [self.projection.summary()]
        for name, stats in (("questions", self.question_stats), ("contexts", self.context_stats)):
            if stats is not None and hasattr(stats, "summary"):
                parts.append(f"{name}: {stats.summary()}")
        return "; ".join(parts)


def translate_qa_records(
    records: Sequence[Any],
    translator: Any,
    src: Any,
    tgt: Any,
    *,
    context_field: str = "context",
    question_field: str | None = "question",
    answers_field: str = "answers",
    families: Sequence[MarkerFamily] = DEFAULT_FAMILIES,
) -> tuple[list[Any], QATranslationReport]:
    """Translate extractive-QA records; drop those whose answer could not be projected.

    Records are dicts, dataclasses (``flare.tasks.examples.QAExample``) or named tuples. The
    context is translated with the first answer marked (only the first: projecting each
    answer would need one translation of the context per answer); the question, if
    ``question_field`` is set, is translated as it is. Returned records are copies with the
    translated context, question and a one-answer ``answers`` of the input's shape; every other
    field is kept. ``report.kept_indices`` pairs each returned record with its input row.
    """
    report = QATranslationReport(total=len(records))
    items = []
    for row, record in enumerate(records):
        context = get_field(record, context_field, row)
        if not isinstance(context, str):
            raise DataError(f"record {row}: field {context_field!r} is not a string", row=row)
        text, start = first_answer(get_field(record, answers_field, row), row)
        items.append((context, start, text))

    def translate(texts: list[str]) -> list[str]:
        out = translator.translate(texts, src, tgt)
        report.context_stats = getattr(translator, "last_stats", None)
        return out

    results, report.projection = project_answers(items, translate, families)
    questions: list[str] | None = None
    kept = [i for i, result in enumerate(results) if isinstance(result, ProjectedAnswer)]
    if question_field is not None:
        originals = []
        for row in kept:
            question = get_field(records[row], question_field, row)
            if not isinstance(question, str):
                raise DataError(f"record {row}: field {question_field!r} is not a string", row=row)
            originals.append(question)
        questions = translator.translate(originals, src, tgt)
        report.question_stats = getattr(translator, "last_stats", None)
    out = []
    for position, row in enumerate(kept):
        result = results[row]
        assert isinstance(result, ProjectedAnswer)
        record = records[row]
        changes = {
            context_field: result.context,
            answers_field: _answers_like(
                get_field(record, answers_field, row), result.answer_text, result.answer_start
            ),
        }
        if questions is not None:
            changes[question_field] = questions[position]
        out.append(replace_fields(record, changes))
    report.kept_indices = kept
    return out, report
