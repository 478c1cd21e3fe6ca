"""The experiment configuration: typed dataclasses that a YAML file and command-line
overrides (``train.learning_rate=1e-4``) both fill, with clear errors for unknown keys,
wrong types and unknown method names."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flare.errors import ConfigError

METHODS = ("zero-shot", "translate-test", "lora", "flare", "flare-mt", "input-fusion", "xmixup")
TRAINED_METHODS = ("lora", "flare", "flare-mt", "input-fusion", "xmixup")


@dataclass
class TrainConfig:
    epochs: float = 3.0
    learning_rate: float = 2e-4
    batch_size: int = 16
    eval_batch_size: int = 64
    max_length: int = 128
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    max_train_examples: int | None = None  # a fixed, seeded subset; None for all
    max_eval_examples: int | None = None  # validation (and stage 1's English test): a seeded subset; None for all
    gradient_checkpointing: bool = False
    group_by_length: bool = True  # batches of similar lengths (less padding), in random order
    source_cache: bool = True  # flare: source states computed once, not a source pass every step
    source_cache_dtype: str = "float16"
    source_cache_limit_mb: int | None = 8192
    source_cache_dir: str | None = None  # also keep the states on disk (memory-mapped) for later runs
    checkpoint_steps: int | None = None  # also checkpoint every N steps (always after each epoch)


def check_fusion_settings(fusion: str | None, alignment: str | None, where: str) -> None:
    """Fail when the config is read, not at stage 3 after stage 1 has trained."""
    from flare.core.alignment import ALIGNMENTS
    from flare.core.fusion import FUSIONS

    if fusion is not None and fusion not in FUSIONS:
        raise ConfigError(f"{where}: unknown fusion {fusion!r}; valid fusion functions: {', '.join(sorted(FUSIONS))}")
    if alignment is not None and alignment not in ("auto", *ALIGNMENTS):
        raise ConfigError(f"{where}: alignment must be auto, {' or '.join(ALIGNMENTS)}, got {alignment!r}")


@dataclass
class AdapterConfig:
    """LoRA settings (both stages) and FLARE's fusion settings (stage 3)."""

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: list[str] | str | None = None  # None: query/value (encoders), all-linear (decoders)
    fusion: str = "add_relu"
    source_layer_offset: int = 1
    alignment: str = "auto"  # "start", "end"; "auto": "end" for decoders, else "start" (docs/core.md)
    cross_attention_heads: int = 1

    def __post_init__(self) -> None:
        check_fusion_settings(self.fusion, self.alignment, "adapter")


@dataclass
class MethodConfig:
    """One stage-3 run type. ``name`` labels results; ``method`` is one of METHODS; the other
    fields override the adapter settings for this method only (e.g. an offset-0 FLARE)."""

    name: str
    method: str = ""
    fusion: str | None = None
    source_layer_offset: int | None = None
    alignment: str | None = None

    def __post_init__(self) -> None:
        self.method = self.method or self.name
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r}; valid methods: {', '.join(METHODS)}")
        check_fusion_settings(self.fusion, self.alignment, f"method {self.name}")

    def adapter(self, base: AdapterConfig) -> AdapterConfig:
        overrides = {k: v for k, v in (("fusion", self.fusion), ("source_layer_offset", self.source_layer_offset),
                                       ("alignment", self.alignment)) if v is not None}
        return dataclasses.replace(base, **overrides)


@dataclass
class QAConfig:
    """Extractive QA settings (tasks tydiqa, xquad); see docs/pipeline.md."""

    doc_stride: int | None = None  # encoders: tokens shared by neighbouring windows; None: max_length // 4
    max_answer_length: int = 30  # encoders: longest predicted span, in tokens
    n_best: int = 20  # encoders: start and end candidates per window
    max_new_tokens: int = 32  # decoders: longest generated answer


@dataclass
class TranslationConfig:
    """Stage 2. ``model: null`` uses the human translations of parallel data (NusaX, XNLI, XQuAD)."""

    model: str | None = None
    batch_size: int = 16
    num_beams: int = 1
    max_length: int = 256


