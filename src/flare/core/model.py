"""FlareModel: a PEFT LoRA model whose fusing modules mix in source states in the bottleneck.

How it hooks into any transformers model, without touching modeling code:
- PEFT injects the LoRA layers (adapter ``"flare"``); PEFT computes B(A(dropout(x))).
- A forward hook on each fusing module's ``lora_A`` replaces A x_t by phi(A x_s, A x_t),
  reading x_s from a per-forward context. No context or no source: the hook does nothing,
  so the layer is exactly PEFT's LoRA.
- Pre-hooks on the source modules capture, during the source pass, what each module sees.
The context stays set until the next forward, so gradient checkpointing's recomputation in
the backward pass sees the same source as the forward pass did.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora import LoraLayer
from peft.tuners.tuners_utils import check_target_module_exists
from torch import nn

from flare.core.alignment import Alignment, gather_positions
from flare.core.config import FlareConfig
from flare.core.fusion import FUSIONS, is_sequence_fusion
from flare.core.introspect import (
    BlockAddress,
    default_attention_modules,
    default_modules_to_save,
    fusing_stack,
    is_encoder_decoder,
    linear_module_suffixes,
    text_config,
)
from flare.core.states import SourceStates
from flare.errors import ConfigError, FlareError
from flare.weights import load_weights_into, save_weights

ADAPTER = "flare"
WEIGHTS_NAME = "flare_adapter.safetensors"
FINAL = "final"  # source key of the fusing stack's final hidden state


@dataclass
class _Context:
    """What the fusing hooks need during one forward (or one generate call)."""

    states: dict[str, torch.Tensor]
    source_mask: torch.Tensor
    alignment: Alignment
    position_offset: int = 0
    generating: bool = False  # generate() may expand the batch (beams, several sequences)

    def expand_for_generation(self, batch: int) -> None:
        """Follow generate()'s batch expansion (repeat_interleave of each example), once."""
        current = self.source_mask.shape[0]
        if not self.generating or batch % current:
            return
        expanded = SourceStates(self.states, self.source_mask).repeat_interleave(batch // current)
        self.states, self.source_mask = expanded.states, expanded.attention_mask
        self.alignment = self.alignment.repeat_interleave(batch // current)


def get_flare_model(model: nn.Module, config: FlareConfig) -> "FlareModel":
    """Wrap a transformers model (or a PEFT model holding the stage-1 adapter) in place.

    A PEFT model's adapter (the English task adapter of stage 1) is merged into the base
    weights first: the merged model is the frozen source model and the base of the new adapter.
    """
    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    return FlareModel(model, config)


def _matches(names: list[str] | str, key: str) -> bool:
    probe = LoraConfig(target_modules=names)
    return bool(check_target_module_exists(probe, key))


class FlareModel(nn.Module):
    def __init__(self, model: nn.Module, config: FlareConfig):
        super().__init__()
        config.validate()
        self.flare_config = config
        target_modules = config.target_modules or default_attention_modules(model)
        self._check_targets_exist(model, target_modules, "target_modules")
        modules_to_save = config.modules_to_save
        if modules_to_save is None:
            modules_to_save = default_modules_to_save(model)

        lora_config = LoraConfig(
            r=config.r,
            lora_alpha=config.alpha,
            lora_dropout=config.dropout,
            target_modules=target_modules,
            modules_to_save=modules_to_save or None,
        )
        seed_scope = torch.random.fork_rng() if config.init_seed is not None else contextlib.nullcontext()
        with seed_scope:
            if config.init_seed is not None:
                torch.manual_seed(config.init_seed)
            self.peft_model = get_peft_model(model, lora_config, adapter_name=ADAPTER)
            # Plain attributes, not submodules: the weights are registered once, under peft_model.
            object.__setattr__(self, "model", self.peft_model.base_model.model)
            object.__setattr__(self, "stack", fusing_stack(self.model))
            lora_names = [n for n, m in self.model.named_modules() if isinstance(m, LoraLayer)]
            self.fuse_names = self._resolve_fuse_modules(lora_names, config)
            self.source_key = self._plan_sources(config.source_layer_offset)
            self.fusions = self._build_fusions(config)
            self.source_projection = self._build_projection(config)

        config.resolved_target_modules = lora_names
        config.resolved_fuse_modules = list(self.fuse_names)
        fingerprint = base_fingerprint(self.model, lora_names)
        if config.base_fingerprint not in (None, fingerprint):
            raise FlareError(
                "this adapter was trained on a different base model (its weights do not match the "
                "fingerprint in flare_config.json); load it onto the model it was trained for, "
                "the stage-1 model included"
            )
        config.base_fingerprint = fingerprint

        self._context: _Context | None = None
        self._capture: dict[str, torch.Tensor] | None = None
        self._install_hooks()
        self.adapter_parameter_names = [n for n, p in self.named_parameters() if p.requires_grad]

    # ----------------------------------------------------------------- construction
    @staticmethod
    def _check_targets_exist(model: nn.Module, names, field: str) -> None:
        if names == "all-linear" or any(_matches(names, key) for key, _ in model.named_modules()):
            return
        raise ConfigError(
            f"{field}={names!r} matches no module of this {type(model).__name__}; "
            f"its linear modules are: {', '.join(linear_module_suffixes(model))}"
        )

    def _resolve_fuse_modules(self, lora_names: list[str], config: FlareConfig) -> list[str]:
        wanted = config.fuse_modules or default_attention_modules(self.model)
        stack_prefix = self._stack_prefix()
        fuse = [n for n in lora_names if _matches(wanted, n)]
        if not fuse:
            raise ConfigError(
                f"fuse_modules={wanted!r} matches none of the modules that carry LoRA "
                f"({', '.join(sorted({n.rsplit('.', 1)[-1] for n in lora_names}))}); "
                "fusing modules must be among target_modules"
            )
        outside = [n for n in fuse if not n.startswith(stack_prefix)]
        if is_encoder_decoder(self.model):
            # Fuse in the encoder by default; decoder modules matching the names stay plain LoRA.
            fuse = [n for n in fuse if n.startswith(stack_prefix)]
            if config.fuse_modules is not None and outside and not fuse:
                raise ConfigError("FLARE fuses in the encoder of an encoder-decoder model; "
                                  f"these modules are in the decoder: {outside[:4]}")
        elif outside:
            raise ConfigError(f"fusing modules must lie inside the transformer blocks: {outside[:4]}")
        bad = [n for n in fuse if BlockAddress.parse(n[len(stack_prefix):]) is None]
        if bad:
            raise ConfigError(f"fusing modules must lie inside numbered transformer blocks: {bad[:4]}")
        return fuse

    def _stack_prefix(self) -> str:
        if self.stack is self.model:
            return ""
        for name, module in self.model.named_modules():
            if module is self.stack:
                return name + "."
        raise FlareError("internal: fusing stack not found in the model")

    def _plan_sources(self, offset: int) -> dict[str, str]:
        """Fusing module name -> source key (a module name in the source pass, or FINAL)."""
        prefix = self._stack_prefix()
        hidden = self._hidden_size()
        plan = {}
        for name in self.fuse_names:
            address = BlockAddress.parse(name[len(prefix):])
            blocks = len(self.stack.get_submodule(address.stack))
            if offset >= blocks:
                raise ConfigError(
                    f"source_layer_offset={offset} is out of range: the model has {blocks} blocks "
                    f"(use 0 to {blocks - 1})"
                )
            if address.index + offset < blocks:
                plan[name] = prefix + address.shifted(offset).name
            elif self._in_features(name) == hidden:
                plan[name] = FINAL  # the final hidden state, as the module would see it
            else:  # e.g. an MLP down-projection: the final hidden state has the wrong width
                plan[name] = prefix + BlockAddress(address.stack, blocks - 1, address.within).name
        return plan

    def _hidden_size(self) -> int | None:
        config = text_config(self.model)
        return getattr(config, "hidden_size", None) or getattr(config, "d_model", None)

    def _in_features(self, name: str) -> int:
        return self.model.get_submodule(name).in_features

    def _build_fusions(self, config: FlareConfig) -> nn.ModuleDict:
        fusions = nn.ModuleDict()
        if is_sequence_fusion(config.fusion):
            for name in self.fuse_names:
                fusions[name.replace(".", "__")] = FUSIONS[config.fusion](config.r, config.cross_attention_heads)
        return fusions

    def _build_projection(self, config: FlareConfig) -> nn.Linear | None:
        if config.source_kind != "encoder":
            return None
        widths = {self._in_features(n) for n in self.fuse_names}
        if len(widths) != 1:
            raise ConfigError(
                "an external source encoder needs fusing modules of one input width; "
                f"these have {sorted(widths)}: fuse only the query/value projections"
            )
        return nn.Linear(config.source_encoder_dim, widths.pop())

    def _install_hooks(self) -> None:
        for name in self.fuse_names:
            layer = self.model.get_submodule(name)
            layer.lora_A[ADAPTER].register_forward_hook(self._fusion_hook(name, layer))
        for key in set(self.source_key.values()):
            if key != FINAL:
                self.model.get_submodule(key).register_forward_pre_hook(self._capture_hook(key))
        self.stack.register_forward_hook(self._capture_final)
        self.stack.register_forward_pre_hook(self._track_position, with_kwargs=True)

    # ----------------------------------------------------------------- hooks
    def _capture_hook(self, key: str):
        def hook(module, args):
            if self._capture is not None:
                self._capture[key] = args[0]

        return hook

    def _capture_final(self, module, args, output):
        if self._capture is not None:
            self._capture[FINAL] = output[0] if isinstance(output, tuple) else output.last_hidden_state

    def _track_position(self, module, args, kwargs):
        """With a KV cache, a step's first position is the cache length (generation)."""
        if self._context is None:
            return
        cache = kwargs.get("cache", kwargs.get("past_key_values"))  # renamed `cache` in transformers 5.2x
        self._context.position_offset = cache.get_seq_length() if hasattr(cache, "get_seq_length") else 0

    def _fusion_hook(self, name: str, layer: LoraLayer):
        key = self.source_key[name]
        dropout = layer.lora_dropout[ADAPTER]
        fusion_key = name.replace(".", "__")
        fusion_name = self.flare_config.fusion
        sequence_fusion = is_sequence_fusion(fusion_name)  # decided once, not on every call

        def hook(lora_a: nn.Linear, args, target: torch.Tensor):
            context = self._context
            if context is None:
                return None  # plain LoRA
            if context.source_mask.shape[0] != target.shape[0]:
                context.expand_for_generation(target.shape[0])
            source = context.states.get(key, context.states.get("encoder"))
            if source is None:
                raise FlareError(f"the source states lack {key!r}, which {name} fuses: were they "
                                 "computed by this model with the same settings?")
            if source.shape[0] != target.shape[0]:
                raise FlareError(
                    f"source batch size {source.shape[0]} differs from the target's {target.shape[0]}"
                )
            source = source.to(lora_a.weight.dtype)
            if sequence_fusion:
                source_r = F.linear(dropout(source), lora_a.weight)
                return self.fusions[fusion_key](source_r, context.source_mask, target)
            index, valid = context.alignment.index(target.shape[-2], context.position_offset)
            # A is position-wise: gathering before projecting is the same and costs less.
            source_r = F.linear(dropout(gather_positions(source, index)), lora_a.weight)
            fused = FUSIONS[fusion_name](source_r, target)
            return torch.where(valid[..., None], fused, target)

        return hook

    # ----------------------------------------------------------------- source side
    @torch.no_grad()
    def compute_source_states(self, source_input_ids: torch.Tensor, source_attention_mask: torch.Tensor | None = None,
                              **stack_kwargs) -> SourceStates:
        """Run the frozen source model (stage-1 model, FLARE adapter off, eval mode) once."""
        if self.source_projection is not None:
            raise FlareError("this adapter takes external encoder states (source_kind='encoder'); "
                             "pass source_encoder_states instead of source_input_ids")
        if source_attention_mask is None:
            source_attention_mask = torch.ones_like(source_input_ids)
        was_training = self.model.training
        self._capture = {}
        try:
            self.model.eval()
            with self.peft_model.disable_adapter():
                self.stack(input_ids=source_input_ids, attention_mask=source_attention_mask, **stack_kwargs)
            captured = self._capture
        finally:
            self._capture = None
            self.model.train(was_training)
        needed = set(self.source_key.values())
        return SourceStates({k: captured[k] for k in needed}, source_attention_mask)

    def _source_context(self, attention_mask, source_input_ids, source_attention_mask, source_states,
                        source_encoder_states, target_lengths=None, target_width=None) -> _Context | None:
        given = [x is not None for x in (source_input_ids, source_states, source_encoder_states)]
        if sum(given) == 0:
            return None
        if sum(given) > 1:
            raise FlareError("give one of source_input_ids, source_states or source_encoder_states, not several")
        if source_encoder_states is not None:
            if self.source_projection is None:
                raise FlareError("source_encoder_states need an adapter made with source_kind='encoder'")
            if source_attention_mask is None:
                source_attention_mask = torch.ones(source_encoder_states.shape[:2], dtype=torch.long,
                                                   device=source_encoder_states.device)
            projected = self.source_projection(source_encoder_states.to(self.source_projection.weight.dtype))
            source_states = SourceStates({"encoder": projected}, source_attention_mask)
        elif source_input_ids is not None:
            source_states = self.compute_source_states(source_input_ids, source_attention_mask)
        else:  # precomputed (a cache): follow the model's device
            source_states = source_states.to(self.source_device())
        mask = source_states.attention_mask
        alignment = Alignment.build(mask, attention_mask, at_end=self.flare_config.alignment == "end",
                                    target_lengths=target_lengths, target_width=target_width)
        return _Context(source_states.states, mask, alignment)

    # ----------------------------------------------------------------- forward / generate
    def forward(self, input_ids=None, attention_mask=None, labels=None, *, source_input_ids=None,
                source_attention_mask=None, source_states: SourceStates | None = None,
                source_encoder_states: torch.Tensor | None = None, target_lengths: torch.Tensor | None = None,
                **kwargs):
        """The target pass, fused with the source. With no source, plain LoRA.

        ``target_lengths`` (B,): how many real target tokens are the prompt (the part with a
        source); only ``alignment="end"`` reads it, and only a teacher-forced pass that holds
        answer tokens after the prompt needs it (default: every real token)."""
        self._context = None
        context = self._source_context(attention_mask, source_input_ids, source_attention_mask,
                                       source_states, source_encoder_states, target_lengths,
                                       None if input_ids is None else input_ids.shape[1])
        if context is not None and input_ids is not None and context.source_mask.shape[0] != input_ids.shape[0]:
            raise FlareError(
                f"source batch size {context.source_mask.shape[0]} differs from the target batch size "
                f"{input_ids.shape[0]}: every target example needs its own source"
            )
        self._context = context  # kept until the next forward: checkpointed blocks recompute in backward
        if labels is not None:
            kwargs["labels"] = labels
        return self.peft_model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    @torch.no_grad()
    def generate(self, input_ids=None, attention_mask=None, *, source_input_ids=None, source_attention_mask=None,
                 source_states: SourceStates | None = None, source_encoder_states=None, **generate_kwargs):
        """transformers' generate(), with the prompt fused position by position as in training;
        generated tokens have no source partner and get plain LoRA, as answer tokens do in training."""
        context = self._source_context(attention_mask, source_input_ids, source_attention_mask,
                                       source_states, source_encoder_states,
                                       target_width=None if input_ids is None else input_ids.shape[1])
        if context is not None:
            context.generating = True
        self._context = context
        try:
            return self.peft_model.generate(input_ids=input_ids, attention_mask=attention_mask, **generate_kwargs)
        finally:
            self._context = None

    # ----------------------------------------------------------------- conveniences
    def source_device(self) -> torch.device:
        return next(self.peft_model.parameters()).device

    @property
    def config(self):
        """The transformers config (what Trainer and generate expect under this name)."""
        return self.model.config

    def gradient_checkpointing_enable(self, use_reentrant: bool = False) -> None:
        if use_reentrant:  # reentrant checkpointing needs inputs that require grad
            self.model.enable_input_require_grads()
        kwargs = {"use_reentrant": use_reentrant}
        if hasattr(self.model, "activation_checkpointing_enable"):  # the name since transformers 5.x
            self.model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        params = dict(self.named_parameters())
        return {name: params[name] for name in self.adapter_parameter_names}

    def num_trainable_parameters(self) -> tuple[int, int]:
        trainable = sum(p.numel() for p in self.trainable_parameters().values())
        return trainable, sum(p.numel() for p in self.parameters())

    # ----------------------------------------------------------------- persistence
    def save_pretrained(self, directory: str | Path) -> Path:
        """flare_config.json + flare_adapter.safetensors (adapter, fusion, projection, heads)."""
        directory = Path(directory)
        save_weights(self.trainable_parameters(), directory / WEIGHTS_NAME, {"format": "flare", "adapter": ADAPTER})
        self.flare_config.save(directory)
        return directory

    @classmethod
    def from_pretrained(cls, model: nn.Module, directory: str | Path) -> "FlareModel":
        """Rebuild the adapter on `model` (the same base, stage-1 adapter included) and load it."""
        directory = Path(directory)
        flare_model = get_flare_model(model, FlareConfig.load(directory))
        load_weights_into(flare_model.trainable_parameters(), directory / WEIGHTS_NAME)
        return flare_model


def base_fingerprint(model: nn.Module, module_names: list[str]) -> str:
    """A cheap hash of the base weights under the adapter: names, shapes and leading values."""
    digest = hashlib.sha256(str(model.config.model_type).encode())
    for name in sorted(module_names):
        weight = model.get_submodule(name).get_base_layer().weight
        digest.update(f"{name}:{tuple(weight.shape)}".encode())
        digest.update(weight.detach().flatten()[:256].float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]
