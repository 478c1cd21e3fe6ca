"""flare compare: a paired bootstrap per language from the predictions stored in result files."""

import json
import random

import pytest
from typer.testing import CliRunner

from flare.cli.main import app
from flare.errors import DataError
from flare.pipeline.compare import compare


def write_run(root, method, language, seed, predicted, gold):
    path = root / "results" / method / language / f"seed-{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = [f"ex-{i}" for i in range(len(gold))]
    metric = 100 * sum(p == g for p, g in zip(predicted, gold)) / len(gold)
    path.write_text(json.dumps({
        "schema": 1, "task": "nusax", "model": "m", "method": method, "language": language, "seed": seed,
        "metrics": {"test": {"accuracy": metric}}, "primary_metric": "accuracy",
        "predictions": {"ids": ids, "predicted": predicted, "gold": gold}}))


def noisy(gold, error_rate, rng):
    return [g if rng.random() > error_rate else (g + 1) % 3 for g in gold]


@pytest.fixture
def study(tmp_path):
    rng = random.Random(0)
    gold = [rng.randrange(3) for _ in range(300)]
    for seed in (1, 2, 3):
        # jav: A clearly better than B; sun: A and B make the same predictions
        write_run(tmp_path, "flare", "jav", seed, noisy(gold, 0.1, rng), gold)
        write_run(tmp_path, "lora", "jav", seed, noisy(gold, 0.4, rng), gold)
        same = noisy(gold, 0.3, rng)
        write_run(tmp_path, "flare", "sun", seed, same, gold)
        write_run(tmp_path, "lora", "sun", seed, same, gold)
    write_run(tmp_path, "flare", "ind", 1, gold, gold)  # no lora run for ind: not compared
    return tmp_path


def test_paired_bootstrap_per_language(study):
    by_language = {c.language: c for c in compare(study, "flare", "lora", resamples=200)}
    assert set(by_language) == {"jav", "sun"}
    jav, sun = by_language["jav"], by_language["sun"]
    assert jav.seeds == [1, 2, 3] and jav.examples == 300
    assert jav.delta == pytest.approx(jav.score_a - jav.score_b) and 20 < jav.delta < 40
    assert jav.p_value < 0.01 and jav.ci_low > 0
    assert sun.delta == 0 and sun.p_value == 1.0  # ties count against A


def test_only_common_seeds_are_paired(study):
    (study / "results" / "lora" / "jav" / "seed-3.json").unlink()
    jav = next(c for c in compare(study, "flare", "lora", resamples=50) if c.language == "jav")
    assert jav.seeds == [1, 2]


def test_unknown_method_and_missing_predictions_are_explained(study):
    with pytest.raises(DataError, match="no results of method 'xmixup'"):
        compare(study, "xmixup", "lora")
    path = study / "results" / "lora" / "sun" / "seed-1.json"
    data = json.loads(path.read_text())
    del data["predictions"]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="no stored predictions"):
        compare(study, "flare", "lora")


def test_cli_prints_and_writes_files(study):
    result = CliRunner().invoke(app, ["compare", str(study), "flare", "lora", "--resamples", "100"])
    assert result.exit_code == 0, result.output
    assert "better at p < 0.05 on 1 of 2 languages" in result.output
    rows = json.loads((study / "report" / "compare-flare-vs-lora.json").read_text())
    assert [r["language"] for r in rows] == ["jav", "sun"]
    assert (study / "report" / "compare-flare-vs-lora.csv").read_text().startswith("language,seeds,examples")
