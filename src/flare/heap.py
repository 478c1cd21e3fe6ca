"""Freed C-heap memory handed back to the operating system during long runs (glibc only).

On Linux, torch's CPU tensors come from glibc's malloc. Once freed, the blocks of the many
differently sized activations stay on glibc's heap instead of going back to the OS, so a process
that trains and evaluates for hours grows far beyond what it uses: in study 5 (Gemma 3 270M, one
thread) a process grew from 4.8 to 10.1 GiB of its own memory in 25 minutes, and processes
like it were stopped by the OOM killer on a 24 GB machine. `malloc_trim(0)` gives the free pages
back. Called every 30 seconds it kept a process at 2.3-6.7 GiB where one beside it grew to 9.5. One
trim costs about 1.6 s of a Gemma 3 270M training step (the step faults the pages in again), ~5 % of
the time at one trim per 30 s (studies/bench/heap_trim.py); fixing glibc's thresholds
(`MALLOC_MMAP_THRESHOLD_` and friends) bounded memory too but made every step about 1.8 x slower
(docs/performance.md, "Long runs on the CPU: the C allocator").

`HeapTrim` is a callable for such loops: cheap to call every step (a clock read), it trims at most
once per interval and does nothing where the C library has no `malloc_trim` (macOS, Windows,
musl). Trimming changes where memory lives, never a computed value. `FLARE_HEAP_TRIM_SECONDS` sets
the interval (0 turns trimming off: a machine with memory to spare gets the untrimmed speed).
"""

from __future__ import annotations

import ctypes
import math
import os
import time
from collections.abc import Callable
from functools import lru_cache

from flare.errors import ConfigError

EVERY_SECONDS = 30.0
ENV_VAR = "FLARE_HEAP_TRIM_SECONDS"


def interval() -> float:
    """Seconds between trims: `$FLARE_HEAP_TRIM_SECONDS`, else `EVERY_SECONDS`; 0 there (or less):
    never (infinity)."""
    value = os.environ.get(ENV_VAR)
    if value is None or not value.strip():
        return EVERY_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{ENV_VAR}={value!r} is not a number of seconds (0 turns heap trimming off)") from None
    return seconds if seconds > 0 else math.inf


@lru_cache(maxsize=1)
def malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the process's C library has none."""
    try:
        function = ctypes.CDLL(None).malloc_trim  # the C library the process already runs on
    except (AttributeError, OSError, TypeError):
        return None
    function.argtypes, function.restype = [ctypes.c_size_t], ctypes.c_int
    return function


class HeapTrim:
    """Call it from a long loop; every `every_seconds` it returns glibc's free heap pages to the OS."""

    def __init__(self, every_seconds: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.every_seconds = interval() if every_seconds is None else every_seconds
        self.clock = clock
        self.last = clock()
        self.trims = 0

    def __call__(self) -> None:
        now = self.clock()
        if now - self.last < self.every_seconds:
            return
        self.last = now
        function = malloc_trim()
        if function is not None:
            function(0)
            self.trims += 1
