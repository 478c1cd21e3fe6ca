from dataclasses import dataclass
from typing import NamedTuple

import pytest

from flare.errors import DataError
from flare.translation.qa_projection import (
    BRACKETS,
    QUOTES,
    ProjectedAnswer,
    ProjectionFailure,
    mark_answer,
    project_answers,
    translate_qa_records,
    unmark_answer,
)


def project(context, start, answer, translate=lambda texts: list(texts)):
    (result,), report = project_answers([(context, start, answer)], translate)
    return result


def span(context, answer):
    return context.index(answer)


def test_identity_translation_gives_back_the_span():
    context = "Jakarta is the capital of Indonesia."
    result = project(context, span(context, "capital"), "capital")
    assert result == ProjectedAnswer(context, "capital", 15)


def test_answer_at_start_and_at_end():
    context = "Jakarta is the capital of Indonesia"
    assert project(context, 0, "Jakarta") == ProjectedAnswer(context, "Jakarta", 0)
    assert project(context, 26, "Indonesia") == ProjectedAnswer(context, "Indonesia", 26)
    assert project("Jakarta", 0, "Jakarta") == ProjectedAnswer("Jakarta", "Jakarta", 0)


def test_translated_text_with_other_quote_glyphs_and_spaces():
    def translate(texts):  # a 'translation' that changes words, quote style and spacing
        return [
            t.replace("is the capital of", "adalah ibu kota").replace('"Jakarta"', "« Jakarta »")
            for t in texts
        ]

    context = "Jakarta is the capital of Indonesia."
    result = project(context, 0, "Jakarta", translate)
    assert result == ProjectedAnswer("Jakarta adalah ibu kota Indonesia.", "Jakarta", 0)
    result = project(
        "the city of Jakarta is big",
        12,
        "Jakarta",
        lambda ts: [t.replace('"Jakarta"', "“ Jakarta ”") for t in ts],
    )
    assert result == ProjectedAnswer("the city of Jakarta is big", "Jakarta", 12)  # no double spaces


def test_marker_missing_duplicated_and_order():
    context = "Jakarta is the capital of Indonesia."
    drop = project(context, 0, "Jakarta", lambda ts: [t.replace('"', "") for t in ts])
    assert isinstance(drop, ProjectionFailure) and drop.reason == "marker_missing"
    dup = project(context, 0, "Jakarta", lambda ts: [t + ' "' for t in ts])
    assert dup.reason == "marker_duplicated"
    bracketed = 'He said "yes" to Jakarta.'
    flipped = project(
        bracketed,
        span(bracketed, "Jakarta"),
        "Jakarta",
        lambda ts: [t.replace("[", "#").replace("]", "[").replace("#", "]") for t in ts],
    )
    assert flipped.reason == "marker_order"
    empty = project(context, 0, "Jakarta", lambda ts: ['"" adalah ibu kota.' for _ in ts])
    assert empty.reason == "empty_projection"


def test_empty_answer_and_wrong_offset_are_not_translated():
    calls = []

    def translate(texts):
        calls.append(texts)
        return texts

    assert project("some context", 0, "", translate).reason == "empty_answer"
    assert project("some context", 0, "  ", translate).reason == "empty_answer"
    assert project("some context", 3, "context", translate).reason == "answer_mismatch"
    assert project("some context", 10, "context", translate).reason == "answer_mismatch"
    assert calls == []


def test_context_that_already_contains_quotes_uses_brackets():
    # the authors' code deleted these quotes without shifting answer_start
    context = 'The "Big Durian" is a nickname of Jakarta.'
    start = span(context, "Jakarta")
    marked = mark_answer(context, start, "Jakarta")
    assert marked.family is BRACKETS and marked.substituted == 0
    assert marked.text == 'The "Big Durian" is a nickname of [Jakarta].'
    assert project(context, start, "Jakarta") == ProjectedAnswer(context, "Jakarta", start)


def test_context_with_quotes_and_brackets_keeps_offsets():
    context = 'He said "it [the city] is big" about "Jakarta" and left.'
    start = span(context, "Jakarta")
    marked = mark_answer(context, start, "Jakarta")
    assert marked.family is QUOTES and marked.substituted == 4
    assert marked.text == "He said 'it [the city] is big' about '\"Jakarta\"' and left."
    result = project(context, start, "Jakarta")
    assert result.answer_text == "Jakarta" and result.answer_start == start
    assert result.context == context.replace('"', "'")
    # an answer that itself contains quote characters is read back from the altered context
    quoted = 'the "Big Durian" [sic]'
    result = project(quoted, 4, '"Big Durian"')
    assert result == ProjectedAnswer("the 'Big Durian' [sic]", "'Big Durian'", 4)


