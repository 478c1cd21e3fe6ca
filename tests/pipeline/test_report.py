"""`flare report`: aggregation, CSV/Markdown/PNG outputs, bad files, and the paired bootstrap."""

import csv
import json
import logging
import math

import pytest

from flare.errors import ConfigError, DataError
from flare.results.report import build_report, write_report
from flare.results.schema import AVG, load_results, method_sort_key
from flare.results.stats import paired_bootstrap
from flare.tasks.metrics import accuracy, macro_f1

SEEDS = (1, 2, 3)
# method -> language -> per-seed macro_f1 (fractions), chosen so means/stds are round numbers.
F1 = {
    "zero-shot": {"jav": (0.50, 0.50, 0.50), "sun": (0.40, 0.40, 0.40)},
    "lora": {"jav": (0.70, 0.72, 0.74), "sun": (0.60, 0.61, 0.65)},
    "flare": {"jav": (0.75, 0.78, 0.81), "sun": (0.64, 0.64, 0.64)},
}


def result(method, language, seed, metrics, **extra):
    data = {
        "schema": 1,
        "task": "nusax",
        "model": "e5-small",
        "method": method,
        "language": language,
        "seed": seed,
        "metrics": metrics,
        "primary_metric": "macro_f1",
        "timings": {"train_seconds": 100.0 * seed, "eval_seconds": 5.0},
        "english_side": "human translation",
        "config": {"lr": 1e-4},
        "finished": "2026-11-24T01:02:03Z",
    }
    data.update(extra)
    return data


def write_run(run_dir, data, text=None):
    path = run_dir / "results" / data["method"] / data["language"] / f"seed-{data['seed']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if text is None else text, encoding="utf-8")
    return path


def populate(run_dir, table=F1, **extra):
    for method, by_lang in table.items():
        for language, values in by_lang.items():
            for seed, value in zip(SEEDS, values):
                metrics = {
                    "test": {"macro_f1": value, "accuracy": value + 0.01},
                    "validation": {"macro_f1": value + 0.05, "accuracy": value + 0.06},
                }
                write_run(run_dir, result(method, language, seed, metrics, **extra))
    return run_dir


@pytest.fixture
def run_dir(tmp_path):
    return populate(tmp_path / "exp")


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# ------------------------------------------------------------------------------- aggregation
def test_means_stds_and_avg(run_dir):
    report = build_report(run_dir)
    assert report.metric == "macro_f1" and report.split == "test"
    assert (report.task, report.model) == ("nusax", "e5-small")
    assert report.methods == ["zero-shot", "lora", "flare"]
    assert report.languages == ["jav", "sun"]
    assert report.columns == ["method", "jav", "sun", "avg"]
    assert report.seeds == [1, 2, 3]
    assert report.scale == 100.0
    assert report.warnings == []

    lora_jav = report.cell("lora", "jav")
    assert lora_jav.mean == pytest.approx(0.72, abs=1e-12)
    assert lora_jav.std == pytest.approx(0.02, abs=1e-12)
    assert (lora_jav.n, lora_jav.seeds, lora_jav.values) == (3, (1, 2, 3), (0.70, 0.72, 0.74))
    lora_sun = report.cell("lora", "sun")
    assert lora_sun.mean == pytest.approx(0.62, abs=1e-12)
    assert lora_sun.std == pytest.approx(math.sqrt(0.0007), abs=1e-12)
    assert report.cell("flare", "sun").std == pytest.approx(0.0, abs=1e-12)

    # avg: per seed the mean over jav and sun, then mean / sample std over seeds.
    lora_avg = report.cell("lora", AVG)  # per seed 0.65, 0.665, 0.695
    assert lora_avg.mean == pytest.approx(0.67, abs=1e-12)
    assert lora_avg.std == pytest.approx(math.sqrt(0.000525), abs=1e-12)
    assert lora_avg.n == 3
    flare_avg = report.cell("flare", AVG)  # per seed 0.695, 0.71, 0.725
    assert flare_avg.mean == pytest.approx(0.71, abs=1e-12)
    assert flare_avg.std == pytest.approx(0.015, abs=1e-12)
    assert all(row.covers_all_languages for row in report.rows)
    assert report.best("jav") == {"flare"} and report.best(AVG) == {"flare"}


