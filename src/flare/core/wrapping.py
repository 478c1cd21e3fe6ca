"""What a module wrapping a transformers model for training shares with FlareModel: its trainable
parameters and their count, and transformers' gradient checkpointing under either of its names."""

from __future__ import annotations

from torch import nn


def trainable_parameters(module: nn.Module) -> dict[str, nn.Parameter]:
    """The parameters of `module` that require gradients, by name."""
    return {name: p for name, p in module.named_parameters() if p.requires_grad}


def parameter_counts(module: nn.Module, trainable: dict[str, nn.Parameter]) -> tuple[int, int]:
    """(trainable, total) numbers of parameter values of `module`."""
    return sum(p.numel() for p in trainable.values()), sum(p.numel() for p in module.parameters())


def enable_gradient_checkpointing(model: nn.Module, kwargs: dict) -> None:
    """Checkpoint the blocks of a transformers `model` with `kwargs` (``use_reentrant``, ...);
    reentrant checkpointing needs inputs that require grad."""
    if kwargs.get("use_reentrant"):
        model.enable_input_require_grads()
    if hasattr(model, "activation_checkpointing_enable"):  # the name since transformers 5.x
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
