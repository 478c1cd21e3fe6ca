"""Training to convergence (issue 18, item 2; issue 13's accumulation and clipping): evaluation
every N steps or epochs, early stopping that restores the best weights, the learning curve, exact
resume, gradient accumulation and gradient clipping through accelerate."""

import dataclasses
import math

import pytest
import torch

from flare.errors import ConfigError
from flare.pipeline import stages
from flare.pipeline.config import TrainConfig, load_config
from flare.pipeline.data import build_features
from flare.pipeline.runner import Experiment
from flare.pipeline.training import fit, predict, trainable_parameters
from flare.results.training import stopped_early


@pytest.fixture(scope="module")
def pieces(tiny_checkpoints, tmp_path_factory):
    """A tiny BERT stage-1 model factory, 32 training and 8 validation features of Javanese."""
    output = tmp_path_factory.mktemp("convergence")
    config = load_config(None, [f"model={tiny_checkpoints['bert']}", f"output_dir={output}", "train.max_length=32"])
    experiment = Experiment(config, log=lambda m: None)
    head = experiment.head
    train = build_features(experiment.load("jav", "train", 32, 1), head, "zero-shot")
    valid = build_features(experiment.load("jav", "validation", 8, 1), head, "zero-shot")

    def new_model():
        torch.manual_seed(0)
        return stages.new_stage1_model(config, head)

    return experiment, head, train, valid, new_model


def train_config(**settings) -> TrainConfig:
    base = TrainConfig(epochs=10, learning_rate=1e-3, batch_size=4, eval_batch_size=8, max_length=32,
                       warmup_ratio=0.0, group_by_length=False)
    return dataclasses.replace(base, **settings)


def snapshot(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in trainable_parameters(model).items()}


def test_early_stopping_restores_the_best_evaluation_and_records_the_curve(pieces):
    experiment, head, train, valid, new_model = pieces
    model = new_model()
    scripted = iter([10.0, 30.0, 20.0, 25.0, 99.0, 99.0])  # best at the 2nd evaluation, then 2 worse: stop
    weights_at = []

    def score(predictions):
        weights_at.append(snapshot(model))
        return next(scripted)

    result = fit(model, head, train, valid, train_config(eval_every="2 steps", patience=2), 1, score,
                 experiment.accelerator, log=lambda m: None)
    assert result.stopped_early and result.steps == 8 and result.max_steps == 80
    assert [h["step"] for h in result.history] == [2, 4, 6, 8]
    assert [h["validation"] for h in result.history] == [10.0, 30.0, 20.0, 25.0]
    assert [h["examples"] for h in result.history] == [8, 16, 24, 32]
    assert all(math.isfinite(h["train_loss"]) for h in result.history)
    assert result.best_step == 4 and result.best_score == 30.0 and result.best_epoch == 0.5
    restored = snapshot(model)
    assert all(torch.equal(restored[n], weights_at[1][n]) for n in restored)  # the 2nd evaluation's weights
    assert not all(torch.equal(restored[n], weights_at[3][n]) for n in restored)


def test_patience_running_out_at_the_last_step_is_not_an_early_stop(pieces):
    """The budget table counts early stops to tell converged runs from capped ones: a run whose
    patience ends at its last evaluation used every step, so it was capped, not stopped early."""
    experiment, head, train, valid, new_model = pieces
    scripted = iter([30.0, 20.0, 10.0])  # best at the 1st of 3 evaluations, patience 2: out at the last
    result = fit(new_model(), head, train, valid, train_config(epochs=3, patience=2), 1, lambda p: next(scripted),
                 experiment.accelerator, log=lambda m: None)
    assert result.steps == result.max_steps == 24 and len(result.history) == 3
    assert not result.stopped_early and result.best_epoch == 1
    # result files written before this was fixed flag such a run; the budget and tuning tables do not count it
    assert stopped_early(result.summary()) is False
    assert stopped_early({"stopped_early": True, "steps": 24, "max_steps": 24}) is False
    assert stopped_early({"stopped_early": True, "steps": 16, "max_steps": 24}) is True
    assert stopped_early({"stopped_early": True}) is True  # no step budget recorded: as flagged


def test_the_best_evaluations_predictions_come_back_and_equal_the_restored_models(pieces):
    """Callers take the validation predictions of the restored weights from the fit (one validation
    pass less per run) instead of predicting again: they must be what predicting again gives."""
    experiment, head, train, valid, new_model = pieces
    model = new_model()
    scripted, seen = iter([10.0, 30.0, 20.0, 25.0]), []

    def score(predictions):
        seen.append(predictions)
        return next(scripted)

    result = fit(model, head, train, valid, train_config(eval_every="2 steps", patience=2), 1, score,
                 experiment.accelerator, log=lambda m: None)
    assert result.best_predictions is seen[1]
    assert result.best_predictions == predict(model, head, valid, 8, head.pad_id, experiment.accelerator)