def test_other_metric_and_split(run_dir):
    report = build_report(run_dir, metric="accuracy", split="validation")
    assert report.cell("lora", "jav").mean == pytest.approx(0.78, abs=1e-12)  # +0.06
    assert report.cell("lora", "jav").std == pytest.approx(0.02, abs=1e-12)


def test_a_method_without_validation_scores_is_one_warning(run_dir):
    # translate-test does not train, so its runs store test metrics only: one line says so.
    for language in ("jav", "sun"):
        write_run(run_dir, result("translate-test", language, 1, {"test": {"macro_f1": 0.5}}))
    report = build_report(run_dir, split="validation")
    assert report.warnings == [
        "translate-test: none of its 2 runs has a validation/macro_f1 value; left out of the table"
    ]
    assert "translate-test" not in {row.method for row in report.rows}
    assert not build_report(run_dir).warnings  # on test they are reported as usual


def test_unknown_metric_or_split_is_an_error(run_dir):
    with pytest.raises(DataError, match="no run has a test/bleu value.*accuracy, macro_f1"):
        build_report(run_dir, metric="bleu")
    with pytest.raises(DataError, match="no run has a dev/macro_f1.*splits: test, validation"):
        build_report(run_dir, split="dev")


def test_no_results(tmp_path):
    with pytest.raises(DataError, match="no results folder"):
        build_report(tmp_path)
    (tmp_path / "results").mkdir()
    with pytest.raises(DataError, match="no readable results file"):
        build_report(tmp_path)


def test_method_order():
    methods = ["flare-mt", "flare-k0", "xmixup", "zzz", "lora", "flare", "flare-add",
               "input-fusion", "zero-shot", "translate-test", "aaa", "flare-mt-k0", "lora-r16"]
    assert sorted(methods, key=method_sort_key) == [
        "zero-shot", "translate-test", "lora", "lora-r16", "input-fusion", "xmixup",
        "flare", "flare-add", "flare-k0", "flare-mt", "flare-mt-k0", "aaa", "zzz",
    ]


def test_methods_with_different_language_sets_are_flagged(tmp_path):
    table = {
        "lora": {"jav": (0.70, 0.72, 0.74), "sun": (0.60, 0.61, 0.65), "min": (0.5, 0.5, 0.5)},
        "flare": {"jav": (0.75, 0.78, 0.81), "sun": (0.64, 0.64, 0.64)},
    }
    report = build_report(populate(tmp_path, table))
    assert report.languages == ["jav", "min", "sun"]
    flare = report.row("flare")
    assert not flare.covers_all_languages and flare.avg_languages == ("jav", "sun")
    assert flare.avg.mean == pytest.approx(0.71, abs=1e-12)  # over its own languages
    assert report.row("lora").covers_all_languages
    assert report.cell("flare", "min") is None
    markdown = report.table_markdown()
    # flare's avg (over 2 languages) is the highest, but only methods covering all languages
    # compete for the bold avg -- here only lora, so nothing is bold there.
    assert "| flare | **78.0 ± 3.0** | – | **64.0 ± 0.0** | 71.0 ± 1.5 † |" in markdown
    assert report.best(AVG) == set()
    assert "† flare: avg over jav, sun only (not all of jav, min, sun)" in markdown


def test_subset_avg_does_not_win_the_avg_column(tmp_path):
    table = dict(F1, xmixup={"jav": (0.90, 0.90, 0.90)})
    report = build_report(populate(tmp_path, table))
    assert report.cell("xmixup", AVG).mean == pytest.approx(0.90)
    assert report.best(AVG) == {"flare"} and report.best("jav") == {"xmixup"}
    assert "| xmixup | **90.0 ± 0.0** | – | 90.0 ± 0.0 † |" in report.table_markdown()


def test_avg_uses_only_seeds_covering_all_languages(tmp_path):
    populate(tmp_path)
    (tmp_path / "results" / "lora" / "sun" / "seed-3.json").unlink()
    report = build_report(tmp_path)
    assert report.cell("lora", "sun").n == 2
    avg = report.cell("lora", AVG)  # seeds 1, 2: 0.65, 0.665
    assert (avg.n, avg.seeds) == (2, (1, 2))
    assert avg.mean == pytest.approx(0.6575, abs=1e-12)
    assert "62.0 ± 2.6" not in report.table_markdown()
    assert "60.5 ± 0.7 (n=2)" in report.table_markdown()
    assert "(n=k): only k seeds" in report.table_markdown()


