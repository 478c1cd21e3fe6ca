"""Every family builds, trains with every fusion function, and its loss goes down."""

import pytest
import torch

from flare.core.config import FlareConfig
from flare.core.fusion import FUSIONS
from flare.core.model import get_flare_model
from flare.testing.tiny_models import FAMILIES, random_batch, tiny_model


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_loss_goes_down(family, fusion):
    model = get_flare_model(tiny_model(family), FlareConfig(fusion=fusion, init_seed=0, modules_to_save=[]))
    batch = random_batch(family, length=8)
    source = random_batch(family, length=10, seed=1, labels=False)
    optimizer = torch.optim.Adam(model.trainable_parameters().values(), lr=5e-2)
    losses = []
    for _ in range(10):
        loss = model(**batch, source_input_ids=source["input_ids"],
                     source_attention_mask=source["attention_mask"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.02, losses


def test_encoder_decoder_fuses_in_the_encoder_only():
    model = get_flare_model(tiny_model("mt5"), FlareConfig())
    assert model.fuse_names and all(name.startswith("encoder.") for name in model.fuse_names)
    # LoRA also sits on the decoder's q/v (plain LoRA there).
    assert any(name.startswith("decoder.") for name in model.flare_config.resolved_target_modules)


def test_all_linear_lora_with_query_value_fusion():
    model = get_flare_model(tiny_model("gemma3"), FlareConfig(target_modules="all-linear"))
    lora = model.flare_config.resolved_target_modules
    assert any(n.endswith("mlp.down_proj") for n in lora) and not any(n.endswith("lm_head") for n in lora)
    assert all(n.endswith(("q_proj", "v_proj")) for n in model.fuse_names) and len(model.fuse_names) == 6


def test_parameter_groups_give_a_learned_fusion_its_own_learning_rate_and_nothing_else():
    model = get_flare_model(tiny_model("bert"), FlareConfig(fusion="gated_add_relu", init_seed=0))
    trainable = {id(p) for p in model.trainable_parameters().values()}
    gates = {id(p) for p in model.fusions.parameters()}
    assert gates and gates < trainable
    (single,) = model.parameter_groups(1e-3)  # ratio 1: one group, as before the setting existed
    assert single["lr"] == 1e-3 and {id(p) for p in single["params"]} == trainable
    rest, fused = model.parameter_groups(1e-3, fusion_lr_ratio=30)
    assert {id(p) for p in fused["params"]} == gates and fused["lr"] == pytest.approx(3e-2)
    assert {id(p) for p in rest["params"]} == trainable - gates and rest["lr"] == 1e-3
    plain = get_flare_model(tiny_model("bert"), FlareConfig(fusion="add_relu", init_seed=0))
    assert len(plain.parameter_groups(1e-3, fusion_lr_ratio=30)) == 1  # no learned fusion: nothing to split
