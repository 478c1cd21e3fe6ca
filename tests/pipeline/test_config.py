import pytest
import torch
from typer.testing import CliRunner

from flare.cli.main import app
from flare.errors import ConfigError
from flare.pipeline.config import load_config


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_overrides_win_over_the_file(tmp_path):
    path = write(tmp_path, "train:\n  epochs: 3\n  learning_rate: 5e-4\nlanguages: [jav]\n")
    config = load_config(path, ["train.epochs=1", "languages=[sun, ban]"])
    assert config.train.epochs == 1.0 and config.train.learning_rate == 5e-4
    assert config.languages == ["sun", "ban"]


def test_methods_by_name_or_with_settings(tmp_path):
    path = write(tmp_path, "methods: [lora, {name: flare-k0, method: flare, source_layer_offset: 0}]\n")
    config = load_config(path)
    assert [m.name for m in config.methods] == ["lora", "flare-k0"]
    assert config.methods[1].adapter(config.adapter).source_layer_offset == 0


def test_a_method_can_set_its_own_alignment(tmp_path):
    path = write(tmp_path, "methods: [flare, {name: flare-end, method: flare, alignment: end}]\n")
    config = load_config(path)
    assert [m.adapter(config.adapter).alignment for m in config.methods] == ["auto", "end"]


@pytest.mark.parametrize("text, message", [
    ("trian: {epochs: 1}\n", "unknown key trian; valid keys here:"),
    ("train: {epoch: 1}\n", "unknown key train.epoch"),
    ("train: {epochs: many}\n", "train.epochs: expected float, got 'many'"),
    ("seeds: 1\n", "seeds: expected a list"),
    ("methods: [lora, flair]\n", "unknown method 'flair'; valid methods: zero-shot, translate-test, lora"),
    ("train: {batch_size: true}\n", "train.batch_size: expected int"),
    ("adapter: {fusion: concat}\n", "adapter: unknown fusion 'concat'; valid fusion functions: add, add_relu"),
    ("adapter: {alignment: middle}\n", "adapter: alignment must be auto, start or end, got 'middle'"),
    ("methods: [{name: f, method: flare, alignment: left}]\n", "method f: alignment must be auto, start or end"),
    ("precision: no\n", "precision: expected a string, got the boolean False: YAML reads an unquoted no"),
])
def test_bad_configs_give_clear_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_config(write(tmp_path, text))


def test_cli_reports_config_errors_without_a_traceback(tmp_path):
    result = CliRunner().invoke(app, ["run", str(write(tmp_path, "methods: [flair]\n"))])
    assert result.exit_code == 2
    assert "unknown method 'flair'" in result.output and "Traceback" not in result.output


def test_quoted_precision_no_is_accepted(tmp_path):
    assert load_config(write(tmp_path, 'precision: "no"\n')).precision == "no"
    assert load_config(None, ["precision='no'"]).precision == "no"


def test_bad_override_syntax(tmp_path):
    with pytest.raises(ConfigError, match="is not KEY=VALUE"):
        load_config(None, ["train.epochs"])


def test_length_grouped_batches_cover_every_example_once_with_little_padding():
    import torch

    from flare.pipeline.training import LengthGroupedBatches

    lengths = [(i * 37) % 100 + 1 for i in range(200)]
    batches = list(LengthGroupedBatches(lengths, 8, torch.Generator().manual_seed(0)))
    assert sorted(i for b in batches for i in b) == list(range(200))
    padding = sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)
    assert padding < 0.2 * sum(lengths)


def test_device_is_checked(tmp_path):
    from flare.errors import FlareError
    from flare.pipeline.training import make_accelerator

    with pytest.raises(ConfigError, match="device must be auto, cpu, cuda or mps, got 'gpu'"):
        load_config(write(tmp_path, "device: gpu\n"))
    assert load_config(write(tmp_path, "device: mps\n")).device == "mps"
    if not torch.cuda.is_available():
        with pytest.raises(FlareError, match="torch sees no CUDA GPU"):
            make_accelerator("cuda")
    if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        with pytest.raises(FlareError, match="torch has no MPS"):
            make_accelerator("mps")
    assert make_accelerator("cpu").device.type == "cpu"


def test_qa_settings_are_defined_once():
    """The config's qa: section is the heads' QASettings (one definition; old names stay)."""
    from flare.heads import QASettings
    from flare.pipeline.config import QAConfig
    from flare.pipeline.qa import QASettings as old_name

    assert QAConfig is QASettings is old_name
