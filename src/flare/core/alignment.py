"""Pair target positions with source positions, whatever the padding side.

The j-th real token of the target is paired with the j-th real token of the source
(real = attention mask 1). Target positions with no source partner (target longer than the
source, padding, tokens generated after the prompt) are marked invalid and get plain LoRA.
Source padding is never paired, so its content cannot matter. The same rule holds in a
teacher-forced forward pass and step by step in generation, because it only depends on a
position's distance from the first real target token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def first_real_position(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the first 1 in each row (0 for rows that are all padding)."""
    return attention_mask.long().argmax(dim=1)


@dataclass
class Alignment:
    target_start: torch.Tensor  # (B,) first real target position
    source_start: torch.Tensor  # (B,) first real source position
    source_length: torch.Tensor  # (B,) number of real source tokens
    source_positions: int  # padded source length

    @classmethod
    def build(cls, source_mask: torch.Tensor, target_mask: torch.Tensor | None) -> "Alignment":
        batch = source_mask.shape[0]
        if target_mask is None:
            target_start = torch.zeros(batch, dtype=torch.long, device=source_mask.device)
        else:
            target_start = first_real_position(target_mask)
        return cls(
            target_start=target_start,
            source_start=first_real_position(source_mask),
            source_length=source_mask.long().sum(dim=1),
            source_positions=source_mask.shape[1],
        )

    def repeat_interleave(self, times: int) -> "Alignment":
        """Follow the batch expansion that generate() does for beams / several sequences."""
        return Alignment(
            self.target_start.repeat_interleave(times),
            self.source_start.repeat_interleave(times),
            self.source_length.repeat_interleave(times),
            self.source_positions,
        )

    def index(self, target_len: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Source index (B, L) and validity (B, L) for target positions offset..offset+L-1."""
        positions = torch.arange(offset, offset + target_len, device=self.target_start.device)
        rank = positions[None, :] - self.target_start[:, None]  # j: rank among real tokens
        valid = (rank >= 0) & (rank < self.source_length[:, None])
        index = (self.source_start[:, None] + rank).clamp(0, self.source_positions - 1)
        return index, valid


def gather_positions(states: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """states (B, S, D), index (B, L) -> (B, L, D)."""
    return states.gather(1, index[..., None].expand(-1, -1, states.shape[-1]))
