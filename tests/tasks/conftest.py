"""Fixtures for the task tests: small data roots written in tmp_path."""

import pytest
from tasks_testdata import write_csv

NUSAX_ROWS = [
    ("1", "good food", "positive"),
    ("2", "bad service", "negative"),
    ("3", "it is a shop", "neutral"),
]


@pytest.fixture
def nusax_root(tmp_path):
    """A tiny NusaX layout: english + javanese, 3 rows per split."""
    for folder, prefix in (("english", ""), ("javanese", "jv ")):
        for name in ("train.csv", "valid.csv", "test.csv"):
            write_csv(
                tmp_path / "nusax" / folder / name,
                ["id", "text", "label"],
                [(i, prefix + text, label) for i, text, label in NUSAX_ROWS],
            )
    return tmp_path
