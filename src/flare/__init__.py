"""FLARE: language fusion for parameter-efficient cross-lingual transfer.

The names below are imported when first used (PEP 562), so `import flare` and `flare --help` do
not load torch, transformers and PEFT.
"""

from flare.lazy import lazy_exports
import logging

# PEFT imports bitsandbytes, which warns at every start (on CPUs with AVX512-BF16) that the optional
# `kernels` package is missing. It then uses its own CPU kernel, so the warning only alarms users.
logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(
    lambda record: "kernels-community" not in record.getMessage())

__version__ = "0.1.0"

_EXPORTS = {
    "FUSIONS": "flare.core.fusion",
    "register_fusion": "flare.core.fusion",
    "FlareConfig": "flare.core.config",
    "FlareModel": "flare.core.model",
    "get_flare_model": "flare.core.model",
    "SourceStates": "flare.core.states",
    "ConfigError": "flare.errors",
    "DataError": "flare.errors",
    "FlareError": "flare.errors",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
