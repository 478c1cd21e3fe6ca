"""Every config shipped in configs/ loads: known keys, right types, known methods."""

from pathlib import Path

import pytest

from flare.pipeline.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").rglob("*.yaml"))


def test_configs_are_shipped():
    assert any(p.name == "nusax-e5-small.yaml" for p in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_loads(path):
    config = load_config(path)
    assert config.methods and config.languages
