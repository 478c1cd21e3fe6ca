"""The fused layer on 4-bit (bitsandbytes NF4) base layers, as in the paper's decoder runs.

bitsandbytes runs 4-bit layers on the CPU too, so this path is tested here; on CUDA it is the same
PEFT layer class.
"""

import pytest
import torch

pytest.importorskip("bitsandbytes")
from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import BitsAndBytesConfig, LlamaForCausalLM  # noqa: E402

from flare.core.config import FlareConfig  # noqa: E402
from flare.core.model import get_flare_model  # noqa: E402
from flare.testing.tiny_models import random_batch, tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def quantized_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llama4bit")
    # bitsandbytes' CPU 4-bit kernels need in-widths of a 64 block and out-widths of 32
    tiny_model("llama", hidden_size=64, intermediate_size=128, head_dim=16).save_pretrained(folder)
    return folder


def load_4bit(folder):
    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
    return LlamaForCausalLM.from_pretrained(folder, quantization_config=config, device_map="cpu")


def test_flare_trains_on_a_4bit_base_and_the_source_matters(quantized_folder):
    model = get_flare_model(load_4bit(quantized_folder), FlareConfig(target_modules="all-linear", init_seed=0))
    layer = model.model.get_submodule(model.fuse_names[0])
    assert type(layer).__module__ == "peft.tuners.lora.bnb"
    batch = random_batch("llama", length=8)
    source = random_batch("llama", length=6, seed=1, labels=False)
    kwargs = dict(source_input_ids=source["input_ids"], source_attention_mask=source["attention_mask"])
    optimizer = torch.optim.Adam(model.trainable_parameters().values(), lr=5e-2)
    losses = []
    for _ in range(6):
        loss = model(**batch, **kwargs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.05
    with torch.no_grad():
        assert not torch.allclose(model(**batch, **kwargs).logits, model(**batch).logits)


def test_without_source_equals_peft_lora_on_the_same_4bit_base(quantized_folder):
    model = get_flare_model(load_4bit(quantized_folder), FlareConfig(init_seed=0))
    reference = get_peft_model(load_4bit(quantized_folder), LoraConfig(r=8, lora_alpha=16))
    with torch.no_grad():
        params = dict(reference.named_parameters())
        for name, param in model.trainable_parameters().items():
            param.normal_(std=0.2)
            params[name.replace("peft_model.", "").replace(".flare.", ".default.")].copy_(param)
    batch = random_batch("llama")
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, reference(**batch).logits)


def test_zero_b_equals_the_4bit_base(quantized_folder):
    base = load_4bit(quantized_folder)
    batch = random_batch("llama")
    with torch.no_grad():
        expected = base(**batch).logits.clone()
    model = get_flare_model(base, FlareConfig(fusion="cross_attention", init_seed=0))
    source = random_batch("llama", length=5, seed=2, labels=False)
    with torch.no_grad():
        out = model(**batch, source_input_ids=source["input_ids"]).logits
    torch.testing.assert_close(out, expected)
