"""A guard on a language model's output layer against a slow, memory-hungry CPU path in PyTorch.

transformers' decoders slice the last hidden state before the LM head (`logits_to_keep`, which
`generate` sets to 1): `hidden[:, -1:, :]` is a strided view of the whole sequence. torch 2.13's
bfloat16 `linear` on CPU, given such a view and a frozen weight (as under any adapter), costs as if
every position were projected. On Gemma 3 270M's 262k-token head, 8 prompts of 256 tokens: the
head alone 44.2 s and 2,572 MiB more memory instead of 0.11 s; greedy generation of 4 tokens 44.6 s
and 2,639 MiB instead of 8.6 s and 102 MiB, with the same tokens (float32: 2.5 s against 0.5 s for the head;
`studies/bench/lm-head-input.json`, from `studies/bench/lm_head_input.py`). A validation batch of
64 generative-QA prompts grew a process to about 17 GB and the OOM killer stopped it (2026-12-07). A
contiguous copy of the kept positions first gives the same logits at the normal cost;
`contiguous_lm_head_input` hooks that copy in front of any model's output layer.
"""

from __future__ import annotations

import torch
from torch import nn

_HOOKED = "_flare_contiguous_input"


def _contiguous(module: nn.Module, args: tuple):
    if args and torch.is_tensor(args[0]) and not args[0].is_contiguous():
        return (args[0].contiguous(), *args[1:])
    return None


def contiguous_lm_head_input(model: nn.Module) -> nn.Module:
    """Make the input of `model`'s output layer (`get_output_embeddings()`) contiguous before it
    runs; once per module, a no-op for models without one. Returns `model`."""
    get = getattr(model, "get_output_embeddings", None)
    head = get() if callable(get) else None
    if isinstance(head, nn.Module) and not getattr(head, _HOOKED, False):
        head.register_forward_pre_hook(_contiguous)
        setattr(head, _HOOKED, True)
    return model
