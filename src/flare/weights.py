"""Saving and strictly loading trainable weights as safetensors (nothing is ever unpickled)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from flare.errors import FlareError
from flare.io import atomic_file


def save_weights(params: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Atomic: a crash leaves the previous file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: p.detach().contiguous().cpu() for name, p in params.items()}
    with atomic_file(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_weights_into(params: dict[str, torch.Tensor], path: str | Path) -> None:
    """Copy the file's tensors into `params`; every name and shape must match exactly."""
    path = Path(path)
    if not path.is_file():
        raise FlareError(f"{path} is missing: is {path.parent} a folder written by save_pretrained?")
    tensors = load_file(str(path))
    missing, unexpected = set(params) - set(tensors), set(tensors) - set(params)
    if missing or unexpected:
        raise FlareError(f"{path} does not fit this model: missing {sorted(missing)[:3]}, "
                         f"unexpected {sorted(unexpected)[:3]}")
    with torch.no_grad():
        for name, tensor in tensors.items():
            if params[name].shape != tensor.shape:
                raise FlareError(f"{path}: {name} has shape {tuple(tensor.shape)}, "
                                 f"the model expects {tuple(params[name].shape)}")
            params[name].copy_(tensor)
