"""kill -9 in the middle of training, then --resume: the same final result as without the kill."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from flare.pipeline.config import load_config
from flare.pipeline.runner import Experiment

SETTINGS = ["methods=[flare]", "languages=[jav]", "seeds=[1]", "stage1.epochs=1", "stage1.max_train_examples=16",
            "train.epochs=40", "train.max_train_examples=32", "train.batch_size=8", "train.max_length=32",
            "train.checkpoint_steps=2", "train.max_eval_examples=50"]


def settings(model, output_dir):
    return [f"model={model}", f"output_dir={output_dir}", f"mt_encoder={model}", *SETTINGS]


def latest_step(run_dir):
    pointer = run_dir / "checkpoints" / "flare" / "jav" / "seed-1" / "latest"
    try:
        return int(pointer.read_text().strip().split("-")[1])
    except (FileNotFoundError, IndexError, ValueError):
        return 0


def test_killed_run_resumes_to_the_same_result(tmp_path, tiny_checkpoints):
    model = tiny_checkpoints["bert"]
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    Experiment(load_config(None, settings(model, reference_dir))).run()
    reference = json.loads((reference_dir / "results" / "flare" / "jav" / "seed-1.json").read_text())

    shutil.copytree(reference_dir / "stage1", killed_dir / "stage1")  # the same stage 1 for both
    (tmp_path / "none.yaml").write_text("{}\n")
    process = subprocess.Popen([sys.executable, "-m", "flare.cli.main", "train", str(tmp_path / "none.yaml"),
                                *settings(model, killed_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while latest_step(killed_dir) < 8 and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    result_path = killed_dir / "results" / "flare" / "jav" / "seed-1.json"
    if result_path.exists():
        pytest.fail("the training subprocess finished before it could be killed; make the run longer")
    killed_at = latest_step(killed_dir)
    assert 8 <= killed_at < 160

    resumed_config = load_config(None, settings(model, killed_dir) + ["resume=true"])
    messages = []
    Experiment(resumed_config, log=messages.append).run()
    assert any(f"resuming after step {killed_at}" in m for m in messages)
    resumed = json.loads(result_path.read_text())
    assert resumed["metrics"] == reference["metrics"]
    assert resumed["predictions"] == reference["predictions"]
    assert resumed["training"]["best_epoch"] == reference["training"]["best_epoch"]
    assert not (killed_dir / "checkpoints" / "flare" / "jav" / "seed-1").exists()  # cleaned up after the result


def test_without_resume_an_old_checkpoint_is_not_used(tmp_path, tiny_checkpoints):
    model = tiny_checkpoints["bert"]
    config = load_config(None, settings(model, tmp_path / "run") + ["train.epochs=2"])
    experiment = Experiment(config, log=lambda m: None)
    stale = experiment.checkpoint_dir("flare/jav/seed-1")
    stale.mkdir(parents=True)
    (stale / "latest").write_text("step-999")
    experiment.run()
    assert (tmp_path / "run" / "results" / "flare" / "jav" / "seed-1.json").is_file()


def test_a_non_finite_loss_stops_the_run_and_keeps_the_checkpoint(tmp_path, tiny_checkpoints):
    from flare.errors import FlareError

    model = tiny_checkpoints["bert"]
    config = load_config(None, settings(model, tmp_path / "run") + ["train.learning_rate=1e30",
                                                                     "train.checkpoint_steps=1"])
    experiment = Experiment(config, log=lambda m: None)
    with pytest.raises(FlareError, match="the loss became nan"):
        experiment.run()
    assert (experiment.checkpoint_dir("flare/jav/seed-1") / "latest").is_file()
    assert not (tmp_path / "run" / "results" / "flare" / "jav" / "seed-1.json").exists()


def test_a_crash_while_checkpointing_the_same_step_again_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    """A step is checkpointed twice (after an evaluation, then at the epoch's end): a crash during
    the second write must leave the first one, which `latest` points to, whole."""
    import torch

    from flare.pipeline import checkpoint as ckpt

    param = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([param], lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    state = ckpt.TrainingState(step=8, epoch=1, step_in_epoch=0, epoch_generator_state=torch.Generator().get_state(),
                               best_score=0.5, best_epoch=1, history=[], best_state=None)
    ckpt.save_checkpoint(tmp_path, state, {"w": param}, optimizer, scheduler)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(ckpt, "save_weights", crash)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(tmp_path, state, {"w": param}, optimizer, scheduler)
    monkeypatch.undo()
    with torch.no_grad():
        param.zero_()
    loaded = ckpt.load_checkpoint(tmp_path, {"w": param}, optimizer, scheduler)
    assert loaded is not None and loaded.step == 8 and torch.equal(param, torch.ones(3))


def test_a_checkpoint_written_with_other_settings_is_not_resumed_but_the_run_starts_anew(tmp_path, tiny_checkpoints,
                                                                                        monkeypatch):
    """Resuming restores the optimizer's learning rate and schedule from the checkpoint: a run resumed
    after its learning rate changed (a widened grid, an edited config) would go on with the old one. A
    checkpoint records its run's settings; one written with others is set aside and the run starts anew,
    ending as a fresh run with the new settings does."""
    from flare.pipeline import training

    model = tiny_checkpoints["bert"]
    short = ["train.epochs=2"]
    Experiment(load_config(None, settings(model, tmp_path / "reference") + short + ["train.learning_rate=3e-3"]),
               log=lambda m: None).run()
    reference = json.loads((tmp_path / "reference" / "results" / "flare" / "jav" / "seed-1.json").read_text())
    shutil.copytree(tmp_path / "reference" / "stage1", tmp_path / "run" / "stage1")
    original = training.save_checkpoint

    def save_then_stop(*args, **kwargs):
        original(*args, **kwargs)
        raise KeyboardInterrupt("stopped")

    monkeypatch.setattr(training, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):  # stopped at its first checkpoint, at the default learning rate
        Experiment(load_config(None, settings(model, tmp_path / "run") + short), log=lambda m: None).run()
    monkeypatch.undo()
    state = json.loads(next((tmp_path / "run" / "checkpoints").rglob("state.json")).read_text())
    assert state["settings"]["train"]["learning_rate"] != 3e-3
    messages = []
    Experiment(load_config(None, settings(model, tmp_path / "run") + short + ["train.learning_rate=3e-3",
                                                                              "resume=true"]),
               log=messages.append).run()
    assert any("written with other settings (train.learning_rate): starting anew" in m for m in messages)
    assert not any("resuming after step" in m for m in messages)
    result = json.loads((tmp_path / "run" / "results" / "flare" / "jav" / "seed-1.json").read_text())
    assert result["training"]["history"] == reference["training"]["history"]
    assert result["metrics"] == reference["metrics"] and result["predictions"] == reference["predictions"]


def test_differing_settings_names_what_changed_and_says_nothing_of_a_checkpoint_that_records_none(tmp_path):
    import torch

    from flare.pipeline import checkpoint as ckpt

    param = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.AdamW([param], lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    state = ckpt.TrainingState(step=1, epoch=0, step_in_epoch=1, epoch_generator_state=torch.Generator().get_state(),
                               best_score=0.0, best_epoch=-1, history=[], best_state=None)
    assert ckpt.differing_settings(tmp_path / "none", {"seed": 1}) is None  # no checkpoint
    ckpt.save_checkpoint(tmp_path / "old", state, {"w": param}, optimizer, scheduler)  # records no settings
    assert ckpt.differing_settings(tmp_path / "old", {"seed": 1}) is None
    settings = {"train": {"learning_rate": 1e-3, "epochs": 2}, "seed": 1, "language": "hi"}
    ckpt.save_checkpoint(tmp_path / "new", state, {"w": param}, optimizer, scheduler, settings)
    assert ckpt.differing_settings(tmp_path / "new", settings) == []
    changed = {**settings, "train": {"learning_rate": 1e-2, "epochs": 2}, "language": "sw"}
    assert ckpt.differing_settings(tmp_path / "new", changed) == ["language", "train.learning_rate"]