def test_the_other_metrics_table_marks_partial_cells_like_the_main_table(tmp_path):
    # A method still running: one language, two of three seeds (study 4's input-fusion mid-way).
    populate(tmp_path, {"zero-shot": F1["zero-shot"], "lora": {"jav": (0.70, 0.72)}})
    text = build_report(tmp_path).markdown_document()
    main_row = next(line for line in text.splitlines() if line.startswith("| lora"))
    assert main_row == "| lora | **71.0 ± 1.4** (n=2) | – | 71.0 ± 1.4 (n=2) † |"
    also = text[text.index("## Also: accuracy (%)"):]
    also_row = next(line for line in also.splitlines() if line.startswith("| lora"))
    assert also_row == "| lora | 72.0 ± 1.4 (n=2) | – | 72.0 ± 1.4 (n=2) † |"


def test_single_seed_shows_mean_only(tmp_path):
    populate(tmp_path, {"zero-shot": {"jav": (0.5,)}, "lora": {"jav": (0.7, 0.8)}})
    report = build_report(tmp_path)
    cell = report.cell("zero-shot", "jav")
    assert cell.n == 1 and math.isnan(cell.std)
    assert report.table_rows(markdown=False)[0] == ["zero-shot", "50.0 (n=1)", "50.0 (n=1)"]
    paths = write_report(tmp_path)
    rows = read_csv(paths[0])
    zero = [r for r in rows if r["method"] == "zero-shot" and r["metric"] == "macro_f1"]
    assert [(r["language"], r["std"], r["n"]) for r in zero] == [("jav", "", "1"), ("avg", "", "1")]


def test_percent_classification_values_give_the_same_table(tmp_path, run_dir):
    percent = {m: {lang: tuple(100 * v for v in vals) for lang, vals in by.items()} for m, by in F1.items()}
    report = build_report(populate(tmp_path / "percent", percent))
    assert report.scale == 1.0
    assert report.table_rows() == build_report(run_dir).table_rows()


def test_qa_metrics_are_not_rescaled(tmp_path):
    for method, em in (("lora", (60.0, 62.0)), ("flare", (64.0, 66.0))):
        for seed, value in zip(SEEDS, em):
            write_run(tmp_path, result(method, "ar", seed, {"test": {"exact_match": value, "f1": value + 10}},
                                       task="tydiqa", primary_metric="exact_match"))
    report = build_report(tmp_path)
    assert report.scale == 1.0 and report.metric == "exact_match"
    assert report.table_rows(markdown=False) == [
        ["lora", "61.0 ± 1.4", "61.0 ± 1.4"], ["flare", "65.0 ± 1.4", "65.0 ± 1.4"],
    ]


def test_fraction_next_to_percent_warns(tmp_path, caplog):
    write_run(tmp_path, result("lora", "jav", 1, {"test": {"macro_f1": 0.7}}))
    write_run(tmp_path, result("lora", "jav", 2, {"test": {"macro_f1": 72.0}}))
    with caplog.at_level(logging.WARNING, logger="flare.results"):
        report = build_report(tmp_path)
    assert report.scale == 1.0
    assert any("fractions and others as percentages" in w for w in report.warnings)


