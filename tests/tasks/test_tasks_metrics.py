"""Metrics against hand-computed values (all scores in 0-100)."""

import pytest

from flare.tasks import Answer, ClassificationExample, QAExample, get_task
from flare.tasks.metrics import (
    accuracy,
    answer_tokens,
    exact_match_score,
    f1_score,
    macro_f1,
    normalize_answer,
    per_label_f1,
    qa_scores,
)


def test_accuracy():
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 75.0


def test_macro_f1_with_a_class_never_predicted():
    gold = [0, 0, 1, 1, 2, 2]
    pred = [0, 0, 0, 1, 1, 1]
    # class 0: TP 2, FP 1, FN 0 -> 4/5; class 1: TP 1, FP 2, FN 1 -> 2/5; class 2: never predicted -> 0
    assert per_label_f1(pred, gold) == pytest.approx({0: 0.8, 1: 0.4, 2: 0.0})
    assert macro_f1(pred, gold) == pytest.approx(40.0)
    assert accuracy(pred, gold) == 50.0


def test_macro_f1_matches_sklearn_documented_example():
    # scikit-learn's f1_score docs: y_true=[0,1,2,0,1,2], y_pred=[0,2,1,0,0,1] -> macro 0.2666...
    assert macro_f1([0, 2, 1, 0, 0, 1], [0, 1, 2, 0, 1, 2]) == pytest.approx(100 * 0.8 / 3)


def test_macro_f1_label_absent_from_gold_and_predictions():
    gold, pred = [0, 0, 1], [0, 1, 1]  # label 2 occurs nowhere
    # default (sklearn labels=None): left out -> mean(2/3, 2/3)
    assert macro_f1(pred, gold) == pytest.approx(100 * 2 / 3)
    # explicit labels (sklearn labels=[0, 1, 2]): contributes 0
    assert macro_f1(pred, gold, labels=[0, 1, 2]) == pytest.approx(100 * (4 / 3) / 3)


def test_macro_f1_predicted_class_absent_from_gold():
    # label 1 predicted but never gold: F1 0, included (as sklearn does)
    assert macro_f1([0, 1], [0, 0]) == pytest.approx(100 * (2 / 3 + 0) / 2)


def test_perfect_and_length_checks():
    assert macro_f1([1, 2, 2], [1, 2, 2]) == 100.0
    with pytest.raises(ValueError, match="2 predictions for 3 references"):
        accuracy([0, 1], [0, 1, 2])
    with pytest.raises(ValueError, match="empty"):
        macro_f1([], [])


@pytest.mark.parametrize(
    "raw, normalised",
    [
        ("The  Cat!", "cat"),
        ("an apple, a day", "apple day"),
        ("Theatre", "theatre"),  # articles only as whole words
        ("  Eiffel\tTower. ", "eiffel tower"),
        ("«Париж»", "париж"),  # Unicode punctuation
        ("北京。", "北京"),
        ("$5.00", "500"),  # ASCII punctuation as in SQuAD
        ("A", ""),
    ],
)
def test_normalize_answer(raw, normalised):
    assert normalize_answer(raw) == normalised


def test_answer_scores():
    assert exact_match_score("the Eiffel Tower", "Eiffel tower.") == 1.0
    assert exact_match_score("Eiffel", "Eiffel tower") == 0.0
    assert f1_score("the big cat", "a cat") == pytest.approx(2 / 3)  # [big, cat] vs [cat]
    assert f1_score("dog", "cat") == 0.0
    assert f1_score("the", "a") == 1.0  # both normalise to empty
    assert f1_score("", "cat") == 0.0
    assert answer_tokens("北京大学 abc") == ["北", "京", "大", "学", "abc"]
    assert f1_score("北京大学", "北京") == pytest.approx(2 / 3)


def test_qa_scores_max_over_gold_answers():
    scores = qa_scores(["cat", "big dog", "x"], [["dog", "the cat"], ["dog"], ["y", "z"]])
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3 + 0) / 3)
    with pytest.raises(ValueError, match="no gold answers"):
        qa_scores(["a"], [[]])


def test_task_metric_classification():
    task = get_task("nusax")
    refs = [ClassificationExample(str(i), ("t",), label) for i, label in enumerate([0, 0, 1, 1, 2, 2])]
    scores = task.metric([0, 0, 0, 1, 1, 1], refs)
    assert scores == pytest.approx({"accuracy": 50.0, "macro_f1": 40.0})
    assert task.metric([0, 1], [0, 1]) == {"accuracy": 100.0, "macro_f1": 100.0}
    with pytest.raises(ValueError, match="prediction 1 is -1.*map unparseable"):
        task.metric([0, -1], [0, 1])
    with pytest.raises(ValueError, match="prediction 0 is 3"):
        task.metric([3], [0])


def test_task_metric_qa():
    task = get_task("xquad")
    example = QAExample("q", "Who?", "The cat sat.", (Answer("The cat", 0), Answer("cat", 4)))
    assert task.metric(["cat"], [example]) == {"exact_match": 100.0, "f1": 100.0}
    assert task.metric(["cat sat"], [["cat"]]) == pytest.approx({"exact_match": 0.0, "f1": 100 * 2 / 3})
    unanswered = QAExample("q", "Who?", "The cat sat.", ())
    with pytest.raises(ValueError, match="no gold answers"):
        task.metric(["cat"], [unanswered])