def test_without_patience_epochs_is_the_budget_and_evaluation_is_per_epoch(pieces):
    experiment, head, train, valid, new_model = pieces
    result = fit(new_model(), head, train, valid, train_config(epochs=3), 1, lambda p: 1.0, experiment.accelerator,
                 log=lambda m: None)
    assert not result.stopped_early and result.steps == 24 and result.examples_seen == 96
    assert [(h["epoch"], h["step"]) for h in result.history] == [(1, 8), (2, 16), (3, 24)]
    assert result.best_epoch == 1  # ties keep the first
    result = fit(new_model(), head, train, valid, train_config(epochs=4, eval_every="2 epochs"), 1, lambda p: 1.0,
                 experiment.accelerator, log=lambda m: None)
    assert [h["epoch"] for h in result.history] == [2, 4]


def test_gradient_accumulation_takes_one_optimizer_step_per_n_batches(pieces):
    experiment, head, train, valid, new_model = pieces
    result = fit(new_model(), head, train, valid, train_config(epochs=2, gradient_accumulation_steps=3), 1,
                 lambda p: 1.0, experiment.accelerator, log=lambda m: None)
    # 8 batches per epoch: steps after batches 3, 6 and the epoch's last (accelerate syncs at the end)
    assert result.steps == 6 and result.max_steps == 6 and result.examples_seen == 64
    assert [h["step"] for h in result.history] == [3, 6]
    assert experiment.accelerator.gradient_accumulation_steps == 1  # reset for the next fit


def test_max_grad_norm_clips_the_gradient(pieces, monkeypatch):
    experiment, head, train, valid, new_model = pieces
    norms = []
    original = type(experiment.accelerator).clip_grad_norm_

    def spy(self, parameters, max_norm, *args, **kwargs):
        total = original(self, parameters, max_norm, *args, **kwargs)
        norms.append(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in parameters if p.grad is not None])))
        return total

    monkeypatch.setattr(type(experiment.accelerator), "clip_grad_norm_", spy)
    fit(new_model(), head, train, valid, train_config(epochs=1, max_grad_norm=1e-3), 1, lambda p: 1.0,
        experiment.accelerator, log=lambda m: None)
    assert len(norms) == 8 and all(n <= 1e-3 * 1.01 for n in norms)
    norms.clear()
    fit(new_model(), head, train, valid, train_config(epochs=1), 1, lambda p: 1.0, experiment.accelerator,
        log=lambda m: None)
    assert norms == []  # no max_grad_norm: no clipping


class Interrupt(Exception):
    pass


def test_an_interrupted_early_stopping_run_resumes_exactly(pieces, tmp_path):
    """Killed mid-way (between two evaluations, after a step checkpoint), resumed: the same curve,
    the same stopping point and the same restored weights as an uninterrupted run."""
    experiment, head, train, valid, new_model = pieces
    config = train_config(epochs=6, eval_every="3 steps", patience=2, checkpoint_steps=1,
                          gradient_accumulation_steps=2, max_grad_norm=0.5, learning_rate=3e-3)

    def score(predictions):
        return float(sum(p == 1 for p in predictions))  # depends on the weights, so on every step

    reference_model = new_model()
    reference = fit(reference_model, head, train, valid, config, 1, score, experiment.accelerator,
                    log=lambda m: None)
    assert len(reference.history) >= 3

    calls = {"n": 0}
    original_loss = head.loss

    def failing_loss(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 15:  # batch 15: step 7 done, its checkpoint written, step 8 half accumulated
            raise Interrupt
        return original_loss(*args, **kwargs)

    head.loss = failing_loss
    try:
        with pytest.raises(Interrupt):
            fit(new_model(), head, train, valid, config, 1, score, experiment.accelerator,
                checkpoint_dir=tmp_path / "ckpt", log=lambda m: None)
    finally:
        head.loss = original_loss
    messages = []
    resumed_model = new_model()
    resumed = fit(resumed_model, head, train, valid, config, 1, score, experiment.accelerator,
                  checkpoint_dir=tmp_path / "ckpt", resume=True, log=messages.append)
    assert any("resuming after step 7" in m for m in messages)
    assert resumed.history == reference.history
    assert (resumed.best_step, resumed.steps, resumed.stopped_early, resumed.examples_seen) == \
        (reference.best_step, reference.steps, reference.stopped_early, reference.examples_seen)
    a, b = snapshot(reference_model), snapshot(resumed_model)
    assert all(torch.equal(a[n], b[n]) for n in a)


@pytest.mark.parametrize("settings, message", [
    ({"eval_every": "3 hours"}, "eval_every must be 'epoch', 'N epochs' or 'N steps'"),
    ({"eval_every": 50}, "eval_every must be"),
    ({"patience": 0}, "patience must be at least 1"),
    ({"gradient_accumulation_steps": 0}, "gradient_accumulation_steps must be at least 1"),
    ({"fusion_lr_ratio": 0}, "fusion_lr_ratio must be positive"),
])
def test_bad_convergence_settings_fail_when_the_config_is_read(settings, message):
    overrides = [f"train.{k}={v}" for k, v in settings.items()]
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)
