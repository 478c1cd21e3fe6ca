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
        (dict(fusion="concat"), "valid fusion functions: add, add_relu, cross_attention, mul, mul_relu"),
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
