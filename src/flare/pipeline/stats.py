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

Determinism: the indices come from ``numpy.random.default_rng(seed)`` (PCG64), so the same
inputs, ``n_resamples`` and ``seed`` give the same result on every machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["paired_bootstrap"]


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
    if n == 0:
        raise ValueError("no examples to compare (empty evaluation set)")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")

    def score(preds: list, refs: list) -> float:
        value = float(metric_fn(preds, refs))
        if not math.isfinite(value):
            raise ValueError(f"metric_fn returned {value!r}; it must return a finite number")
        return value

    delta = score(pred_a, gold) - score(pred_b, gold)

    rng = np.random.default_rng(seed)
    deltas = np.empty(n_resamples, dtype=np.float64)
    for r in range(n_resamples):
        idx = rng.integers(0, n, size=n).tolist()
        refs = [gold[i] for i in idx]
        deltas[r] = score([pred_a[i] for i in idx], refs) - score([pred_b[i] for i in idx], refs)

    p_value = float(np.count_nonzero(deltas <= 0.0)) / n_resamples
    tail = (1.0 - confidence) / 2.0
    ci_low, ci_high = np.quantile(deltas, [tail, 1.0 - tail])
    return {
        "delta": float(delta),
        "p_value": p_value,
        "ci_low": float(ci_low),
        "ci_high": float(ci_high),
    }
