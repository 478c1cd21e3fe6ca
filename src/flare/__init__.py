"""FLARE: language fusion for parameter-efficient cross-lingual transfer."""

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
