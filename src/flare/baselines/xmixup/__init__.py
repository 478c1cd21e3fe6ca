"""X-Mixup (Yang, Chen, Zhou, Li: "Enhancing Cross-lingual Transfer by Manifold Mixup", ICLR 2022).

A PyTorch reimplementation from the method's description (the authors published TensorFlow code only;
see docs/xmixup.md for what was followed, what could not be confirmed and what we chose).

The source (English) and the target input of a translation pair run through the same model. At one
transformer block (the mix layer) the target's hidden states attend over the source's, and the
result is interpolated with the target's own states:

    C      = CrossAttention(query = h_T, key = value = h_S)      (source padding masked)
    h_T'   = (1 - lambda) * h_T + lambda * C
    lambda = lambda_0 * sigmoid(w * H + b)                        (per example)

where H is the entropy of the cross-attention, taken in both directions (target over source plus
source over target, each averaged over heads and real positions) as a proxy for how well the two
sides align (translation quality), and w, b are learned. The blocks above the mix layer see h_T'.
The training loss is

    alpha * L_task(source) + (1 - alpha) * L_task(target)
        + kl_weight * KL(p_source || p_target) + mse_weight * MSE(r_source, r_target)

with r a pooled final hidden state. Everything is done through forward hooks on the wrapped
transformers model (plain or PEFT-wrapped); no modeling file is copied.

The package: ``config`` (XMixupConfig, presets, scheduled sampling; no torch), ``mixer`` (the
cross-attention and the gated interpolation), ``model`` (XMixupModel: hooks, loss, generation,
saving). The names below are imported when first used (PEP 562), so reading the experiment
config, which checks ``xmixup:`` settings with XMixupConfig, does not load torch.
"""

from flare.lazy import lazy_exports

_EXPORTS = {
    "EVAL_LOGITS": "flare.baselines.xmixup.config",
    "LAMBDA_MODES": "flare.baselines.xmixup.config",
    "POOLINGS": "flare.baselines.xmixup.config",
    "XMixupConfig": "flare.baselines.xmixup.config",
    "gold_source_probability": "flare.baselines.xmixup.config",
    "XMixupMixer": "flare.baselines.xmixup.mixer",
    "pair_entropy": "flare.baselines.xmixup.mixer",
    "CONFIG_NAME": "flare.baselines.xmixup.model",
    "WEIGHTS_NAME": "flare.baselines.xmixup.model",
    "XMixupModel": "flare.baselines.xmixup.model",
    "XMixupOutput": "flare.baselines.xmixup.model",
    "find_transformer_blocks": "flare.baselines.xmixup.model",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