# ------------------------------------------------------------------------------------ files
def test_write_report_outputs(run_dir):
    paths = write_report(run_dir)
    out = run_dir / "report"
    # the four core files first; the training files (budget.csv, curves) follow
    assert paths[:4] == [out / "results.csv", out / "results.md", out / "comparison.png", out / "timings.csv"]
    assert "selection.csv" not in [p.name for p in paths]  # only with --select-on
    assert all(p.is_file() for p in paths)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_results_csv(run_dir):
    rows = read_csv(write_report(run_dir)[0])
    assert list(rows[0]) == ["task", "model", "method", "language", "metric", "split",
                             "mean", "std", "n", "seeds"]
    # 3 methods x (2 languages + avg) x 2 metrics; the reported metric first.
    assert len(rows) == 18
    assert [r["metric"] for r in rows] == ["macro_f1"] * 9 + ["accuracy"] * 9
    assert [(r["method"], r["language"]) for r in rows[:9]] == [
        (m, lang) for m in ("zero-shot", "lora", "flare") for lang in ("jav", "sun", "avg")
    ]
    lora_jav = rows[3]
    assert {k: lora_jav[k] for k in ("task", "model", "method", "language", "split", "n", "seeds")} == {
        "task": "nusax", "model": "e5-small", "method": "lora", "language": "jav",
        "split": "test", "n": "3", "seeds": "1;2;3",
    }
    # Values in the JSON files' units (fractions), full precision.
    assert float(lora_jav["mean"]) == pytest.approx(0.72, abs=1e-12)
    assert float(lora_jav["std"]) == pytest.approx(0.02, abs=1e-12)
    flare_avg = rows[8]
    assert (flare_avg["method"], flare_avg["language"]) == ("flare", "avg")
    assert float(flare_avg["mean"]) == pytest.approx(0.71, abs=1e-12)
    assert float(flare_avg["std"]) == pytest.approx(0.015, abs=1e-12)
    acc = next(r for r in rows if r["metric"] == "accuracy" and r["method"] == "lora" and r["language"] == "jav")
    assert float(acc["mean"]) == pytest.approx(0.73, abs=1e-12)


def test_results_markdown(run_dir):
    write_report(run_dir)
    text = (run_dir / "report" / "results.md").read_text(encoding="utf-8")
    header = "Task: nusax · Model: e5-small · Metric: macro_f1 (%) · Split: test · Seeds: 1, 2, 3"
    assert header in text
    assert "English side: human translation" in text
    assert "| method | jav | sun | avg |" in text
    assert "| zero-shot | 50.0 ± 0.0 | 40.0 ± 0.0 | 45.0 ± 0.0 |" in text
    assert "| lora | 72.0 ± 2.0 | 62.0 ± 2.6 | 67.0 ± 2.3 |" in text
    assert "| flare | **78.0 ± 3.0** | **64.0 ± 0.0** | **71.0 ± 1.5** |" in text
    assert text.index("| zero-shot") < text.index("| lora") < text.index("| flare")
    assert text.count("**") == 6  # exactly one bold cell per column
    assert "Warnings" not in text
    assert build_report(run_dir).table_markdown() in text
    # the other metric of the split, in its own plain table (accuracy = macro-F1 + 1 point here)
    also = text[text.index("## Also: accuracy (%)"):]
    assert "| lora | 73.0 ± 2.0 | 63.0 ± 2.6 | 68.0 ± 2.3 |" in also and "**" not in also.split("##")[1]


def test_ties_are_all_bold(tmp_path):
    populate(tmp_path, {"lora": {"jav": (0.70, 0.72)}, "flare": {"jav": (0.72, 0.70)}})
    report = build_report(tmp_path)
    assert report.best("jav") == {"lora", "flare"}
    assert report.table_rows()[0][1] == "**71.0 ± 1.4**"


def test_english_sides_per_method(tmp_path):
    populate(tmp_path, {"flare": {"jav": (0.7, 0.8)}})
    populate(tmp_path, {"flare-mt": {"jav": (0.6, 0.7)}}, english_side="machine translation (nllb-600m)")
    report = build_report(tmp_path)
    assert report.english_side_line() == (
        "English side: human translation (flare); machine translation (nllb-600m) (flare-mt)"
    )


def test_comparison_png(run_dir):
    from matplotlib import image

    png = write_report(run_dir)[2]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = image.imread(png)
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 300


def test_timings_csv(run_dir):
    rows = read_csv(write_report(run_dir)[3])
    assert list(rows[0]) == ["method", "runs", "train_seconds_mean", "eval_seconds_mean"]
    assert [r["method"] for r in rows] == ["zero-shot", "lora", "flare"]
    lora = rows[1]
    assert lora["runs"] == "6"
    assert float(lora["train_seconds_mean"]) == pytest.approx(200.0)  # seeds 1-3: 100, 200, 300
    assert float(lora["eval_seconds_mean"]) == pytest.approx(5.0)


