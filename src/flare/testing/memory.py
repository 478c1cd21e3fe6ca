"""Where a tensor's memory lives (Linux): tests that check the caches read their disk entries
memory-mapped rather than copying them into the process."""

from __future__ import annotations

from pathlib import Path

import torch

MAPS = Path("/proc/self/maps")


def mapped_file(tensor: torch.Tensor) -> str | None:
    """The file mapped at `tensor`'s data ("" for anonymous memory); None where /proc is missing."""
    if not MAPS.is_file():
        return None
    address = tensor.data_ptr()
    for line in MAPS.read_text().splitlines():
        span, *rest = line.split(maxsplit=5)
        start, end = (int(x, 16) for x in span.split("-"))
        if start <= address < end:
            return rest[4] if len(rest) == 5 else ""
    return ""
