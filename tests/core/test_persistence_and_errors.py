"""Save/load round trips, the stage-1 PEFT adapter, and clear errors for bad input."""

import copy

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model

from flare.core.config import FlareConfig
from flare.core.model import WEIGHTS_NAME, FlareModel, get_flare_model
from flare.errors import ConfigError, FlareError
from flare.testing.tiny_models import random_batch, tiny_model


def trained_like(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.trainable_parameters().values():
            param.add_(torch.randn(param.shape, generator=generator) * 0.2)
    return model


@pytest.mark.parametrize("family, fusion", [("bert", "add_relu"), ("bert", "cross_attention"),
                                            ("gemma3", "mul"), ("mt5", "add"), ("gemma3", "gated_add_relu")])
def test_save_load_round_trip_gives_identical_outputs(tmp_path, family, fusion):
    base = tiny_model(family)
    fresh_base = copy.deepcopy(base)
    model = trained_like(get_flare_model(base, FlareConfig(fusion=fusion, init_seed=0)))
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "base_config.json", "flare_adapter.safetensors",
                                                        "flare_config.json"]
    loaded = FlareModel.from_pretrained(fresh_base, tmp_path)
    batch = random_batch(family)
    source = random_batch(family, length=5, seed=4, labels=False)
    kwargs = dict(source_input_ids=source["input_ids"], source_attention_mask=source["attention_mask"])
    model.eval(), loaded.eval()
    torch.testing.assert_close(loaded(**batch, **kwargs).logits, model(**batch, **kwargs).logits, rtol=0, atol=0)


def test_loading_onto_another_base_fails_clearly(tmp_path):
    get_flare_model(tiny_model("bert", seed=0), FlareConfig()).save_pretrained(tmp_path)
    with pytest.raises(FlareError, match="trained on a different base model"):
        FlareModel.from_pretrained(tiny_model("bert", seed=1), tmp_path)


def test_loading_a_folder_without_weights_fails_clearly(tmp_path):
    get_flare_model(tiny_model("bert"), FlareConfig()).save_pretrained(tmp_path)
    (tmp_path / WEIGHTS_NAME).unlink()
    with pytest.raises(FlareError, match="is missing"):
        FlareModel.from_pretrained(tiny_model("bert"), tmp_path)


def test_stage1_peft_adapter_is_the_frozen_source_and_the_base(tmp_path):
    base = tiny_model("bert")
    stage1 = get_peft_model(base, LoraConfig(r=4, target_modules=["query", "value"], modules_to_save=["classifier"]))
    with torch.no_grad():
        for name, param in stage1.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    stage1.save_pretrained(tmp_path / "stage1")
    batch = random_batch("bert")
    stage1.eval()
    expected = stage1(**batch).logits

    reloaded = PeftModel.from_pretrained(tiny_model("bert"), tmp_path / "stage1")
    model = get_flare_model(reloaded, FlareConfig()).eval()
    # B = 0: the FLARE model is exactly the stage-1 model, with or without a source
    torch.testing.assert_close(model(**batch).logits, expected, rtol=1e-5, atol=1e-5)
    source = random_batch("bert", length=5, seed=7, labels=False)
    torch.testing.assert_close(model(**batch, source_input_ids=source["input_ids"]).logits, expected,
                               rtol=1e-5, atol=1e-5)
    # the source pass is the stage-1 model's forward
    states = model.compute_source_states(source["input_ids"])
    with torch.no_grad():
        hidden = stage1.base_model.model.bert(source["input_ids"], output_hidden_states=True).hidden_states
    torch.testing.assert_close(states.states["final"], hidden[-1], rtol=1e-5, atol=1e-5)


def test_source_batch_size_must_match():
    model = get_flare_model(tiny_model("bert"), FlareConfig())
    batch = random_batch("bert", batch=2)
    with pytest.raises(FlareError, match="source batch size 3 differs from the target batch size 2"):
        model(**batch, source_input_ids=torch.randint(3, 100, (3, 5)))


def test_target_modules_matching_nothing_lists_linear_modules():
    with pytest.raises(ConfigError, match=r"matches no module.*linear modules are: .*dense.*query.*value"):
        get_flare_model(tiny_model("bert"), FlareConfig(target_modules=["q_proj"]))


def test_fuse_modules_must_carry_lora():
    with pytest.raises(ConfigError, match="fusing modules must be among target_modules"):
        get_flare_model(tiny_model("llama"), FlareConfig(target_modules=["q_proj"], fuse_modules=["v_proj"]))


def test_one_source_at_a_time():
    model = get_flare_model(tiny_model("bert"), FlareConfig())
    ids = torch.randint(3, 100, (2, 4))
    states = model.compute_source_states(ids)
    with pytest.raises(FlareError, match="give one of"):
        model(input_ids=ids, source_input_ids=ids, source_states=states)


def test_precomputed_states_give_the_live_result():
    model = trained_like(get_flare_model(tiny_model("llama"), FlareConfig(init_seed=0))).eval()
    batch = random_batch("llama")
    source = random_batch("llama", length=5, seed=9, labels=False)
    live = model(**batch, source_input_ids=source["input_ids"], source_attention_mask=source["attention_mask"])
    states = model.compute_source_states(source["input_ids"], source["attention_mask"])
    cached = model(**batch, source_states=states)
    torch.testing.assert_close(live.loss, cached.loss)
