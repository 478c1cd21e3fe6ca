"""A cheap, whole-model fingerprint: which weights and which architecture a model has.

Every tensor of the state dict counts (name, shape, dtype, a float64 sum computed in chunks, and
a strided sample of its values), and so does the architecture config (minus fields that do not
change what the model computes, such as its path). Hashing every byte of an 8B model would take
minutes; this takes a pass of additions, and a changed embedding, LayerNorm or `rope_theta` gives
another fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

import torch
from torch import nn

# Config fields that describe where a model came from or how it is run, not what it computes.
_VOLATILE_CONFIG_KEYS = {
    "name_or_path", "transformers_version", "architectures", "dtype", "torch_dtype", "use_cache",
    "output_attentions", "output_hidden_states", "return_dict", "id2label", "label2id",
    "problem_type",  # set by the model on its first forward with labels
}
SAMPLE = 1024  # values sampled per tensor, evenly strided
CHUNK = 1 << 22  # values summed at a time (no full float64 copy of a large tensor)


@torch.no_grad()
def update_with_tensors(digest, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
    for name, tensor in named_tensors:
        flat = tensor.detach().reshape(-1)
        total = sum(piece.double().sum().item() for piece in flat.split(CHUNK)) if flat.numel() else 0.0
        step = max(1, flat.numel() // SAMPLE)
        sample = flat[::step][:SAMPLE].float().cpu().numpy().tobytes()
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}|{total:.12e}|".encode())
        digest.update(sample)


def config_digest_part(model: nn.Module) -> str:
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        return ""
    data = {k: v for k, v in config.to_dict().items() if not k.startswith("_") and k not in _VOLATILE_CONFIG_KEYS}
    return json.dumps(data, sort_keys=True, default=str)


def model_fingerprint(model: nn.Module, skip: tuple[str, ...] = (".original_module.",)) -> str:
    """Fingerprint of `model` as it is: a plain transformers model, or a PEFT model with its
    adapters (their weights count). `skip`: name parts of tensors that do not take part in the
    forward pass (PEFT keeps the untrained copy of a `modules_to_save` head as `original_module`)."""
    digest = hashlib.sha256(b"flare-fingerprint-2\0")
    digest.update(config_digest_part(model).encode())
    update_with_tensors(digest, ((n, t) for n, t in sorted(_tensors(model)) if not any(s in n for s in skip)))
    return "v2:" + digest.hexdigest()[:24]


def _tensors(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Parameters and persistent buffers, and the scales of quantized weights. (Not state_dict():
    on bitsandbytes' CPU 4-bit layers it repacks the weights, which changes the outputs.)"""
    tensors = []
    for name, param in model.named_parameters():
        tensors.append((name, param))
        absmax = getattr(getattr(param, "quant_state", None), "absmax", None)
        if isinstance(absmax, torch.Tensor):
            tensors.append((name + ".absmax", absmax))
        scales = getattr(param, "SCB", None)  # 8-bit row scales
        if isinstance(scales, torch.Tensor):
            tensors.append((name + ".SCB", scales))
    for module_name, module in model.named_modules():
        for name, buffer in module.named_buffers(recurse=False):
            if buffer is not None and name not in module._non_persistent_buffers_set:
                tensors.append((f"{module_name}.{name}" if module_name else name, buffer))
    return tensors
