"""Did the model learn anything? The majority-class and chance scores of a classification split,
and the warnings when predictions are constant or validation does not beat the majority class."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from flare.results.training import CAUSES  # the advice the report repeats for older files


def majority_label(train_labels: Sequence[int]) -> int:
    """The most frequent training label (ties: the smallest label)."""
    counts = Counter(train_labels)
    return min(counts, key=lambda label: (-counts[label], label))


def chance_scores(gold: Sequence[int], n_labels: int) -> dict[str, float]:
    """Expected scores of guessing uniformly at random (0-100): accuracy 1/K; macro-F1 the mean over
    the K labels of 2p/(1 + Kp), p a label's share of the gold labels (the F1 of expected counts)."""
    shares = Counter(gold)
    total = len(gold)
    f1 = [2 * (shares[c] / total) / (1 + n_labels * shares[c] / total) for c in range(n_labels)]
    return {"accuracy": 100.0 / n_labels, "macro_f1": 100.0 * sum(f1) / n_labels}


def reference_scores(metric, train_labels: Sequence[int], splits: dict[str, Sequence[int]], n_labels: int) -> dict:
    """`metric(predictions, gold)` of always predicting the training majority label, and chance, per split."""
    label = majority_label(train_labels)
    return {"majority_label": label,
            "majority_class": {split: metric([label] * len(gold), list(gold))
                               for split, gold in splits.items() if gold},
            "chance": {split: chance_scores(gold, n_labels) for split, gold in splits.items() if gold}}


def learning_warnings(name: str, predictions: dict[str, Sequence], scores: dict[str, dict[str, float]],
                      references: dict | None, metric: str) -> list[str]:
    """Warnings about a run that learned nothing: constant predictions on a split, or a validation
    score that does not beat always predicting the majority class."""
    warnings = []
    for split, predicted in predictions.items():
        if len(predicted) > 1 and len({repr(p) for p in predicted}) == 1:
            warnings.append(f"{name}: every {split} prediction is the same ({predicted[0]!r}): the model learned "
                            f"nothing usable; {CAUSES}")
    majority = (references or {}).get("majority_class", {}).get("validation", {}).get(metric)
    score = scores.get("validation", {}).get(metric)
    if majority is not None and score is not None and score <= majority:
        warnings.append(f"{name}: validation {metric} {score:.2f} does not beat the majority class "
                        f"({majority:.2f}); {CAUSES}")
    return warnings
