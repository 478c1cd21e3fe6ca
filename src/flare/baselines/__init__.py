"""Baselines that FLARE is compared with."""

from flare.baselines.xmixup import (
    XMixupConfig,
    XMixupMixer,
    XMixupModel,
    XMixupOutput,
    find_transformer_blocks,
    gold_source_probability,
)

__all__ = [
    "XMixupConfig",
    "XMixupMixer",
    "XMixupModel",
    "XMixupOutput",
    "find_transformer_blocks",
    "gold_source_probability",
]
