"""Pair target positions with source positions, whatever the padding side.

"start" (the default): the j-th real token of the target is paired with the j-th real token of
the source (real = attention mask 1). "end": the two are paired from the end of the target's
prompt backwards, so the prompt's last token meets the source's last token: for decoders, whose
source state at a position has seen only the English tokens up to it, that puts the state that has
read the whole English sentence where the label or answer is predicted. The prompt is the part of
the target that has a source (``target_lengths`` tokens from the first real one; by default all
real tokens); answer tokens after it, in training, and generated tokens have none.

Target positions with no source partner (target longer than the source, padding, tokens after the
prompt, with either pairing) are marked invalid and get plain LoRA. Source padding is never paired, so its content
cannot matter. The same rule holds in a teacher-forced forward pass and step by step in
generation, because it only depends on a position's distance from the first real target token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def first_real_position(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the first 1 in each row (0 for rows that are all padding)."""
    return attention_mask.long().argmax(dim=1)


ALIGNMENTS = ("start", "end")


@dataclass
class Alignment:
    target_start: torch.Tensor  # (B,) first real target position
    paired_start: torch.Tensor  # (B,) the target position paired with the first real source token
    source_start: torch.Tensor  # (B,) first real source position
    source_length: torch.Tensor  # (B,) number of real source tokens
    source_positions: int  # padded source length
    target_end: torch.Tensor | None = None  # (B,) first target position after the prompt (None: no end)

    @classmethod
    def build(cls, source_mask: torch.Tensor, target_mask: torch.Tensor | None, *, at_end: bool = False,
              target_lengths: torch.Tensor | None = None, target_width: int | None = None) -> "Alignment":
        """``target_lengths`` (B,): the prompt's real tokens (only they are paired, with either
        pairing); by default the target's real tokens (``target_width`` of them when there is no
        target mask)."""
        batch, device = source_mask.shape[0], source_mask.device
        if target_mask is None:
            target_start = torch.zeros(batch, dtype=torch.long, device=device)
        else:
            target_start = first_real_position(target_mask)
        source_length = source_mask.long().sum(dim=1)
        if target_lengths is None and target_mask is not None:
            target_lengths = target_mask.long().sum(dim=1)
        elif target_lengths is None and target_width is not None:
            target_lengths = torch.full((batch,), target_width, dtype=torch.long, device=device)
        target_end = None if target_lengths is None else target_start + target_lengths.to(device).long()
        paired_start = target_start
        if at_end:
            if target_end is None:
                raise ValueError("end alignment needs the target's mask, width or prompt lengths")
            paired_start = target_end - source_length
        return cls(target_start, paired_start, first_real_position(source_mask), source_length, source_mask.shape[1],
                   target_end)

    def repeat_interleave(self, times: int) -> "Alignment":
        """Follow the batch expansion that generate() does for beams / several sequences."""
        return Alignment(
            self.target_start.repeat_interleave(times),
            self.paired_start.repeat_interleave(times),
            self.source_start.repeat_interleave(times),
            self.source_length.repeat_interleave(times),
            self.source_positions,
            None if self.target_end is None else self.target_end.repeat_interleave(times),
        )

    def index(self, target_len: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Source index (B, L) and validity (B, L) for target positions offset..offset+L-1."""
        positions = torch.arange(offset, offset + target_len, device=self.target_start.device)[None, :]
        rank = positions - self.paired_start[:, None]  # j: the j-th real source token is the partner
        valid = (rank >= 0) & (rank < self.source_length[:, None]) & (positions >= self.target_start[:, None])
        if self.target_end is not None:
            valid &= positions < self.target_end[:, None]
        index = (self.source_start[:, None] + rank).clamp(0, self.source_positions - 1)
        return index, valid


def gather_positions(states: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """states (B, S, D), index (B, L) -> (B, L, D)."""
    return states.gather(1, index[..., None].expand(-1, -1, states.shape[-1]))
