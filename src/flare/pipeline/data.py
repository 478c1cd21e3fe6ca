"""Examples -> model features for one method, and the collator that pads them into batches.

Which text a method reads is its entry in the method table (flare.methods): `input` (the
target text, the English side, or both in one input) and `source` (the English side as
``source_input_ids``; an MT encoder's states of the target text come later, as
``source_encoder_states``).

Extractive QA (:mod:`flare.heads.span_qa`, :mod:`flare.heads.generative_qa`) reads the
(question, context) of the same side; an encoder gives one feature per context window, each with
the same source.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from flare.core.states import collate_source_states, pad_sequences, pad_states  # noqa: F401 (also importable here)
from flare.errors import DataError
from flare.methods import get_method

POSITION_KEYS = ("start_positions", "end_positions", "source_start_positions", "source_end_positions")
SOURCE_KEYS = ("source_input_ids", "source_attention_mask", "source_encoder_states", "source_states")

logger = logging.getLogger(__name__)


def build_features(examples: Sequence, head, method: str, where: str = "") -> list[dict]:
    """One feature per example (classification, generative QA) or per window (extractive QA with
    an encoder); every feature names its example (``example_index``, the position in `examples`)."""
    spec = get_method(method)
    side, english_source = spec.input, spec.source == "english"
    features = []
    for index, example in enumerate(examples):
        if spec.reads_english and example.english is None:
            raise DataError(
                f"example {example.id!r} has no English partner, which method {method!r} needs",
                path=where or None,
                hint="use parallel data, or set translation.model to translate the target side into English",
            )
        if hasattr(head, "example_features"):  # QA heads: features of one example
            items = head.example_features(example, side)
            source = head.source_features(example.english) if english_source else {}
            if spec.model != "xmixup":  # X-Mixup alone takes the source's answer positions (its source loss)
                source = {k: v for k, v in source.items() if k == "source_input_ids"}
        else:
            if side == "english":
                encoded = head.encode(example.english, example.label)
            elif side == "both":
                encoded = head.encode(example.texts, example.label, paired=example.english)
            else:
                encoded = head.encode(example.texts, example.label)
            items = [{"input_ids": encoded.input_ids, "labels": encoded.labels}]
            source = {"source_input_ids": head.source_ids(example.english)} if english_source else {}
        if not all(item["input_ids"] for item in items) or source.get("source_input_ids") == []:
            raise DataError(f"example {example.id!r} gives no tokens (its text is empty or whitespace only)",
                            path=where or None, hint="fill in the text or remove the example")
        for item in items:
            features.append({"id": example.id, "example_index": index, **item, **source})
    cut = sum(1 for f in features if f.get("answer_cut"))
    if cut:  # generative QA: the prompt lost the part of the context that holds the answer
        logger.warning("%d of %d examples%s have every gold answer in the part of the context cut to fit "
                       "max_length: the model cannot read them there (raise max_length to keep more context)",
                       cut, len(examples), f" ({where})" if where else "")
    return features


class Collator:
    """Right-pads ids (pad id), labels (-100), source ids and encoder states (zeros); answer
    positions (extractive QA) become tensors; other feature keys (offsets, contexts) stay out."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list[dict]) -> dict:
        batch = {"ids": [f["id"] for f in features]}
        batch["input_ids"], batch["attention_mask"] = pad_sequences([f["input_ids"] for f in features], self.pad_id)
        if "labels" in features[0]:
            labels = [f["labels"] for f in features]
            if isinstance(labels[0], int):
                batch["labels"] = torch.tensor(labels)
            else:
                batch["labels"], _ = pad_sequences(labels, -100)
        for key in POSITION_KEYS:  # extractive QA: one token index per feature
            if all(key in f for f in features):
                batch[key] = torch.tensor([f[key] for f in features], dtype=torch.long)
        if "source_states" in features[0]:  # cached source states: no source pass
            batch["source_states"] = collate_source_states([f["source_states"] for f in features])
        elif "source_input_ids" in features[0]:
            batch["source_input_ids"], batch["source_attention_mask"] = pad_sequences(
                [f["source_input_ids"] for f in features], self.pad_id)
        if "source_encoder_states" in features[0]:
            batch["source_encoder_states"], batch["source_attention_mask"] = pad_states(
                [f["source_encoder_states"] for f in features])
        return batch


def source_kwargs(batch: dict) -> dict:
    return {key: batch[key] for key in SOURCE_KEYS if key in batch}