# ------------------------------------------------------------------------------- bad files
def test_corrupt_json_is_skipped_with_a_warning(run_dir, caplog):
    bad = run_dir / "results" / "lora" / "jav" / "seed-3.json"
    bad.write_text('{"schema": 1, "method": "lora", "metr', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="flare.results"):
        report = build_report(run_dir)
    assert len(report.warnings) == 1
    assert str(bad) in report.warnings[0] and "not valid JSON" in report.warnings[0]
    assert str(bad) in caplog.text
    cell = report.cell("lora", "jav")
    assert cell.n == 2 and cell.mean == pytest.approx(0.71, abs=1e-12)
    # The other cells are untouched; the warning is listed in results.md.
    assert report.cell("flare", "jav").n == 3
    write_report(run_dir)
    text = (run_dir / "report" / "results.md").read_text(encoding="utf-8")
    assert "## Warnings" in text and str(bad) in text


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "is empty"),
        ("[1, 2]", "not an object"),
        (json.dumps(result("lora", "jav", 3, {"test": {"macro_f1": 0.1}}, schema=2)), "schema 2"),
        (json.dumps({k: v for k, v in result("lora", "jav", 3, {}).items() if k != "schema"}), "no 'schema'"),
        (json.dumps(result("lora", "jav", 4, {"test": {"macro_f1": 0.1}})), "named for seed 3"),
        (json.dumps(result("flare", "jav", 3, {"test": {"macro_f1": 0.1}})), "folder of 'lora'"),
        (json.dumps(result("lora", "jav", 3, None)), "no 'metrics'"),
        (json.dumps(result("lora", "jav", 3, {"test": {"macro_f1": None}})), "no numeric test/macro_f1"),
        (json.dumps(result("lora", "jav", 3, {"validation": {"macro_f1": 0.1}})), "no numeric test/macro_f1"),
    ],
)
def test_bad_files_are_skipped(run_dir, text, reason):
    bad = run_dir / "results" / "lora" / "jav" / "seed-3.json"
    bad.write_text(text, encoding="utf-8")
    report = build_report(run_dir)
    assert len(report.warnings) == 1, report.warnings
    assert report.warnings[0].startswith(str(bad)) and reason in report.warnings[0]
    assert report.cell("lora", "jav").seeds == (1, 2)


def test_stray_files_and_other_models(run_dir):
    (run_dir / "results" / "notes.json").write_text("{}", encoding="utf-8")
    (run_dir / "results" / "lora" / "jav" / "seed-1.json.tmp").write_text("{", encoding="utf-8")
    other = write_run(run_dir, result("lora", "jav", 9, {"test": {"macro_f1": 0.1}}, model="xlm-r"))
    report = build_report(run_dir)
    assert len(report.warnings) == 2
    assert "notes.json: skipped, not a results/" in report.warnings[0]
    assert str(other) in report.warnings[1] and "xlm-r" in report.warnings[1]
    assert report.cell("lora", "jav").seeds == (1, 2, 3)


def test_load_results(run_dir):
    runs, warnings = load_results(run_dir)
    assert len(runs) == 18 and warnings == []
    run = next(r for r in runs if (r.method, r.language, r.seed) == ("flare", "sun", 2))
    assert run.value("test", "macro_f1") == 0.64
    assert run.timings == {"train_seconds": 200.0, "eval_seconds": 5.0}
    assert run.english_side == "human translation" and run.config == {"lr": 1e-4}


# -------------------------------------------------------------------------- paired bootstrap
def test_bootstrap_a_always_right():
    gold = [0, 1, 2, 1, 0, 2, 1, 0] * 5
    pred_a = list(gold)
    pred_b = [(g + 1) % 3 for g in gold]
    result_ = paired_bootstrap(pred_a, pred_b, gold, accuracy, n_resamples=200, seed=1)
    assert set(result_) == {"delta", "p_value", "ci_low", "ci_high"}
    assert result_["delta"] == 100.0
    assert result_["p_value"] == 0.0
    assert result_["ci_low"] == result_["ci_high"] == 100.0
    reverse = paired_bootstrap(pred_b, pred_a, gold, accuracy, n_resamples=200, seed=1)
    assert reverse["delta"] == -100.0 and reverse["p_value"] == 1.0


