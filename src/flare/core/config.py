"""FlareConfig: everything that defines a FLARE adapter, validated, saved as JSON."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from flare.core.alignment import ALIGNMENTS
from flare.errors import ConfigError
from flare.io import write_text_atomic

CONFIG_NAME = "flare_config.json"
SOURCE_KINDS = ("model", "encoder")  # the stage-1 model's own pass, or an external (MT) encoder


@dataclass
class FlareConfig:
    """Configuration of a FLARE adapter.

    y = W x_t + s * B(phi(A x_s, A x_t)) in every fusing module, s = alpha / r.
    """

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    # Where LoRA goes: module-name suffixes, "all-linear", or a regex (a single string).
    # None: the model family's attention query and value projections.
    target_modules: list[str] | str | None = None
    # Which LoRA modules fuse (a subset of target_modules). None: query and value projections.
    fuse_modules: list[str] | str | None = None
    fusion: str = "add_relu"
    # Block i fuses the source states of block i + k; the paper's text says k = 1, the
    # authors' code does k = 0.
    source_layer_offset: int = 1
    # How target and source positions pair up for the position-wise fusions (alignment.py):
    # "start" pairs the first real tokens, "end" the last tokens of the prompt (decoders).
    alignment: str = "start"
    cross_attention_heads: int = 1
    # Modules trained in full and saved with the adapter (task heads). None: found from the
    # model class (classifier, score, qa_outputs); [] for none.
    modules_to_save: list[str] | None = None
    # "model": English input through the frozen stage-1 model (FLARE).
    # "encoder": states of an external encoder, e.g. a translation encoder (FLARE-MT),
    # mapped to the model's hidden size by a trained linear projection.
    source_kind: str = "model"
    source_encoder_dim: int | None = None  # hidden size of that encoder (source_kind="encoder")
    init_seed: int | None = None  # seeds the adapter initialisation when set

    # The base model, for loading the saved adapter in one call (FlareModel.from_pretrained(folder)):
    # its hub id or path (default: the path the model was loaded from), revision and class.
    base_model_name_or_path: str | None = None
    base_model_revision: str | None = None
    base_model_class: str | None = None
    # What the model card says (all optional): task, method, languages (codes), metrics {name: value}.
    card: dict = field(default_factory=dict)

    # Filled in by get_flare_model: resolved names, for reproducibility and reload checks.
    resolved_target_modules: list[str] = field(default_factory=list)
    resolved_fuse_modules: list[str] = field(default_factory=list)
    base_fingerprint: str | None = None
    environment: dict = field(default_factory=dict)  # library versions when saved

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        from flare.core.fusion import FUSIONS  # late import: fusion registers at import time

        if not isinstance(self.r, int) or self.r < 1:
            raise ConfigError(f"r must be a positive integer, got {self.r!r}")
        if not self.alpha > 0:
            raise ConfigError(f"alpha must be positive, got {self.alpha!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.fusion not in FUSIONS:
            raise ConfigError(
                f"unknown fusion {self.fusion!r}; valid fusion functions: {', '.join(sorted(FUSIONS))}"
            )
        if not isinstance(self.source_layer_offset, int) or self.source_layer_offset < 0:
            raise ConfigError(
                f"source_layer_offset must be an integer >= 0, got {self.source_layer_offset!r}"
            )
        if self.alignment not in ALIGNMENTS:
            raise ConfigError(f"alignment must be one of {ALIGNMENTS}, got {self.alignment!r}")
        if self.cross_attention_heads < 1 or self.r % self.cross_attention_heads:
            raise ConfigError(
                f"cross_attention_heads ({self.cross_attention_heads}) must divide r ({self.r})"
            )
        if self.source_kind not in SOURCE_KINDS:
            raise ConfigError(f"source_kind must be one of {SOURCE_KINDS}, got {self.source_kind!r}")
        if self.source_kind == "encoder" and not self.source_encoder_dim:
            raise ConfigError("source_kind='encoder' needs source_encoder_dim (the encoder's hidden size)")
        for name in ("target_modules", "fuse_modules"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, list, tuple)):
                raise ConfigError(f"{name} must be a list of names or a regex string, got {value!r}")
            if isinstance(value, tuple):
                setattr(self, name, list(value))

    @property
    def scaling(self) -> float:
        return self.alpha / self.r

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FlareConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown FlareConfig keys: {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}")
        return cls(**data)

    def save(self, directory: str | Path) -> Path:
        return write_text_atomic(Path(directory) / CONFIG_NAME, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> "FlareConfig":
        path = Path(directory) / CONFIG_NAME
        if not path.is_file():
            raise ConfigError(f"no {CONFIG_NAME} in {directory}: is this a folder written by save_pretrained?")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path} is not valid JSON: {err}") from err
        return cls.from_dict(data)
