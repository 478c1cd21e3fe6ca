"""`xmixup:` settings are checked when the config is read, before any stage trains."""

import pytest
import yaml

from flare.baselines.xmixup import XMixupConfig
from flare.errors import ConfigError
from flare.pipeline.config import ExperimentConfig, load_config, save_config


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_a_typo_in_xmixup_fails_at_load_naming_the_key_and_the_valid_keys(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "methods: [xmixup]\nxmixup: {mix_layr: 2}\n"))
    message = str(err.value)
    assert "unknown key xmixup.mix_layr" in message
    assert "valid keys here:" in message and "mix_layer" in message and "lambda_0" in message


@pytest.mark.parametrize("text, message", [
    ("xmixup: {lambda_0: 1.5}\n", "xmixup: lambda_0 must lie in [0, 1], got 1.5"),
    ("xmixup: {rep_pooling: max}\n", "xmixup: rep_pooling must be one of"),
    ("xmixup: {mix_layer: two}\n", "xmixup.mix_layer: expected int, got 'two'"),
])
def test_bad_xmixup_values_fail_at_load(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(write(tmp_path, text))


def test_xmixup_settings_are_typed_and_the_saved_config_stays_plain_data(tmp_path):
    config = load_config(write(tmp_path, "xmixup: {mix_layer: -1, kl_weight: 0, num_heads: 2}\n"))
    assert config.xmixup == XMixupConfig(mix_layer=-1, kl_weight=0.0, num_heads=2)
    data = config.to_dict()
    assert data["xmixup"] == XMixupConfig(mix_layer=-1, kl_weight=0.0, num_heads=2).to_dict()
    save_config(config, tmp_path / "config.yaml")
    assert isinstance(yaml.safe_load((tmp_path / "config.yaml").read_text())["xmixup"], dict)
    assert load_config(tmp_path / "config.yaml").xmixup == config.xmixup


def test_an_old_config_with_empty_or_plain_xmixup_settings_still_loads(tmp_path):
    assert load_config(write(tmp_path, "xmixup: {}\n")).xmixup == XMixupConfig()
    assert ExperimentConfig(xmixup={"lambda_0": 0.2}).xmixup == XMixupConfig(lambda_0=0.2)
