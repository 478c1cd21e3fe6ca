"""The source-state cache: the frozen stage-1 model's states for each example, computed once.

The source pass runs with the FLARE adapter off, in eval mode, without gradients, through a
frozen model: for a given example its states never change, so one batched pass before training
serves every epoch and the evaluation. States are kept per example, trimmed to the real tokens,
in half precision by default; a block's query and value projections share one tensor.

With a cache folder the states are also written to disk (:mod:`flare.sources.store`) and read
back memory-mapped by later runs. The entry name is a hash of everything the states depend on
(the frozen weights, stage-1 adapter merged in, which module reads which block, the dtype and
every example's source tokens): change any of these and a new entry is built.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from flare.core.states import pad_sequences
from flare.errors import FlareError
from flare.sources import store

FEATURE_KEY = "source_states"


@torch.no_grad()
def estimate_bytes(model, features: list[dict], dtype: torch.dtype) -> int:
    """Real source tokens x the widths of the distinct tensors one example yields x bytes per value."""
    probe = torch.tensor([features[0]["source_input_ids"]], device=next(model.parameters()).device)
    states = model.compute_source_states(probe).states.values()
    width = sum({id(t): t.shape[-1] for t in states}.values())
    tokens = sum(len(f["source_input_ids"]) for f in features)
    return tokens * width * (torch.finfo(dtype).bits // 8)


def cache_key(model, features: list[dict], dtype: torch.dtype, compute: str = "float32") -> str:
    """A hash of what the source states depend on (see the module docstring); `compute`: the
    precision the source pass ran in (`store.compute_precision`)."""
    # the source model: every weight and the architecture config of the stage-1 model as given
    # (core/fingerprint.py); the tokenizer enters through the token rows, the kernels through
    # the library versions (store.Fingerprint)
    fingerprint = store.Fingerprint("source-states", str(dtype), sorted(model.source_key.items()),
                                    model.flare_config.base_fingerprint, model.stacked, compute)
    return fingerprint.add_token_rows(f["source_input_ids"] for f in features).key()


@torch.no_grad()
def add_source_states(model, features: list[dict], pad_id: int, batch_size: int = 64,
                      dtype: torch.dtype = torch.float16, limit_bytes: int | None = None,
                      log: Callable[[str], None] = print, cache_dir: str | Path | None = None) -> None:
    """Compute every feature's source states once (batched, by length) and store them in it;
    with `cache_dir`, reuse (memory-mapped) or write the entry for these features. Under autocast
    (mixed precision) the source pass runs in its dtype, as the live source pass of training does."""
    device = next(model.parameters()).device
    if cache_dir is not None:
        entry_key = cache_key(model, features, dtype, store.compute_precision(device))
        entry = store.find(cache_dir, entry_key)
        if entry is not None:
            log(f"source-state cache: reusing {entry}")
            _attach(features, entry)
            return
    size = estimate_bytes(model, features, dtype)
    log(f"source-state cache: {len(features)} examples, about {size / 2**20:.0f} MiB ({dtype})")
    if limit_bytes is not None and size > limit_bytes:
        raise FlareError(f"the source-state cache would take {size / 2**20:.0f} MiB, over the limit of "
                         f"{limit_bytes / 2**20:.0f} MiB; raise train.source_cache_limit_mb or turn "
                         "train.source_cache off (a live source pass every step)")

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
        entry = store.write(cache_dir, entry_key, [f[FEATURE_KEY] for f in features])
        log(f"source-state cache: written to {entry}")
        _attach(features, entry)  # the same values, memory-mapped: pages the OS may drop, not process memory


def _attach(features: list[dict], entry) -> None:
    for feature, states in zip(features, store.read(entry, len(features))):
        feature[FEATURE_KEY] = states