def test_bootstrap_identical_systems():
    gold = [0, 1, 1, 0, 1, 0, 0, 1, 1, 1]
    pred = [0, 1, 0, 0, 1, 1, 0, 1, 0, 1]
    result_ = paired_bootstrap(pred, list(pred), gold, macro_f1, n_resamples=100)
    assert result_ == {"delta": 0.0, "p_value": 1.0, "ci_low": 0.0, "ci_high": 0.0}


def test_bootstrap_is_deterministic_and_sensible():
    gold = [i % 2 for i in range(60)]
    pred_a = [g if i % 10 else 1 - g for i, g in enumerate(gold)]  # 6 errors
    pred_b = [g if i % 4 else 1 - g for i, g in enumerate(gold)]  # 15 errors
    first = paired_bootstrap(pred_a, pred_b, gold, accuracy, n_resamples=300, seed=7)
    assert first == paired_bootstrap(pred_a, pred_b, gold, accuracy, n_resamples=300, seed=7)
    assert first != paired_bootstrap(pred_a, pred_b, gold, accuracy, n_resamples=300, seed=8)
    assert first["delta"] == pytest.approx(15.0)
    assert first["ci_low"] < first["delta"] < first["ci_high"]
    assert 0.0 <= first["p_value"] < 0.05


def test_bootstrap_input_checks():
    with pytest.raises(ValueError, match="predictions of A"):
        paired_bootstrap([1, 0], [1], [1, 0], accuracy)
    with pytest.raises(ValueError, match="empty"):
        paired_bootstrap([], [], [], accuracy)
    with pytest.raises(ValueError, match="n_resamples"):
        paired_bootstrap([1], [1], [1], accuracy, n_resamples=0)


def test_cli_writes_the_validation_report_beside_the_test_report(tmp_path):
    from typer.testing import CliRunner

    from flare.cli.main import app

    populate(tmp_path)
    for split in ("test", "validation"):
        result = CliRunner().invoke(app, ["report", str(tmp_path), "--split", split])
        assert result.exit_code == 0, result.output
    test_csv = (tmp_path / "report" / "results.csv").read_text()
    validation_csv = (tmp_path / "report" / "validation" / "results.csv").read_text()
    assert ",test," in test_csv and ",validation," in validation_csv and ",test," not in validation_csv


# ------------------------------------------------------------------ --select-on validation
# Variants of flare: flare-add wins on validation, flare-mul would win on test.
VARIANTS = {  # method -> language -> (validation per seed, test per seed)
    "flare-add": {"jav": ((0.80, 0.82, 0.84), (0.60, 0.61, 0.62)), "sun": ((0.70, 0.70, 0.70), (0.50, 0.50, 0.50))},
    "flare-mul": {"jav": ((0.70, 0.70, 0.70), (0.90, 0.91, 0.92)), "sun": ((0.72, 0.72, 0.72), (0.95, 0.95, 0.95))},
    "lora": {"jav": ((0.65, 0.65, 0.65), (0.70, 0.72, 0.74)), "sun": ((0.60, 0.60, 0.60), (0.60, 0.61, 0.65))},
}


def populate_variants(run_dir, table=VARIANTS):
    for method, by_lang in table.items():
        for language, (valid, test) in by_lang.items():
            for seed, v, t in zip(SEEDS, valid, test):
                metrics = {"test": {"macro_f1": t}, "validation": {"macro_f1": v}}
                write_run(run_dir, result(method, language, seed, metrics, base_method=method.split("-")[0]))
    return run_dir


def test_select_on_validation_reports_the_validation_choice_under_the_base_name(tmp_path):
    report = build_report(populate_variants(tmp_path), select_on="validation")
    assert report.methods == ["lora", "flare"]
    choice = report.selection.choice("flare")
    # mean validation over jav and sun: flare-add (0.82 + 0.70) / 2 = 0.76 > flare-mul 0.71
    assert choice.chosen == {AVG: "flare-add"} and choice.variants == ("flare-add", "flare-mul")
    scores = {c.method: c.score for c in choice.candidates[AVG]}
    assert scores == pytest.approx({"flare-add": 0.76, "flare-mul": 0.71})
    assert report.cell("flare", "jav").values == (0.60, 0.61, 0.62)  # flare-add's test scores
    assert report.cell("flare", AVG).mean == pytest.approx(0.555)
    assert report.best(AVG) == {"lora"}  # the post-hoc pick (flare-mul, 0.93) would have won
    assert report.post_hoc == {}


