"""flare compare: a paired bootstrap per language from the predictions stored in result files."""

import json
import random

import pytest
from typer.testing import CliRunner

from flare.cli.main import app
from flare.errors import DataError
from flare.results.compare import compare, compare_family
from flare.results.stats import adjust_p_values, hierarchical_bootstrap, paired_bootstrap
from flare.tasks.metrics import accuracy


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


# ------------------------------------------------------------------ corrections over the family


def test_holm_and_bh_against_a_hand_computation():
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm, sorted 0.005, 0.01, 0.03, 0.04: 4*0.005=0.02, 3*0.01=0.03, 2*0.03=0.06, max(0.06, 1*0.04)=0.06
    assert adjust_p_values(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH, rank r: 4*p/r = 0.02, 0.02, 0.04, 0.04; running minimum from the largest p: unchanged
    assert adjust_p_values(p, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    # BH's running minimum matters here: 3*0.02/1=0.06 > 3*0.03/2=0.045, so both get 0.045
    assert adjust_p_values([0.02, 0.5, 0.03], "bh") == pytest.approx([0.045, 0.5, 0.045])
    assert adjust_p_values([0.02, 0.5, 0.03], "holm") == pytest.approx([0.06, 0.5, 0.06])
    assert adjust_p_values([0.6, 0.7], "holm") == [1.0, 1.0]  # 2*0.6 capped at 1, then monotone
    assert adjust_p_values(p, "none") == p
    with pytest.raises(ValueError, match="unknown correction"):
        adjust_p_values(p, "bonferroni-ish")


def test_compare_adjusts_over_every_language_of_every_pair(study):
    one = {c.language: c for c in compare(study, "flare", "lora", resamples=200)}
    # raw p: jav 0 (taken as 1/200 = 0.005), sun 1; Holm over 2 tests: jav 2*0.005
    assert one["jav"].p_value == 0 and one["jav"].p_adjusted == pytest.approx(0.01)
    assert one["sun"].p_adjusted == 1.0 and one["jav"].correction == "holm"
    family = compare_family(study, [("flare", "lora"), ("lora", "flare")], resamples=200)
    assert [(c.method_a, c.language) for c in family.comparisons] == [
        ("flare", "jav"), ("flare", "sun"), ("lora", "jav"), ("lora", "sun")]
    assert family.comparisons[0].p_adjusted == pytest.approx(0.02)  # 4 tests now: 4*0.005
    assert family.description == "4 tests: all languages of flare vs lora, lora vs flare"
    raw = compare_family(study, [("flare", "lora")], resamples=200, correction="none").comparisons
    assert [c.p_adjusted for c in raw] == [0.005, 1.0]


def test_resampling_seeds_counts_a_seed_that_disagrees():
    gold = [i % 3 for i in range(300)]

    def wrong(errors):  # the first `errors` predictions wrong
        return [(g + 1) % 3 if i < errors else g for i, g in enumerate(gold)]

    # per-seed accuracy of A minus B: +40, -30, +40 points; B is the same in every seed
    pred_a = [wrong(30), wrong(240), wrong(30)]
    pred_b = [wrong(150)] * 3
    seeds_too = hierarchical_bootstrap(pred_a, pred_b, gold, accuracy, n_resamples=400, seed=3)
    assert seeds_too["delta"] == pytest.approx(50 / 3)
    # the mean over seeds is <= 0 when the bad seed is drawn twice or more: 7/27 of the resamples
    assert 0.15 < seeds_too["p_value"] < 0.4 and seeds_too["ci_low"] < 0 < seeds_too["ci_high"]
    examples_only = paired_bootstrap(list(zip(*pred_a)), list(zip(*pred_b)), gold,
                                     lambda p, r: sum(accuracy([x[s] for x in p], r) for s in range(3)) / 3,
                                     n_resamples=400, seed=3)
    assert examples_only["delta"] == pytest.approx(50 / 3) and examples_only["p_value"] < 0.01
    with pytest.raises(ValueError, match="seeds of A"):
        hierarchical_bootstrap(pred_a, pred_b[:2], gold, accuracy)


def test_compare_can_resample_seeds(study):
    jav = next(c for c in compare(study, "flare", "lora", resamples=100, resample_seeds=True) if c.language == "jav")
    assert jav.resampled == "seeds+examples" and jav.p_value < 0.05 and jav.ci_low > 0


def test_cli_compares_several_pairs_in_one_family(study):
    write_run(study, "xmixup", "jav", 1, [0] * 300, [0] * 300)
    result = CliRunner().invoke(app, ["compare", str(study), "flare", "lora", "xmixup", "--pair", "lora:xmixup",
                                      "--resamples", "50", "--correction", "bh", "--resample-seeds"])
    assert result.exit_code == 0, result.output
    stem = study / "report" / "compare-flare-vs-lora+flare-vs-xmixup+lora-vs-xmixup-seeds-bh"
    text = stem.with_name(stem.name + ".md").read_text()
    assert "Family: 4 tests: all languages of flare vs lora, flare vs xmixup, lora vs xmixup" in text
    assert "Benjamini-Hochberg" in text and "seeds (with replacement)" in text and "p (BH)" in text
    assert "Benjamini-Hochberg" in result.output  # printed too
    rows = json.loads(stem.with_name(stem.name + ".json").read_text())
    assert [(r["method_a"], r["method_b"], r["language"]) for r in rows] == [
        ("flare", "lora", "jav"), ("flare", "lora", "sun"), ("flare", "xmixup", "jav"), ("lora", "xmixup", "jav")]
    assert {r["correction"] for r in rows} == {"bh"} and {r["resampled"] for r in rows} == {"seeds+examples"}
    bad = CliRunner().invoke(app, ["compare", str(study), "flare", "lora", "--pair", "lora"])
    assert bad.exit_code == 2 and "A:B" in bad.output


def test_compare_a_variant_chosen_on_validation(study):
    # Variants of flare on jav: flare-add holds lora's test predictions and the best validation score,
    # flare-mul flare's (better on test); with --select-on validation "flare" means flare-add.
    for seed in (1, 2, 3):
        for variant, valid in (("flare-add", 90.0), ("flare-mul", 50.0)):
            source = json.loads((study / "results" / ("lora" if variant == "flare-add" else "flare") / "jav"
                                 / f"seed-{seed}.json").read_text())
            source.update(method=variant, base_method="flare")
            source["metrics"]["validation"] = {"accuracy": valid}
            path = study / "results" / variant / "jav" / f"seed-{seed}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(source))
    for seed in (1, 2, 3):  # lora, and flare (now a third variant), get validation scores too
        for method in ("lora", "flare"):
            path = study / "results" / method / "jav" / f"seed-{seed}.json"
            data = json.loads(path.read_text())
            data.update(base_method=method)
            data["metrics"]["validation"] = {"accuracy": 60.0}
            path.write_text(json.dumps(data))
    family = compare_family(study, [("flare", "lora")], resamples=50, select_on="validation")
    jav = next(c for c in family.comparisons if c.language == "jav")
    assert jav.delta == pytest.approx(0.0)  # flare-add holds lora's predictions
    assert "flare-add" in family.selected["flare"]


def test_too_few_resamples_to_pass_the_correction_is_said(study):
    from flare.results.compare import format_family

    family = compare_family(study, [("flare", "lora")], resamples=20)  # p = 0 enters as 1/20, Holm 2/20
    jav = family.comparisons[0]
    assert jav.p_value == 0 and jav.p_adjusted == pytest.approx(0.1)
    assert "raise --resamples" in format_family(family)
    assert "raise --resamples" not in format_family(compare_family(study, [("flare", "lora")], resamples=200))


def test_each_method_is_scored_against_its_own_gold(tmp_path):
    """QA's translate-test stores the English partner's answers as its gold, the other methods the
    target language's: each side of a comparison is scored against its own (a shared gold scored
    one of them against the other language's answers)."""
    def write_qa(method, seed, predicted, gold):
        path = tmp_path / "results" / method / "de" / f"seed-{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "schema": 1, "task": "xquad", "model": "m", "method": method, "language": "de", "seed": seed,
            "metrics": {"test": {"f1": 0.0}}, "primary_metric": "f1",
            "predictions": {"ids": [f"q{i}" for i in range(len(gold))], "predicted": predicted, "gold": gold}}))

    german = ["im Jahr 1905", "drei Brücken", "der Rhein", "Albert Einstein"] * 10
    english = ["in 1905", "three bridges", "the Rhine", "Albert Einstein"] * 10
    for seed in (1, 2):
        write_qa("zero-shot", seed, german, [[g] for g in german])
        write_qa("translate-test", seed, english[:-4] + ["no idea"] * 4, [[e] for e in english])
    for resample_seeds in (False, True):
        (result,) = compare(tmp_path, "zero-shot", "translate-test", resamples=100, resample_seeds=resample_seeds)
        assert result.score_a == pytest.approx(100.0)
        assert result.score_b == pytest.approx(90.0)  # 36 of 40 right against its English gold
        assert result.delta == pytest.approx(10.0)


