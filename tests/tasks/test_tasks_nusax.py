"""NusaX loader on the shared data."""

import csv
from collections import Counter

import pytest

from flare.tasks import ClassificationExample, get_task
from flare.tasks.nusax import LANGUAGE_FOLDERS

SIZES = {"train": 500, "validation": 100, "test": 400}
FILES = {"train": "train.csv", "validation": "valid.csv", "test": "test.csv"}


@pytest.fixture(scope="module")
def task():
    return get_task("nusax")


def test_languages(task):
    assert len(task.languages) == 12
    assert task.english_language == "eng"
    assert set(task.languages) == set(LANGUAGE_FOLDERS)


@pytest.mark.parametrize("split", list(SIZES))
def test_english_side(task, data_root, split):
    examples = task.load("eng", split, data_root)
    assert len(examples) == SIZES[split]
    assert all(e.english is None for e in examples)
    assert len({e.id for e in examples}) == SIZES[split]


@pytest.mark.parametrize("split", list(SIZES))
def test_every_language_paired_with_english(task, data_root, split):
    english = {e.id: e for e in task.load("eng", split, data_root)}
    for code in task.languages:
        if code == "eng":
            continue
        examples = task.load(code, split, data_root)
        assert len(examples) == SIZES[split], code
        assert {e.id for e in examples} == set(english)
        for e in examples:
            assert isinstance(e, ClassificationExample)
            partner = english[e.id]
            assert e.english == partner.texts
            assert e.label == partner.label
            assert 0 <= e.label < 3
            assert len(e.texts) == 1 and e.text.strip()


def test_labels_match_file(task, data_root):
    """Label indices follow negative/neutral/positive and match the string labels on disk."""
    path = data_root / "nusax" / "sundanese" / FILES["test"]
    with open(path, newline="", encoding="utf-8") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    for e in task.load("sun", "test", data_root):
        assert task.label_names[e.label] == rows[e.id]["label"]
        assert e.text == rows[e.id]["text"]
    counts = Counter(task.label_names[e.label] for e in task.load("sun", "train", data_root))
    assert counts == {"negative": 192, "neutral": 119, "positive": 189}


def test_folder_name_as_language(task, data_root):
    assert task.load("toba_batak", "validation", data_root) == task.load("bbc", "validation", data_root)
