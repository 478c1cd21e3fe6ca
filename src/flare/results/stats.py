"""Significance tests over per-example predictions.

``paired_bootstrap(pred_a, pred_b, gold, metric_fn)`` -- the paired bootstrap test (Koehn 2004,
"Statistical significance tests for machine translation evaluation"; Efron & Tibshirani 1993)
for "system A scores higher than system B on this test set", e.g. FLARE vs LoRA on one language.

What it computes
    ``delta``      metric_fn(pred_a, gold) - metric_fn(pred_b, gold) on the full test set, in the
                   units of ``metric_fn`` (flare's task metrics are 0-100).
    resamples      ``n_resamples`` times, draw n example indices uniformly *with replacement*
                   (the same indices for A and B: the test is paired) and compute the delta on
                   that resample, delta*_1 ... delta*_R.  The metric is recomputed on every
                   resample, so corpus-level metrics such as macro-F1 are handled correctly.
    ``p_value``    one-sided: the fraction of resamples in which A is *not* better than B,
                   #{delta*_r <= 0} / R.  Small p (e.g. < 0.05) supports "A is better than B";
                   ties count against A, so identical systems give p = 1.  With R resamples the
                   smallest reportable p is 0 and means p < 1/R (raise ``n_resamples`` to
                   resolve smaller values).
    ``ci_low``, ``ci_high``
                   percentile bootstrap confidence interval of the delta: the (1-c)/2 and
                   (1+c)/2 quantiles of delta*_r (``confidence`` c, default 0.95; linear
                   interpolation between order statistics).

The test says how stable the difference is under resampling *of the test examples*; it does not
cover training randomness (compare seeds for that; ``flare report`` shows mean ± std over seeds).

``hierarchical_bootstrap(pred_a, pred_b, gold, metric_fn)`` -- the same test over several training
seeds, resampling the seeds as well: A and B hold one prediction list per seed, paired by seed
(seed s of A with seed s of B).  ``delta`` is mean_s metric(A_s) - mean_s metric(B_s).  Each
resample first draws S seed indices with replacement (the same for A and B), then n example
indices with replacement (the same for A, B and every drawn seed), and takes the mean over the
drawn seeds of metric(A_s) - metric(B_s) on the drawn examples.  Seeds and examples are crossed
(every seed predicts every example), so the two draws are independent.  The interval therefore
widens when the seeds disagree; with a single seed the test equals the example bootstrap of the
seed-averaged metric.  ``p_value`` and the interval are defined as above.

``adjust_p_values(p_values, method)`` -- corrections for a family of m tests:
    ``holm``  Holm-Bonferroni (Holm 1979), controls the family-wise error rate: with the raw p
              sorted ascending p_(1) <= ... <= p_(m), adjusted p_(i) = max over j <= i of
              min(1, (m - j + 1) * p_(j)).
    ``bh``    Benjamini-Hochberg (1995), controls the false discovery rate: adjusted p_(i) =
              min over j >= i of min(1, m * p_(j) / j).
    ``none``  the raw p-values.
Adjusted values are returned in the input order; reject at level alpha where adjusted p < alpha.

Determinism: the indices come from ``numpy.random.default_rng(seed)`` (PCG64), so the same
inputs, ``n_resamples`` and ``seed`` give the same result on every machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["CORRECTIONS", "adjust_p_values", "hierarchical_bootstrap", "paired_bootstrap"]

#: p-value corrections: name -> what it controls (for messages and reports).
CORRECTIONS = {
    "holm": "Holm-Bonferroni (family-wise error rate)",
    "bh": "Benjamini-Hochberg (false discovery rate)",
    "none": "no correction",
}


def paired_bootstrap(
    pred_a: Sequence[Any],
    pred_b: Sequence[Any],
    gold: Sequence[Any],
    metric_fn: Callable[[list, list], float],
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, float]:
    """Paired bootstrap test of "A is better than B" (higher ``metric_fn`` is better).

    ``metric_fn(predictions, references) -> float`` is called with lists, predictions first
    (the order of :mod:`flare.tasks.metrics`).  Returns ``{"delta", "p_value", "ci_low",
    "ci_high"}``; see the module docstring for the definitions.
    """
    pred_a, pred_b, gold = list(pred_a), list(pred_b), list(gold)
    n = len(gold)
    if len(pred_a) != n or len(pred_b) != n:
        raise ValueError(
            f"{len(pred_a)} predictions of A and {len(pred_b)} of B for {n} gold references; "
            "pass one prediction per example, in the same order, for both systems"
        )
    _check_arguments(n, n_resamples, confidence)
    score = _finite_metric(metric_fn)
    delta = score(pred_a, gold) - score(pred_b, gold)

    rng = np.random.default_rng(seed)
    deltas = np.empty(n_resamples, dtype=np.float64)
    for r in range(n_resamples):
        idx = rng.integers(0, n, size=n).tolist()
        refs = [gold[i] for i in idx]
        deltas[r] = score([pred_a[i] for i in idx], refs) - score([pred_b[i] for i in idx], refs)
    return _summary(delta, deltas, confidence)


def hierarchical_bootstrap(
    pred_a: Sequence[Sequence[Any]],
    pred_b: Sequence[Sequence[Any]],
    gold: Sequence[Any],
    metric_fn: Callable[[list, list], float],
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, float]:
    """Paired bootstrap over seeds and examples of "A is better than B" (module docstring).

    ``pred_a[s]`` and ``pred_b[s]`` are the predictions of seed s (one per example, in the order
    of ``gold``); ``metric_fn`` scores one seed's predictions.  Returns the keys of
    :func:`paired_bootstrap`.
    """
    pred_a = [list(p) for p in pred_a]
    pred_b = [list(p) for p in pred_b]
    gold = list(gold)
    n, n_seeds = len(gold), len(pred_a)
    if n_seeds == 0 or len(pred_b) != n_seeds:
        raise ValueError(f"{n_seeds} seeds of A and {len(pred_b)} of B; pass the same seeds, paired, for both")
    if any(len(p) != n for p in pred_a + pred_b):
        raise ValueError(f"every seed needs one prediction per gold reference ({n}), in the same order")
    _check_arguments(n, n_resamples, confidence)
    score = _finite_metric(metric_fn)
    delta = (sum(score(p, gold) for p in pred_a) - sum(score(p, gold) for p in pred_b)) / n_seeds

    rng = np.random.default_rng(seed)
    deltas = np.empty(n_resamples, dtype=np.float64)
    for r in range(n_resamples):
        seeds = rng.integers(0, n_seeds, size=n_seeds).tolist()
        idx = rng.integers(0, n, size=n).tolist()
        refs = [gold[i] for i in idx]
        per_seed = {s: score([pred_a[s][i] for i in idx], refs) - score([pred_b[s][i] for i in idx], refs)
                    for s in set(seeds)}
        deltas[r] = sum(per_seed[s] for s in seeds) / n_seeds
    return _summary(delta, deltas, confidence)


def adjust_p_values(p_values: Sequence[float], method: str = "holm") -> list[float]:
    """Holm-Bonferroni, Benjamini-Hochberg or no correction over one family (module docstring)."""
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}; choose one of {', '.join(CORRECTIONS)}")
    p = [float(v) for v in p_values]
    if any(not 0.0 <= v <= 1.0 for v in p):
        raise ValueError(f"p-values must lie in [0, 1], got {p}")
    m = len(p)
    if method == "none" or m == 0:
        return p
    order = sorted(range(m), key=lambda i: p[i])
    adjusted = [0.0] * m
    if method == "holm":
        running = 0.0
        for rank, i in enumerate(order):  # rank 0 is the smallest p
            running = max(running, min(1.0, (m - rank) * p[i]))
            adjusted[i] = running
    else:
        running = 1.0
        for rank in range(m - 1, -1, -1):
            i = order[rank]
            running = min(running, m * p[i] / (rank + 1))
            adjusted[i] = min(1.0, running)
    return adjusted


def _check_arguments(n: int, n_resamples: int, confidence: float) -> None:
    if n == 0:
        raise ValueError("no examples to compare (empty evaluation set)")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")


def _finite_metric(metric_fn: Callable[[list, list], float]) -> Callable[[list, list], float]:
    def score(preds: list, refs: list) -> float:
        value = float(metric_fn(preds, refs))
        if not math.isfinite(value):
            raise ValueError(f"metric_fn returned {value!r}; it must return a finite number")
        return value

    return score


def _summary(delta: float, deltas: np.ndarray, confidence: float) -> dict[str, float]:
    tail = (1.0 - confidence) / 2.0
    ci_low, ci_high = np.quantile(deltas, [tail, 1.0 - tail])
    return {
        "delta": float(delta),
        "p_value": float(np.count_nonzero(deltas <= 0.0)) / len(deltas),
        "ci_low": float(ci_low),
        "ci_high": float(ci_high),
    }
