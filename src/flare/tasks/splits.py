"""Deterministic group splits: the one rule every task uses to carve splits out of one file.

Rule (``assign_groups``): take the distinct group keys (XNLI: the English premise; XQuAD: the
English paragraph; TyDiQA: the English training paragraph; user data: the id or a group column),
sort them by the SHA-256 digest of ``f"{salt}\\x00{key}"`` (UTF-8; the salt is the task name, so
tasks split independently), and cut that order at ``round(n * p_train)`` and
``round(n * (p_train + p_validation))``: the first keys go to train, the next to validation, the
rest to test.  Every row of a group goes where its key goes, so no group is ever in two splits.

The outcome depends only on the set of keys and the salt: not on file order, Python's ``hash``
seed, the platform or the library version; the counts per split are exact (no sampling noise).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from flare.errors import ConfigError

SPLITS: tuple[str, ...] = ("train", "validation", "test")


def check_proportions(proportions: Sequence[float], names: Sequence[str] = SPLITS) -> tuple[float, ...]:
    """Validate split proportions: one per split name, each >= 0, summing to 1."""
    props = tuple(float(p) for p in proportions)
    if len(props) != len(names):
        raise ConfigError(f"split proportions must have {len(names)} values ({'/'.join(names)}), got {props}")
    if any(p < 0 for p in props) or abs(sum(props) - 1.0) > 1e-6:
        raise ConfigError(f"split proportions must be >= 0 and sum to 1, got {props}")
    return props


def hash_rank(key: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}\x00{key}".encode("utf-8")).hexdigest()


def assign_groups(
    keys: Iterable[str],
    proportions: Sequence[float],
    salt: str,
    names: Sequence[str] = SPLITS,
) -> dict[str, str]:
    """Map each distinct group key to a split name (see the module docstring)."""
    props = check_proportions(proportions, names)
    unique = sorted(set(keys), key=lambda k: (hash_rank(k, salt), k))
    n = len(unique)
    bounds, cumulative = [], 0.0
    for p in props[:-1]:
        cumulative += p
        bounds.append(round(n * cumulative))
    bounds.append(n)
    assignment: dict[str, str] = {}
    start = 0
    for name, stop in zip(names, bounds):
        for key in unique[start:stop]:
            assignment[key] = name
        start = max(start, stop)
    return assignment
