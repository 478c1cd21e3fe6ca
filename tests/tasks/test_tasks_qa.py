"""TyDiQA-GoldP and XQuAD loaders on the shared data.

The shared copies of the TyDiQA dev files and all XQuAD files have their gold answers blanked
(text "" at offset 0); the loaders refuse them by default and load them on request with
answers == ().
"""

import pytest

from flare.errors import DataError
from flare.tasks import QAExample, get_task
from flare.tasks.tydiqa import LANGUAGES as TYDIQA_LANGUAGES

TYDIQA_DEV = {"ar": 921, "bn": 113, "en": 440, "fi": 782, "id": 565, "ko": 276, "ru": 812, "sw": 499, "te": 669}
XQUAD_COUNTS = {"train": 694, "validation": 246, "test": 250}


def check_offsets(example: QAExample):
    assert example.answers
    for answer in example.answers:
        assert answer.text
        assert example.context[answer.start:answer.end] == answer.text


# ----------------------------------------------------------------------------------- TyDiQA
@pytest.fixture(scope="module")
def tydiqa_en(data_root):
    task = get_task("tydiqa")
    return {split: task.load("en", split, data_root) for split in ("train", "validation")}


def test_tydiqa_english_train_validation(tydiqa_en):
    assert len(tydiqa_en["train"]) == 3326
    assert len(tydiqa_en["validation"]) == 370
    ids = [e.id for split in tydiqa_en.values() for e in split]
    assert len(set(ids)) == 3696  # unique ids replace the file's repeated ones
    for examples in tydiqa_en.values():
        for e in examples:
            check_offsets(e)
            assert e.english is None


def test_tydiqa_validation_paragraphs_disjoint(tydiqa_en):
    train = {e.context for e in tydiqa_en["train"]}
    validation = {e.context for e in tydiqa_en["validation"]}
    assert len(train) == 3086 and len(validation) == 343
    assert not train & validation


def test_tydiqa_dev_blanked_answers_are_refused(data_root):
    with pytest.raises(DataError) as err:
        get_task("tydiqa").load("sw", "test", data_root)
    message = str(err.value)
    assert "tydiqa.goldp.sw.dev.json" in message
    assert "gold answers removed" in message and "allow_unanswered" in message


@pytest.mark.parametrize("language", TYDIQA_LANGUAGES)
def test_tydiqa_dev_counts(data_root, language):
    examples = get_task("tydiqa", {"allow_unanswered": True}).load(language, "test", data_root)
    assert len(examples) == TYDIQA_DEV[language]
    assert len({e.id for e in examples}) == len(examples)
    for e in examples:
        assert e.english is None
        assert e.question.strip() and e.context.strip()
        for answer in e.answers:  # none on the shared data; checked where present
            assert e.context[answer.start:answer.end] == answer.text


# ----------------------------------------------------------------------------------- XQuAD
@pytest.fixture(scope="module")
def xquad():
    return get_task("xquad", {"allow_unanswered": True})


@pytest.fixture(scope="module")
def xquad_en(xquad, data_root):
    return {split: xquad.load("en", split, data_root) for split in XQUAD_COUNTS}


def test_xquad_blanked_answers_are_refused(data_root):
    with pytest.raises(DataError, match=r"xquad\.en\.json.*1190 gold answers are empty"):
        get_task("xquad").load("de", "train", data_root)


def test_xquad_split_counts_and_paragraphs_disjoint(xquad_en):
    paragraphs = {}
    for split, examples in xquad_en.items():
        assert len(examples) == XQUAD_COUNTS[split]
        paragraphs[split] = {e.context for e in examples}
    assert [len(p) for p in paragraphs.values()] == [144, 48, 48]
    assert not paragraphs["train"] & paragraphs["validation"]
    assert not paragraphs["train"] & paragraphs["test"]
    assert not paragraphs["validation"] & paragraphs["test"]
    ids = [e.id for examples in xquad_en.values() for e in examples]
    assert len(ids) == len(set(ids)) == 1190


@pytest.mark.parametrize("language", ["de", "es", "tr", "vi", "zh"])
def test_xquad_target_paired_by_id(xquad, data_root, xquad_en, language):
    for split, english in xquad_en.items():
        examples = xquad.load(language, split, data_root)
        assert [e.id for e in examples] == [e.id for e in english]
        target_paragraphs = {}
        for e, partner in zip(examples, english):
            assert e.english == partner
            assert e.english.english is None
            assert e.context != partner.context or language == "en"
            target_paragraphs.setdefault(e.context, set()).add(partner.context)
        # a target paragraph maps to exactly one English paragraph
        assert all(len(v) == 1 for v in target_paragraphs.values())
    contexts = [{e.context for e in xquad.load(language, s, data_root)} for s in XQUAD_COUNTS]
    assert not contexts[0] & contexts[1] and not contexts[0] & contexts[2] and not contexts[1] & contexts[2]


def test_pinned_splits(tydiqa_en, xquad_en):
    assert [e.id for e in tydiqa_en["validation"][:4]] == ["train-0001", "train-0003", "train-0006", "train-0008"]
    assert [e.id for e in xquad_en["test"][:2]] == ["56beb86b3aeaaa14008c92bd", "56beb86b3aeaaa14008c92be"]
