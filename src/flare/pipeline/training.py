"""One training loop for every method, both stages and both task kinds (plain PyTorch + accelerate).
The head gives the loss inputs (labels, or answer start/end positions) and turns per-feature
outputs into per-example predictions, so the loop itself knows neither.

Evaluates on the validation set after every epoch and keeps the best adapter weights
(the trainable parameters), restored at the end.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from flare.errors import FlareError
from flare.pipeline.checkpoint import TrainingState, load_checkpoint, remove_checkpoints, save_checkpoint
from flare.pipeline.config import TrainConfig
from flare.pipeline.data import Collator, source_kwargs


@dataclass
class FitResult:
    best_epoch: int
    best_score: float
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0


def trainable_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


DEVICES = ("auto", "cpu", "cuda", "mps")


def check_device(device: str) -> None:
    """A device that is asked for must be there: no silent fall-back to the CPU."""
    if device not in DEVICES:
        raise FlareError(f"device must be one of {', '.join(DEVICES)}, got {device!r} "
                         "(one GPU of several: set CUDA_VISIBLE_DEVICES, or run under `accelerate launch`)")
    if device == "cuda" and not torch.cuda.is_available():
        raise FlareError("device=cuda, but torch sees no CUDA GPU here (torch.cuda.is_available() is False; "
                         f"torch {torch.__version__} built {'with' if torch.version.cuda else 'without'} CUDA); "
                         "use device=cpu or auto")
    if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise FlareError("device=mps, but torch has no MPS (Apple GPU) backend here; use device=cpu or auto")


def make_accelerator(device: str = "auto", precision: str = "no") -> Accelerator:
    """Under `accelerate launch` / torchrun the processes share each batch: `batch_size` is the
    global batch, split between them, so N processes train as one process would. `device`:
    auto (CUDA, else MPS, else CPU, accelerate's choice), cpu, cuda or mps (checked)."""
    check_device(device)
    accelerator = Accelerator(cpu=device == "cpu", mixed_precision=precision,
                              dataloader_config=DataLoaderConfiguration(split_batches=True))
    if device in ("cuda", "mps") and accelerator.device.type != device:
        raise FlareError(f"device={device} was asked for, but accelerate chose {accelerator.device}")
    return accelerator


@torch.no_grad()
def predict(model, head, features: Sequence[dict], batch_size: int, pad_id: int, accelerator: Accelerator,
            desc: str = "evaluate") -> list:
    """One prediction per example, in example order: the head predicts each feature (batched by
    length: less padding) and `head.finalize` joins the features of an example (QA windows)."""
    model.eval()
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    loader = DataLoader([features[i] for i in order], batch_size=batch_size, shuffle=False,
                        collate_fn=Collator(pad_id))
    sorted_outputs: list = []
    for batch in tqdm(loader, desc=desc, leave=False, disable=not accelerator.is_local_main_process):
        batch = _to(batch, accelerator.device)
        outputs = head.predict(model, batch, **source_kwargs(batch))
        sorted_outputs.extend(outputs.tolist() if isinstance(outputs, torch.Tensor) else outputs)
    per_feature: list = [None] * len(features)
    for position, index in enumerate(order):
        per_feature[index] = sorted_outputs[position]
    return head.finalize(features, per_feature)


def fit(model, head, train_features: Sequence[dict], valid_features: Sequence[dict], config: TrainConfig,
        seed: int, score: Callable[[list], float], accelerator: Accelerator, desc: str = "train",
        tensorboard_dir: Path | None = None, checkpoint_dir: Path | None = None, resume: bool = False,
        log: Callable[[str], None] = print) -> FitResult:
    """Train `model`'s trainable parameters; `score(predictions on valid_features)` picks the best epoch.

    With `tensorboard_dir`, the loss, learning rate and validation score are logged there. With
    `checkpoint_dir`, a checkpoint is written after every epoch (and every
    `config.checkpoint_steps` steps); `resume` continues from the last one exactly (same data
    order, random states and schedule), so a killed run ends as an uninterrupted one would.
    """
    set_seed(seed)
    writer = _tensorboard(tensorboard_dir) if accelerator.is_main_process else None
    params = trainable_parameters(model)
    if not params:
        raise FlareError("the model has no trainable parameters")
    optimizer = torch.optim.AdamW(params.values(), lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    train_features = list(train_features)
    if config.group_by_length:
        lengths = [len(f["input_ids"]) for f in train_features]
        loader = DataLoader(train_features, batch_sampler=LengthGroupedBatches(lengths, config.batch_size, generator),
                            collate_fn=Collator(head.pad_id))
    else:
        loader = DataLoader(train_features, batch_size=config.batch_size, shuffle=True, generator=generator,
                            collate_fn=Collator(head.pad_id))
    steps_per_epoch = len(loader)
    total_steps = max(1, math.ceil(config.epochs * steps_per_epoch))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)

    state = TrainingState(step=0, epoch=0, step_in_epoch=0, epoch_generator_state=generator.get_state(),
                          best_score=-math.inf, best_epoch=-1, history=[], best_state=None)
    if checkpoint_dir is not None and resume:
        loaded = load_checkpoint(checkpoint_dir, trainable_parameters(model), optimizer, scheduler)
        if loaded is not None:
            state = loaded
            log(f"{desc}: resuming after step {state.step} (epoch {state.epoch + 1})")
    elif checkpoint_dir is not None:
        remove_checkpoints(checkpoint_dir)  # a fresh start: an old run's checkpoint must not be mixed in

    def checkpoint() -> None:
        if checkpoint_dir is not None and accelerator.is_main_process:
            save_checkpoint(checkpoint_dir, state, trainable_parameters(model), optimizer, scheduler)

    started = time.perf_counter()
    progress = tqdm(total=total_steps, initial=state.step, desc=desc, disable=not accelerator.is_local_main_process)
    for epoch in range(state.epoch, math.ceil(config.epochs)):
        generator.set_state(state.epoch_generator_state)  # this epoch's data order, also after a resume
        skip = state.step_in_epoch
        model.train()
        losses = []
        for index, batch in enumerate(loader):
            if index < skip:
                continue  # used before the interruption
            if state.step >= total_steps:
                break
            loss = head.loss(model, batch, source_kwargs(batch))
            if not torch.isfinite(loss):
                raise FlareError(f"{desc}: the loss became {loss.item()} at step {state.step}; lower the learning "
                                 "rate or check the data (the last checkpoint is kept; no result is written)")
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            state.step += 1
            state.step_in_epoch = index + 1
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.4f}")
            if writer is not None:
                writer.add_scalar("train/loss", loss.item(), state.step)
                writer.add_scalar("train/learning_rate", scheduler.get_last_lr()[0], state.step)
            if config.checkpoint_steps and state.step % config.checkpoint_steps == 0:
                checkpoint()
        validation = score(predict(accelerator.unwrap_model(model), head, valid_features, config.eval_batch_size,
                                   head.pad_id, accelerator, desc="validate"))
        state.history.append({"epoch": epoch + 1, "train_loss": sum(losses) / max(1, len(losses)),
                              "validation": validation})
        if writer is not None:
            writer.add_scalar("validation/score", validation, epoch + 1)
        if validation > state.best_score:
            state.best_score, state.best_epoch = validation, epoch + 1
            state.best_state = {n: p.detach().clone() for n, p in trainable_parameters(model).items()}
        state.epoch, state.step_in_epoch = epoch + 1, 0
        state.epoch_generator_state = generator.get_state()
        checkpoint()
    progress.close()
    if writer is not None:
        writer.close()
    result = FitResult(best_epoch=state.best_epoch, best_score=state.best_score, history=state.history,
                       train_seconds=time.perf_counter() - started)
    if state.best_state is not None:
        with torch.no_grad():
            for name, param in trainable_parameters(model).items():
                param.copy_(state.best_state[name])
    accelerator.free_memory()  # drop accelerate's references: a long experiment must not pile up models
    return result


def _tensorboard(log_dir: Path | None):
    if log_dir is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise FlareError("tensorboard: true needs the tensorboard package: pip install 'flare-xl[tensorboard]'") from err
    return SummaryWriter(log_dir=str(log_dir))


class LengthGroupedBatches:
    """Shuffle, cut into windows of 16 batches, sort each window by length, cut into batches,
    shuffle the batches: nearly random batches with little padding (a new draw every epoch)."""

    window = 16

    def __init__(self, lengths: list[int], batch_size: int, generator: torch.Generator):
        self.lengths, self.batch_size, self.generator = lengths, batch_size, generator

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        span = self.window * self.batch_size
        batches = []
        for start in range(0, len(order), span):
            window = sorted(order[start:start + span], key=lambda i: self.lengths[i])
            batches += [window[i:i + self.batch_size] for i in range(0, len(window), self.batch_size)]
        for index in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[index]


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
