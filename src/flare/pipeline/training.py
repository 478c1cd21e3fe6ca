"""One training loop for every method, both stages and both task kinds (plain PyTorch + accelerate).
The head gives the loss inputs (labels, or answer start/end positions) and turns per-feature
outputs into per-example predictions, so the loop itself knows neither.

Evaluates on the validation set every `eval_every` (by default after every epoch), stops early
after `patience` evaluations without a better score, and keeps the best adapter weights (the
trainable parameters), restored at the end; the learning curve is returned with the result.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from flare.errors import FlareError
from flare.heap import HeapTrim
from flare.pipeline.checkpoint import (
    TrainingState, differing_settings, load_checkpoint, remove_checkpoints, save_checkpoint,
)
from flare.pipeline.config import TrainConfig
from flare.pipeline.data import Collator, source_kwargs


@dataclass
class FitResult:
    best_epoch: float  # the epoch count at the best evaluation (a fraction with step-wise evaluation)
    best_score: float
    history: list[dict] = field(default_factory=list)  # the learning curve: one entry per evaluation
    train_seconds: float = 0.0  # optimizer steps only (validation during training not counted)
    best_step: int = 0
    steps: int = 0  # optimizer steps done
    max_steps: int = 0  # the steps `epochs` allows
    examples_seen: int = 0  # training features (QA: windows) the steps used
    stopped_early: bool = False
    validation_seconds: float = 0.0  # the evaluations during training
    trainable_parameters: int = 0
    # the best evaluation's validation predictions, i.e. those of the restored weights (not written
    # anywhere; None when that evaluation ran before a resume): callers need not predict them again
    best_predictions: list | None = field(default=None, repr=False)

    def summary(self) -> dict:
        """The `training` block of a result file."""
        return {"best_epoch": self.best_epoch, "best_step": self.best_step, "steps": self.steps,
                "max_steps": self.max_steps, "examples_seen": self.examples_seen,
                "stopped_early": self.stopped_early, "trainable_parameters": self.trainable_parameters,
                "validation_seconds": self.validation_seconds, "history": self.history}


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
    _allow_new_precision(precision)
    accelerator = Accelerator(cpu=device == "cpu", mixed_precision=precision,
                              dataloader_config=DataLoaderConfiguration(split_batches=True))
    if device in ("cuda", "mps") and accelerator.device.type != device:
        raise FlareError(f"device={device} was asked for, but accelerate chose {accelerator.device}")
    return accelerator


def _allow_new_precision(precision: str) -> None:
    """accelerate keeps one state per process, and refuses an Accelerator whose mixed precision
    differs from the first one's ("restart your runtime"). A single process (a notebook, a test
    suite, a script running two experiments) may change it: the state is cleared (accelerate's own
    tests do the same; the process state, devices and any process group, is kept). Under a
    multi-process launch every process must agree from the start, so that is an error."""
    from accelerate.state import AcceleratorState, PartialState

    if not AcceleratorState._shared_state or AcceleratorState._shared_state.get("_mixed_precision") == precision:
        return
    if PartialState().num_processes > 1:
        raise FlareError(f"precision={precision}, but this process group was started with mixed precision "
                         f"{AcceleratorState._shared_state.get('_mixed_precision')!r}; give one precision to the "
                         "launch (accelerate launch --mixed_precision ...) and to the config")
    AcceleratorState._reset_state()


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
    trim = HeapTrim()
    for batch in tqdm(loader, desc=desc, leave=False, disable=not accelerator.is_local_main_process):
        trim()
        batch = _to(batch, accelerator.device)
        with accelerator.autocast():  # the config's precision, also for a model that never trained here
            outputs = head.predict(model, batch, **source_kwargs(batch))
        sorted_outputs.extend(outputs.tolist() if isinstance(outputs, torch.Tensor) else outputs)
    per_feature: list = [None] * len(features)
    for position, index in enumerate(order):
        per_feature[index] = sorted_outputs[position]
    return head.finalize(features, per_feature)


def fit(model, head, train_features: Sequence[dict], valid_features: Sequence[dict], config: TrainConfig,
        seed: int, score: Callable[[list], float], accelerator: Accelerator, desc: str = "train",
        trackers: Sequence = (), checkpoint_dir: Path | None = None, resume: bool = False,
        settings: dict | None = None, log: Callable[[str], None] = print,
        on_evaluation: Callable[[list[dict]], None] | None = None) -> FitResult:
    """Train `model`'s trainable parameters; `score(predictions on valid_features)` picks the best
    evaluation, whose weights are restored at the end.

    `config.epochs` is the maximum; the model is evaluated every `config.eval_every` (an epoch, N
    epochs or N optimizer steps) and, with `config.patience`, training stops after that many
    evaluations without a better score. Every evaluation adds an entry to the learning curve
    (`FitResult.history`: epoch, step, examples, mean training loss since the previous evaluation,
    validation score). An optimizer step takes `config.gradient_accumulation_steps` batches
    (accelerate's `accumulate`); `config.max_grad_norm` clips the gradient norm.

    `trackers` (accelerate trackers, `make_trackers`) get the loss, learning rate and validation score. With
    `checkpoint_dir`, a checkpoint is written after every epoch and every evaluation (and every
    `config.checkpoint_steps` steps); `resume` continues from the last one exactly (same data
    order, random states, schedule, curve and early-stopping counters), so a killed run ends as an
    uninterrupted one would. Checkpoints record `settings` (what makes the run this run; default: the
    training settings and the seed): a checkpoint written with other ones (a learning rate changed
    since, say) is not resumed but started anew, as its optimizer state would carry the old ones on.

    `on_evaluation(history)`, where given, sees the learning curve after every evaluation, once its
    checkpoint is written; an exception it raises stops training there (a resume continues after it).
    """
    set_seed(seed)
    trackers = list(trackers) if accelerator.is_main_process else []
    params = trainable_parameters(model)
    if not params:
        raise FlareError("the model has no trainable parameters")
    n_trainable = sum(p.numel() for p in params.values())
    groups = (model.parameter_groups(config.learning_rate, config.fusion_lr_ratio)
              if hasattr(model, "parameter_groups") else [{"params": list(params.values())}])
    if config.fusion_lr_ratio != 1 and len(groups) == 1:
        log(f"{desc}: fusion_lr_ratio={config.fusion_lr_ratio} has no effect: the model has no learned fusion")
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    train_features = list(train_features)
    if config.group_by_length:
        lengths = [len(f["input_ids"]) for f in train_features]
        loader = DataLoader(train_features, batch_sampler=LengthGroupedBatches(lengths, config.batch_size, generator),
                            collate_fn=Collator(head.pad_id))
    else:
        loader = DataLoader(train_features, batch_size=config.batch_size, shuffle=True, generator=generator,
                            collate_fn=Collator(head.pad_id))
    accumulation = config.gradient_accumulation_steps
    batches_per_epoch = len(loader)
    steps_per_epoch = math.ceil(batches_per_epoch / accumulation)
    total_steps = max(1, math.ceil(config.epochs * steps_per_epoch))
    epochs = math.ceil(config.epochs)
    every, unit = config.eval_interval()
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    accelerator.gradient_accumulation_steps = accumulation
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    clipped = list(trainable_parameters(model).values())

    state = TrainingState(step=0, epoch=0, step_in_epoch=0, epoch_generator_state=generator.get_state(),
                          best_score=-math.inf, best_epoch=-1, history=[], best_state=None)
    settings = json.loads(json.dumps(settings if settings is not None else {"train": asdict(config), "seed": seed},
                                     sort_keys=True, default=str))
    if checkpoint_dir is not None and resume and (differ := differing_settings(checkpoint_dir, settings)):
        log(f"{desc}: its checkpoint was written with other settings ({', '.join(differ[:6])}"
            f"{', ...' if len(differ) > 6 else ''}): starting anew")
        resume = False
    if checkpoint_dir is not None and resume:
        loaded = load_checkpoint(checkpoint_dir, trainable_parameters(model), optimizer, scheduler)
        if loaded is not None:
            state = loaded
            log(f"{desc}: resuming after step {state.step} (epoch {state.epoch + 1})")
    elif checkpoint_dir is not None:
        remove_checkpoints(checkpoint_dir)  # a fresh start: an old run's checkpoint must not be mixed in
    state.max_steps = total_steps  # recorded in checkpoints for `flare status`

    def checkpoint() -> None:
        if checkpoint_dir is not None and accelerator.is_main_process:
            save_checkpoint(checkpoint_dir, state, trainable_parameters(model), optimizer, scheduler, settings)

    best_predictions = None

    def evaluate(epochs_done: float) -> None:
        nonlocal best_predictions
        started = time.perf_counter()
        predictions = predict(accelerator.unwrap_model(model), head, valid_features, config.eval_batch_size,
                              head.pad_id, accelerator, desc="validate")
        validation = score(predictions)
        state.eval_seconds += time.perf_counter() - started
        state.history.append({"epoch": epochs_done, "step": state.step, "examples": state.examples,
                              "train_loss": state.loss_sum / max(1, state.loss_count), "validation": validation})
        state.loss_sum, state.loss_count = 0.0, 0
        for tracker in trackers:
            tracker.log({"validation/score": validation}, step=state.step)
        if validation > state.best_score:
            state.best_score, state.best_epoch, state.best_step = validation, epochs_done, state.step
            state.best_state = {n: p.detach().clone() for n, p in trainable_parameters(model).items()}
            best_predictions = predictions
            state.evals_since_best = 0
        else:
            state.evals_since_best += 1
            # patience running out at the last step stops nothing: the run used its whole budget
            if config.patience is not None and state.evals_since_best >= config.patience and state.step < total_steps:
                state.stopped = True
                log(f"{desc}: early stop at step {state.step} (epoch {epochs_done}): no better validation score "
                    f"in {config.patience} evaluations; best {state.best_score:.2f} at step {state.best_step}")
        model.train()

    progress = tqdm(total=total_steps, initial=state.step, desc=desc, disable=not accelerator.is_local_main_process)
    trim = HeapTrim()  # freed activations back to the OS: a long CPU run must not grow
    for epoch in range(state.epoch, epochs):
        if state.stopped or state.step >= total_steps:
            break
        generator.set_state(state.epoch_generator_state)  # this epoch's data order, also after a resume
        skip = state.step_in_epoch  # a multiple of the accumulation: checkpoints follow optimizer steps
        accelerator.step = 0  # accelerate's accumulation counter: this epoch's batches from the start
        model.train()
        started = time.perf_counter()
        for index, batch in enumerate(loader):
            if index < skip:
                continue  # used before the interruption
            if state.step >= total_steps or state.stopped:
                break
            with accelerator.accumulate(model):
                loss = head.loss(model, batch, source_kwargs(batch))
                if not torch.isfinite(loss):
                    raise FlareError(f"{desc}: the loss became {loss.item()} at step {state.step}; lower the "
                                     "learning rate or check the data (the last checkpoint is kept; no result is "
                                     "written)")
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm is not None:
                    accelerator.clip_grad_norm_(clipped, config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            state.loss_sum += loss.item()
            state.loss_count += 1
            state.examples += len(batch["ids"]) * accelerator.num_processes
            state.step_in_epoch = index + 1
            trim()
            if not accelerator.sync_gradients:
                continue
            state.step += 1
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.4f}")
            for tracker in trackers:
                tracker.log({"train/loss": loss.item(), "train/learning_rate": scheduler.get_last_lr()[0]},
                            step=state.step)
            if unit == "steps" and (state.step % every == 0 or state.step >= total_steps):
                state.train_seconds += time.perf_counter() - started
                evaluate(round(epoch + state.step_in_epoch / batches_per_epoch, 4))
                started = time.perf_counter()
                checkpoint()
                if on_evaluation is not None:
                    on_evaluation(list(state.history))
            elif config.checkpoint_steps and state.step % config.checkpoint_steps == 0:
                state.train_seconds += time.perf_counter() - started
                checkpoint()
                started = time.perf_counter()
        state.train_seconds += time.perf_counter() - started
        finished = epoch + 1 >= epochs or state.step >= total_steps
        evaluated = unit == "epochs" and not state.stopped and ((epoch + 1) % every == 0 or finished)
        if evaluated:
            evaluate(epoch + 1 if state.step_in_epoch == batches_per_epoch
                     else round(epoch + state.step_in_epoch / batches_per_epoch, 4))
        state.epoch, state.step_in_epoch = epoch + 1, 0
        state.epoch_generator_state = generator.get_state()
        checkpoint()
        if evaluated and on_evaluation is not None:
            on_evaluation(list(state.history))
    progress.close()
    for tracker in trackers:
        tracker.finish()
    result = FitResult(best_epoch=state.best_epoch, best_score=state.best_score, history=state.history,
                       train_seconds=state.train_seconds, best_step=state.best_step, steps=state.step,
                       max_steps=total_steps, examples_seen=state.examples, stopped_early=state.stopped,
                       validation_seconds=state.eval_seconds, trainable_parameters=n_trainable,
                       best_predictions=best_predictions)
    if state.best_state is not None:
        with torch.no_grad():
            for name, param in trainable_parameters(model).items():
                param.copy_(state.best_state[name])
    accelerator.free_memory()  # drop accelerate's references: a long experiment must not pile up models
    accelerator.gradient_accumulation_steps = 1
    return result


def make_trackers(names: Sequence[str], run_name: str, logging_dir: Path, config: dict | None = None) -> list:
    """accelerate's experiment trackers (tensorboard, wandb, mlflow, ...; `accelerate.tracking`), one
    run each, started, with the run's settings stored; logs go under `logging_dir` where the tracker
    keeps files. A tracker whose package is missing is a clear error."""
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    trackers = []
    for name in names:
        tracker_class = LOGGER_TYPE_TO_CLASS.get(name)
        if tracker_class is None:
            raise FlareError(f"unknown tracker {name!r}; accelerate knows: {', '.join(sorted(LOGGER_TYPE_TO_CLASS))}")
        try:
            if tracker_class.requires_logging_directory:
                tracker = tracker_class(run_name.replace("/", "-"), logging_dir=str(logging_dir))
            else:
                tracker = tracker_class(run_name.replace("/", "-"))
            tracker.start()
        except (ImportError, ModuleNotFoundError) as err:
            extra = {"tensorboard": "tensorboard", "wandb": "wandb"}.get(name)
            hint = f"pip install 'flare-xl[{extra}]'" if extra else f"install the {name} package"
            raise FlareError(f"log_with: {name} needs its package ({err}): {hint}") from err
        if config:
            tracker.store_init_configuration(config)
        trackers.append(tracker)
    return trackers


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
