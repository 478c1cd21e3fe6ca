"""Baselines that FLARE is compared with. The names below are imported when first used (PEP 562),
so that the experiment config can check X-Mixup settings without loading torch."""

from flare.lazy import lazy_exports

_EXPORTS = {
    "XMixupConfig": "flare.baselines.xmixup",
    "XMixupMixer": "flare.baselines.xmixup",
    "XMixupModel": "flare.baselines.xmixup",
    "XMixupOutput": "flare.baselines.xmixup",
    "find_transformer_blocks": "flare.baselines.xmixup",
    "gold_source_probability": "flare.baselines.xmixup",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
