"""Fair comparisons by construction (issue 18): per-method selection on validation that never
reads the test split, the final runs at each method's chosen setting, the FLARE row with no
English at test time, the budget / environment / reference scores in every result file, and one
stage-1 model per seed."""

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from flare.cli.main import app
from flare.errors import ConfigError, FlareError
from flare.pipeline import stages
from flare.pipeline.config import load_config
from flare.pipeline.data import build_features
from flare.pipeline.runner import Experiment
from flare.pipeline.training import predict, trainable_parameters

FAST = ["stage1.epochs=1", "stage1.max_train_examples=16", "train.epochs=1", "train.max_train_examples=16",
        "train.batch_size=8", "stage1.batch_size=8", "train.max_length=32", "stage1.max_length=32", "seeds=[1]",
        "languages=[jav]", "train.max_eval_examples=40", "stage1.max_eval_examples=16"]
GRID = "search={grid: {learning_rate: [1.0e-6, 3.0e-2], epochs: [1, 2]}}"


def config(tmp_path, model, methods, *extra, data_dir=None):
    return load_config(None, [f"model={model}", f"output_dir={tmp_path / 'run'}", f"methods={methods}", *FAST,
                              *([f"data_dir={data_dir}"] if data_dir else []), *extra])


def flipped_test_root(data_root, tmp_path):
    """NusaX English + Javanese, with every Javanese test label changed (a test-based choice would move)."""
    root = tmp_path / "data"
    for folder in ("english", "javanese"):
        shutil.copytree(data_root / "nusax" / folder, root / "nusax" / folder)
    path = root / "nusax" / "javanese" / "test.csv"
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    turn = {"negative": "positive", "neutral": "negative", "positive": "neutral"}
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "text", "label"])
        writer.writeheader()
        writer.writerows({**row, "label": turn[row["label"]]} for row in rows)
    return root


def spy_splits(experiment, monkeypatch) -> list:
    splits = []
    original = experiment.task.load

    def load(language, split, *args, **kwargs):
        splits.append((language, split))
        return original(language, split, *args, **kwargs)

    monkeypatch.setattr(experiment.task, "load", load)
    return splits


def test_selection_picks_the_best_validation_score_and_never_reads_test(tmp_path, tiny_checkpoints, data_root,
                                                                       monkeypatch):
    from flare.pipeline.tune import tune

    selections = []
    for name, root in (("shared", data_root), ("flipped", flipped_test_root(data_root, tmp_path))):
        experiment = Experiment(config(tmp_path / name, tiny_checkpoints["bert"], "[lora]", GRID, data_dir=root),
                                log=lambda m: None)
        experiment.stage1()
        splits = spy_splits(experiment, monkeypatch)
        [selection] = tune(experiment).values()
        assert ("jav", "test") not in splits and ("jav", "validation") in splits
        selections.append(selection)
        # the choice is the point with the best mean validation score, and the whole grid is recorded
        points = selection["points"]
        assert [p["point"] for p in points] == [{"learning_rate": lr, "epochs": e} for lr in (1e-6, 3e-2)
                                               for e in (1.0, 2.0)]
        best = max(points, key=lambda p: p["mean"])
        assert selection["chosen"] == best["point"] and selection["chosen_mean"] == best["mean"]
        saved = json.loads((tmp_path / name / "run" / "tuning" / "lora" / "selection.json").read_text())
        assert saved["chosen"] == selection["chosen"] and saved["split"] == "validation"
        trial = json.loads(next((tmp_path / name / "run" / "tuning" / "lora").rglob("seed-1.json")).read_text())
        assert set(trial["metrics"]) == {"validation"}
    # test labels changed, every validation score and the choice did not
    assert [p["scores"] for p in selections[0]["points"]] == [p["scores"] for p in selections[1]["points"]]
    assert selections[0]["chosen"] == selections[1]["chosen"]


def test_run_tunes_first_then_trains_each_method_at_its_own_choice_and_skips_finished_trials(
        tmp_path, tiny_checkpoints):
    methods = "[lora, {name: lora-own, method: lora, search: {learning_rate: [5.0e-3]}, train: {patience: 1}}]"
    settings = config(tmp_path, tiny_checkpoints["bert"], methods, GRID)
    messages = []
    experiment = Experiment(settings, log=messages.append)
    experiment.run()
    for name, grid_size in (("lora", 4), ("lora-own", 2)):  # lora-own: its learning rate x the global epochs
        selection = json.loads((tmp_path / "run" / "tuning" / name / "selection.json").read_text())
        assert len(selection["points"]) == grid_size
        result = json.loads((tmp_path / "run" / "results" / name / "jav" / "seed-1.json").read_text())
        chosen = selection["chosen"]
        assert result["selection"]["chosen"] == chosen
        assert result["budget"]["hyperparameters"]["learning_rate"] == chosen["learning_rate"]
        assert result["budget"]["hyperparameters"]["epochs"] == chosen["epochs"]
    own = json.loads((tmp_path / "run" / "results" / "lora-own" / "jav" / "seed-1.json").read_text())
    assert own["budget"]["hyperparameters"]["patience"] == 1 and own["selection"]["chosen"]["learning_rate"] == 5e-3
    # a second run trains nothing: the selection and every result are reused
    calls = []
    experiment.run_trial = lambda *args, **kwargs: calls.append(args)
    assert experiment.run() == [] and calls == []


