"""SourceStates: what the source side hands to the fusing modules, and the padding helpers that
batch them (and token id rows) for the pipeline, the source cache and the Trainer collator."""

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


def pad_states(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(T_i, d) tensors -> right-padded (B, T, d) and its mask (B, T)."""
    length = max(s.shape[0] for s in states)
    padded = torch.zeros(len(states), length, states[0].shape[-1], dtype=states[0].dtype)
    mask = torch.zeros(len(states), length, dtype=torch.long)
    for i, s in enumerate(states):
        padded[i, : s.shape[0]] = s
        mask[i, : s.shape[0]] = 1
    return padded, mask


def collate_source_states(per_example: list[dict[str, torch.Tensor]]) -> SourceStates:
    """Pad each distinct cached tensor once; keys that shared a tensor share the padded one."""
    groups: dict[int, list[str]] = {}
    for key, tensor in per_example[0].items():
        groups.setdefault(id(tensor), []).append(key)
    states, mask = {}, None
    for keys in groups.values():
        padded, mask = pad_states([example[keys[0]] for example in per_example])
        states.update({key: padded for key in keys})
    return SourceStates(states, mask)


def pad_sequences(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask
