"""SourceStates: what the source side hands to the fusing modules."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SourceStates:
    """Per-source-key input states (B, S, D) and the source padding mask (B, S).

    Keys are module names of the source pass (the module whose input was captured), or
    ``"final"`` for the final hidden state. Several keys may share one tensor (a block's
    query and value projections see the same input).
    """

    states: dict[str, torch.Tensor]
    attention_mask: torch.Tensor

    @property
    def batch_size(self) -> int:
        return self.attention_mask.shape[0]

    def to(self, device=None, dtype=None) -> "SourceStates":
        converted: dict[int, torch.Tensor] = {}  # keep shared tensors shared
        states = {}
        for key, tensor in self.states.items():
            if id(tensor) not in converted:
                converted[id(tensor)] = tensor.to(device=device, dtype=dtype)
            states[key] = converted[id(tensor)]
        return SourceStates(states, self.attention_mask.to(device))

    def repeat_interleave(self, times: int) -> "SourceStates":
        done: dict[int, torch.Tensor] = {}
        states = {}
        for key, tensor in self.states.items():
            if id(tensor) not in done:
                done[id(tensor)] = tensor.repeat_interleave(times, dim=0)
            states[key] = done[id(tensor)]
        return SourceStates(states, self.attention_mask.repeat_interleave(times, dim=0))
