"""Training checkpoints that survive kill -9: everything to continue a run exactly.

A checkpoint is a folder `step-<n>/` (weights, optimizer moments, random states in safetensors;
counters, schedule and history in JSON: nothing is pickled), written completely before the
`latest` file is atomically switched to it; older folders are removed after. A crash at any
moment leaves `latest` naming a complete checkpoint (or no checkpoint at all).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from flare.io import write_text_atomic
from flare.weights import save_weights

LATEST = "latest"


@dataclass
class TrainingState:
    step: int  # optimizer steps done
    epoch: int  # the epoch in progress (0-based)
    step_in_epoch: int  # batches of that epoch already used
    epoch_generator_state: torch.Tensor  # the data-order generator at the start of that epoch
    best_score: float
    best_epoch: int
    history: list[dict]
    best_state: dict[str, torch.Tensor] | None
    # early stopping and the learning curve (absent in older checkpoints: the defaults)
    best_step: int = 0
    evals_since_best: int = 0
    stopped: bool = False  # early stopping ended the run
    loss_sum: float = 0.0  # training loss since the last evaluation (sum, number of batches)
    loss_count: int = 0
    examples: int = 0  # training features seen
    train_seconds: float = 0.0
    eval_seconds: float = 0.0  # validation during training
    max_steps: int = 0  # the steps the run's epochs allow (read by `flare status` for an estimate)

    def counters(self) -> dict:
        return {key: getattr(self, key) for key in COUNTERS}


COUNTERS = ("best_step", "evals_since_best", "stopped", "loss_sum", "loss_count", "examples", "train_seconds",
            "eval_seconds", "max_steps")


def save_checkpoint(directory: Path, state: TrainingState, params: dict[str, torch.Tensor], optimizer,
                    scheduler, settings: dict | None = None) -> Path:
    """Write a checkpoint; `settings` (JSON-like: what makes the run the run it is) are recorded with
    it, so that a resume with other settings can tell (`differing_settings`)."""
    directory.mkdir(parents=True, exist_ok=True)
    # a new folder every time: the one `latest` points to is never touched until the switch below,
    # also when the same step is checkpointed twice (after an evaluation, then at the epoch's end)
    folder = Path(tempfile.mkdtemp(prefix=f"step-{state.step}-", dir=directory))
    tensors = {f"param.{n}": p for n, p in params.items()}
    if state.best_state is not None:
        tensors.update({f"best.{n}": t for n, t in state.best_state.items()})
    optimizer_state = optimizer.state_dict()
    for index, slots in optimizer_state["state"].items():
        for slot, value in slots.items():
            tensors[f"optimizer.{index}.{slot}"] = value if torch.is_tensor(value) else torch.tensor(value)
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.epoch_generator"] = state.epoch_generator_state
    if torch.cuda.is_available():
        for device, rng in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{device}"] = rng
    save_weights(tensors, folder / "state.safetensors")
    meta = {"step": state.step, "epoch": state.epoch, "step_in_epoch": state.step_in_epoch,
            "best_score": state.best_score, "best_epoch": state.best_epoch, "history": state.history,
            "has_best": state.best_state is not None, "param_groups": optimizer_state["param_groups"],
            **state.counters(),
            "scheduler": {k: v for k, v in scheduler.state_dict().items() if _json_safe(v)},
            "settings": settings}
    (folder / "state.json").write_text(json.dumps(meta))
    write_text_atomic(directory / LATEST, folder.name)  # the switch: from here on, this checkpoint counts
    for old in directory.glob("step-*"):
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)
    return folder


def latest_checkpoint(directory: Path) -> Path | None:
    """The folder `latest` names (None: no checkpoint)."""
    pointer = directory / LATEST
    return directory / pointer.read_text().strip() if pointer.is_file() else None


def checkpoint_meta(directory: Path) -> dict | None:
    """The counters, curve and schedule of the last checkpoint (its state.json), without its tensors."""
    folder = latest_checkpoint(directory)
    return json.loads((folder / "state.json").read_text()) if folder is not None else None


def differing_settings(directory: Path, settings: dict) -> list[str] | None:
    """What differs between `settings` (JSON values) and those the last checkpoint in `directory`
    was written with ("train.learning_rate", ...; []: the same run); None when there is no
    checkpoint or it records none (written before 2026-12-08, or by a caller that passed none)."""
    meta = checkpoint_meta(directory)
    recorded = (meta or {}).get("settings")
    return None if recorded is None else settings_diff(recorded, settings)


def settings_diff(recorded: dict, settings: dict) -> list[str]:
    """The keys whose values differ between two run-settings records, one level deep
    ("train.learning_rate", "language"); [] when they are the same."""
    differ = []
    for key in sorted(set(recorded) | set(settings)):
        old, new = recorded.get(key), settings.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            differ += [f"{key}.{k}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        elif old != new:
            differ.append(key)
    return differ


def load_checkpoint(directory: Path, params: dict[str, torch.Tensor], optimizer, scheduler) -> TrainingState | None:
    """Restore weights, optimizer, schedule and random states; None when there is no checkpoint."""
    folder = latest_checkpoint(directory)
    if folder is None:
        return None
    tensors = load_file(str(folder / "state.safetensors"))
    meta = checkpoint_meta(directory)
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(tensors[f"param.{name}"])
    slots: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, slot = key.split(".", 2)
            slots.setdefault(int(index), {})[slot] = value
    optimizer.load_state_dict({"state": slots, "param_groups": meta["param_groups"]})
    scheduler.load_state_dict({**scheduler.state_dict(), **meta["scheduler"]})
    torch.set_rng_state(tensors["rng.torch"])
    cuda = sorted(k for k in tensors if k.startswith("rng.cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    best = {k[len("best."):]: v for k, v in tensors.items() if k.startswith("best.")} if meta["has_best"] else None
    return TrainingState(meta["step"], meta["epoch"], meta["step_in_epoch"], tensors["rng.epoch_generator"],
                         meta["best_score"], meta["best_epoch"], meta["history"], best,
                         **{key: meta[key] for key in COUNTERS if key in meta})


def remove_checkpoints(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def _json_safe(value) -> bool:
    try:
        json.dumps(value)
        return True
    except TypeError:
        return False
