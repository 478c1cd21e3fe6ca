"""Cached source states give what the live source pass gives."""

import pytest
import torch

from flare.core.config import FlareConfig
from flare.core.model import get_flare_model
from flare.errors import FlareError
from flare.pipeline.data import Collator, source_kwargs
from flare.sources.cache import add_source_states, estimate_bytes
from flare.testing.memory import mapped_file
from flare.testing.tiny_models import tiny_model


def features(family, n=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        length, source_length = 4 + i % 3, 3 + (i * 2) % 5
        ids = torch.randint(3, 128, (length,), generator=generator).tolist()
        labels = i % 3 if family == "bert" else ids
        out.append({"id": str(i), "input_ids": ids, "labels": labels,
                    "source_input_ids": torch.randint(3, 128, (source_length,), generator=generator).tolist()})
    return out


def losses(model, feats):
    batch = Collator(pad_id=0)(feats)
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"],
                 **source_kwargs(batch)).loss


@pytest.mark.parametrize("family", ["bert", "llama"])
@pytest.mark.parametrize("fusion", ["add_relu", "cross_attention"])
def test_cache_gives_the_live_losses(family, fusion):
    model = get_flare_model(tiny_model(family), FlareConfig(fusion=fusion, init_seed=0))
    with torch.no_grad():
        for name, param in model.trainable_parameters().items():
            if "lora_B" in name:
                param.normal_(std=0.3)
    live = features(family)
    cached = features(family)
    add_source_states(model, cached, pad_id=0, batch_size=4, dtype=torch.float32, log=lambda m: None)
    assert "source_states" in Collator(0)(cached)
    torch.testing.assert_close(losses(model, cached), losses(model, live), rtol=1e-5, atol=1e-6)
    half = features(family)
    add_source_states(model, half, pad_id=0, dtype=torch.float16, log=lambda m: None)
    torch.testing.assert_close(losses(model, half), losses(model, live), rtol=1e-2, atol=1e-2)
    # a block's query and value share one cached tensor
    states = cached[0]["source_states"]
    assert len({id(t) for t in states.values()}) < len(states)


def test_size_estimate_and_limit():
    model = get_flare_model(tiny_model("bert"), FlareConfig())
    feats = features("bert")
    tokens = sum(len(f["source_input_ids"]) for f in feats)
    # 3 blocks, offset 1: blocks 1 and 2 and the final state, width 32, 2 bytes
    assert estimate_bytes(model, feats, torch.float16) == tokens * 3 * 32 * 2
    with pytest.raises(FlareError, match="over the limit"):
        add_source_states(model, feats, pad_id=0, limit_bytes=10, log=lambda m: None)


def test_disk_cache_is_reused_and_invalidated(tmp_path):
    model = get_flare_model(tiny_model("bert"), FlareConfig(init_seed=0))
    with torch.no_grad():
        for name, param in model.trainable_parameters().items():
            if "lora_B" in name:
                param.normal_(std=0.3)
    memory = features("bert")
    add_source_states(model, memory, pad_id=0, dtype=torch.float32, log=lambda m: None)
    messages = []
    first = features("bert")
    add_source_states(model, first, pad_id=0, dtype=torch.float32, log=messages.append, cache_dir=tmp_path)
    assert any("written" in m for m in messages) and len(list(tmp_path.iterdir())) == 1
    # the run that wrote the entry reads it too: the same values, in pages of the entry's files (which
    # the OS may drop and read again), not in the process's own memory
    torch.testing.assert_close(losses(model, first), losses(model, memory), rtol=0, atol=0)
    for states in first[0]["source_states"].values():
        where = mapped_file(states)
        assert where is None or (where.startswith(str(tmp_path)) and where.endswith(".npy"))
    messages.clear()
    again = features("bert")
    add_source_states(model, again, pad_id=0, dtype=torch.float32, log=messages.append, cache_dir=tmp_path)
    assert any("reusing" in m for m in messages)
    torch.testing.assert_close(losses(model, again), losses(model, memory))
    # other examples, or another frozen model (e.g. another stage-1 adapter): a new entry
    add_source_states(model, features("bert", seed=5), pad_id=0, dtype=torch.float32, log=lambda m: None,
                      cache_dir=tmp_path)
    other = get_flare_model(tiny_model("bert", seed=3), FlareConfig(init_seed=0))
    add_source_states(other, features("bert"), pad_id=0, dtype=torch.float32, log=lambda m: None,
                      cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 3
    # the same states computed under bf16 autocast (precision: bf16) are another entry, both ways
    with torch.autocast("cpu", dtype=torch.bfloat16):
        add_source_states(model, features("bert"), pad_id=0, dtype=torch.float32, log=messages.append,
                          cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 4


def test_cache_under_bf16_autocast_gives_the_live_bf16_losses():
    """precision: bf16 computes the cached source states under the same autocast as the live
    source pass of a training step, so the two agree as in float32, and differ from float32 states."""
    model = get_flare_model(tiny_model("bert"), FlareConfig(init_seed=0))
    with torch.no_grad():
        for name, param in model.trainable_parameters().items():
            if "lora_B" in name:
                param.normal_(std=0.3)
    cached, full = features("bert"), features("bert")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        add_source_states(model, cached, pad_id=0, dtype=torch.float32, log=lambda m: None)
        live = losses(model, features("bert"))
        torch.testing.assert_close(losses(model, cached), live, rtol=1e-5, atol=1e-6)
    add_source_states(model, full, pad_id=0, dtype=torch.float32, log=lambda m: None)
    assert any(not torch.equal(a, b) for a, b in zip(cached[0]["source_states"].values(),
                                                      full[0]["source_states"].values()))
