from hypothesis import given
from hypothesis import strategies as st

import pytest

from flare.errors import ConfigError
from flare.tasks.splits import assign_groups


@given(st.lists(st.text(), max_size=200), st.sampled_from([(0.6, 0.2, 0.2), (0.8, 0.1, 0.1), (1.0, 0.0, 0.0)]))
def test_exact_counts_and_order_independence(keys, proportions):
    assignment = assign_groups(keys, proportions, "salt")
    unique = set(keys)
    assert set(assignment) == unique
    n = len(unique)
    counts = [sum(1 for v in assignment.values() if v == s) for s in ("train", "validation", "test")]
    assert counts[0] == round(n * proportions[0])
    assert counts[0] + counts[1] == round(n * (proportions[0] + proportions[1]))
    assert assign_groups(list(reversed(keys)), proportions, "salt") == assignment


def test_fixed_assignment():
    # pinned: a change of the rule would silently move data between splits
    assignment = assign_groups([f"k{i}" for i in range(10)], (0.6, 0.2, 0.2), "xnli")
    assert assignment == {
        "k1": "train", "k2": "train", "k3": "train", "k6": "train", "k8": "train", "k9": "train",
        "k0": "validation", "k5": "validation", "k4": "test", "k7": "test",
    }
    assert assign_groups([f"k{i}" for i in range(10)], (0.6, 0.2, 0.2), "xquad") != assignment


@pytest.mark.parametrize("bad", [(0.5, 0.5), (0.5, 0.6, -0.1), (0.5, 0.2, 0.2)])
def test_bad_proportions(bad):
    with pytest.raises(ConfigError):
        assign_groups(["a"], bad, "s")
