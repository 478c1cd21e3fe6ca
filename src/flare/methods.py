"""The one table of stage-3 methods: what each reads, whether it trains, which model it builds.

Every other module asks this table instead of spelling out method names: the config checks a
method name against it, the features read the sides it names, the stage-3 builder picks the
model kind, the runner adds the no-English row where it says so, the report orders its rows by
it. A new method that reuses a model kind is one `register_method` call (docs/extending.md):

    from flare.methods import MethodSpec, register_method
    register_method(MethodSpec("lora-english", "LoRA trained on the English side", trained=True,
                               input="english"))

Model kinds (`MethodSpec.model`), built by `flare.pipeline.stages`:
- ``stage1``: the stage-1 model as it is (nothing trained in stage 3);
- ``flare``: a FlareModel over the stage-1 model (with no source it is exactly PEFT's LoRA);
- ``xmixup``: the X-Mixup baseline (flare.baselines.xmixup).
"""

from __future__ import annotations

from dataclasses import dataclass

from flare.errors import ConfigError

INPUTS = ("target", "english", "both")  # both: English then the target text, one input
SOURCES = (None, "english", "encoder")  # english: the English side through the frozen model; encoder: MT encoder states
MODELS = ("stage1", "flare", "xmixup")


@dataclass(frozen=True)
class MethodSpec:
    name: str
    description: str
    trained: bool  # stage 3 trains an adapter on the target language
    input: str = "target"  # what the model reads as input (INPUTS)
    source: str | None = None  # what it fuses or mixes in (SOURCES)
    model: str = "flare"  # the stage-3 model kind (MODELS)
    fuses: bool = False  # has FLARE's fusion settings (fusion, source_layer_offset, alignment)
    no_english_row: bool = False  # also scored with no source at test time ("<name>-no-english")

    def __post_init__(self) -> None:
        for value, valid, what in ((self.input, INPUTS, "input"), (self.source, SOURCES, "source"),
                                   (self.model, MODELS, "model")):
            if value not in valid:
                raise ConfigError(f"method {self.name}: {what} must be one of {valid}, got {value!r}")
        if self.model == "stage1" and self.trained:
            raise ConfigError(f"method {self.name}: a stage1 model has nothing to train")

    @property
    def reads_english(self) -> bool:
        """The method needs each example's English partner."""
        return self.input != "target" or self.source == "english"

    def scored_on_english(self, task_kind: str) -> bool:
        """Scored against the English partner's gold: a QA method that reads only the English side
        answers in English. A class label is the same in both languages: classification is always
        scored on the target example's label."""
        return self.input == "english" and task_kind == "qa"


_METHODS: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec, replace: bool = False) -> MethodSpec:
    """Add a method (its name must be new unless `replace`); it is then valid in configs and runs."""
    if spec.name in _METHODS and not replace:
        raise ConfigError(f"method {spec.name!r} is already registered (pass replace=True to change it)")
    _METHODS[spec.name] = spec
    return spec


def get_method(name: str) -> MethodSpec:
    try:
        return _METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown method {name!r}; valid methods: {', '.join(_METHODS)}") from None


def method_names(trained: bool | None = None) -> tuple[str, ...]:
    """Every registered method in table order (the report's row order); only trained or untrained ones."""
    return tuple(n for n, s in _METHODS.items() if trained is None or s.trained == trained)


for _spec in (
    MethodSpec("zero-shot", "the stage-1 English model on the target text", trained=False, model="stage1"),
    MethodSpec("translate-test", "the stage-1 English model on the English side", trained=False,
               input="english", model="stage1"),
    MethodSpec("lora", "LoRA trained on the target text (translate-train)", trained=True),
    MethodSpec("input-fusion", "LoRA on English and target text in one input", trained=True, input="both"),
    MethodSpec("xmixup", "X-Mixup: hidden states of both sides mixed", trained=True, source="english",
               model="xmixup"),
    MethodSpec("flare", "FLARE: low-rank fusion with the English side's states", trained=True,
               source="english", fuses=True, no_english_row=True),
    MethodSpec("flare-mt", "FLARE fused with an MT encoder's states of the target text", trained=True,
               source="encoder", fuses=True),
):
    register_method(_spec)


def __getattr__(name: str):
    """`METHOD_NAMES`: every registered method's name, in table order, at the time it is read."""
    if name == "METHOD_NAMES":
        return method_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