def test_gold_is_read_from_the_data_by_id(tmp_path, data_root):
    """Result files store ids and predictions, no copy of the data: compare reads each example's
    gold from the task data (the shared NusaX Javanese test split) by id, in any order; an id the
    data does not have names the result file and says what to do."""
    from flare.tasks import get_task

    test = get_task("nusax").load("jav", "test", data_root)
    right = {e.id: e.label for e in test}
    ids = sorted(right, reverse=True)  # not the file order

    def write(method, predicted, ids=ids):
        path = tmp_path / "results" / method / "jav" / "seed-1.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "schema": 1, "task": "nusax", "model": "m", "method": method, "language": "jav", "seed": 1,
            "metrics": {"test": {}}, "primary_metric": "macro_f1", "config": {"task": "nusax"},
            "predictions": {"ids": ids, "predicted": predicted}}))
        return path

    write("flare", [right[i] for i in ids])
    write("lora", [(right[i] + 1) % 3 if n % 4 == 0 else right[i] for n, i in enumerate(ids)])
    (jav,) = compare(tmp_path, "flare", "lora", resamples=50, data_dir=data_root)
    assert jav.examples == len(test) and jav.score_a == pytest.approx(100.0) and 60 < jav.score_b < 90
    write("lora", [0] * 3, ids=["no-such-row", *ids[:2]])
    path = write("flare", [0] * 3, ids=["no-such-row", *ids[:2]])
    with pytest.raises(DataError, match="1 test example ids of this run are not in the jav test split") as err:
        compare(tmp_path, "flare", "lora", resamples=50, data_dir=data_root)
    assert str(err.value).startswith(str(path)) and "pass --data-dir" in str(err.value)