@dataclass
class ExperimentConfig:
    task: str = "nusax"
    model: str = "e5-small"
    languages: list[str] = field(default_factory=lambda: ["ind"])
    methods: list[MethodConfig] = field(default_factory=lambda: [MethodConfig("zero-shot")])
    seeds: list[int] = field(default_factory=lambda: [1])
    output_dir: str = "runs/experiment"
    data_dir: str | None = None
    task_options: dict[str, Any] = field(default_factory=dict)
    text_prefix: str = ""  # put before every input text (e5: "query: ")
    stage1: TrainConfig = field(default_factory=TrainConfig)
    stage1_seed: int = 1
    train: TrainConfig = field(default_factory=TrainConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    translation: TranslationConfig = field(default_factory=TranslationConfig)
    qa: QAConfig = field(default_factory=QAConfig)
    mt_encoder: str | None = None  # flare-mt's encoder; None: the task model's own encoder
    xmixup: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"  # "auto", "cpu", "cuda", "mps" (a missing device is an error, not a fall-back)
    precision: str = "no"  # "no", "bf16", "fp16"
    threads: int | None = None  # torch CPU threads; None leaves torch's default
    tensorboard: bool = False
    trust_remote_code: bool = False
    dtype: str | None = None  # weights of the base model: bfloat16, float16, float32 (null: as saved)
    quantization: str | None = None  # "4bit" (NF4, as the paper's decoders) or "8bit" (bitsandbytes)
    resume: bool = False  # continue interrupted runs from their last checkpoint

    def __post_init__(self) -> None:
        if not self.languages:
            raise ConfigError("languages is empty: name at least one target language")
        if not self.seeds:
            raise ConfigError("seeds is empty: give at least one seed")
        names = [m.name for m in self.methods]
        if len(set(names)) != len(names):
            raise ConfigError(f"method names must be unique, got {names}")
        if self.precision not in ("no", "bf16", "fp16"):
            raise ConfigError(f"precision must be no, bf16 or fp16, got {self.precision!r}")
        if self.device not in ("auto", "cpu", "cuda", "mps"):
            raise ConfigError(f"device must be auto, cpu, cuda or mps, got {self.device!r} "
                              "(one GPU of several: set CUDA_VISIBLE_DEVICES)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------- building
def build(cls, data: Any, where: str = ""):
    """Turn plain data (from YAML) into dataclass `cls`, checking keys and types."""
    if dataclasses.is_dataclass(cls):
        if isinstance(data, str) and cls is MethodConfig:
            return MethodConfig(data)
        if not isinstance(data, dict):
            raise ConfigError(f"{where or 'config'}: expected a mapping, got {data!r}")
        hints = typing.get_type_hints(cls)
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown key{'s' if len(unknown) > 1 else ''} "
                              f"{', '.join(_join(where, k) for k in unknown)}; valid keys here: {', '.join(sorted(known))}")
        kwargs = {key: _convert(hints[key], value, _join(where, key)) for key, value in data.items()}
        return cls(**kwargs)
    return _convert(cls, data, where)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _convert(hint, value, where: str):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} does not fit {_describe(hint)}")
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # YAML reads 5e-4 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if hint in (int, float) and isinstance(value, bool) or not isinstance(value, hint):
        raise ConfigError(f"{where}: expected {_describe(hint)}, got {value!r}")
    return value


def _describe(hint) -> str:
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    return getattr(hint, "__name__", str(hint))


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``a.b=value`` pairs (value parsed as YAML) set nested keys; they win over the file."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not KEY=VALUE (e.g. train.epochs=2)")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw else None
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
        node[parts[-1]] = value
    return data


def load_config(path: str | Path | None, overrides: list[str] = ()) -> ExperimentConfig:
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {err}") from err
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of settings")
    data = apply_overrides(data, list(overrides))
    try:
        return build(ExperimentConfig, data)
    except ConfigError as err:
        raise ConfigError(f"{path or 'config'}: {err}") from None


def save_config(config: ExperimentConfig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True))
