"""FLARE: language fusion for parameter-efficient cross-lingual transfer."""

import logging

# PEFT imports bitsandbytes, which warns at every start (on CPUs with AVX512-BF16) that the optional
# `kernels` package is missing. It then uses its own CPU kernel, so the warning only alarms users.
logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(
    lambda record: "kernels-community" not in record.getMessage())

from flare.core.config import FlareConfig
from flare.core.fusion import FUSIONS, register_fusion
from flare.core.model import FlareModel, get_flare_model
from flare.core.states import SourceStates
from flare.errors import ConfigError, DataError, FlareError

__version__ = "0.1.0"

__all__ = [
    "FUSIONS",
    "ConfigError",
    "DataError",
    "FlareConfig",
    "FlareError",
    "FlareModel",
    "SourceStates",
    "get_flare_model",
    "register_fusion",
]
