import pytest
import torch

from flare.core.config import FlareConfig
from flare.core.fusion import FUSIONS, CrossAttentionFusion, register_fusion
from flare.errors import ConfigError


def test_config_json_round_trip(tmp_path):
    config = FlareConfig(r=4, alpha=8, fusion="mul", source_layer_offset=0, target_modules=["q_proj", "v_proj"])
    config.save(tmp_path)
    assert FlareConfig.load(tmp_path) == config


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(fusion="concat"), "valid fusion functions: add, add_relu, cross_attention, gated_add_relu, mul, mul_relu"),
        (dict(r=0), "r must be a positive integer"),
        (dict(dropout=1.5), "dropout"),
        (dict(source_layer_offset=-1), "source_layer_offset"),
        (dict(r=8, cross_attention_heads=3), "must divide r"),
        (dict(source_kind="encoder"), "source_encoder_dim"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        FlareConfig(**kwargs)


def test_config_rejects_unknown_keys(tmp_path):
    with pytest.raises(ConfigError, match="unknown FlareConfig keys: fusion_fn"):
        FlareConfig.from_dict({"fusion_fn": "add"})
    (tmp_path / "flare_config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        FlareConfig.load(tmp_path)


def test_elementwise_fusions():
    s = torch.tensor([[-1.0, 2.0]])
    t = torch.tensor([[3.0, -4.0]])
    assert torch.equal(FUSIONS["add"](s, t), torch.tensor([[2.0, -2.0]]))
    assert torch.equal(FUSIONS["mul"](s, t), torch.tensor([[-3.0, -8.0]]))
    assert torch.equal(FUSIONS["add_relu"](s, t), torch.tensor([[3.0, 2.0]]))
    assert torch.equal(FUSIONS["mul_relu"](s, t), torch.tensor([[0.0, 0.0]]))


def test_new_fusion_is_one_registered_function():
    @register_fusion("max_test")
    def max_test(source, target):
        return torch.maximum(source, target)

    try:
        assert FlareConfig(fusion="max_test").fusion == "max_test"
    finally:
        del FUSIONS["max_test"]


def test_cross_attention_ignores_source_padding_and_handles_empty_source():
    torch.manual_seed(0)
    fusion = CrossAttentionFusion(r=4, heads=2)
    target = torch.randn(2, 3, 4)
    source = torch.randn(2, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0]])
    out = fusion(source, mask, target)
    changed = source.clone()
    changed[0, 3:] = 100.0
    assert torch.allclose(out, fusion(changed, mask, target))
    # A row without any source keeps the target unchanged (plain LoRA).
    assert torch.allclose(out[1], target[1])
    assert torch.isfinite(out).all()


def test_the_gated_fusion_starts_as_add_relu_and_its_gate_learns_from_both_sides():
    from flare.core.model import get_flare_model
    from flare.testing.tiny_models import random_batch, tiny_model

    batch = random_batch("bert")
    source = random_batch("bert", length=5, seed=4, labels=False)
    kwargs = dict(source_input_ids=source["input_ids"], source_attention_mask=source["attention_mask"])
    outputs = {}
    for fusion in ("add_relu", "gated_add_relu"):
        model = get_flare_model(tiny_model("bert"), FlareConfig(fusion=fusion, init_seed=0))
        with torch.no_grad():  # the same trained-like LoRA weights in both
            generator = torch.Generator().manual_seed(1)
            for name, param in model.trainable_parameters().items():
                if "lora_B" in name:
                    param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
        model.eval()
        outputs[fusion] = model(**batch, **kwargs).logits
    torch.testing.assert_close(outputs["gated_add_relu"], outputs["add_relu"], rtol=0, atol=0)
    gates = {n: p for n, p in model.trainable_parameters().items() if n.startswith("fusions.")}
    assert len(gates) == 3 * len(model.fuse_names) and all(p.numel() == 8 for p in gates.values())
    model.train()
    model(**batch, **kwargs).loss.backward()
    for name in ("source_weight", "target_weight", "bias"):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in gates.items() if n.endswith(name)), name
