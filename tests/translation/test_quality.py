"""Translation quality: sacrebleu's chrF and BLEU, checked against values worked out by hand, and
the quality file next to the translations."""

import json
from collections import Counter

import pytest

from flare.errors import DataError
from flare.translation.quality import QualityTable, markdown_table, quality_markdown, score_translations

HYPOTHESIS, REFERENCE = "the cat is on the mat", "the cat sat on the mat"


def _chrf_by_hand(hypothesis: str, reference: str, beta: float = 2.0) -> float:
    """chrF2 as defined by Popović (2015) and sacrebleu: character 1..6-grams without spaces,
    precision and recall averaged over the orders, then their F-beta."""

    def grams(text, n):
        text = text.replace(" ", "")
        return Counter(text[i : i + n] for i in range(len(text) - n + 1))

    precisions, recalls = [], []
    for n in range(1, 7):
        hyp, ref = grams(hypothesis, n), grams(reference, n)
        matches = sum((hyp & ref).values())
        precisions.append(matches / sum(hyp.values()))
        recalls.append(matches / sum(ref.values()))
    p, r = sum(precisions) / 6, sum(recalls) / 6
    return 100 * (1 + beta**2) * p * r / (beta**2 * p + r)


def test_chrf_and_bleu_of_a_fixed_pair():
    scores = score_translations([HYPOTHESIS], [REFERENCE])
    assert scores["segments"] == 1
    assert scores["chrf"] == pytest.approx(_chrf_by_hand(HYPOTHESIS, REFERENCE), abs=1e-3)
    assert scores["chrf"] == pytest.approx(61.9252, abs=1e-3)
    # BLEU-4: n-gram precisions 5/6, 3/5, 1/4 and 0/3, the zero smoothed as sacrebleu's default
    # "exp" method does (1 / (2 * 3)); equal lengths, so no brevity penalty
    assert scores["bleu"] == pytest.approx(100 * (5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25, abs=1e-3)
    assert score_translations([REFERENCE], [REFERENCE]) == {"chrf": 100.0, "bleu": 100.0, "segments": 1}
    assert score_translations(["xyz"], [REFERENCE])["chrf"] == 0.0
    with pytest.raises(DataError, match="1 translations but 2 references"):
        score_translations([HYPOTHESIS], [REFERENCE, REFERENCE])


def test_quality_file_keeps_one_row_per_measurement(tmp_path):
    path = tmp_path / "translations" / "quality.json"
    table = QualityTable(path)
    row = {"model": "m", "language": "jav", "split": "test", "src": "jav", "tgt": "eng", "chrf": 40.0,
           "bleu": 10.0, "segments": 400}
    table.add(row)
    table.add({**row, "split": "validation", "segments": 100})
    table.add({**row, "chrf": 42.5})  # measured again: replaces the first row
    rows = QualityTable(path).rows
    assert [(r["split"], r["chrf"]) for r in rows] == [("test", 42.5), ("validation", 40.0)]
    assert (tmp_path / "translations" / "quality.md").read_text() == markdown_table(rows)
    assert "| m | jav | test | jav→eng | 400 | 42.5 | 10.0 |" in quality_markdown(tmp_path)
    assert quality_markdown(tmp_path / "elsewhere") == ""
    path.write_text("{not json")
    with pytest.raises(DataError, match="quality file is damaged"):
        QualityTable(path)
    assert not list(tmp_path.rglob("*.tmp"))
    json.dumps(rows)