def test_the_final_on_the_tuning_language_and_seed_takes_over_the_chosen_trial_and_equals_a_retrained_one(
        tmp_path, tiny_checkpoints):
    grid = "search={grid: {learning_rate: [1.0e-6, 3.0e-2]}}"
    messages = []
    experiment = Experiment(config(tmp_path / "taken", tiny_checkpoints["bert"], "[lora]", grid), log=messages.append)
    from flare.pipeline.tune import tune

    [selection] = tune(experiment).values()
    checkpoints = tmp_path / "taken" / "run" / "checkpoints" / "tuning" / "lora"
    # the chosen point's trial on a final language and seed is kept with its settings; the other point's is gone
    assert [p.parents[2].name for p in checkpoints.rglob("run.json")] == [selection["chosen_key"]]
    # where the source-state cache lives (or how large it may grow) is not what a run computes: a record
    # written before those settings were left out of it still matches, and so does a new cache folder
    [settings_file] = checkpoints.rglob("run.json")
    recorded = json.loads(settings_file.read_text())
    recorded["train"].update(source_cache_dir=None, source_cache_limit_mb=8192)
    settings_file.write_text(json.dumps(recorded))
    experiment.config.train.source_cache_dir = str(tmp_path / "states")
    experiment.config.train.source_cache_limit_mb = 100
    experiment.run()
    run = tmp_path / "taken" / "run"
    trial_file = f"tuning/lora/{selection['chosen_key']}/jav/seed-1.json"
    trial = json.loads((run / trial_file).read_text())
    taken = json.loads((run / "results" / "lora" / "jav" / "seed-1.json").read_text())
    assert taken["trained_in"] == trial_file
    assert any("the same run as the tuning trial" in m for m in messages)
    assert taken["training"]["history"] == trial["training"]["history"]
    assert taken["metrics"]["validation"] == trial["metrics"]["validation"]
    assert taken["budget"]["optimizer_steps"] == trial["budget"]["optimizer_steps"]
    assert not any(run.joinpath("checkpoints").rglob("latest"))  # taken over, then removed with the final's
    # the same experiment where one setting differs (patience: no effect in a 1-epoch run): no take-over, the
    # final trains anew, and gives the same curve and test scores as the taken-over trial (trial records
    # written before they kept their run_settings: with them, the changed setting stops the run instead)
    messages.clear()
    fresh = Experiment(config(tmp_path / "anew", tiny_checkpoints["bert"], "[lora]", grid), log=messages.append)
    tune(fresh)
    for trial in (tmp_path / "anew" / "run" / "tuning").rglob("seed-1.json"):
        trial.write_text(json.dumps({k: v for k, v in json.loads(trial.read_text()).items() if k != "run_settings"}))
    fresh.config.train.patience = 5
    fresh.run()
    anew = json.loads((tmp_path / "anew" / "run" / "results" / "lora" / "jav" / "seed-1.json").read_text())
    assert "trained_in" not in anew
    assert any("was run with other settings" in m for m in messages)
    assert anew["training"]["history"] == taken["training"]["history"]
    assert anew["metrics"]["test"] == taken["metrics"]["test"]
    assert anew["predictions"]["predicted"] == taken["predictions"]["predicted"]


