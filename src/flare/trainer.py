"""FLARE inside a plain `transformers.Trainer`.

    features = [{"input_ids": [...], "labels": 2, "source_input_ids": [...]}, ...]   # target + English
    add_source_states(model, features, pad_id)       # optional: the source pass once, not every step
    trainer = FlareTrainer(model=model, args=TrainingArguments(...), train_dataset=features,
                           data_collator=FlareDataCollator(pad_id))
    trainer.train(); trainer.save_model("out")        # the adapter folder, not the whole model
    FlareModel.from_pretrained("out")                 # base + stage 1 + adapter

`FlareDataCollator` pads the target side (ids, attention mask, labels) and the English side
(`source_input_ids` / `source_attention_mask`, or the cached `source_states` that
`flare.sources.cache.add_source_states` put into the features), and for label sequences (decoders)
passes `target_lengths`, so that answer tokens fuse with nothing. `FlareTrainer` is Trainer with
FLARE's own saving and loading: `save_model` and every checkpoint write the adapter folder of
`FlareModel.save_pretrained` (a few MB, not the base model's weights), and resuming or
`load_best_model_at_end` read it back into the trainable weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback

from flare.core.model import WEIGHTS_NAME, FlareModel
from flare.heap import HeapTrim
from flare.pipeline.data import Collator
from flare.weights import load_weights_into

DROPPED = ("ids", "id", "example_index")  # bookkeeping keys of flare's features, not model inputs


class FlareDataCollator:
    """Pads a list of features (dicts of token id lists) into a FLARE batch."""

    def __init__(self, pad_token_id: int):
        self.collate = Collator(pad_token_id)

    def __call__(self, features: list[dict]) -> dict:
        features = [{"id": f.get("id", i), **f} for i, f in enumerate(features)]
        batch = self.collate(features)
        labels = batch.get("labels")
        if labels is not None and labels.dim() == 2 and ("source_input_ids" in batch or "source_states" in batch):
            batch["target_lengths"] = (batch["attention_mask"].bool() & (labels == -100)).sum(1)
        return {k: v for k, v in batch.items() if k not in DROPPED}


def _flare_model(model) -> FlareModel:
    model = getattr(model, "module", model)
    if not isinstance(model, FlareModel):
        raise TypeError(f"FlareTrainer trains a FlareModel, got {type(model).__name__}")
    return model


class HeapTrimCallback(TrainerCallback):
    """Freed heap memory back to the OS as training goes (glibc; every 30 s unless `flare.heap` is told
    otherwise)."""

    def __init__(self):
        self.trim = HeapTrim()

    def on_step_end(self, args, state, control, **kwargs):
        self.trim()


class FlareTrainer(Trainer):
    """transformers.Trainer that saves and loads the FLARE adapter folder (and trims the C heap as it
    trains)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_callback(HeapTrimCallback())
        # FlareModel.forward takes **kwargs for the model's own inputs; a loss-normalising
        # `num_items_in_batch` would reach a base model that has no such argument
        self.model_accepts_loss_kwargs = False

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        _flare_model(self.accelerator.unwrap_model(self.model)).save_pretrained(output_dir)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        Path(output_dir, "training_args.json").write_text(self.args.to_json_string())

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        model = _flare_model(model if model is not None else self.model)
        load_weights_into(model.trainable_parameters(), Path(resume_from_checkpoint) / WEIGHTS_NAME)

    def _load_best_model(self) -> None:
        best = self.state.best_model_checkpoint
        model = _flare_model(self.accelerator.unwrap_model(self.model))
        with torch.no_grad():
            load_weights_into(model.trainable_parameters(), Path(best) / WEIGHTS_NAME)
