"""`flare status`: every run of a config, done / interrupted / to do, from the files alone, with the
time taken and an estimate of the time left; never a score."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from flare.cli.main import app
from flare.pipeline import training
from flare.pipeline.config import load_config
from flare.pipeline.runner import Experiment
from flare.pipeline.status import DONE, FINAL, INTERRUPTED, STAGE1, TO_DO, TUNING, experiment_status
from flare.pipeline.tune import tune

SETTINGS = ["methods=[zero-shot, lora]", "languages=[jav]", "seeds=[1, 2]", "stage1_seeds=[1, 2]",
            "stage1.epochs=1", "stage1.max_train_examples=16", "stage1.max_eval_examples=16", "stage1.batch_size=8",
            "stage1.max_length=32", "train.epochs=2", "train.max_train_examples=16", "train.batch_size=8",
            "train.max_length=32", "train.max_eval_examples=24", "train.checkpoint_steps=1",
            "search={grid: {learning_rate: [1.0e-4, 1.0e-2]}, languages: [jav], seeds: [1]}"]


def states(units):
    return {(u.kind, u.method, u.point, u.seed): u.state for u in units}


def stop_after_first_checkpoint(experiment, monkeypatch, seed: int) -> None:
    """Run lora on jav with `seed` and stop it right after its first checkpoint."""
    original = training.save_checkpoint

    def save_then_stop(*args, **kwargs):
        original(*args, **kwargs)
        raise KeyboardInterrupt("stopped")

    monkeypatch.setattr(training, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        experiment.run(method="lora", language="jav", seed=seed)
    monkeypatch.undo()


def test_status_follows_a_study_from_nothing_to_done_without_showing_a_score(tmp_path, tiny_checkpoints,
                                                                            monkeypatch):
    overrides = [f"model={tiny_checkpoints['bert']}", f"output_dir={tmp_path / 'run'}", *SETTINGS]
    experiment = Experiment(load_config(None, overrides), log=lambda m: None)

    units = experiment_status(experiment)  # nothing has run: every run to do, nothing to estimate from
    assert [(u.kind, u.method, u.seed) for u in units] == [
        (STAGE1, "", 1), (STAGE1, "", 2), (TUNING, "lora", 1), (TUNING, "lora", 1),
        (FINAL, "zero-shot", 1), (FINAL, "zero-shot", 2), (FINAL, "lora", 1), (FINAL, "lora", 2)]
    assert {u.state for u in units} == {TO_DO} and all(u.left is None for u in units)
    assert [u.point for u in units if u.kind == TUNING] == ["learning_rate=0.0001", "learning_rate=0.01"]

    experiment.stage1()
    tune(experiment)
    stop_after_first_checkpoint(experiment, monkeypatch, seed=2)

    units = experiment_status(experiment)
    by_key = {(u.kind, u.method, u.point, u.seed): u for u in units}
    assert states(units) == {
        (STAGE1, "", "", 1): DONE, (STAGE1, "", "", 2): DONE,
        (TUNING, "lora", "learning_rate=0.0001", 1): DONE, (TUNING, "lora", "learning_rate=0.01", 1): DONE,
        (FINAL, "zero-shot", "", 1): TO_DO, (FINAL, "zero-shot", "", 2): TO_DO,
        (FINAL, "lora", "", 1): TO_DO, (FINAL, "lora", "", 2): INTERRUPTED}
    stage1 = by_key[(STAGE1, "", "", 1)]
    recorded = json.loads((tmp_path / "run" / "stage1" / "seed-1" / "stage1.json").read_text())
    assert stage1.seconds == pytest.approx(recorded["train_seconds"] + recorded["training"]["validation_seconds"])
    trials = [u for u in units if u.kind == TUNING]
    assert all(u.seconds > 0 for u in trials)
    interrupted = by_key[(FINAL, "lora", "", 2)]
    assert "checkpoint after step 1" in interrupted.detail and interrupted.seconds > 0
    # a final with no finished final of its method is estimated from the method's trials, less the time spent
    mean_trial = sum(u.seconds for u in trials) / 2
    assert interrupted.left == pytest.approx(max(0.0, mean_trial - interrupted.seconds))
    # the chosen trial on jav seed 1 is the final run there: evaluation only, not estimated as training
    lora_1 = by_key[(FINAL, "lora", "", 1)]
    assert lora_1.evaluation_only and "takes over" in lora_1.detail and lora_1.left is None
    assert by_key[(FINAL, "zero-shot", "", 1)].left is None  # no trial, no finished run: no estimate

    experiment.run()
    units = experiment_status(experiment)
    assert {u.state for u in units} == {DONE}
    assert all(u.left is None for u in units)
    finals = [u for u in units if u.kind == FINAL]
    for unit in finals:
        result = json.loads(experiment.result_path(unit.method, "jav", unit.seed).read_text())
        budget = result["budget"]  # a trained run: its time over every process; zero-shot: its wall time
        assert unit.seconds == pytest.approx(budget["train_seconds"] + budget["validation_seconds"]
                                             + budget["eval_seconds"] if budget.get("optimizer_steps")
                                             else result["timings"]["total_seconds"])

    # the stage-1 weights gone: only a run still to do makes their retrain count as time left
    for folder in (tmp_path / "run" / "stage1").iterdir():
        for path in folder.iterdir():
            if path.name != "stage1.json":
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    units = experiment_status(experiment)
    assert all(not u.weights_here and u.left is None for u in units if u.kind == STAGE1)
    experiment.result_path("lora", "jav", 2).unlink()
    units = experiment_status(experiment)
    # lora seed 1 took over its trial (its time is an evaluation's): seed 2 is estimated from the trials
    assert next(u for u in units if u.kind == FINAL and u.method == "lora" and u.seed == 1).evaluation_only
    lora_2 = next(u for u in units if u.kind == FINAL and u.method == "lora" and u.seed == 2)
    assert lora_2.left == pytest.approx(mean_trial)
    seed_2 = next(u for u in units if u.kind == STAGE1 and u.seed == 2)
    assert seed_2.left == seed_2.seconds and next(u for u in units if u.kind == STAGE1 and u.seed == 1).left is None

    # no record at all (an older study that did not keep it): to do only while a run needs it
    shutil.rmtree(tmp_path / "run" / "stage1" / "seed-1")
    units = experiment_status(experiment)
    seed_1 = next(u for u in units if u.kind == STAGE1 and u.seed == 1)
    assert seed_1.state == DONE and seed_1.seconds is None and "no run left needs it" in seed_1.detail
    shutil.rmtree(tmp_path / "run" / "stage1" / "seed-2")
    assert next(u for u in experiment_status(experiment) if u.kind == STAGE1 and u.seed == 2).state == TO_DO

    # the command prints the same, as Markdown into a pipe, and no score of any run
    (tmp_path / "none.yaml").write_text("{}\n")
    result = CliRunner().invoke(app, ["status", str(tmp_path / "none.yaml"), *overrides, "--all"])
    assert result.exit_code == 0, result.output
    assert "| final | lora |  | jav | 2 | to do |" in result.output
    scores = {f"{value:.2f}" for path in (tmp_path / "run").rglob("*.json") if "results" in path.parts
              for value in json.loads(path.read_text())["metrics"]["test"].values()}
    table = result.output.split("| kind | runs")[0]
    assert scores and not any(f"| {score} |" in table for score in scores)


def test_a_run_with_nothing_finished_to_go_by_is_estimated_from_its_own_pace(tmp_path, tiny_checkpoints,
                                                                             monkeypatch):
    """An experiment without tuning (e.g. one that borrows its settings) and no finished final: an
    interrupted run's time left is its time per step at the checkpoint times the steps left; so is
    one that has already spent more than the finished runs took."""
    settings = [s for s in SETTINGS if not s.startswith(("search=", "methods="))] + ["methods=[lora]"]
    experiment = Experiment(load_config(None, [f"model={tiny_checkpoints['bert']}",
                                               f"output_dir={tmp_path / 'run'}", *settings]), log=lambda m: None)
    experiment.stage1()
    stop_after_first_checkpoint(experiment, monkeypatch, seed=1)

    folder = experiment.checkpoint_dir(experiment.run_name(experiment.config.methods[0], "jav", 1))
    state_file = next(folder.glob("step-*/state.json"))
    meta = json.loads(state_file.read_text())
    assert (meta["step"], meta["max_steps"]) == (1, 4)  # 16 examples / batch 8 x 2 epochs
    interrupted = next(u for u in experiment_status(experiment) if u.kind == FINAL and u.seed == 1)
    assert interrupted.state == INTERRUPTED and interrupted.seconds > 0
    assert interrupted.left == pytest.approx(interrupted.seconds * 3)  # 3 of its 4 steps still to go
    assert next(u for u in experiment_status(experiment) if u.kind == FINAL and u.seed == 2).left is None

    no_limit = {key: value for key, value in meta.items() if key != "max_steps"}
    state_file.write_text(json.dumps(no_limit))  # a checkpoint written before max_steps was recorded
    assert next(u for u in experiment_status(experiment) if u.kind == FINAL and u.seed == 1).left is None

    # once a run is finished, the others go by its time; one already slower than it, by its own pace
    experiment.run(method="lora", language="jav", seed=2)
    finished = next(u for u in experiment_status(experiment) if u.kind == FINAL and u.seed == 2)
    for spent, expected in ((finished.seconds / 4, finished.seconds * 3 / 4), (1.0e6, 3.0e6)):
        state_file.write_text(json.dumps(meta | {"train_seconds": spent, "eval_seconds": 0.0}))
        slow = next(u for u in experiment_status(experiment) if u.kind == FINAL and u.seed == 1)
        assert slow.left == pytest.approx(expected)
    state_file.write_text(json.dumps(no_limit | {"train_seconds": 1.0e6, "eval_seconds": 0.0}))
    assert next(u for u in experiment_status(experiment) if u.kind == FINAL and u.seed == 1).left == 0.0

    # resumed to the end, a run's time counts every process that worked on it, not the last one's only
    resumed = Experiment(load_config(None, [f"model={tiny_checkpoints['bert']}", f"output_dir={tmp_path / 'run'}",
                                            *settings, "resume=true"]), log=lambda m: None)
    resumed.run(method="lora", language="jav", seed=1)
    done = next(u for u in experiment_status(resumed) if u.kind == FINAL and u.seed == 1)
    assert done.state == DONE and done.seconds > 1.0e6  # the 1e6 s recorded before the interruption
