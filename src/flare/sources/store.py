"""A disk store for per-example tensors computed once from a frozen model (FLARE's source states,
FLARE-MT's encoder states), read back memory-mapped by later runs.

An entry is a folder named by a hash of everything its tensors depend on (`Fingerprint`); it
holds one flat ``.npy`` array per group of keys that share a tensor and an index of each
example's rows. It is written to a temporary folder and renamed, so an entry either is complete
(its ``index.json`` exists) or is not there at all: a crash never leaves half an entry in use.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from flare.core.fingerprint import model_fingerprint
from flare.errors import FlareError
from flare.io import atomic_folder

INDEX = "index.json"
FORMAT = 2  # part of every key: entries of an older layout are never read


def compute_precision(device: torch.device) -> str:
    """The precision the frozen model computes in right now on `device`: the autocast dtype when
    autocast is on (`precision: bf16` in an experiment), else "float32". Part of every key, so
    states computed under bf16 autocast are never read by a float32 run, nor the reverse."""
    if torch.is_autocast_enabled(device.type):
        return str(torch.get_autocast_dtype(device.type))
    return "float32"


class Fingerprint:
    """A running hash of what cached tensors depend on."""

    def __init__(self, *parts):
        self._digest = hashlib.sha256()
        for part in (FORMAT, _library_versions(), *parts):
            self.add(part)

    def add(self, part) -> "Fingerprint":
        self._digest.update(json.dumps(part, sort_keys=True, default=str).encode() + b"\x00")
        return self

    def add_model(self, model: torch.nn.Module) -> "Fingerprint":
        """Every weight and the architecture config (flare.core.fingerprint)."""
        return self.add(model_fingerprint(model))

    def add_token_rows(self, rows: Iterable[Iterable[int]]) -> "Fingerprint":
        for row in rows:
            self._digest.update(np.asarray(list(row), dtype=np.int64).tobytes() + b"|")
        return self

    def key(self) -> str:
        return self._digest.hexdigest()[:20]


def _library_versions() -> dict[str, str]:
    """Other kernels can give other states: entries of other torch / transformers versions are not reused."""
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def find(cache_dir: str | os.PathLike, key: str) -> Path | None:
    """The complete entry for `key`, or None."""
    entry = Path(cache_dir) / key
    return entry if (entry / INDEX).is_file() else None


def write(cache_dir: str | os.PathLike, key: str, per_example: list[dict[str, torch.Tensor]]) -> Path:
    """Store one dict of (length, width) tensors per example; keys of an example that share one
    tensor are stored once. Every example must have the same keys and sharing."""
    groups: dict[int, list[str]] = {}
    for name, tensor in per_example[0].items():
        groups.setdefault(id(tensor), []).append(name)
    entry = Path(cache_dir) / key
    # a unique temporary folder: two writers of one key do not collide, and the first one's entry stays
    # (the same content: the key is its hash), so a run reading it never sees it vanish
    with atomic_folder(entry, keep_existing=True) as tmp:
        _write_groups(tmp, groups, per_example)
    return entry


def _write_groups(tmp: Path, groups: dict[int, list[str]], per_example: list[dict[str, torch.Tensor]]) -> None:
    offsets_of = []
    for number, names in enumerate(groups.values()):
        tensors = [example[names[0]] for example in per_example]
        offsets = np.concatenate([[0], np.cumsum([t.shape[0] for t in tensors])]).tolist()
        array = np.lib.format.open_memmap(tmp / f"group{number}.npy", mode="w+", dtype=tensors[0].numpy().dtype,
                                          shape=(offsets[-1], tensors[0].shape[-1]))
        for tensor, start, end in zip(tensors, offsets[:-1], offsets[1:]):
            array[start:end] = tensor.numpy()
        array.flush()
        del array
        offsets_of.append(offsets)
    index = {"groups": list(groups.values()), "offsets": offsets_of, "examples": len(per_example)}
    (tmp / INDEX).write_text(json.dumps(index))


def read(entry: Path, examples: int) -> list[dict[str, torch.Tensor]]:
    """The per-example dicts of an entry, as views into memory-mapped arrays (paged in when used)."""
    index = json.loads((entry / INDEX).read_text())
    if index["examples"] != examples:
        raise FlareError(f"{entry}: the cache entry holds {index['examples']} examples, not {examples}; "
                         "delete the folder")
    per_example: list[dict[str, torch.Tensor]] = [{} for _ in range(examples)]
    for number, (names, offsets) in enumerate(zip(index["groups"], index["offsets"])):
        array = np.load(entry / f"group{number}.npy", mmap_mode="c")
        for i, (start, end) in enumerate(zip(offsets[:-1], offsets[1:])):
            view = torch.from_numpy(array[start:end])
            per_example[i].update({name: view for name in names})
    return per_example
