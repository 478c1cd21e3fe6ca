"""Gradients go where they should; checkpointing and attention kernels change nothing."""

import pytest
import torch

from flare.core.config import FlareConfig
from flare.core.model import get_flare_model
from flare.testing.tiny_models import random_batch, tiny_model


def fused_loss(model, family, seed=0):
    batch = random_batch(family, length=8, seed=seed)
    source = random_batch(family, length=6, seed=seed + 1, labels=False)
    return model(**batch, source_input_ids=source["input_ids"], source_attention_mask=source["attention_mask"]).loss


def nonzero_b(model):
    with torch.no_grad():
        for name, param in model.trainable_parameters().items():
            if "lora_B" in name:
                param.normal_(std=0.3)


@pytest.mark.parametrize("family", ["bert", "gemma3"])
@pytest.mark.parametrize("fusion", ["add_relu", "cross_attention"])
def test_gradients_reach_adapter_and_fusion_only(family, fusion):
    model = get_flare_model(tiny_model(family), FlareConfig(fusion=fusion, modules_to_save=[], init_seed=0))
    nonzero_b(model)
    fused_loss(model, family).backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    adapter = set(model.adapter_parameter_names)
    assert with_grad == adapter
    assert all(("lora_A" in n or "lora_B" in n or "fusions" in n) for n in adapter)
    assert any("lora_A" in n for n in adapter) and any("lora_B" in n for n in adapter)
    assert (fusion == "cross_attention") == any("fusions" in n for n in adapter)


def test_source_pass_gets_no_gradient_and_a_receives_it_through_the_source():
    model = get_flare_model(tiny_model("bert"), FlareConfig(fusion="mul", modules_to_save=[], init_seed=0))
    nonzero_b(model)
    # with mul, A's gradient depends on the source: it differs from the no-source gradient
    fused_loss(model, "bert").backward()
    name = next(n for n in model.adapter_parameter_names if "lora_A" in n)
    fused_grad = dict(model.named_parameters())[name].grad.clone()
    model.zero_grad()
    batch = random_batch("bert", length=8)
    model(**batch).loss.backward()
    assert not torch.allclose(fused_grad, dict(model.named_parameters())[name].grad)


def gradients(model):
    return {n: p.grad.clone() for n, p in model.trainable_parameters().items()}


@pytest.mark.parametrize("family", ["bert", "llama", "gemma3", "mt5"])
@pytest.mark.parametrize("use_reentrant", [False, True])
@pytest.mark.parametrize("when", ["after wrapping", "before wrapping"])
def test_gradient_checkpointing_gives_same_loss_and_gradients(family, use_reentrant, when):
    results = []
    for checkpointing in (False, True):
        base = tiny_model(family)
        if checkpointing and when == "before wrapping":  # turned on on the user's model, then wrapped
            base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": use_reentrant})
        model = get_flare_model(base, FlareConfig(fusion="add_relu", init_seed=0))
        nonzero_b(model)
        if checkpointing and when == "after wrapping":
            model.gradient_checkpointing_enable(use_reentrant=use_reentrant)
        loss = fused_loss(model, family)
        loss.backward()
        results.append((loss.detach(), gradients(model)))
    (loss_a, grads_a), (loss_b, grads_b) = results
    torch.testing.assert_close(loss_a, loss_b)
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", ["bert", "llama", "qwen2"])
def test_eager_and_sdpa_attention_agree(family):
    results = []
    for implementation in ("eager", "sdpa"):
        model = get_flare_model(tiny_model(family, attn_implementation=implementation),
                                FlareConfig(fusion="add_relu", init_seed=0))
        nonzero_b(model)
        loss = fused_loss(model, family)
        loss.backward()
        results.append((loss.detach(), gradients(model)))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-5, atol=1e-5)
    for name in results[0][1]:
        torch.testing.assert_close(results[0][1][name], results[1][1][name], rtol=1e-4, atol=1e-5)