def test_unmark_answer_directly():
    assert unmark_answer('a "b" c', QUOTES) == ProjectedAnswer("a b c", "b", 2)
    assert unmark_answer("a [b c] d", BRACKETS) == ProjectedAnswer("a b c d", "b c", 2)
    assert unmark_answer("a b", QUOTES).reason == "marker_missing"


def test_report_counts_failures_by_reason():
    items = [
        ("Jakarta is big", 0, "Jakarta"),
        ("Bandung is cool", 0, "Bandung"),
        ("Medan", 0, ""),
        ("Surabaya is hot", 0, "Surabaya"),
    ]

    def translate(texts):
        return [t.replace('"', "") if "Bandung" in t else t for t in texts]

    results, report = project_answers(items, translate)
    assert [type(r).__name__ for r in results] == [
        "ProjectedAnswer",
        "ProjectionFailure",
        "ProjectionFailure",
        "ProjectedAnswer",
    ]
    assert report.total == 4 and report.projected == 2 and report.failed == 2
    assert report.failures == {"marker_missing": 1, "empty_answer": 1}
    assert "2 of 4 kept" in report.summary() and "1 marker_missing" in report.summary()


class Answer(NamedTuple):
    text: str
    start: int


@dataclass(frozen=True)
class Example:
    id: str
    question: str
    context: str
    answers: tuple


class FakeTranslator:
    """Upper-cases everything except the markers; drops the markers of contexts with 'drop'."""

    def __init__(self):
        self.calls = []

    def translate(self, texts, src, tgt):
        self.calls.append((list(texts), src, tgt))
        return [t.replace('"', "").upper() if "drop" in t else t.upper() for t in texts]


def test_translate_qa_records_dataclasses_dicts_and_hf_answers():
    records = [
        Example("1", "where?", "It is in Jakarta.", (Answer("Jakarta", 9), Answer("Jakarta.", 9))),
        Example("2", "what?", "drop this one", (Answer("this", 5),)),
        Example("3", "who?", 'Said "hi" to Budi', (Answer("Budi", 13),)),
    ]
    tr = FakeTranslator()
    out, report = translate_qa_records(records, tr, "en", "id")
    assert report.kept_indices == [0, 2] and report.projection.failures == {"marker_missing": 1}
    assert out[0] == Example("1", "WHERE?", "IT IS IN JAKARTA.", (Answer("JAKARTA", 9),))
    assert out[1].context == 'SAID "HI" TO BUDI' and out[1].answers == (Answer("BUDI", 13),)
    assert len(tr.calls) == 2 and tr.calls[1][0] == ["where?", "who?"]  # questions of kept rows only

    dicts = [
        {
            "id": "a",
            "question": "q",
            "context": "x Jakarta y",
            "answers": {"text": ["Jakarta"], "answer_start": [2]},
        }
    ]
    out, report = translate_qa_records(dicts, FakeTranslator(), "en", "id")
    assert out[0]["answers"] == {"text": ["JAKARTA"], "answer_start": [2]} and out[0]["id"] == "a"
    flat = [{"context": "x Jakarta y", "answers": [{"text": "Jakarta", "answer_start": 2}]}]
    out, _ = translate_qa_records(flat, FakeTranslator(), "en", "id", question_field=None)
    assert out[0]["answers"] == [{"text": "JAKARTA", "answer_start": 2}]
    with pytest.raises(DataError, match="record 0"):
        translate_qa_records([{"context": "x", "answers": []}], FakeTranslator(), "en", "id")


def test_translate_qa_records_with_a_tiny_model(nllb_dir, tmp_path):
    """Random weights lose the markers: every example fails, is counted, and nothing breaks."""
    from flare.translation import Translator

    tr = Translator(str(nllb_dir), max_new_tokens=6, progress=False, cache_dir=tmp_path)
    records = [
        {"question": "where is it", "context": "it is in jakarta", "answers": [Answer("jakarta", 9)]}
    ] * 3
    out, report = translate_qa_records(records, tr, "en", "id")
    assert report.total == 3 and len(out) == report.projection.projected
    assert report.projection.projected + report.projection.failed == 3
    assert report.context_stats.unique == 1  # one distinct marked context
