"""The fused layer against a hand computation, PEFT's LoRA and the base model."""

import copy

import pytest
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model

from flare.core.config import FlareConfig
from flare.core.model import get_flare_model
from flare.testing.tiny_models import random_batch, tiny_model


def randomize_lora(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.trainable_parameters().items():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.3)


@pytest.mark.parametrize("fusion", ["add_relu", "mul", "cross_attention"])
def test_one_module_matches_hand_computation(fusion):
    base = tiny_model("bert", num_hidden_layers=2)
    reference = copy.deepcopy(base).eval()
    model = get_flare_model(base, FlareConfig(fusion=fusion, source_layer_offset=1, alpha=12, r=4,
                                              modules_to_save=[]))
    randomize_lora(model)
    target = torch.randint(3, 128, (2, 8))
    source = torch.randint(3, 128, (2, 7))
    source_mask = torch.tensor([[1] * 5 + [0] * 2, [1] * 7])

    name = "bert.encoder.layer.0.attention.self.query"
    layer = model.model.get_submodule(name)
    seen = {}
    layer.register_forward_hook(lambda m, args, out: seen.update(y=out))  # the last call: target pass
    model(input_ids=target, attention_mask=torch.ones_like(target), source_input_ids=source,
          source_attention_mask=source_mask)

    with torch.no_grad():
        x_t = reference.bert(target, output_hidden_states=True).hidden_states[0]
        x_s = reference.bert(source, attention_mask=source_mask, output_hidden_states=True).hidden_states[1]
        query = reference.bert.encoder.layer[0].attention.self.query
        A, B = layer.lora_A["flare"].weight, layer.lora_B["flare"].weight
        t, s = x_t @ A.T, x_s @ A.T
        if fusion == "cross_attention":
            attention = model.fusions[name.replace(".", "__")]
            q, k, v = attention.query(t), attention.key(s), attention.value(s)
            scores = (q @ k.transpose(1, 2)) / 2.0  # sqrt(r / heads) = sqrt(4)
            scores = scores.masked_fill(source_mask[:, None, :] == 0, float("-inf"))
            fused = t + torch.softmax(scores, -1) @ v
        else:
            paired = torch.zeros_like(t)
            paired[:, :7] = s  # j-th real target token <-> j-th real source token
            phi = {"add_relu": lambda a, b: F.relu(a) + F.relu(b), "mul": lambda a, b: a * b}[fusion]
            fused = phi(paired, t)
            # target positions with no source partner: plain LoRA
            fused[0, 5:] = t[0, 5:]
            fused[1, 7:] = t[1, 7:]
        expected = F.linear(x_t, query.weight, query.bias) + (12 / 4) * fused @ B.T
    torch.testing.assert_close(seen["y"], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", ["bert", "llama", "mt5"])
def test_without_source_equals_peft_lora(family):
    base = tiny_model(family)
    peft_reference = get_peft_model(copy.deepcopy(base), LoraConfig(r=8, lora_alpha=16, target_modules=None
                                                                     if family != "mt5" else ["q", "v"]))
    model = get_flare_model(base, FlareConfig(modules_to_save=[]))
    randomize_lora(model)
    reference_params = dict(peft_reference.named_parameters())
    with torch.no_grad():
        for name, param in model.trainable_parameters().items():
            short = name.replace("peft_model.", "").replace(".flare.", ".default.")
            reference_params[short].copy_(param)
    batch = random_batch(family)
    torch.testing.assert_close(model(**batch).logits, peft_reference(**batch).logits, rtol=0, atol=0)


@pytest.mark.parametrize("family", ["bert", "gemma3", "mt5"])
@pytest.mark.parametrize("fusion", ["add_relu", "cross_attention"])
def test_zero_b_equals_base_model(family, fusion):
    base = tiny_model(family)
    reference = copy.deepcopy(base)
    model = get_flare_model(base, FlareConfig(fusion=fusion, modules_to_save=[]))
    randomize_lora(model)
    with torch.no_grad():
        for name, param in model.trainable_parameters().items():
            if "lora_B" in name:
                param.zero_()
    batch = random_batch(family)
    source = random_batch(family, length=5, seed=3, labels=False)
    fused = model(**batch, source_input_ids=source["input_ids"], source_attention_mask=source["attention_mask"])
    torch.testing.assert_close(fused.logits, reference(**batch).logits)