def test_tune_command_writes_the_selection_and_says_when_nothing_is_tuned(tmp_path, tiny_checkpoints):
    config_file = tmp_path / "config.yaml"
    config_file.write_text(f"model: {tiny_checkpoints['bert']}\noutput_dir: {tmp_path / 'run'}\nmethods: [lora]\n")
    result = CliRunner().invoke(app, ["tune", str(config_file), *FAST, "search={grid: {learning_rate: [1e-3, 2e-3]}}"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "tuning" / "lora" / "selection.json").is_file()
    assert not (tmp_path / "run" / "results").exists()  # tuning only
    result = CliRunner().invoke(app, ["tune", str(config_file), *FAST])
    assert result.exit_code == 2 and "no method has a search grid" in result.output


def test_the_no_english_row_equals_a_plain_lora_evaluation_of_the_same_weights(tmp_path, tiny_checkpoints):
    experiment = Experiment(config(tmp_path, tiny_checkpoints["bert"], "[flare]", "train.learning_rate=5e-3"),
                            log=lambda m: None)
    experiment.run()
    folder = tmp_path / "run" / "results"
    flare = json.loads((folder / "flare" / "jav" / "seed-1.json").read_text())
    row = json.loads((folder / "flare-no-english" / "jav" / "seed-1.json").read_text())
    assert row["no_source_at_test"] and row["weights_from"] == "flare" and row["base_method"] == "flare"
    assert row["training"] == flare["training"]  # the same training, not a second one
    # plain LoRA: the lora method's model, given the trained FLARE adapter's LoRA and head weights
    method = experiment.method("flare")
    head = experiment.head
    trained = stages.load_stage3("flare", experiment.config, method.adapter(experiment.config.adapter), head,
                                 experiment.stage1(1), experiment.adapter_dir(method, "jav", 1))
    lora = stages.stage3_model("lora", experiment.config, method.adapter(experiment.config.adapter), head,
                               experiment.stage1(1))
    source = trainable_parameters(trained)
    target = trainable_parameters(lora)
    assert set(target) <= set(source)  # (cross-attention fusion has parameters of its own on top)
    with torch.no_grad():
        for name, param in target.items():
            param.copy_(source[name])
    test = experiment.load("jav", "test")
    predicted = predict(lora, head, build_features(test, head, "lora"), 64, head.pad_id, experiment.accelerator)
    assert predicted == row["predictions"]["predicted"]
    assert row["metrics"]["test"] == experiment.score(predicted, test)


def test_every_result_records_budget_environment_curve_and_reference_scores(tmp_path, tiny_checkpoints):
    experiment = Experiment(config(tmp_path, tiny_checkpoints["bert"], "[zero-shot, lora]", "revision=main",
                                   "train.epochs=2"), log=lambda m: None)
    experiment.run()
    lora = json.loads((tmp_path / "run" / "results" / "lora" / "jav" / "seed-1.json").read_text())
    budget = lora["budget"]
    assert budget["optimizer_steps"] == 4 and budget["examples_seen"] == 32  # 16 examples, batch 8, 2 epochs
    assert budget["trainable_parameters"] > 0 and budget["hyperparameters"]["learning_rate"] == 2e-4
    assert [h["step"] for h in lora["training"]["history"]] == [2, 4]
    env = lora["environment"]
    assert {"flare-xl", "torch", "transformers", "peft", "accelerate"} <= set(env)
    assert env["model_revision"] == "main" and env["model_resolved"] == tiny_checkpoints["bert"]
    refs = lora["reference_scores"]
    assert set(refs["majority_class"]) == {"validation", "test"} and refs["chance"]["test"]["accuracy"] == 100 / 3
    zero = json.loads((tmp_path / "run" / "results" / "zero-shot" / "jav" / "seed-1.json").read_text())
    assert zero["budget"]["optimizer_steps"] == 0 and zero["training"] is None
    assert zero["reference_scores"]["majority_class"]["test"] == refs["majority_class"]["test"]
    # the report: the budget table, the reference rows and one curve PNG per trained method
    result = CliRunner().invoke(app, ["report", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "Budget" in result.output and "majority class" in result.output
    report = tmp_path / "run" / "report"
    assert (report / "curves-lora.png").is_file() and not (report / "curves-zero-shot.png").exists()
    markdown = (report / "results.md").read_text()
    assert "## Budget" in markdown and "| lora | 1 | 4 | 32 |" in markdown
    assert (report / "budget.csv").read_text().splitlines()[0].startswith("method,runs,optimizer_steps")


def test_stage1_seeds_train_one_stage1_model_per_seed(tmp_path, tiny_checkpoints):
    experiment = Experiment(config(tmp_path, tiny_checkpoints["bert"], "[lora]", "seeds=[1, 2]",
                                   "stage1_seeds=[7, 8]"), log=lambda m: None)
    experiment.run()
    stage1 = tmp_path / "run" / "stage1"
    assert json.loads((stage1 / "seed-7" / "stage1.json").read_text())["seed"] == 7
    assert json.loads((stage1 / "seed-8" / "stage1.json").read_text())["seed"] == 8
    assert not (stage1 / "stage1.json").exists()
    for seed, stage1_seed in ((1, 7), (2, 8)):
        result = json.loads((tmp_path / "run" / "results" / "lora" / "jav" / f"seed-{seed}.json").read_text())
        assert result["stage1"] == {"dir": f"stage1/seed-{stage1_seed}", "seed": stage1_seed}
    from safetensors.torch import load_file

    a, b = (load_file(str(stage1 / f"seed-{s}" / "adapter_model.safetensors")) for s in (7, 8))
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_one_selected_seed_trains_only_its_own_stage1_model(tmp_path, tiny_checkpoints):
    """`flare train --seed 2` (two processes side by side, one seed each) must not also train the
    other seeds' stage-1 models."""
    experiment = Experiment(config(tmp_path, tiny_checkpoints["bert"], "[zero-shot]", "seeds=[1, 2]",
                                   "stage1_seeds=[7, 8]"), log=lambda m: None)
    experiment.run(seed=2)
    stage1 = tmp_path / "run" / "stage1"
    assert (stage1 / "seed-8" / "stage1.json").is_file() and not (stage1 / "seed-7").exists()
    assert (tmp_path / "run" / "results" / "zero-shot" / "jav" / "seed-2.json").is_file()


def test_a_fresh_checkout_retrains_a_recorded_stage1_model_and_checks_it_is_the_same(tmp_path, tiny_checkpoints):
    """Studies commit stage1.json, not the weights: a checkout with the record and no weights retrains
    the model (not "reusing" a folder PEFT cannot load) and says whether it is the recorded one."""
    cfg = config(tmp_path, tiny_checkpoints["bert"], "[zero-shot]")
    logs = []
    folder = Experiment(cfg, log=logs.append).stage1()
    marker = folder / "stage1.json"
    first = (folder / "adapter_model.safetensors").read_bytes()
    for path in folder.iterdir():
        if path != marker:
            path.unlink()
    record = marker.read_text()
    Experiment(cfg, log=logs.append).stage1()
    assert (folder / "adapter_model.safetensors").read_bytes() == first
    assert any("retrained: the recorded validation curve and test scores" in line for line in logs)
    assert marker.read_text() == record  # kept as it was, its timings included

    recorded = json.loads(marker.read_text())
    recorded["history"][0]["validation"] += 1.0  # as if another machine had recorded it
    marker.write_text(json.dumps(recorded))
    (folder / "adapter_config.json").unlink()
    Experiment(cfg, log=logs.append).stage1()
    assert any("is not the recorded model" in w for w in json.loads(marker.read_text())["warnings"])

    assert json.loads(marker.read_text())["cpu"]["machine"]  # the CPU it was trained on, for the next retrain

    (folder / "adapter_config.json").unlink()
    borrowing = config(tmp_path / "other", tiny_checkpoints["bert"], "[zero-shot]", f"stage1_from={tmp_path / 'run'}")
    with pytest.raises(ConfigError, match="holds no weights"):
        Experiment(borrowing, log=lambda m: None).stage1()


def test_a_retrain_that_leaves_its_record_stops_where_runs_were_built_on_the_recorded_model(
        tmp_path, tiny_checkpoints, monkeypatch):
    """Another machine's arithmetic (AMX or not, for bf16) gives another stage-1 model from the same seed:
    runs built on it would not pair with the committed runs built on the recorded one. The retrain stops
    at its first evaluation off the record, keeps the record and its checkpoint; `stage1_mismatch=continue`
    goes on from that checkpoint, replaces the record and moves the results built on the old one aside."""
    cfg = config(tmp_path, tiny_checkpoints["bert"], "[zero-shot]")
    Experiment(cfg, log=lambda m: None).run()  # stage 1 and a zero-shot result built on it
    folder = tmp_path / "run" / "stage1"
    marker = folder / "stage1.json"
    recorded = json.loads(marker.read_text())
    recorded["history"][0]["train_loss"] += 1e-3  # as another CPU would have recorded it
    recorded["cpu"] = {"machine": "x86_64", "torch_capability": "AVX512", "flags": ["amx_bf16"],
                       "onednn_max_cpu_isa": None}
    marker.write_text(json.dumps(recorded))
    for path in folder.iterdir():
        if path != marker:
            path.unlink()
    with pytest.raises(FlareError, match=r"evaluation 1 .*a different CPU.* 1 result files of this experiment "
                                         r"were built on the recorded model \(results/zero-shot/jav/seed-1.json\)"):
        Experiment(cfg, log=lambda m: None).stage1()
    assert json.loads(marker.read_text()) == recorded and not (folder / "adapter_config.json").exists()
    assert list((tmp_path / "run" / "checkpoints" / "stage1").iterdir())  # kept for a resume
    # recorded under an MKL code path this process does not set: stopped before any training
    monkeypatch.delenv("MKL_CBWR", raising=False)
    marker.write_text(json.dumps({**recorded, "cpu": {**recorded["cpu"], "mkl_cbwr": "COMPATIBLE"}}))
    with pytest.raises(FlareError, match=r"instruction-set settings differ: MKL_CBWR=COMPATIBLE recorded, unset here"):
        Experiment(cfg, log=lambda m: None).stage1()
    marker.write_text(json.dumps(recorded))

    logs = []
    going_on = config(tmp_path, tiny_checkpoints["bert"], "[zero-shot]", "stage1_mismatch=continue", "resume=true")
    Experiment(going_on, log=logs.append).stage1()
    assert any("resuming after step" in line for line in logs)
    assert (folder / "adapter_config.json").is_file()
    warnings = json.loads(marker.read_text())["warnings"]
    assert any("is not the recorded model: evaluation 1" in w for w in warnings)
    # the zero-shot result built on the old model no longer pairs with anything: moved aside, kept
    result = Path("results") / "zero-shot" / "jav" / "seed-1.json"
    superseded = list((tmp_path / "run" / "superseded").glob(f"stage1-*/{result}"))
    assert len(superseded) == 1 and not (tmp_path / "run" / result).exists()
    assert any("1 results built on the earlier one moved to superseded/stage1-" in w for w in warnings)
    Experiment(going_on, log=lambda m: None).run()  # --resume rebuilds it, on the new model
    assert (tmp_path / "run" / result).is_file()
    from flare.results.report import build_report

    report = build_report(tmp_path / "run")
    assert any("1 result files under superseded/ are not in these tables" in w for w in report.warnings)
    report.write(tmp_path / "report")
    markdown = (tmp_path / "report" / "results.md").read_text()
    # a retrain on another CPU is no failed training: said under its own heading
    retrained = markdown.index("## Stage-1 models retrained into others than their records")
    assert retrained < markdown.index("is not the recorded model") and retrained < markdown.index("superseded")
    with pytest.raises(ConfigError, match="stage1_mismatch must be stop or continue"):
        load_config(None, ["stage1_mismatch=maybe"])


def test_a_stage1_model_is_reused_only_under_the_settings_it_was_trained_with(tmp_path, tiny_checkpoints):
    experiment = Experiment(config(tmp_path, tiny_checkpoints["bert"], "[zero-shot]"), log=lambda m: None)
    folder = experiment.stage1()
    recorded = json.loads((folder / "stage1.json").read_text())["settings"]
    assert recorded["seed"] == 1 and recorded["stage1"]["max_length"] == 32
    Experiment(config(tmp_path, tiny_checkpoints["bert"], "[zero-shot]", "stage1.checkpoint_steps=5"),
               log=lambda m: None).stage1()  # not a setting of the model: reused
    changed = Experiment(config(tmp_path, tiny_checkpoints["bert"], "[zero-shot]", "stage1.max_length=24"),
                         log=lambda m: None)
    with pytest.raises(FlareError, match=r"stage 1: .* was trained with other settings .*\(stage1.max_length;"):
        changed.stage1()
    # a fresh checkout (the record without the weights) is not retrained under other settings either
    for weights in folder.iterdir():
        if weights.name != "stage1.json":
            shutil.rmtree(weights) if weights.is_dir() else weights.unlink()
    with pytest.raises(FlareError, match=r"trained with other settings .*\(stage1.max_length;"):
        changed.stage1()


def test_stage1_seeds_must_pair_with_seeds():
    from flare.errors import ConfigError

    with pytest.raises(ConfigError, match="one seed per seed of seeds"):
        load_config(None, ["seeds=[1, 2, 3]", "stage1_seeds=[1, 2]"])


def test_chance_and_majority_scores_by_hand():
    from flare.pipeline.sanity import chance_scores, majority_label, reference_scores
    from flare.tasks.base import classification_metric

    gold = [0, 0, 0, 1, 2, 2]  # shares 1/2, 1/6, 1/3
    chance = chance_scores(gold, 3)
    f1 = [2 * p / (1 + 3 * p) for p in (1 / 2, 1 / 6, 1 / 3)]  # 0.4, 0.2222, 0.3333
    assert chance["accuracy"] == pytest.approx(100 / 3)
    assert chance["macro_f1"] == pytest.approx(100 * sum(f1) / 3) == pytest.approx(31.851851, abs=1e-5)
    assert majority_label([2, 1, 2, 1]) == 1  # ties: the smallest label
    refs = reference_scores(lambda p, g: classification_metric(p, g, 3), [0, 0, 1], {"test": gold}, 3)
    # always 0: accuracy 3/6; macro-F1 over the labels seen (0, 1, 2): F1(0) = 2*3/(2*3+3) = 2/3, others 0
    assert refs["majority_class"]["test"] == {"accuracy": 50.0, "macro_f1": pytest.approx(100 * (2 / 3) / 3)}


def test_a_model_that_learned_nothing_is_warned_about_in_the_log_the_result_and_the_report(
        tmp_path, tiny_checkpoints, monkeypatch):
    monkeypatch.setattr(Experiment, "_predict", lambda self, model, features: [1] * len(features))
    messages = []
    experiment = Experiment(config(tmp_path, tiny_checkpoints["bert"], "[lora]"), log=messages.append)
    experiment.run()
    loud = [m for m in messages if m.startswith("WARNING:")]
    assert any("every test prediction is the same (1)" in m and "learning rate" in m for m in loud)
    assert any("does not beat the majority class" in m for m in loud) or any(
        "every validation prediction" in m for m in loud)
    result = json.loads((tmp_path / "run" / "results" / "lora" / "jav" / "seed-1.json").read_text())
    assert result["warnings"] and all(w in " ".join(loud) for w in result["warnings"])
    report = CliRunner().invoke(app, ["report", str(tmp_path / "run")])
    assert report.exit_code == 0 and "WARNING" in report.output
    markdown = (tmp_path / "run" / "report" / "results.md").read_text()
    assert "## WARNING: models that learned nothing" in markdown
    assert markdown.index("WARNING: models") < markdown.index("| method |")  # above the table


def test_a_report_of_older_result_files_still_builds(tmp_path):
    """Files written before issue 18 (no budget, curve steps, reference scores): shown as not recorded."""
    from flare.results.report import build_report

    folder = tmp_path / "results" / "lora" / "jav"
    folder.mkdir(parents=True)
    (folder / "seed-1.json").write_text(json.dumps({
        "schema": 1, "task": "nusax", "model": "m", "method": "lora", "language": "jav", "seed": 1,
        "metrics": {"test": {"macro_f1": 50.0}}, "primary_metric": "macro_f1",
        "timings": {"train_seconds": 3.0, "eval_seconds": 1.0},
        "predictions": {"ids": ["a", "b", "c"], "predicted": [2, 2, 2], "gold": [0, 1, 2]},
        "training": {"best_epoch": 2, "history": [{"epoch": 1, "train_loss": 1.0, "validation": 40.0},
                                                  {"epoch": 2, "train_loss": 0.8, "validation": 45.0}]}}))
    report = build_report(tmp_path)
    paths = report.write(tmp_path / "report")
    assert tmp_path / "report" / "curves-lora.png" in paths
    markdown = (tmp_path / "report" / "results.md").read_text()
    assert "| lora | 1 | – | – | – | 3.0 | 1.0 | – | not recorded | config |" in markdown
    assert "lora jav seed 1: every test prediction is the same (2)" in markdown  # from the stored predictions


def test_an_older_flare_run_gets_its_no_english_row_from_the_saved_adapter(tmp_path, tiny_checkpoints):
    settings = config(tmp_path, tiny_checkpoints["bert"], "[flare]", "train.learning_rate=5e-3")
    settings.no_english_rows = False
    assert len(Experiment(settings, log=lambda m: None).run()) == 1
    path = tmp_path / "run" / "results" / "flare" / "jav" / "seed-1.json"
    old = json.loads(path.read_text())
    for key in ("budget", "reference_scores", "selection", "warnings"):  # as written before issue 18
        old.pop(key)
    path.write_text(json.dumps(old))
    settings.no_english_rows = True
    messages = []
    [written] = Experiment(settings, log=messages.append).run()
    assert written == tmp_path / "run" / "results" / "flare-no-english" / "jav" / "seed-1.json"
    row = json.loads(written.read_text())
    assert row["weights_from"] == "flare" and row["training"] == old["training"]
    assert row["reference_scores"]["majority_class"]["test"]
    assert row["predictions"]["ids"] == old["predictions"]["ids"]


def test_choose_takes_the_best_mean_over_languages_and_seeds_ties_to_the_first_point():
    from flare.pipeline.tune import choose, point_key

    points = [{"learning_rate": lr} for lr in (1e-4, 3e-4, 1e-3)]
    scores = {(1e-4, "jav"): 60.0, (1e-4, "sun"): 80.0, (3e-4, "jav"): 75.0, (3e-4, "sun"): 70.0,
              (1e-3, "jav"): 90.0, (1e-3, "sun"): 50.0}  # means 70, 72.5, 70: jav alone would pick 1e-3
    trials = [{"key": point_key(p), "language": lang, "seed": 1,
               "metrics": {"validation": {"f1": scores[p["learning_rate"], lang]}},
               "budget": {"optimizer_steps": 10}, "training": {"stopped_early": False}}
              for p in points for lang in ("jav", "sun")]
    wanted = {"grid": {"learning_rate": [1e-4, 3e-4, 1e-3]}, "points": points, "languages": ["jav", "sun"],
              "seeds": [1], "metric": "f1"}
    selection = choose("lora", wanted, trials)
    assert selection["chosen"] == {"learning_rate": 3e-4} and selection["chosen_mean"] == 72.5
    scores[3e-4, "sun"] = 65.0  # now 70, 70, 70: the first point
    trials = [{**t, "metrics": {"validation": {"f1": scores[p["learning_rate"], t["language"]]}}}
              for t, p in zip(trials, [p for p in points for _ in range(2)])]
    assert choose("lora", wanted, trials)["chosen"] == {"learning_rate": 1e-4}
    with pytest.raises(Exception, match="has 1 trials, expected 2"):
        choose("lora", wanted, trials[1:])


def test_a_choice_at_the_edge_of_a_numeric_grid_is_noted_in_the_tuning_report(tmp_path):
    from flare.results.training import grid_edge_notes, tuning_markdown

    def selection(chosen_lr, offsets=(1, 0)):
        grid = {"learning_rate": [3e-4, 1e-3, 3e-3], "source_layer_offset": list(offsets), "fusion": ["add", "mul"]}
        return {"method": "flare", "metric": "accuracy", "split": "validation", "grid": grid, "languages": ["hi"],
                "seeds": [1], "chosen": {"learning_rate": chosen_lr, "source_layer_offset": 0, "fusion": "mul"},
                "chosen_key": "k", "points": [{"point": {"learning_rate": chosen_lr}, "key": "k", "mean": 60.0}]}

    assert grid_edge_notes(selection(1e-3)) == []  # inside; 2-value and text axes are never edges
    assert grid_edge_notes(selection(3e-4)) == [
        "flare: the chosen learning_rate 0.0003 is the smallest value of its grid (0.0003, 0.001, 0.003); "
        "a better one may lie beyond it"]
    assert "largest value of its grid" in grid_edge_notes(selection(3e-3))[0]
    assert "source_layer_offset 0 is the smallest" in grid_edge_notes(selection(1e-3, offsets=(2, 1, 0)))[0]
    folder = tmp_path / "tuning" / "flare"
    folder.mkdir(parents=True)
    (folder / "selection.json").write_text(json.dumps(selection(3e-3)))
    assert "- flare: the chosen learning_rate 0.003 is the largest value" in tuning_markdown(tmp_path)


def test_a_final_trained_at_a_point_its_method_no_longer_chooses_is_superseded_and_run_again(
        tmp_path, tiny_checkpoints):
    """A grid widened after the finals ran may change a method's choice; a finished final at the old
    choice must then not be skipped (the report would show it as the tuned method's run) but moved to
    superseded/, its companion row with it, and run again at the new choice."""
    from flare.pipeline.status import FINAL, TO_DO, experiment_status
    from flare.pipeline.tune import point_key

    grid = "search={grid: {learning_rate: [1.0e-6, 3.0e-2]}}"
    messages = []
    experiment = Experiment(config(tmp_path, tiny_checkpoints["bert"], "[flare]", grid), log=messages.append)
    experiment.run()
    run = tmp_path / "run"
    first = json.loads((run / "results" / "flare" / "jav" / "seed-1.json").read_text())
    # the choice moves to the other point (as a wider grid's new best would): the selection file says so
    selection_file = run / "tuning" / "flare" / "selection.json"
    selection = json.loads(selection_file.read_text())
    [other] = [p["point"] for p in selection["points"] if p["point"] != selection["chosen"]]
    assert first["selection"]["chosen"] == selection["chosen"]
    selection_file.write_text(json.dumps({**selection, "chosen": other, "chosen_key": point_key(other)}))
    [final] = [u for u in experiment_status(experiment) if u.kind == FINAL and u.method == "flare"]
    assert final.state == TO_DO and f"now chooses {point_key(other)}: runs again" in final.detail
    messages.clear()
    written = experiment.run()
    assert sorted(p.parent.parent.name for p in written) == ["flare", "flare-no-english"]
    again = json.loads((run / "results" / "flare" / "jav" / "seed-1.json").read_text())
    row = json.loads((run / "results" / "flare-no-english" / "jav" / "seed-1.json").read_text())
    assert again["selection"]["chosen"] == other
    assert again["budget"]["hyperparameters"]["learning_rate"] == other["learning_rate"]
    assert row["training"] == again["training"]
    [moved] = (run / "superseded").iterdir()
    assert any(f"moved to superseded/{moved.name}, and it runs again" in m for m in messages)
    old = json.loads((moved / "results" / "flare" / "jav" / "seed-1.json").read_text())
    assert old == first  # kept whole, with the saved adapter and the companion row
    assert (moved / "results" / "flare-no-english" / "jav" / "seed-1.json").is_file()
    assert (moved / "adapters" / "flare" / "jav" / "seed-1" / "flare_config.json").is_file()
    assert experiment.run() == []  # now current: skipped
    from flare.results.report import build_report

    warnings = build_report(run).warnings
    assert any("2 result files under superseded/ are not in these tables: they were trained at a grid point" in w
               for w in warnings) and not any("retrained" in w for w in warnings)


def test_a_finished_run_is_reused_only_under_the_settings_it_was_made_with(tmp_path, tiny_checkpoints):
    """Changing a setting between sittings of a study (here the sequence length) would mix runs made
    under two settings in one comparison: `flare run` and `flare tune` stop instead, naming the file
    and the setting; how often checkpoints are written is not such a setting."""
    from flare.pipeline.tune import tune

    grid = "search={grid: {learning_rate: [1.0e-6, 3.0e-2]}}"
    experiment = Experiment(config(tmp_path, tiny_checkpoints["bert"], "[zero-shot, lora]", grid), log=lambda m: None)
    experiment.run()
    result = tmp_path / "run" / "results" / "lora" / "jav" / "seed-1.json"
    recorded = json.loads(result.read_text())["run_settings"]
    assert recorded["train"]["max_length"] == 32 and recorded["language"] == "jav"
    before = result.read_text()
    unchanged = Experiment(config(tmp_path, tiny_checkpoints["bert"], "[zero-shot, lora]", grid,
                                  "train.checkpoint_steps=3"), log=lambda m: None)
    assert unchanged.run() == []  # the same runs: reused
    changed = Experiment(config(tmp_path, tiny_checkpoints["bert"], "[zero-shot, lora]", grid, "train.max_length=24"),
                         log=lambda m: None)
    from flare.pipeline.status import experiment_status

    flagged = [u for u in experiment_status(changed) if "made under other settings (train.max_length)" in u.detail]
    assert len(flagged) == 2 + 2 and all(u.detail.endswith("flare run stops here") for u in flagged)  # trials, finals
    with pytest.raises(FlareError, match=r"seed-1.json was made with other settings .*\(train.max_length;"):
        changed.run()
    with pytest.raises(FlareError, match=r"tuning/lora/.*seed-1.json was made with other settings"):
        tune(changed)
    assert result.read_text() == before  # nothing was overwritten


def test_a_flare_search_may_vary_fusion_and_offset_and_the_final_run_uses_the_chosen_variant(
        tmp_path, tiny_checkpoints, monkeypatch):
    built = []
    original = stages.stage3_model

    def spy(name, cfg, adapter, *args, **kwargs):
        built.append((adapter.fusion, adapter.source_layer_offset))
        return original(name, cfg, adapter, *args, **kwargs)

    monkeypatch.setattr(stages, "stage3_model", spy)
    methods = "[{name: flare, method: flare, search: {fusion: [add, mul], source_layer_offset: [0, 1]}}]"
    experiment = Experiment(config(tmp_path, tiny_checkpoints["bert"], methods, "train.learning_rate=5e-3"),
                            log=lambda m: None)
    experiment.run()
    selection = json.loads((tmp_path / "run" / "tuning" / "flare" / "selection.json").read_text())
    points = [p["point"] for p in selection["points"]]
    assert points == [{"fusion": f, "source_layer_offset": k} for f in ("add", "mul") for k in (0, 1)]
    # each trial trained its own variant, then the final run (and its no-English row) the chosen one
    chosen = selection["chosen"]
    assert built == [(p["fusion"], p["source_layer_offset"]) for p in points] + [
        (chosen["fusion"], chosen["source_layer_offset"])]
    result = json.loads((tmp_path / "run" / "results" / "flare" / "jav" / "seed-1.json").read_text())
    assert result["selection"]["chosen"] == chosen
    assert result["budget"]["hyperparameters"]["learning_rate"] == 5e-3  # not a training setting of the grid
    assert (tmp_path / "run" / "results" / "flare-no-english" / "jav" / "seed-1.json").is_file()
    assert experiment.evaluate_saved("flare", "jav", 1, "jav") == result["metrics"]["test"]


def test_only_a_flare_method_may_search_fusion_settings_and_a_bad_value_fails_when_the_config_is_read():
    from flare.errors import ConfigError

    with pytest.raises(ConfigError, match="only a FLARE method has fusion settings"):
        load_config(None, ["methods=[{name: lora, method: lora, search: {fusion: [add]}}]"])
    with pytest.raises(ConfigError, match="unknown fusion 'nope'"):
        load_config(None, ["methods=[{name: flare, method: flare, search: {fusion: [nope]}}]"])
    with pytest.raises(ConfigError, match="source_layer_offset"):
        load_config(None, ["methods=[{name: flare, method: flare, search: {source_layer_offset: [one]}}]"])


def test_fusion_lr_ratio_moves_the_learned_gate_further_in_the_same_short_run(tmp_path, tiny_checkpoints):
    """At LoRA's rate a gate behind LoRA's zero-initialised B hardly moves in a short run; its own
    (config) rate moves it, and leaves a method without a learned fusion exactly as it was."""
    from safetensors.torch import load_file

    from flare.core.model import WEIGHTS_NAME

    methods = "[{name: gated, method: flare, fusion: gated_add_relu}, lora]"
    gate_size, lora_predictions = {}, {}
    for ratio in (1, 100):
        out = tmp_path / f"ratio-{ratio}"
        experiment = Experiment(config(out, tiny_checkpoints["bert"], methods, "train.learning_rate=1e-3",
                                       "train.epochs=2", f"train.fusion_lr_ratio={ratio}"), log=lambda m: None)
        experiment.run()
        weights = load_file(experiment.adapter_dir(experiment.method("gated"), "jav", 1) / WEIGHTS_NAME)
        gates = [t for n, t in weights.items() if n.startswith("fusions.")]
        assert gates
        gate_size[ratio] = max(t.abs().max().item() for t in gates)
        result = json.loads((out / "run" / "results" / "lora" / "jav" / "seed-1.json").read_text())
        lora_predictions[ratio] = result["predictions"]
        assert result["budget"]["hyperparameters"]["fusion_lr_ratio"] == ratio
    assert gate_size[100] > 10 * gate_size[1], gate_size
    assert lora_predictions[1] == lora_predictions[100]