def test_the_choice_never_reads_test_scores(tmp_path, monkeypatch):
    from flare.results.schema import RunResult
    from flare.results.selection import select_variants

    runs, _ = load_results(populate_variants(tmp_path))
    read = []
    original = RunResult.value
    monkeypatch.setattr(RunResult, "value",
                        lambda self, split, metric: read.append(split) or original(self, split, metric))
    selection = select_variants(runs, "macro_f1", "validation")
    assert set(read) == {"validation"}
    assert selection.choice("flare").chosen == {AVG: "flare-add"}
    selection = select_variants(runs, "macro_f1", "validation", per_language=True)
    assert set(read) == {"validation"}
    assert selection.choice("flare").chosen == {"jav": "flare-add", "sun": "flare-mul"}


def test_select_per_language(tmp_path):
    report = build_report(populate_variants(tmp_path), select_on="validation", per_language=True)
    assert report.cell("flare", "jav").values == (0.60, 0.61, 0.62)  # flare-add on jav
    assert report.cell("flare", "sun").values == (0.95, 0.95, 0.95)  # flare-mul on sun (0.72 > 0.70)
    assert report.cell("flare", AVG).mean == pytest.approx((0.61 + 0.95) / 2)


def test_selection_tables_and_files(tmp_path):
    run_dir = populate_variants(tmp_path)
    paths = write_report(run_dir, select_on="validation", out_dir=tmp_path / "out")
    assert "selection.csv" in [p.name for p in paths]
    rows = read_csv(tmp_path / "out" / "selection.csv")
    assert [(r["candidate"], r["language"], float(r["score"]), r["chosen"]) for r in rows] == [
        ("flare-add", "avg", pytest.approx(0.76), "True"), ("flare-mul", "avg", pytest.approx(0.71), "False")]
    text = (tmp_path / "out" / "results.md").read_text()
    assert "| flare (chosen on validation) |" in text
    assert "## Selection on validation" in text and "test avg (post-hoc)" in text
    assert "| flare-add | **76.0** ✓ | 55.5 |" in text and "| flare-mul | 71.0 | 93.0 |" in text
    results = read_csv(tmp_path / "out" / "results.csv")
    assert {r["method"] for r in results} == {"lora", "flare"}


def test_variants_are_labelled_post_hoc_without_selection(tmp_path):
    report = build_report(populate_variants(tmp_path))
    assert report.post_hoc == {"flare-add": "flare", "flare-mul": "flare"}
    text = report.table_markdown()
    assert "| flare-add (post-hoc) |" in text and "| flare-mul (post-hoc) |" in text and "| lora |" in text
    assert "variants of flare not chosen on validation" in text
    assert build_report(tmp_path, split="validation").post_hoc == {}  # where the choice is made


def test_selection_ties_missing_scores_and_errors(tmp_path):
    table = {"flare-a": {"jav": ((0.7,) * 3, (0.1,) * 3)}, "flare-b": {"jav": ((0.7,) * 3, (0.9,) * 3)}}
    report = build_report(populate_variants(tmp_path / "tie", table), select_on="validation")
    assert report.selection.choice("flare").chosen == {AVG: "flare-a"}  # tie: the first in method order
    run_dir = populate_variants(tmp_path / "missing", table)
    write_run(run_dir, result("flare-c", "jav", 1, {"test": {"macro_f1": 0.99}}, base_method="flare"))
    report = build_report(run_dir, select_on="validation")
    assert any("flare-c: no validation/macro_f1 value" in w for w in report.warnings)
    assert report.cell("flare", "jav").values == (0.1, 0.1, 0.1)
    with pytest.raises(DataError, match="would choose on the split it reports"):
        build_report(run_dir, split="validation", select_on="validation")
    with pytest.raises(ConfigError, match="select on validation"):
        build_report(run_dir, split="validation", select_on="test")
    only_test = tmp_path / "only-test"
    for name in ("flare-a", "flare-b"):
        write_run(only_test, result(name, "jav", 1, {"test": {"macro_f1": 0.5}}, base_method="flare"))
    with pytest.raises(DataError, match="none of its variants"):
        build_report(only_test, select_on="validation")


