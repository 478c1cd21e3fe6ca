"""HeapTrim: freed heap memory goes back to the OS (glibc), at most once per interval."""

import subprocess
import sys

import pytest

from flare import heap
from flare.errors import ConfigError
from flare.heap import HeapTrim


def test_trims_at_most_once_per_interval(monkeypatch):
    calls = []
    monkeypatch.setattr(heap, "malloc_trim", lambda: calls.append)
    now = [100.0]
    trim = HeapTrim(every_seconds=30, clock=lambda: now[0])
    for t in (100.0, 110.0, 129.9):  # within the first interval: nothing
        now[0] = t
        trim()
    assert calls == []
    now[0] = 130.0
    trim()
    trim()  # the same moment again: not twice
    assert calls == [0]
    now[0] = 159.0
    trim()
    now[0] = 160.5
    trim()
    assert calls == [0, 0] and trim.trims == 2


def test_the_interval_comes_from_the_environment_and_zero_turns_trimming_off(monkeypatch):
    calls = []
    monkeypatch.setattr(heap, "malloc_trim", lambda: calls.append)
    now = [0.0]
    monkeypatch.setenv("FLARE_HEAP_TRIM_SECONDS", "5")
    trim = HeapTrim(clock=lambda: now[0])
    now[0] = 5.0
    trim()
    assert calls == [0]
    monkeypatch.setenv("FLARE_HEAP_TRIM_SECONDS", "0")
    off = HeapTrim(clock=lambda: now[0])
    now[0] = 1e9
    off()
    assert calls == [0] and off.trims == 0
    monkeypatch.setenv("FLARE_HEAP_TRIM_SECONDS", "often")
    with pytest.raises(ConfigError, match="FLARE_HEAP_TRIM_SECONDS='often' is not a number of seconds"):
        HeapTrim()


def test_nothing_where_the_c_library_has_no_malloc_trim(monkeypatch):
    monkeypatch.setattr(heap, "malloc_trim", lambda: None)
    trim = HeapTrim(every_seconds=0)
    trim()
    assert trim.trims == 0


# A fresh process frees 400 MB of tensors that sit on glibc's heap below a live one: the heap
# cannot shrink from its top, so the process keeps the pages until they are trimmed
FREED_HEAP = """
import torch
from flare.heap import HeapTrim

def rss_anon_kib():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])

torch.ones(2**21).sum()  # a 8 MB block, mmapped and freed: glibc's threshold rises above 2 MB
blocks = [torch.ones(2**19) for _ in range(200)]  # 200 x 2 MB on the heap
pin = torch.ones(2**19)  # above them
del blocks
before = rss_anon_kib()
trim = HeapTrim(every_seconds=0)
trim()
print(before, rss_anon_kib(), trim.trims)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or heap.malloc_trim() is None,
                    reason="glibc's malloc_trim and /proc are Linux's")
def test_freed_tensors_go_back_to_the_os():
    out = subprocess.run([sys.executable, "-c", FREED_HEAP], capture_output=True, text=True, check=True,
                         env={"PATH": "", "OMP_NUM_THREADS": "1"})
    before, after, trims = map(int, out.stdout.split())
    assert trims == 1
    assert before - after > 300 * 1024, (before, after)  # of the 400 MB freed
