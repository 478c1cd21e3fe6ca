"""XMixupModel: X-Mixup through forward hooks on a transformers model (plain or PEFT-wrapped): the
source pass, the mixing at one block, the X-Mixup loss, generation, saving and loading."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from flare.baselines.xmixup.config import XMixupConfig
from flare.baselines.xmixup.mixer import XMixupMixer
from flare.core.introspect import (
    attention_heads,
    fusing_stack,
    hidden_size,
    is_decoder_only,
    is_encoder_decoder,
    submodule_name,
    task_model,
    text_config,
)
from flare.core.wrapping import enable_gradient_checkpointing, parameter_counts, trainable_parameters
from flare.errors import ConfigError, FlareError
from flare.io import write_text_atomic
from flare.weights import load_weights_into, save_weights

CONFIG_NAME = "xmixup_config.json"
WEIGHTS_NAME = "xmixup_weights.safetensors"


@dataclass
class XMixupOutput(ModelOutput):
    """What XMixupModel.forward returns when a source takes part (else the wrapped model's output)."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    start_logits: torch.Tensor | None = None
    end_logits: torch.Tensor | None = None
    target_logits: torch.Tensor | None = None
    source_logits: torch.Tensor | None = None
    task_loss: torch.Tensor | None = None
    target_task_loss: torch.Tensor | None = None
    source_task_loss: torch.Tensor | None = None
    kl_loss: torch.Tensor | None = None
    mse_loss: torch.Tensor | None = None
    mixing_ratio: torch.Tensor | None = None
    target_representation: torch.Tensor | None = None
    source_representation: torch.Tensor | None = None


def find_transformer_blocks(model: nn.Module, blocks_path: str | None = None) -> tuple[str, nn.ModuleList]:
    """(name, ModuleList) of the numbered transformer blocks, e.g. ('bert.encoder.layer', ...) or
    ('model.layers', ...); names are relative to the task model under any PEFT wrapper."""
    inner = task_model(model)
    if blocks_path is not None:
        try:
            blocks = inner.get_submodule(blocks_path)
        except AttributeError as err:
            raise ConfigError(f"blocks_path {blocks_path!r} is not a submodule of the model") from err
        if not isinstance(blocks, nn.ModuleList) or len(blocks) == 0:
            raise ConfigError(f"blocks_path {blocks_path!r} is not a non-empty ModuleList")
        return blocks_path, blocks
    config = text_config(inner)
    expected = getattr(config, "num_hidden_layers", None) or getattr(config, "num_layers", None)
    stack = fusing_stack(inner)
    candidates = []
    for name, module in stack.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0 and \
                len({type(child) for child in module}) == 1:
            candidates.append((name, module))
    for name, module in candidates:
        if expected is None or len(module) == expected:
            break
    else:
        raise ConfigError(
            "could not find the transformer blocks (a ModuleList with one entry per layer) in "
            f"{type(inner).__name__}; set XMixupConfig.blocks_path, e.g. 'model.layers'"
        )
    prefix = submodule_name(inner, stack)
    full = f"{prefix}.{name}" if prefix and name else (prefix or name)
    return full, module


class _State:
    """What the hooks share with forward(); one per XMixupModel."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.mode = "off"  # off | capture | mix | replay | generate
        self.source_states = None
        self.source_mask = None
        self.target_mask = None
        self.source_input = None  # the mix block's inputs (held, so their storage stays unique)
        self.target_input = None
        self.lam = None
        self.frozen_lam = None
        self.attention = None
        self.final = None


def _first_tensor(args, kwargs):
    if args and torch.is_tensor(args[0]):
        return args[0]
    return kwargs.get("hidden_states")


def _same_tensor(a, b) -> bool:
    return a is not None and b is not None and a.data_ptr() == b.data_ptr() and a.shape == b.shape


class XMixupModel(nn.Module):
    """Wraps a transformers task model (plain or with a PEFT adapter) with X-Mixup.

    forward(input_ids, attention_mask, labels=None, source_input_ids=None, source_attention_mask=None,
    **kw): with a source, the source pass runs first through the same model and its hidden states at
    the mix layer are mixed into the target pass; returns an XMixupOutput whose .loss is the X-Mixup
    objective and .logits the target's. Keyword arguments named source_<name> go to the source pass
    as <name> (e.g. source_labels, source_token_type_ids, source_start_positions). With no source
    (or in eval mode with mix_at_eval=False), it returns the wrapped model's own output unchanged.
    """

    computes_own_loss = True  # heads must not replace its objective with their own

    def __init__(self, model: nn.Module, config: XMixupConfig | None = None):
        super().__init__()
        config = (config or XMixupConfig()).validate()
        self.model = model
        self.xmixup_config = config
        self.blocks_path, blocks = find_transformer_blocks(model, config.blocks_path)
        index = config.mix_layer + len(blocks) if config.mix_layer < 0 else config.mix_layer
        if not 0 <= index < len(blocks):
            raise ConfigError(f"mix_layer={config.mix_layer} is out of range: the model has {len(blocks)} blocks")
        self.mix_index = index
        inner = task_model(model)
        hidden = hidden_size(inner)
        heads = config.num_heads or attention_heads(inner)
        if hidden is None or heads is None:
            raise ConfigError("the model config names no hidden size or number of heads; set num_heads")
        self.is_decoder = is_decoder_only(inner)
        self.is_encoder_decoder = is_encoder_decoder(inner)
        self.pooling = config.rep_pooling if config.rep_pooling != "auto" else \
            ("mean" if self.is_decoder else "first")
        device = next(model.parameters()).device
        self.mixer = XMixupMixer(hidden, heads, config).to(device)
        for parameter in self.mixer.parameters():
            parameter.requires_grad_(True)
        self._state = _State()
        self._handles = [
            blocks[index].register_forward_hook(self._block_hook, with_kwargs=True),
            fusing_stack(inner).register_forward_hook(self._final_hook),
        ]

    # ------------------------------------------------------------------------------ hooks
    def _block_hook(self, module, args, kwargs, output):
        state = self._state
        if state.mode == "off":
            return None
        hidden = output[0] if isinstance(output, tuple) else output
        block_input = _first_tensor(args, kwargs)
        if state.mode == "capture":
            state.source_states, state.source_input = hidden, block_input
            return None
        if state.mode == "replay":
            # A checkpointing wrapper that re-runs the whole module call (hooks included) in backward
            # recomputes the mix block: mix the target's recompute again, lambda included, so that it
            # saves what the forward saved; pass the source's through. transformers 5 checkpoints
            # `forward` only, so its recompute never gets here. Reentrant checkpointing of the whole
            # call is not supported (its recompute would backpropagate into the source pass twice).
            if not _same_tensor(block_input, state.target_input):
                return None
            lam = None
        elif state.mode == "mix":
            state.target_input = block_input
            lam = None
        else:  # generate: lambda from the prompt (first call), kept for the generated tokens
            lam = state.frozen_lam
        source, source_mask = state.source_states, state.source_mask
        if source.shape[0] != hidden.shape[0]:
            if state.mode != "generate" or hidden.shape[0] % source.shape[0]:
                raise FlareError(f"source batch {source.shape[0]} does not fit target batch {hidden.shape[0]}")
            times = hidden.shape[0] // source.shape[0]  # beams / returned sequences
            source, source_mask = source.repeat_interleave(times, 0), source_mask.repeat_interleave(times, 0)
            if lam is not None and lam.shape[0] != hidden.shape[0]:
                lam = lam.repeat_interleave(times, 0)
        mixed, lam, probs = self.mixer(hidden, source, source_mask, state.target_mask, lam)
        if state.mode == "mix":
            state.lam, state.attention = lam, probs.detach()
        elif state.mode == "generate" and state.frozen_lam is None:
            state.frozen_lam, state.lam = lam, lam
        if isinstance(output, tuple):
            return (mixed,) + tuple(output[1:])
        return mixed

    def _final_hook(self, module, args, output):
        if self._state.mode in ("capture", "mix"):
            hidden = getattr(output, "last_hidden_state", None)
            if hidden is None and isinstance(output, (tuple, list)):
                hidden = output[0]
            self._state.final = hidden if torch.is_tensor(hidden) and hidden.dim() == 3 else None

    # ------------------------------------------------------------------------------ losses
    def _pool(self, hidden: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor | None:
        if hidden is None:
            return None
        mask = mask.to(hidden.device)
        if self.pooling == "first":
            return hidden[:, 0]
        if self.pooling == "last":
            last = mask.long().cumsum(-1).argmax(-1)  # index of the last real token
            return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        weights = mask.to(hidden.dtype)[..., None]
        return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)

    def _kl(self, source_logits, target_logits, source_labels, labels) -> torch.Tensor | None:
        """KL(p_source || p_target): per example for (B, C) logits; for (B, L, V) language-model
        logits, over the supervised positions (next-token for causal LMs, the label positions
        themselves for encoder-decoders), paired in order per example where both sides supervise
        the same number of tokens."""
        if source_logits is None or target_logits is None:
            return None
        if source_logits.dim() == 2 and source_logits.shape == target_logits.shape:
            s, t = source_logits, target_logits
        elif source_logits.dim() == 3 and target_logits.dim() == 3 and source_labels is not None \
                and labels is not None and source_labels.dim() == 2 and labels.dim() == 2:
            shift = 0 if self.is_encoder_decoder else 1  # causal LMs predict label t at t - 1
            s_keep, t_keep = source_labels[:, shift:] != -100, labels[:, shift:] != -100
            same = s_keep.sum(-1) == t_keep.sum(-1)
            if not bool(same.any()):
                return None
            end_s, end_t = source_logits.shape[1] - shift, target_logits.shape[1] - shift
            s = source_logits[:, :end_s][s_keep & same[:, None]]
            t = target_logits[:, :end_t][t_keep & same[:, None]]
        else:
            return None
        log_p_s = F.log_softmax(s.float(), -1)
        log_p_t = F.log_softmax(t.float(), -1)
        return (log_p_s.exp() * (log_p_s - log_p_t)).sum(-1).mean()

    # ------------------------------------------------------------------------------ forward
    def forward(self, input_ids=None, attention_mask=None, labels=None, source_input_ids=None,
                source_attention_mask=None, **kwargs):
        source_kwargs = {key[len("source_"):]: kwargs.pop(key) for key in list(kwargs) if key.startswith("source_")}
        state = self._state
        state.reset()
        use_source = source_input_ids is not None and (self.training or self.xmixup_config.mix_at_eval)
        if not use_source:
            if labels is not None:
                kwargs["labels"] = labels
            return self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

        if input_ids is not None and source_input_ids.shape[0] != input_ids.shape[0]:
            raise FlareError(
                f"source batch size {source_input_ids.shape[0]} differs from the target batch size "
                f"{input_ids.shape[0]}: every target example needs its own source"
            )
        if source_attention_mask is None:
            source_attention_mask = torch.ones_like(source_input_ids)
        if attention_mask is None and input_ids is not None:
            attention_mask = torch.ones_like(input_ids)
        source_labels = source_kwargs.pop("labels", None)
        if source_labels is None and labels is not None and labels.dim() == 1:
            source_labels = labels  # one label per example: the translation pair shares it
        if source_labels is not None:
            source_kwargs["labels"] = source_labels
        if labels is not None:
            kwargs["labels"] = labels

        try:
            state.mode = "capture"
            source_out = self.model(input_ids=source_input_ids, attention_mask=source_attention_mask, **source_kwargs)
            if state.source_states is None:
                raise FlareError("internal: the mix layer did not run in the source pass")
            source_final = state.final
            state.source_mask = source_attention_mask
            state.target_mask = attention_mask
            state.mode = "mix"
            target_out = self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
            target_final = state.final
        finally:
            # kept (not reset) until the next forward: checkpointed blocks recompute in backward
            state.mode = "replay"
            state.final = None

        cfg = self.xmixup_config
        source_logits = getattr(source_out, "logits", None)
        target_logits = getattr(target_out, "logits", None)
        source_rep = self._pool(source_final, source_attention_mask)
        target_rep = self._pool(target_final, attention_mask)
        kl = self._kl(source_logits, target_logits, source_labels, labels)
        mse = None
        if source_rep is not None and target_rep is not None:
            mse = F.mse_loss(target_rep.float(), source_rep.float())

        target_loss = getattr(target_out, "loss", None)
        source_loss = getattr(source_out, "loss", None)  # None unless the source pass had labels
        task_loss = loss = None
        if target_loss is not None:
            task_loss = target_loss if source_loss is None else \
                cfg.source_task_weight * source_loss + (1.0 - cfg.source_task_weight) * target_loss
            loss = task_loss
            if kl is not None and cfg.kl_weight:
                loss = loss + cfg.kl_weight * kl
            if mse is not None and cfg.mse_weight:
                loss = loss + cfg.mse_weight * mse

        logits = target_logits
        if not self.training and cfg.eval_logits == "average" and target_logits is not None \
                and source_logits is not None and source_logits.shape == target_logits.shape:
            logits = (source_logits + target_logits) / 2
        return XMixupOutput(
            loss=loss, logits=logits,
            start_logits=getattr(target_out, "start_logits", None),
            end_logits=getattr(target_out, "end_logits", None),
            target_logits=target_logits, source_logits=source_logits,
            task_loss=task_loss, target_task_loss=target_loss, source_task_loss=source_loss,
            kl_loss=kl, mse_loss=mse, mixing_ratio=state.lam,
            target_representation=target_rep, source_representation=source_rep,
        )

    @torch.no_grad()
    def generate(self, input_ids=None, attention_mask=None, source_input_ids=None, source_attention_mask=None,
                 **generate_kwargs):
        """transformers' generate(). With a source (and mix_at_eval), every forward of the target
        (prompt and generated tokens) is mixed position by position with the source's states at the
        mix layer, as in training; lambda is computed on the prompt and kept for the new tokens."""
        state = self._state
        state.reset()
        if source_input_ids is None or not self.xmixup_config.mix_at_eval:
            return self.model.generate(input_ids=input_ids, attention_mask=attention_mask, **generate_kwargs)
        if source_attention_mask is None:
            source_attention_mask = torch.ones_like(source_input_ids)
        try:
            state.mode = "capture"
            self.model(input_ids=source_input_ids, attention_mask=source_attention_mask)
            state.source_mask, state.target_mask = source_attention_mask, attention_mask
            state.mode = "generate"
            return self.model.generate(input_ids=input_ids, attention_mask=attention_mask, **generate_kwargs)
        finally:
            state.reset()

    # ------------------------------------------------------------------------------ conveniences
    @property
    def config(self):
        """The wrapped model's transformers config (what Trainer and generate expect)."""
        return self.model.config

    @property
    def mixing_attention(self) -> torch.Tensor | None:
        """Cross-attention probabilities (B, heads, Lt, Ls) of the last mixed forward, detached."""
        return self._state.attention

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        return trainable_parameters(self)

    def num_trainable_parameters(self) -> tuple[int, int]:
        return parameter_counts(self, self.trainable_parameters())

    def gradient_checkpointing_enable(self, use_reentrant: bool = False) -> None:
        enable_gradient_checkpointing(task_model(self.model), {"use_reentrant": use_reentrant})

    def remove_hooks(self) -> None:
        """Detach from the wrapped model (which then behaves as before wrapping)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def save_pretrained(self, directory: str | Path) -> Path:
        """xmixup_config.json + xmixup_weights.safetensors (every trainable parameter)."""
        directory = Path(directory)
        save_weights(self.trainable_parameters(), directory / WEIGHTS_NAME, {"format": "flare-xmixup"})
        write_text_atomic(directory / CONFIG_NAME, json.dumps(self.xmixup_config.to_dict(), indent=2) + "\n")
        return directory

    @classmethod
    def from_pretrained(cls, model: nn.Module, directory: str | Path) -> "XMixupModel":
        """Wrap `model` (carrying the same adapter structure as when saved) and load the weights."""
        directory = Path(directory)
        config_path = directory / CONFIG_NAME
        if not config_path.is_file():
            raise FlareError(f"{directory} lacks {CONFIG_NAME}: was it written by save_pretrained?")
        wrapped = cls(model, XMixupConfig.from_dict(json.loads(config_path.read_text())))
        load_weights_into(wrapped.trainable_parameters(), directory / WEIGHTS_NAME)
        return wrapped