def test_cli_report_select_on_validation(tmp_path):
    from typer.testing import CliRunner

    from flare.cli.main import app

    populate_variants(tmp_path)
    result = CliRunner().invoke(app, ["report", str(tmp_path), "--select-on", "validation"])
    assert result.exit_code == 0, result.output
    assert "Selection on validation" in result.output
    assert (tmp_path / "report" / "select-on-validation" / "selection.csv").is_file()
    assert not (tmp_path / "report" / "results.md").exists()  # the plain report is not overwritten
    bad = CliRunner().invoke(app, ["report", str(tmp_path), "--per-language"])
    assert bad.exit_code == 2 and "--select-on" in bad.output


def test_a_row_scoring_a_variants_weights_follows_that_variant(tmp_path):
    # flare-<variant>-no-english: the variant's weights scored without English (weights_from); its
    # high validation score must not make it a candidate of its own.
    run_dir = populate_variants(tmp_path)
    for variant, valid, test in (("flare-add", 0.99, 0.30), ("flare-mul", 0.99, 0.40)):
        for language in ("jav", "sun"):
            for seed in SEEDS:
                metrics = {"test": {"macro_f1": test}, "validation": {"macro_f1": valid}}
                write_run(run_dir, result(f"{variant}-no-english", language, seed, metrics, base_method="flare",
                                          weights_from=variant))
    report = build_report(run_dir, select_on="validation")
    assert report.selection.choice("flare").variants == ("flare-add", "flare-mul")
    assert report.methods == ["lora", "flare", "flare-no-english"]
    assert report.cell("flare-no-english", "jav").values == (0.30, 0.30, 0.30)  # flare-add's weights
    plain = build_report(run_dir)
    assert plain.post_hoc == {name: "flare" for name in
                              ("flare-add", "flare-mul", "flare-add-no-english", "flare-mul-no-english")}


def test_the_old_module_paths_still_import():
    # flare.pipeline.report / report_training / compare / stats moved to flare.results (issue 15)
    from flare.pipeline import compare, report, report_training, stats
    from flare.results import compare as new_compare, report as new_report, stats as new_stats, training

    assert report.build_report is new_report.build_report and report.AVG == AVG
    assert report.METHOD_ORDER[:3] == ("zero-shot", "translate-test", "lora")
    assert report_training.budget_rows is training.budget_rows
    assert report_training.selection_markdown is training.tuning_markdown
    assert compare.compare_family is new_compare.compare_family
    assert stats.paired_bootstrap is new_stats.paired_bootstrap is paired_bootstrap
    for module in (compare, report, report_training, stats):
        assert all(hasattr(module, name) for name in module.__all__)


def test_score_against_mt_chrf_plot_only_with_english_mt(run_dir, tmp_path):
    from flare.results.plot import english_mt_chrf
    from flare.translation.quality import QualityTable, quality_path

    assert "score-vs-chrf.png" not in [p.name for p in write_report(run_dir)]  # human English: no plot
    table = QualityTable(quality_path(run_dir))
    for language, split, src, tgt, chrf in [("jav", "test", "jav", "en", 31.5), ("sun", "test", "sun", "en", 44.0),
                                            ("jav", "validation", "jav", "en", 30.0),
                                            ("sun", "train", "en", "sun", 12.0)]:  # MT into the target: not the English side
        table.add({"model": "gemma3-270m", "language": language, "split": split, "src": src, "tgt": tgt,
                   "segments": 10, "chrf": chrf, "bleu": 5.0, "mode": "mt-english"})
    assert english_mt_chrf(run_dir, "test") == {"jav": 31.5, "sun": 44.0}
    assert english_mt_chrf(run_dir, "train") == {}
    png = run_dir / "report" / "score-vs-chrf.png"
    assert png in write_report(run_dir) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    one = populate(tmp_path / "one", {"flare": {"jav": (0.7, 0.7, 0.7)}})  # one language: nothing to plot
    QualityTable(quality_path(one)).add({"model": "m", "language": "jav", "split": "test", "src": "jav", "tgt": "en",
                                         "segments": 1, "chrf": 30.0, "bleu": 1.0})
    assert "score-vs-chrf.png" not in [p.name for p in write_report(one)]
