"""The experiment configuration: typed dataclasses that a YAML file and command-line
overrides (``train.learning_rate=1e-4``) both fill, with clear errors for unknown keys,
wrong types and unknown method names.

One concern, kept whole (about 440 lines): the config builder and its dataclasses read best
together.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flare.baselines.xmixup.config import XMixupConfig
from flare.errors import ConfigError
from flare.heads.settings import QASettings as QAConfig  # the qa: section (extractive QA settings)
from flare.methods import get_method, method_names


def __getattr__(name: str):
    """`METHODS` and `TRAINED_METHODS` (older names): the registered methods now (flare.methods)."""
    if name == "METHODS":
        return method_names()
    if name == "TRAINED_METHODS":
        return method_names(trained=True)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    checkpoint_steps: int | None = None  # also checkpoint every N steps (always after each evaluation)
    # convergence (docs/pipeline.md, "Training to convergence"): `epochs` is the maximum
    eval_every: int | str = "epoch"  # "epoch", "N epochs" or "N steps" (optimizer steps)
    patience: int | None = None  # stop after this many evaluations without a better validation score
    gradient_accumulation_steps: int = 1  # optimizer step every N batches (accelerate's accumulate)
    max_grad_norm: float | None = None  # clip the gradient norm (accelerate's clip_grad_norm_); None: no clipping
    # a learned fusion's own parameters (gated_add_relu's gate, cross_attention's projections) train at
    # learning_rate * fusion_lr_ratio (docs/core.md, "Fusion functions"); no effect on other methods
    fusion_lr_ratio: float = 1.0

    def __post_init__(self) -> None:
        self.eval_interval()  # a bad eval_every fails when the config is read
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience must be at least 1 (or null: no early stopping), got {self.patience}")
        if self.gradient_accumulation_steps < 1:
            raise ConfigError(f"gradient_accumulation_steps must be at least 1, got {self.gradient_accumulation_steps}")
        if self.fusion_lr_ratio <= 0:
            raise ConfigError(f"fusion_lr_ratio must be positive, got {self.fusion_lr_ratio}")
        if self.epochs <= 0 or self.learning_rate <= 0 or self.batch_size < 1:
            raise ConfigError("epochs and learning_rate must be positive and batch_size at least 1, got "
                              f"{self.epochs}, {self.learning_rate}, {self.batch_size}")

    def eval_interval(self) -> tuple[int, str]:
        """`eval_every` as (count, "epochs" or "steps")."""
        text = str(self.eval_every).strip().lower()
        if text == "epoch":
            return 1, "epochs"
        parts = text.split()
        unit = parts[1] if len(parts) == 2 else ""
        unit = {"epoch": "epochs", "step": "steps"}.get(unit, unit)
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) < 1 or unit not in ("epochs", "steps"):
            raise ConfigError(f"eval_every must be 'epoch', 'N epochs' or 'N steps' (N >= 1), got {self.eval_every!r}")
        return int(parts[0]), unit


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
    """One stage-3 run type. ``name`` labels results; ``method`` is a registered method
    (flare.methods); the other
    fields override the adapter settings for this method only (e.g. an offset-0 FLARE)."""

    name: str
    method: str = ""
    fusion: str | None = None
    source_layer_offset: int | None = None
    alignment: str | None = None
    train: dict[str, Any] = field(default_factory=dict)  # this method's own training settings (e.g. learning_rate)
    search: dict[str, Any] | None = None  # grid values of this method (replace the global grid's same keys)

    def __post_init__(self) -> None:
        self.method = self.method or self.name
        get_method(self.method)  # an unknown name fails here, listing the valid ones
        check_fusion_settings(self.fusion, self.alignment, f"method {self.name}")

    @property
    def spec(self):
        """What the method reads, trains and builds (flare.methods.MethodSpec)."""
        return get_method(self.method)

    def adapter(self, base: AdapterConfig) -> AdapterConfig:
        overrides = {k: v for k, v in (("fusion", self.fusion), ("source_layer_offset", self.source_layer_offset),
                                       ("alignment", self.alignment)) if v is not None}
        return dataclasses.replace(base, **overrides)

    def train_config(self, base: TrainConfig, point: dict[str, Any] | None = None) -> TrainConfig:
        """The training settings of this method: the experiment's, its own `train:` settings, then
        a grid point's training settings (checked and converted like the file's own settings)."""
        point = {k: v for k, v in (point or {}).items() if k not in METHOD_SEARCH_KEYS}
        return train_with(base, {**self.train, **point}, f"method {self.name}")

    def at(self, point: dict[str, Any] | None) -> MethodConfig:
        """This method with a grid point's method settings (fusion, source_layer_offset, alignment:
        `METHOD_SEARCH_KEYS`) in place of its own; the same name, so its results stay where they are."""
        changes = {k: v for k, v in (point or {}).items() if k in METHOD_SEARCH_KEYS}
        return dataclasses.replace(self, **changes) if changes else self


# the method settings a search grid may vary too (FLARE's variants chosen on validation)
METHOD_SEARCH_KEYS = ("fusion", "source_layer_offset", "alignment")


def train_with(base: TrainConfig, settings: dict[str, Any], where: str) -> TrainConfig:
    if not settings:
        return base
    return build(TrainConfig, {**_train_dict(base), **settings}, f"{where}: train")


def _train_dict(config: TrainConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


@dataclass
class SearchConfig:
    """Per-method hyperparameter selection on validation (`flare tune`; docs/pipeline.md, "How to
    tune"): every point of `grid` (training setting -> values) is trained on the validation split of
    `languages` x `seeds`; the best mean validation score picks each method's settings."""

    grid: dict[str, Any] = field(default_factory=dict)
    languages: list[str] | None = None  # None: every language of the experiment
    seeds: list[int] | None = None  # None: the experiment's first seed
    methods: list[str] | None = None  # the methods tuned (their names); None: every trained method

    def method_grid(self, method: MethodConfig) -> dict[str, list]:
        """The grid of one method: the global grid, the method's own `search:` keys replacing its
        keys; empty when the method is not tuned."""
        if not get_method(method.method).trained or (self.methods is not None and method.name not in self.methods):
            return {}
        grid = {**self.grid, **(method.search or {})}
        hints = typing.get_type_hints(TrainConfig)
        method_hints = typing.get_type_hints(MethodConfig)
        fusion_method = get_method(method.method).fuses
        for key, values in grid.items():
            where = f"search of method {method.name}: {key}"
            if key in METHOD_SEARCH_KEYS and not fusion_method:
                raise ConfigError(f"{where}: only a FLARE method has fusion settings to search, not {method.method}")
            if key not in hints and key not in METHOD_SEARCH_KEYS:
                raise ConfigError(f"search of method {method.name}: {key!r} is not a training setting; valid: "
                                  f"{', '.join(sorted(hints))} (and, for a FLARE method, {', '.join(METHOD_SEARCH_KEYS)})")
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{where} must be a non-empty list of values, got {values!r}")
            kind = hints[key] if key in hints else method_hints[key]
            grid[key] = [_convert(kind, value, f"{where}[{i}]") for i, value in enumerate(values)]
            if key == "fusion":
                for value in grid[key]:
                    check_fusion_settings(value, None, where)
            if key == "alignment":
                for value in grid[key]:
                    check_fusion_settings(None, value, where)
        return grid


@dataclass
class TranslationConfig:
    """Stage 2. ``model: null`` uses the human translations of parallel data (NusaX, XNLI, XQuAD).
    ``mode: paper``: train/validation are MT of the English data, the test English side is MT of the
    target; ``mode: mt-english``: the human target text stays and only the English side of
    validation and test is MT of it (``mt_train``: the training target text too is MT of the
    English). ``kind``, ``shots``, ``prompt``: docs/translation.md."""

    model: str | None = None
    kind: str = "auto"  # "seq2seq" or "causal-lm" (a prompted LM); auto: read from the model's config
    mode: str = "paper"  # or "mt-english"
    mt_train: bool = False  # mt-english: also replace the human target training text with MT of the English
    batch_size: int = 16
    num_beams: int = 1
    max_length: int = 256  # seq2seq: input tokens; both: new tokens
    max_prompt_length: int = 1024  # causal-lm: prompt tokens (cut from the left: first examples go first)
    shots: int = 3  # causal-lm: example pairs in the prompt, from the validation split
    prompt: str | None = None  # causal-lm: a template with {source_language}, {target_language}, {text} ({examples})

    def __post_init__(self) -> None:
        if self.kind not in ("auto", "seq2seq", "causal-lm"):
            raise ConfigError(f"translation.kind must be auto, seq2seq or causal-lm, got {self.kind!r}")
        if self.mode not in ("paper", "mt-english"):
            raise ConfigError(f"translation.mode must be paper or mt-english, got {self.mode!r}")
        if self.mt_train and self.mode != "mt-english":
            raise ConfigError("translation.mt_train only applies to mode: mt-english (paper mode always "
                              "machine-translates the training data)")
        if self.shots < 0 or self.batch_size < 1 or self.max_length < 1 or self.max_prompt_length < 1:
            raise ConfigError("translation.shots must be 0 or more, batch_size, max_length and max_prompt_length "
                              f"at least 1; got {self.shots}, {self.batch_size}, {self.max_length}, "
                              f"{self.max_prompt_length}")
        if self.prompt is not None and "{text}" not in self.prompt:
            raise ConfigError("translation.prompt must contain {text}, where the text to translate goes")


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
    stage1_seeds: list[int] | None = None  # one stage-1 model per seed: seeds[i] trains on stage1_seeds[i]
    stage1_from: str | None = None  # another experiment's output_dir: reuse its stage-1 models, train none here
    # a stage-1 retrain (weights not on disk) that leaves its record while results built on the recorded
    # model exist: "stop" (an error, the record kept) or "continue" (build on the new model, record replaced)
    stage1_mismatch: str = "stop"
    train: TrainConfig = field(default_factory=TrainConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    no_english_rows: bool = True  # also score every flare adapter with no source at test ("<name>-no-english")
    translation: TranslationConfig = field(default_factory=TranslationConfig)
    qa: QAConfig = field(default_factory=QAConfig)
    mt_encoder: str | None = None  # flare-mt's encoder; None: the task model's own encoder
    xmixup: XMixupConfig = field(default_factory=XMixupConfig)  # checked here, not when xmixup trains
    device: str = "auto"  # "auto", "cpu", "cuda", "mps" (a missing device is an error, not a fall-back)
    precision: str = "no"  # "no", "bf16", "fp16"
    threads: int | None = None  # torch CPU threads; None leaves torch's default
    tensorboard: bool = False  # the same as log_with: [tensorboard]
    log_with: list[str] = field(default_factory=list)  # accelerate trackers: tensorboard, wandb, mlflow, ...
    trust_remote_code: bool = False
    revision: str | None = None  # a hub model's branch, tag or commit (passed to from_pretrained); recorded
    dtype: str | None = None  # weights of the base model: bfloat16, float16, float32 (null: as saved)
    quantization: str | None = None  # "4bit" (NF4, as the paper's decoders) or "8bit" (bitsandbytes)
    resume: bool = False  # continue interrupted runs from their last checkpoint

    def __post_init__(self) -> None:
        if isinstance(self.xmixup, dict):  # built in code with plain settings
            self.xmixup = build(XMixupConfig, self.xmixup, "xmixup")
        try:
            self.xmixup.validate()
        except ConfigError as err:
            raise ConfigError(f"xmixup: {err}") from None
        if not self.languages:
            raise ConfigError("languages is empty: name at least one target language")
        if not self.seeds:
            raise ConfigError("seeds is empty: give at least one seed")
        names = [m.name for m in self.methods]
        if len(set(names)) != len(names):
            raise ConfigError(f"method names must be unique, got {names}")
        if self.stage1_mismatch not in ("stop", "continue"):
            raise ConfigError(f"stage1_mismatch must be stop or continue, got {self.stage1_mismatch!r}")
        if self.precision not in ("no", "bf16", "fp16"):
            raise ConfigError(f"precision must be no, bf16 or fp16, got {self.precision!r}")
        from accelerate.tracking import LOGGER_TYPE_TO_CLASS

        unknown = [name for name in self.log_with if name not in LOGGER_TYPE_TO_CLASS]
        if unknown:
            raise ConfigError(f"log_with: unknown tracker {unknown[0]!r}; accelerate's trackers: "
                              f"{', '.join(sorted(LOGGER_TYPE_TO_CLASS))}")
        if self.device not in ("auto", "cpu", "cuda", "mps"):
            raise ConfigError(f"device must be auto, cpu, cuda or mps, got {self.device!r} "
                              "(one GPU of several: set CUDA_VISIBLE_DEVICES)")
        if self.stage1_seeds is not None and len(self.stage1_seeds) != len(self.seeds):
            raise ConfigError(f"stage1_seeds {self.stage1_seeds} must have one seed per seed of seeds {self.seeds} "
                              "(seeds[i] is paired with stage1_seeds[i])")
        if self.stage1_seeds is not None and not set(self.search.seeds or []) <= set(self.seeds):
            raise ConfigError(f"search.seeds {self.search.seeds} must be among seeds {self.seeds} with stage1_seeds "
                              "(each seed has its own stage-1 model)")
        unknown = sorted(set(self.search.languages or []) - set(self.languages))
        if unknown:
            raise ConfigError(f"search.languages {unknown} are not among languages {self.languages}")
        unknown = sorted(set(self.search.methods or []) - set(names))
        if unknown:
            raise ConfigError(f"search.methods {unknown} are not method names of the config ({', '.join(names)})")
        for method in self.methods:
            method.train_config(self.train)
            for point in grid_points(self.search.method_grid(method)):
                method.train_config(self.train, point)

    def stage1_seed_for(self, seed: int) -> int | None:
        """The stage-1 seed a stage-3 seed builds on; None: the one shared stage-1 model."""
        if self.stage1_seeds is None:
            return None
        if seed in self.seeds:
            return self.stage1_seeds[self.seeds.index(seed)]
        raise ConfigError(f"seed {seed} is not in seeds {self.seeds}, so it has no stage-1 seed of stage1_seeds")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def grid_points(grid: dict[str, list]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in the file's order (the last key varies fastest)."""
    import itertools

    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))] if keys else []


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
    if hint is str and isinstance(value, bool):  # YAML 1.1 reads no/yes/off/on as booleans
        raise ConfigError(f"{where}: expected a string, got the boolean {value!r}: YAML reads an unquoted "
                          f"no, yes, off or on as a boolean; quote it ({where}: \"no\", or {where}='\"no\"' "
                          "on the command line)")
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
