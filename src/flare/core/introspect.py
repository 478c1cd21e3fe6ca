"""Find the parts of an arbitrary transformers model that FLARE needs, by name and type only."""

from __future__ import annotations

import re
from dataclasses import dataclass

from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from torch import nn

from flare.errors import ConfigError, FlareError

# Task heads that are trained and saved with the adapter when the config does not say.
DEFAULT_HEAD_NAMES = ("classifier", "score", "qa_outputs")

_BLOCK_NAME = re.compile(r"^(?P<stack>.*?)\.(?P<index>\d+)\.(?P<within>.+)$")


@dataclass(frozen=True)
class BlockAddress:
    """Where a module sits: `{stack}.{index}.{within}`, e.g. model.layers . 3 . self_attn.q_proj."""

    stack: str
    index: int
    within: str

    @classmethod
    def parse(cls, name: str) -> "BlockAddress | None":
        match = _BLOCK_NAME.match(name)
        if match is None:
            return None
        return cls(match["stack"], int(match["index"]), match["within"])

    def shifted(self, offset: int) -> "BlockAddress":
        return BlockAddress(self.stack, self.index + offset, self.within)

    @property
    def name(self) -> str:
        return f"{self.stack}.{self.index}.{self.within}"


# Modules that read a block's input (the hidden-size residual stream, normalised): the query, key
# and value projections of the families transformers has (separate or fused).
BLOCK_INPUT_MODULES = ("q_proj", "k_proj", "v_proj", "query", "key", "value", "q", "k", "v", "qkv_proj",
                       "query_key_value", "c_attn", "Wqkv", "in_proj")


def reads_block_input(within: str) -> bool:
    """Whether a module at `within` (its name inside the block) reads the block's input."""
    return within.rsplit(".", 1)[-1] in BLOCK_INPUT_MODULES


def is_quantized(model: nn.Module) -> bool:
    """Loaded with bitsandbytes (4-bit or 8-bit) or another transformers quantizer."""
    if getattr(model, "hf_quantizer", None) is not None or getattr(model, "is_quantized", False):
        return True
    inner = getattr(getattr(model, "base_model", None), "model", None)  # a PEFT model's transformers model
    if inner is not None and inner is not model and getattr(inner, "hf_quantizer", None) is not None:
        return True
    return any(type(m).__name__ in ("Linear4bit", "Linear8bitLt", "Params4bit") for m in model.modules())


def text_config(model: nn.Module):
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def is_encoder_decoder(model: nn.Module) -> bool:
    return bool(getattr(model.config, "is_encoder_decoder", False))


def is_decoder_only(model: nn.Module) -> bool:
    """A decoder-only (causal) language model: not an encoder-decoder, and its config says it is a
    decoder or its class is a ``...ForCausalLM``."""
    model = task_model(model)
    if is_encoder_decoder(model):
        return False
    return bool(getattr(model.config, "is_decoder", False)) or type(model).__name__.endswith("ForCausalLM")


def task_model(model: nn.Module) -> nn.Module:
    """The transformers task model under a PEFT wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def hidden_size(model: nn.Module) -> int | None:
    """The width of the model's residual stream, as its (text) config names it."""
    config = text_config(model)
    return getattr(config, "hidden_size", None) or getattr(config, "d_model", None)


def attention_heads(model: nn.Module) -> int | None:
    """The number of attention heads, as the model's (text) config names it."""
    config = text_config(model)
    return getattr(config, "num_attention_heads", None) or getattr(config, "num_heads", None)


def submodule_name(model: nn.Module, module: nn.Module) -> str:
    """The name of `module` inside `model` ("" for the model itself)."""
    for name, candidate in model.named_modules():
        if candidate is module:
            return name
    raise FlareError(f"internal: {type(module).__name__} is not a submodule of {type(model).__name__}")


def fusing_stack(model: nn.Module) -> nn.Module:
    """The module whose forward runs the blocks that fuse, and whose first output is its
    final hidden state: the encoder of an encoder-decoder, else the model without its head."""
    if is_encoder_decoder(model):
        return model.get_encoder()
    backbone = getattr(model, "base_model", None)
    if isinstance(backbone, nn.Module) and backbone is not model:
        return backbone
    return model


def default_attention_modules(model: nn.Module) -> list[str]:
    """The family's query and value projections (PEFT's per-architecture LoRA defaults)."""
    model_type = text_config(model).model_type
    names = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(model_type)
    if names is None:
        raise ConfigError(
            f"no default query/value module names are known for model type {model_type!r}; "
            f"set target_modules and fuse_modules explicitly. Linear modules of this model: "
            f"{', '.join(linear_module_suffixes(model))}"
        )
    return list(names)


def linear_module_suffixes(model: nn.Module) -> list[str]:
    """Short names (last name component) of the model's linear layers, for error messages."""
    names = set()
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) or type(module).__name__ in ("Linear4bit", "Linear8bitLt", "Conv1D"):
            names.add(name.rsplit(".", 1)[-1])
    return sorted(names)


def default_modules_to_save(model: nn.Module) -> list[str]:
    return [name for name in DEFAULT_HEAD_NAMES if isinstance(getattr(model, name, None), nn.Module)]
