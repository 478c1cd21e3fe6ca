"""Fusion functions phi(S, T) that combine source and target in the LoRA bottleneck.

Both arguments are r-dimensional (they went through the same down-projection A).
A positional fusion is one small function of position-aligned tensors (..., r); register a
new one with ``@register_fusion("name")``. A fusion with learned parameters is an nn.Module
class, built once per fused module with ``(r, heads)``: a *positional* one (class attribute
``positional = True``) gets the same position-aligned (source, target) as a function; a
*sequence* one gets the whole source sequence and its padding mask, and may mix positions.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

FUSIONS: dict[str, Callable | type[nn.Module]] = {}


def register_fusion(name: str):
    def decorator(fn):
        FUSIONS[name] = fn
        return fn

    return decorator


def has_parameters(name: str) -> bool:
    """The fusion is a module class (built per fused module, its parameters trained and saved)."""
    return isinstance(FUSIONS[name], type)


def is_sequence_fusion(name: str) -> bool:
    return has_parameters(name) and not getattr(FUSIONS[name], "positional", False)


@register_fusion("add")
def add(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return source + target


@register_fusion("mul")
def mul(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return source * target


@register_fusion("add_relu")
def add_relu(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.relu(source) + F.relu(target)


@register_fusion("mul_relu")
def mul_relu(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.relu(source) * F.relu(target)


@register_fusion("cross_attention")
class CrossAttentionFusion(nn.Module):
    """Target positions attend over the (unpadded) source positions, in r dimensions.

    T + MultiHead(query=T, key=S, value=S): the residual keeps the target's own signal, so
    the layer degrades to plain LoRA where a row has no source at all.
    """

    def __init__(self, r: int, heads: int = 1):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(r, r)
        self.key = nn.Linear(r, r)
        self.value = nn.Linear(r, r)

    def forward(self, source: torch.Tensor, source_mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        batch, t_len, r = target.shape
        head_dim = r // self.heads

        def split(x):  # (B, L, r) -> (B, heads, L, head_dim)
            return x.view(batch, x.shape[1], self.heads, head_dim).transpose(1, 2)

        q, k, v = split(self.query(target)), split(self.key(source)), split(self.value(source))
        scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim)
        keep = source_mask[:, None, None, :].bool()
        scores = scores.masked_fill(~keep, float("-inf"))
        # A row whose source is all padding gets zero attention instead of NaN.
        probs = torch.softmax(scores, dim=-1).nan_to_num(0.0)
        mixed = (probs @ v).transpose(1, 2).reshape(batch, t_len, r)
        return target + mixed


@register_fusion("gated_add_relu")
class GatedAddReLU(nn.Module):
    """A learned gate on the source: phi(S, T) = relu(T) + 2 g * relu(S), with
    g = sigmoid(w_s * S + w_t * T + b) per position and per bottleneck dimension (3r parameters
    per fused module). It starts as add_relu (w_s = w_t = b = 0: g = 1/2) and learns, from both
    sides, how much of the English to take in: nothing (g -> 0, a LoRA with a ReLU in its
    bottleneck) up to twice add_relu's share.
    """

    positional = True

    def __init__(self, r: int, heads: int = 1):
        super().__init__()
        self.source_weight = nn.Parameter(torch.zeros(r))
        self.target_weight = nn.Parameter(torch.zeros(r))
        self.bias = nn.Parameter(torch.zeros(r))

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.source_weight * source + self.target_weight * target + self.bias)
        return F.relu(target) + 2 * gate * F.relu(source)
