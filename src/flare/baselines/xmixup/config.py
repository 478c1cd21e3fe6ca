"""X-Mixup's settings: the XMixupConfig dataclass, the authors' presets and the scheduled sampling
of the source side. Plain Python (no torch), so the experiment config can check it when it is read."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from flare.errors import ConfigError

LAMBDA_MODES = ("entropy", "fixed")
POOLINGS = ("auto", "first", "mean", "last")
EVAL_LOGITS = ("average", "target")

# The authors' scripts (XLM-R Large, 24 blocks), as presets. Layer indices are 0-based blocks.
_PRESETS = {
    "classification": dict(mix_layer=0, source_task_weight=0.4, kl_weight=1.0, mse_weight=1.0,
                           rep_pooling="first", eval_logits="average"),
    "qa": dict(mix_layer=15, source_task_weight=0.2, kl_weight=0.0, mse_weight=1.0,
               rep_pooling="mean", eval_logits="target"),
}


def gold_source_probability(step: int, k: float = 1000.0) -> float:
    """Scheduled sampling of the source side (the authors' inverse-sigmoid decay): the probability
    of feeding the gold English source at training step `step`, else the back-translated one, so
    that training drifts towards the machine-translated English seen at test time."""
    if k <= 0:
        raise ConfigError(f"scheduled-sampling k must be positive, got {k}")
    exponent = step / k
    if exponent > 700:  # exp overflows; the probability is 0 to double precision anyway
        return 0.0
    return k / (k + math.exp(exponent))


@dataclass
class XMixupConfig:
    """Settings of X-Mixup. Defaults follow the authors' sentence-classification setting."""

    mix_layer: int = 0
    """0-based index of the transformer block after which source and target are mixed (negative
    counts from the end)."""
    num_heads: int | None = None
    """Heads of the mixing cross-attention; None: the model's number of attention heads."""
    lambda_mode: str = "entropy"
    """'entropy': lambda = lambda_0 * sigmoid(w * H + b), learned w, b; 'fixed': lambda = lambda_0."""
    lambda_0: float = 0.5
    entropy_weight_init: float = 1.0
    entropy_bias_init: float = 0.0
    source_task_weight: float = 0.4
    """alpha: weight of the source's task loss; the target's gets 1 - alpha."""
    kl_weight: float = 1.0
    """Weight of KL(p_source || p_target) between the output distributions."""
    mse_weight: float = 1.0
    """Weight of the mean squared error between pooled final hidden states."""
    rep_pooling: str = "auto"
    """Pooling of the final hidden states for the MSE term: 'first' token, masked 'mean', 'last'
    real token, or 'auto' ('first' for encoders, 'mean' for decoders)."""
    normalize_qk: bool = True
    """Layer-normalise (no parameters) the inputs of the query and key projections, so attention
    logits have one scale across architectures (pre-norm residual streams are not normalised)."""
    attention_dropout: float = 0.0
    mix_at_eval: bool = True
    """In eval mode, mix when a source (translate-test) is given, as the authors do; False: ignore
    the source at evaluation and run the target alone."""
    eval_logits: str = "average"
    """In eval mode with a source: 'average' returns (source + target logits) / 2 where they have
    the same shape (the authors' classification inference), 'target' the mixed target's logits."""
    blocks_path: str | None = None
    """Name of the ModuleList of blocks (relative to the task model, e.g. 'bert.encoder.layer');
    None: found automatically."""

    def validate(self) -> "XMixupConfig":
        if self.lambda_mode not in LAMBDA_MODES:
            raise ConfigError(f"lambda_mode must be one of {LAMBDA_MODES}, got {self.lambda_mode!r}")
        if not 0.0 <= self.lambda_0 <= 1.0:
            raise ConfigError(f"lambda_0 must lie in [0, 1], got {self.lambda_0}")
        if not 0.0 <= self.source_task_weight <= 1.0:
            raise ConfigError(f"source_task_weight must lie in [0, 1], got {self.source_task_weight}")
        for name in ("kl_weight", "mse_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.rep_pooling not in POOLINGS:
            raise ConfigError(f"rep_pooling must be one of {POOLINGS}, got {self.rep_pooling!r}")
        if self.eval_logits not in EVAL_LOGITS:
            raise ConfigError(f"eval_logits must be one of {EVAL_LOGITS}, got {self.eval_logits!r}")
        if self.num_heads is not None and self.num_heads < 1:
            raise ConfigError(f"num_heads must be >= 1, got {self.num_heads}")
        if not 0.0 <= self.attention_dropout < 1.0:
            raise ConfigError(f"attention_dropout must lie in [0, 1), got {self.attention_dropout}")
        return self

    @classmethod
    def paper_preset(cls, task: str, num_layers: int = 24, **overrides) -> "XMixupConfig":
        """The authors' settings for 'classification' (XNLI, PAWS-X) or 'qa' (MLQA, XQuAD, TyDiQA),
        with the mix layer scaled from their 24-block XLM-R Large to `num_layers` blocks."""
        if task not in _PRESETS:
            raise ConfigError(f"no X-Mixup preset for task {task!r}; known: {sorted(_PRESETS)}")
        values = dict(_PRESETS[task])
        values["mix_layer"] = min(num_layers - 1, round(values["mix_layer"] * num_layers / 24))
        values.update(overrides)
        return cls(**values).validate()

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "XMixupConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown X-Mixup settings: {sorted(unknown)}")
        return cls(**values).validate()
