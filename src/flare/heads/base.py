"""What every head shares (the tokenizer, the generic interface the training loop uses), what
decoder heads share (CausalLMHead), and the from_pretrained options of the model."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from flare.core.lm_head import contiguous_lm_head_input
from flare.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass
class Encoded:
    input_ids: list[int]
    labels: int | list[int]


class BaseHead:
    """What every head has: the tokenizer (a pad token guaranteed), the generic parts of the
    interface the training loop uses."""

    task_kind = "classification"
    trainable_heads: list[str] = []

    def __init__(self, model_path: str, max_length: int, text_prefix: str = "", trust_remote_code: bool = False,
                 *, revision: str | None = None):
        self.model_path = model_path
        self.revision = revision  # a hub id's branch, tag or commit: the tokenizer's and the model's
        self.max_length = max_length
        self.text_prefix = text_prefix
        self.trust_remote_code = trust_remote_code
        # from_pretrained options of the model: remote code, weight dtype, quantization (model_load_options)
        self.load_options: dict = {"trust_remote_code": trust_remote_code}
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code, revision=revision)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    def model_inputs(self, batch: dict) -> dict:
        """The keyword arguments of the training forward (the loss)."""
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": batch["labels"]}

    def loss(self, model, batch: dict, source: dict) -> torch.Tensor:
        """The training loss of one batch (the model's own loss)."""
        return model(**self.model_inputs(batch), **source).loss

    def finalize(self, features, outputs) -> list:
        """Per-feature outputs -> per-example predictions (classification: one feature each)."""
        return list(outputs)

    def references(self, examples) -> list:
        """What the task metric compares the predictions of `examples` with."""
        return [e.label for e in examples]


def model_load_options(trust_remote_code: bool = False, dtype: str | None = None,
                       quantization: str | None = None, log=logger.info) -> dict:
    """from_pretrained options: weights in `dtype`; `quantization="4bit"` loads the base in 4-bit NF4
    (bitsandbytes), as in the paper's Llama and Gemma runs."""
    options: dict = {"trust_remote_code": trust_remote_code}
    if dtype is not None:
        options["dtype"] = getattr(torch, dtype)
    if quantization is not None:
        if quantization not in ("4bit", "8bit"):
            raise ConfigError(f"quantization must be 4bit, 8bit or null, got {quantization!r}")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as err:
            raise ConfigError("quantization needs bitsandbytes: pip install 'flare-xl[quant]'") from err
        from transformers import BitsAndBytesConfig

        cuda = torch.cuda.is_available()
        if not cuda:
            log("no CUDA device: bitsandbytes runs the quantized layers on the CPU, which is slow "
                "(fine for small models and tests)")
        compute = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
        options["quantization_config"] = (
            BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute)
            if quantization == "4bit" else BitsAndBytesConfig(load_in_8bit=True))
        options["device_map"] = {"": torch.cuda.current_device() if cuda else "cpu"}
    return options


class CausalLMHead:
    """What decoder heads share: LoRA on every linear layer (as the paper's decoder runs), no extra
    head (the LM head answers), right padding for training."""

    kind = "decoder"
    lora_targets = "all-linear"
    trainable_heads: list[str] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tokenizer.padding_side = "right"

    def load_model(self):
        self.trainable_heads = []
        return contiguous_lm_head_input(AutoModelForCausalLM.from_pretrained(self.model_path, **self.load_options))

    def loss(self, model, batch: dict, source: dict) -> torch.Tensor:
        """The causal-LM loss on the answer tokens (label words, generated answers), with the LM
        head run only where they are predicted (logits_to_keep): on a large vocabulary (Gemma:
        262k) the head over every position of a long prompt is most of a step's work and memory.
        Same value as the model's own loss (mean over answer tokens); models that compute their
        own objective (X-Mixup) or ignore logits_to_keep get the plain path."""
        labels = batch["labels"]
        source = with_prompt_lengths(model, source, prompt_lengths(batch))
        if getattr(getattr(model, "module", model), "computes_own_loss", False):
            return super().loss(model, batch, source)
        answer = labels != -100
        counts = answer.sum(1)
        width = int(counts.max())
        offsets = torch.arange(width, device=labels.device)
        positions = (answer.int().argmax(1) - 1)[:, None] + offsets  # the logit before each answer token
        positions = positions.clamp(0, labels.shape[1] - 2)
        targets = labels.gather(1, positions + 1).masked_fill(offsets >= counts[:, None], -100)
        try:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           logits_to_keep=positions, **source).logits
        except TypeError:
            return super().loss(model, batch, source)
        if logits.shape[1] != width:
            return super().loss(model, batch, source)
        return torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100)


def prompt_lengths(batch: dict) -> torch.Tensor:
    """Real tokens before the answer (labels -100), per row of a right-padded batch."""
    return (batch["attention_mask"].bool() & (batch["labels"] == -100)).sum(1)


def with_prompt_lengths(model, source: dict, lengths: torch.Tensor) -> dict:
    """A FLARE model that pairs prompts at their end must know where the prompt stops when
    answer or label-word tokens follow it (core/alignment.py); other models take no such input."""
    from flare.core.model import FlareModel

    if source and isinstance(getattr(model, "module", model), FlareModel):
        return {**source, "target_lengths": lengths}
    return source


def has_module(model, name: str) -> bool:
    """Whether `model` has a sub-module called `name` (at any depth)."""
    return any(n == name or n.endswith("." + name) for n, _ in model.named_modules())
