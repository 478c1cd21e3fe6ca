"""Task metrics, implemented here (no scikit-learn, no `evaluate`).

Scale: every score is a percentage in [0, 100] -- classification and QA alike, as the paper and
SQuAD report them (XNLI accuracy 80.99, NusaX macro-F1 79.18, TyDiQA exact match ...).

Classification
    ``accuracy``   100 * (number of predictions equal to the gold label) / n.
    ``macro_f1``   unweighted mean over labels of the per-label F1 = 2TP / (2TP + FP + FN),
                   the same numbers as ``sklearn.metrics.f1_score(y_true, y_pred,
                   average="macro", labels=labels) * 100``:
                   * ``labels=None`` (the default, and what ``Task.metric`` uses): the labels are
                     the sorted union of the gold and predicted labels, so a label of the label
                     set that occurs in neither the gold labels nor the predictions is left out of
                     the average; a label that occurs in only one of them has F1 = 0 (a class
                     never predicted counts as 0, it is not skipped);
                   * ``labels`` given: exactly those labels are averaged, a label absent from
                     both contributes 0 (sklearn's ``zero_division`` default), and gold or
                     predicted values outside ``labels`` only count as a miss (FN / FP) of the
                     labels inside it.

Extractive QA (SQuAD v1.1 evaluation, max over the gold answers of each question)
    ``exact_match`` 100 * mean over questions of max_gold [normalise(pred) == normalise(gold)].
    ``f1``          100 * mean over questions of max_gold token-F1(normalise(pred), normalise(gold)).
    ``normalise``: lowercase; remove punctuation (ASCII ``string.punctuation`` as in SQuAD, and
    also every Unicode punctuation character, category P*, so that e.g. "。" "،" "«" count as
    punctuation in the non-English test sets -- on ASCII text this is the SQuAD rule); remove the
    English articles a/an/the as whole words; collapse whitespace.  Tokens are the whitespace-
    separated words, except that CJK ideographs and kana are one token each (Chinese is written
    without spaces; without this, F1 on XQuAD-zh would collapse to exact match).  When the
    normalised prediction and gold are both empty, F1 is 1 (they match); when only one is, 0.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence

_ASCII_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", flags=re.UNICODE)
# Hiragana, katakana, CJK unified ideographs (+ extension A, compatibility ideographs,
# supplementary-plane extensions): one token per character in QA F1.
_CJK_CHAR = re.compile(
    "([\u3040-\u309f\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0002a6df\U0002a700-\U0002ebef])"
)


def _check_lengths(predictions: Sequence, references: Sequence) -> None:
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} predictions for {len(references)} references; "
            "pass one prediction per reference, in the same order"
        )
    if len(references) == 0:
        raise ValueError("no references to score (empty evaluation set)")


# ----------------------------------------------------------------------------- classification
def accuracy(predictions: Sequence[Hashable], references: Sequence[Hashable]) -> float:
    """Percentage of predictions equal to their reference."""
    _check_lengths(predictions, references)
    correct = sum(1 for p, g in zip(predictions, references) if p == g)
    return 100.0 * correct / len(references)


def per_label_f1(
    predictions: Sequence[Hashable],
    references: Sequence[Hashable],
    labels: Iterable[Hashable] | None = None,
) -> dict[Hashable, float]:
    """F1 (0-1) of each label; label set as in :func:`macro_f1`."""
    _check_lengths(predictions, references)
    if labels is None:
        label_list = sorted(set(references) | set(predictions))
    else:
        label_list = list(dict.fromkeys(labels))
        if not label_list:
            raise ValueError("labels is empty")
    tp: Counter = Counter()
    fp: Counter = Counter()
    fn: Counter = Counter()
    for p, g in zip(predictions, references):
        if p == g:
            tp[g] += 1
        else:
            fp[p] += 1
            fn[g] += 1
    scores = {}
    for label in label_list:
        denominator = 2 * tp[label] + fp[label] + fn[label]
        scores[label] = (2 * tp[label] / denominator) if denominator else 0.0
    return scores


def macro_f1(
    predictions: Sequence[Hashable],
    references: Sequence[Hashable],
    labels: Iterable[Hashable] | None = None,
) -> float:
    """Macro-averaged F1 in [0, 100]; see the module docstring for the label set."""
    scores = per_label_f1(predictions, references, labels)
    return 100.0 * sum(scores.values()) / len(scores)


def classification_scores(predictions: Sequence[int], references: Sequence[int]) -> dict[str, float]:
    """``{"accuracy": ..., "macro_f1": ...}``, both in [0, 100]."""
    return {"accuracy": accuracy(predictions, references), "macro_f1": macro_f1(predictions, references)}


# ----------------------------------------------------------------------------- extractive QA
def normalize_answer(text: str) -> str:
    """SQuAD answer normalisation (extended to Unicode punctuation, see the module docstring)."""
    text = text.lower()
    text = "".join(
        ch for ch in text if ch not in _ASCII_PUNCT and not unicodedata.category(ch).startswith("P")
    )
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    """Tokens of a normalised answer: whitespace words, CJK characters one token each."""
    return _CJK_CHAR.sub(r" \1 ", text).split()


def exact_match_score(prediction: str, gold: str) -> float:
    """1.0 when the normalised strings are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
    """Token-overlap F1 (0-1) of the normalised strings."""
    pred_tokens = answer_tokens(normalize_answer(prediction))
    gold_tokens = answer_tokens(normalize_answer(gold))
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def qa_scores(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """``{"exact_match": ..., "f1": ...}`` in [0, 100]; each reference is its gold answer texts."""
    _check_lengths(predictions, references)
    em_total = f1_total = 0.0
    for i, (prediction, golds) in enumerate(zip(predictions, references)):
        if isinstance(golds, str):
            raise ValueError(f"reference {i} is a string; pass a sequence of gold answer texts")
        if len(golds) == 0:
            raise ValueError(f"reference {i} has no gold answers")
        if not isinstance(prediction, str):
            raise ValueError(f"prediction {i} is {type(prediction).__name__}, expected a string")
        em_total += max(exact_match_score(prediction, g) for g in golds)
        f1_total += max(f1_score(prediction, g) for g in golds)
    n = len(references)
    return {"exact_match": 100.0 * em_total / n, "f1": 100.0 * f1_total / n}
