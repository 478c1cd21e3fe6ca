"""TyDiQA-GoldP and XQuAD loaders on the shared data.

Every shared QA file carries its gold answers (XQuAD in all twelve languages, every TyDiQA dev
file): they load without options, every answer sits at its offset, and a prediction scores.
(Blanked copies are refused: tests/tasks/test_tasks_errors.py.)
"""

import json
from pathlib import Path

import pytest

from flare.tasks import QAExample, get_task
from flare.tasks.metrics import qa_scores
from flare.tasks.tydiqa import LANGUAGES as TYDIQA_LANGUAGES
from flare.tasks.xquad import LANGUAGES as XQUAD_LANGUAGES

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


def test_tydiqa_english_train_validation(tydiqa_en, data_root):
    assert len(tydiqa_en["train"]) == 3326
    assert len(tydiqa_en["validation"]) == 370
    ids = [e.id for split in tydiqa_en.values() for e in split]
    assert len(set(ids)) == 3696  # unique ids replace the file's repeated ones
    raw = json.loads((Path(data_root) / "tydiqa" / "tydiqa.goldp.en.train.json").read_text(encoding="utf-8"))
    raw_ids = [q["id"] for article in raw["data"] for p in article["paragraphs"] for q in p["qas"]]
    assert (len(raw_ids), len(set(raw_ids))) == (3696, 89)  # the file's own ids (docs/data.md)
    for examples in tydiqa_en.values():
        for e in examples:
            check_offsets(e)
            assert e.english is None


def test_tydiqa_validation_paragraphs_disjoint(tydiqa_en):
    train = {e.context for e in tydiqa_en["train"]}
    validation = {e.context for e in tydiqa_en["validation"]}
    assert len(train) == 3086 and len(validation) == 343
    assert not train & validation


@pytest.mark.parametrize("language", TYDIQA_LANGUAGES)
def test_tydiqa_dev_sets_load_with_answers_and_score(data_root, language):
    examples = get_task("tydiqa").load(language, "test", data_root)
    assert len(examples) == TYDIQA_DEV[language]
    assert len({e.id for e in examples}) == len(examples)
    for e in examples:
        assert e.english is None
        assert e.question.strip() and e.context.strip()
        check_offsets(e)
    # the gold answers score: predicting the first gold answer is 100, an empty answer 0
    gold = [[a.text for a in e.answers] for e in examples]
    assert qa_scores([g[0] for g in gold], gold) == {"exact_match": 100.0, "f1": 100.0}
    assert qa_scores([""] * len(gold), gold)["f1"] == 0.0


# ----------------------------------------------------------------------------------- XQuAD
@pytest.fixture(scope="module")
def xquad():
    return get_task("xquad")


@pytest.fixture(scope="module")
def xquad_en(xquad, data_root):
    return {split: xquad.load("en", split, data_root) for split in XQUAD_COUNTS}


def test_xquad_has_all_twelve_languages_with_answers(xquad, data_root):
    assert set(XQUAD_LANGUAGES) == {"en", "ar", "de", "el", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh"}
    for language in XQUAD_LANGUAGES:
        test = xquad.load(language, "test", data_root)
        assert len(test) == XQUAD_COUNTS["test"]
        for e in test:
            check_offsets(e)
        gold = [[a.text for a in e.answers] for e in test]
        assert qa_scores([g[0] for g in gold], gold)["exact_match"] == 100.0


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


@pytest.mark.parametrize("language", ["de", "hi", "th", "zh"])
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
