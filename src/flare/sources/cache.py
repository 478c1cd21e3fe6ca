"""The source-state cache: the frozen stage-1 model's states for each example, computed once.

The source pass runs with the FLARE adapter off, in eval mode, without gradients, through a
frozen model: for a given example its states never change, so one batched pass before training
serves every epoch and the evaluation. States are kept per example, trimmed to the real tokens,
in half precision by default; a block's query and value projections share one tensor.

With a cache folder the states are also written to disk and read back memory-mapped by later
runs. The folder name is a hash of everything the states depend on (the frozen weights, stage-1
adapter merged in, which module reads which block, the dtype and every example's source tokens):
change any of these and a new entry is built; an entry is complete only once its index is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from flare.errors import FlareError

FEATURE_KEY = "source_states"


@torch.no_grad()
def estimate_bytes(model, features: list[dict], dtype: torch.dtype) -> int:
    """Real source tokens x the widths of the distinct tensors one example yields x bytes per value."""
    probe = torch.tensor([features[0]["source_input_ids"]], device=next(model.parameters()).device)
    states = model.compute_source_states(probe).states.values()
    width = sum({id(t): t.shape[-1] for t in states}.values())
    tokens = sum(len(f["source_input_ids"]) for f in features)
    return tokens * width * (torch.finfo(dtype).bits // 8)


@torch.no_grad()
def cache_key(model, features: list[dict], dtype: torch.dtype) -> str:
    """A hash of what the source states depend on (see the module docstring)."""
    digest = hashlib.sha256(str(dtype).encode())
    digest.update(json.dumps(sorted(model.source_key.items())).encode())
    for name, param in model.peft_model.named_parameters():
        if not param.requires_grad:  # the frozen source model (trainable ones are off in the source pass)
            values = param.detach().float()
            digest.update(f"{name}{tuple(param.shape)}{values.double().sum().item():.10e}".encode())
            digest.update(values.flatten()[:64].cpu().numpy().tobytes())
    for feature in features:
        digest.update(np.asarray(feature["source_input_ids"], dtype=np.int64).tobytes() + b"|")
    return digest.hexdigest()[:20]


@torch.no_grad()
def add_source_states(model, features: list[dict], pad_id: int, batch_size: int = 64,
                      dtype: torch.dtype = torch.float16, limit_bytes: int | None = None,
                      log: Callable[[str], None] = print, cache_dir: str | Path | None = None) -> None:
    """Compute every feature's source states once (batched, by length) and store them in it;
    with `cache_dir`, reuse (memory-mapped) or write the entry for these features."""
    if cache_dir is not None:
        entry = Path(cache_dir) / cache_key(model, features, dtype)
        if (entry / "index.json").is_file():
            log(f"source-state cache: reusing {entry}")
            _attach(entry, features)
            return
    size = estimate_bytes(model, features, dtype)
    log(f"source-state cache: {len(features)} examples, about {size / 2**20:.0f} MiB ({dtype})")
    if limit_bytes is not None and size > limit_bytes:
        raise FlareError(f"the source-state cache would take {size / 2**20:.0f} MiB, over the limit of "
                         f"{limit_bytes / 2**20:.0f} MiB; raise train.source_cache_limit_mb or turn "
                         "train.source_cache off (a live source pass every step)")
    from flare.pipeline.data import pad_sequences  # late: pipeline imports this module

    device = next(model.parameters()).device
    order = sorted(range(len(features)), key=lambda i: len(features[i]["source_input_ids"]))
    for start in tqdm(range(0, len(order), batch_size), desc="source states", leave=False):
        chunk = [features[i] for i in order[start:start + batch_size]]
        ids, mask = pad_sequences([f["source_input_ids"] for f in chunk], pad_id)
        states = model.compute_source_states(ids.to(device), mask.to(device))
        for row, feature in enumerate(chunk):
            real = mask[row].bool()
            converted: dict[int, torch.Tensor] = {}
            per_key = {}
            for key, tensor in states.states.items():
                if id(tensor) not in converted:
                    converted[id(tensor)] = tensor[row, real.to(tensor.device)].to("cpu", dtype).clone()
                per_key[key] = converted[id(tensor)]
            feature[FEATURE_KEY] = per_key
    if cache_dir is not None:
        _write(entry, features)
        log(f"source-state cache: written to {entry}")


def _write(entry: Path, features: list[dict]) -> None:
    """One flat array per shared tensor group, and an index of (offset, length) per example."""
    groups: dict[int, list[str]] = {}
    for key, tensor in features[0][FEATURE_KEY].items():
        groups.setdefault(id(tensor), []).append(key)
    tmp = entry.with_name(entry.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    some_key = next(iter(groups.values()))[0]
    lengths = [f[FEATURE_KEY][some_key].shape[0] for f in features]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).tolist()
    for number, keys in enumerate(groups.values()):
        first = features[0][FEATURE_KEY][keys[0]]
        array = np.lib.format.open_memmap(tmp / f"group{number}.npy", mode="w+",
                                          dtype=first.numpy().dtype, shape=(offsets[-1], first.shape[-1]))
        for feature, start, end in zip(features, offsets[:-1], offsets[1:]):
            array[start:end] = feature[FEATURE_KEY][keys[0]].numpy()
        array.flush()
        del array
    index = {"groups": list(groups.values()), "offsets": offsets, "examples": len(features)}
    (tmp / "index.json").write_text(json.dumps(index))
    shutil.rmtree(entry, ignore_errors=True)
    os.replace(tmp, entry)


def _attach(entry: Path, features: list[dict]) -> None:
    index = json.loads((entry / "index.json").read_text())
    if index["examples"] != len(features):
        raise FlareError(f"{entry}: the cache entry holds {index['examples']} examples, not {len(features)}; "
                         "delete the folder")
    offsets = index["offsets"]
    arrays = [np.load(entry / f"group{n}.npy", mmap_mode="c") for n in range(len(index["groups"]))]
    for i, feature in enumerate(features):
        per_key = {}
        for keys, array in zip(index["groups"], arrays):
            view = torch.from_numpy(array[offsets[i]:offsets[i + 1]])  # paged in when used
            per_key.update({key: view for key in keys})
        feature[FEATURE_KEY] = per_key
