"""FlareModel: a PEFT LoRA model whose fusing modules mix in source states in the bottleneck.

How it hooks into any transformers model, without touching modeling code:
- PEFT injects the LoRA layers (adapter ``"flare"``); PEFT computes B(A(dropout(x))).
- A forward hook on each fusing module's ``lora_A`` replaces A x_t by phi(A x_s, A x_t),
  reading x_s from a per-call context. No context or no source: the hook does nothing,
  so the layer is exactly PEFT's LoRA.
- Pre-hooks on the source modules capture, during the source pass, what each module sees; in
  the source pass every ``flare`` LoRA branch gives zero, so the pass is the stage-1 model.
The context lives for one forward (or one generate) call and is cleared after it, an exception
included. Gradient checkpointing recomputes a block in the backward pass, after the call: each
checkpointed call is bound to the context of the forward that made it, so two fused forwards
before one backward recompute each with its own source.

The stage-1 adapter: on a full-precision base it is merged into the weights (exact, and no
cost). On a quantized base (4-bit / 8-bit bitsandbytes) merging would re-quantize the weights,
so the stage-1 model would no longer be the source model; there it stays a frozen, unmerged
PEFT adapter, active in the source pass and under the FLARE adapter.

The hooks hold the FlareModel weakly: dropping it removes them. ``unload()`` gives back the
plain model (no LoRA, no hooks); ``merge_and_unload()`` the model with the adapter's plain-LoRA
path merged (what it computes with no source). FLARE itself cannot be merged: the fusion
depends on each input's English partner.

One concern, kept whole on purpose (about 650 lines): the model class and its hooks share one
context and one set of invariants (which forward fuses what), and read best side by side.
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora import LoraLayer
from peft.tuners.tuners_utils import check_target_module_exists
from peft.utils import ModulesToSaveWrapper
from torch import nn

from flare.core.alignment import Alignment, gather_positions
from flare.core.config import FlareConfig
from flare.core.fingerprint import model_fingerprint
from flare.core.fusion import FUSIONS, has_parameters, is_sequence_fusion
from flare.core import sharing
from flare.core.introspect import (
    BlockAddress,
    default_attention_modules,
    default_modules_to_save,
    fusing_stack,
    hidden_size,
    is_encoder_decoder,
    is_quantized,
    linear_module_suffixes,
    reads_block_input,
    submodule_name,
)
from flare.core.states import SourceStates
from flare.core.wrapping import enable_gradient_checkpointing, parameter_counts
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

    A PEFT model's adapter (the English task adapter of stage 1) is the frozen source model and
    the base of the new adapter: merged into full-precision weights, kept unmerged (frozen) on a
    quantized base, where merging would re-quantize the weights and change the model.
    """
    return FlareModel(model, config)


def prepare_stage1(model: nn.Module) -> tuple[nn.Module, bool]:
    """(the model the new adapter goes on, whether it is a PEFT model whose stage-1 adapters
    stay unmerged). Merges the stage-1 adapter of a full-precision base."""
    if not isinstance(model, PeftModel):
        return model, False
    if is_quantized(model):
        return model, True
    return model.merge_and_unload(), False


def add_adapter_over_stage1(stage1: PeftModel, name: str, lora_config: LoraConfig) -> PeftModel:
    """Add adapter `name` to a PEFT model that holds the stage-1 adapter(s), unmerged: the stage-1
    adapters stay active and frozen under it, task heads (``modules_to_save``) start from the
    stage-1 head. With B = 0 the result computes exactly what the stage-1 model computes.
    Only `name`'s weights are trainable."""
    stage1_names = list(stage1.peft_config)
    if name in stage1_names:
        raise ConfigError(f"the stage-1 model already has an adapter named {name!r}")
    if any(getattr(c, "peft_type", None) != "LORA" and str(getattr(c, "peft_type", "")) != "PeftType.LORA"
           for c in stage1.peft_config.values()):
        raise ConfigError("the stage-1 model must hold LoRA adapters")
    active_head = {}
    for module_name, module in stage1.named_modules():
        if isinstance(module, ModulesToSaveWrapper) and module.active_adapters:
            active_head[module_name] = module.active_adapters[0]
    stage1.add_adapter(name, lora_config)
    for module_name, module in stage1.named_modules():
        if isinstance(module, LoraLayer):
            module.set_adapter([a for a in [*stage1_names, name] if a in module.lora_A])
        elif isinstance(module, ModulesToSaveWrapper) and name in module.modules_to_save:
            if module_name in active_head:  # start from the trained stage-1 head, not the untrained original
                module.modules_to_save[name].load_state_dict(
                    module.modules_to_save[active_head[module_name]].state_dict())
            module.set_adapter(name)
    for param_name, param in stage1.named_parameters():
        param.requires_grad = f".{name}." in param_name and ("lora_" in param_name or "modules_to_save" in param_name)
    return stage1


def _matches(names: list[str] | str, key: str) -> bool:
    probe = LoraConfig(target_modules=names)
    return bool(check_target_module_exists(probe, key))


class FlareModel(nn.Module):
    def __init__(self, model: nn.Module, config: FlareConfig):
        super().__init__()
        config.validate()
        # Checked before anything is changed: a refused load leaves the caller's model as it was.
        fingerprint = model_fingerprint(model)
        check_fingerprint(config.base_fingerprint, fingerprint)
        inner = model.base_model.model if isinstance(model, PeftModel) else model
        target_modules = config.target_modules or default_attention_modules(inner)
        self._check_targets_exist(inner, target_modules, "target_modules")
        modules_to_save = config.modules_to_save
        if modules_to_save is None:
            modules_to_save = default_modules_to_save(inner)
        self._stage1 = sharing.snapshot_stage1(model)  # saved with the adapter (a merge removes it)
        config.base_model_class = config.base_model_class or type(inner).__name__
        config.base_model_name_or_path = config.base_model_name_or_path or getattr(inner.config, "_name_or_path", None) or None
        model, stacked = prepare_stage1(model)
        self.flare_config = config
        self.stacked = stacked  # the stage-1 adapter stays unmerged (quantized base)

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
            if stacked:
                lora_config.target_modules = _explicit_targets(model.base_model.model, target_modules)
                self.peft_model = add_adapter_over_stage1(model, ADAPTER, lora_config)
            else:
                self.peft_model = get_peft_model(model, lora_config, adapter_name=ADAPTER)
            # Plain attributes, not submodules: the weights are registered once, under peft_model.
            object.__setattr__(self, "model", self.peft_model.base_model.model)
            object.__setattr__(self, "stack", fusing_stack(self.model))
            lora_names = [n for n, m in self.model.named_modules() if isinstance(m, LoraLayer) and ADAPTER in m.lora_A]
            self.fuse_names = self._resolve_fuse_modules(lora_names, config)
            self.source_key = self._plan_sources(config.source_layer_offset)
            self.fusions = self._build_fusions(config)
            self.source_projection = self._build_projection(config)

        config.resolved_target_modules = lora_names
        config.resolved_fuse_modules = list(self.fuse_names)
        config.base_fingerprint = fingerprint

        self._context: _Context | None = None
        self._capture: dict[str, torch.Tensor] | None = None
        self._handles: list = []
        self._install_hooks()
        # remove the hooks when this object goes away (they hold it weakly, so it can)
        self._finalizer = weakref.finalize(self, _remove_handles, self._handles)
        self._checkpointed = [m for m in self.model.modules() if hasattr(m, "gradient_checkpointing")]
        self._bind_checkpointing()
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
        if wanted == "all-linear":  # every LoRA module inside the numbered blocks of the fusing stack
            fuse = [n for n in lora_names if n.startswith(stack_prefix)
                    and BlockAddress.parse(n[len(stack_prefix):]) is not None]
        else:
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
        name = submodule_name(self.model, self.stack)
        return name + "." if name else ""

    def _plan_sources(self, offset: int) -> dict[str, str]:
        """Fusing module name -> source key (a module name in the source pass, or FINAL).

        Block i reads the source of block i + k. Where i + k is past the last block, a module that
        reads the block's input (a query/key/value projection of the hidden-size stream) gets the
        final hidden state, what it would read in a block after the last; any other module (an
        attention output or MLP projection) gets the same module of the last block."""
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
            elif reads_block_input(address.within) and self._in_features(name) == hidden:
                plan[name] = FINAL  # the final hidden state, as the module would see it
            else:  # e.g. an attention output or MLP projection: it does not read the block input
                plan[name] = prefix + BlockAddress(address.stack, blocks - 1, address.within).name
        return plan

    def _hidden_size(self) -> int | None:
        return hidden_size(self.model)

    def _in_features(self, name: str) -> int:
        return self.model.get_submodule(name).in_features

    def _build_fusions(self, config: FlareConfig) -> nn.ModuleDict:
        fusions = nn.ModuleDict()
        if has_parameters(config.fusion):
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
        """Every hook reaches this object through a weak reference: the model's modules keep the
        hooks, and must not keep the FlareModel alive."""
        this = weakref.ref(self)
        fused = set(self.fuse_names)
        for name, layer in self.model.named_modules():
            if isinstance(layer, LoraLayer) and ADAPTER in layer.lora_A:
                hook = _fusion_hook(this, name, layer) if name in fused else _zero_in_source_pass(this)
                self._handles.append(layer.lora_A[ADAPTER].register_forward_hook(hook))
        for key in set(self.source_key.values()):
            if key != FINAL:
                self._handles.append(self.model.get_submodule(key).register_forward_pre_hook(_capture_hook(this, key)))
        self._handles.append(self.stack.register_forward_hook(_capture_final(this)))
        self._handles.append(self.stack.register_forward_pre_hook(_track_position(this), with_kwargs=True))

    def remove_hooks(self) -> None:
        """Take FLARE's hooks off the model: its LoRA layers then compute plain LoRA."""
        _remove_handles(self._handles)
        self._context = None

    def _bind_checkpointing(self) -> None:
        """Bind every checkpointed block call to the context of the forward that makes it, so its
        recomputation in the backward pass fuses the same source (two forwards before one backward
        included), whatever the checkpointing flavour (reentrant or not)."""
        this = weakref.ref(self)
        for module in self._checkpointed:
            function = getattr(module, "_gradient_checkpointing_func", None)
            if function is not None and not getattr(function, "_flare_bound", False):
                module._gradient_checkpointing_func = _bound_checkpoint(this, function)

    # ----------------------------------------------------------------- source side
    @torch.no_grad()
    def compute_source_states(self, source_input_ids: torch.Tensor, source_attention_mask: torch.Tensor | None = None,
                              **stack_kwargs) -> SourceStates:
        """Run the frozen source model (stage-1 model, FLARE adapter off, eval mode) once."""
        if self.source_projection is not None:
            raise FlareError("this adapter takes external encoder states (source_kind='encoder'); "
                             "pass source_encoder_states instead of source_input_ids")
        self._refuse_if_merged()
        if source_attention_mask is None:
            source_attention_mask = torch.ones_like(source_input_ids)
        modes = [(module, module.training) for module in self.model.modules()]  # every submodule's own mode
        context, self._context = self._context, None
        self._capture = {}
        try:
            self.model.eval()
            self.stack(input_ids=source_input_ids, attention_mask=source_attention_mask, **stack_kwargs)
            captured = self._capture
        finally:
            self._capture = None
            self._context = context
            for module, training in modes:
                module.training = training
        needed = set(self.source_key.values())
        return SourceStates({k: captured[k] for k in needed}, source_attention_mask)

    def _refuse_if_merged(self) -> None:
        merged = [n for n in self.fuse_names if ADAPTER in getattr(self.model.get_submodule(n), "merged_adapters", [])]
        if merged:
            raise FlareError(
                f"the FLARE adapter is merged into the base weights ({merged[0]}, ...): FLARE cannot be merged, "
                "because the fusion depends on each input's English partner. Call unmerge_adapter() on "
                "peft_model before passing a source, or run without a source (plain LoRA, merged)"
            )

    def _source_context(self, attention_mask, source_input_ids, source_attention_mask, source_states,
                        source_encoder_states, target_lengths=None, target_width=None) -> _Context | None:
        given = [x is not None for x in (source_input_ids, source_states, source_encoder_states)]
        if sum(given) == 0:
            return None
        if sum(given) > 1:
            raise FlareError("give one of source_input_ids, source_states or source_encoder_states, not several")
        self._refuse_if_merged()
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
        source); a teacher-forced pass that holds answer tokens after the prompt passes it, so
        that answer tokens fuse with nothing (default: every real token is prompt)."""
        self._context = None
        context = self._source_context(attention_mask, source_input_ids, source_attention_mask,
                                       source_states, source_encoder_states, target_lengths,
                                       None if input_ids is None else input_ids.shape[1])
        if context is not None and input_ids is not None and context.source_mask.shape[0] != input_ids.shape[0]:
            raise FlareError(
                f"source batch size {context.source_mask.shape[0]} differs from the target batch size "
                f"{input_ids.shape[0]}: every target example needs its own source"
            )
        if context is not None and torch.is_grad_enabled():
            self._bind_checkpointing()  # checkpointing enabled on the model after wrapping is bound too
        if labels is not None:
            kwargs["labels"] = labels
        self._context = context
        try:
            return self.peft_model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        finally:
            self._context = None  # this call's source: never seen by a later call

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

    def gradient_checkpointing_enable(self, use_reentrant: bool = False, gradient_checkpointing_kwargs=None) -> None:
        """Checkpoint the model's blocks; each recomputation fuses its own forward's source.
        (`gradient_checkpointing_kwargs` as transformers' Trainer passes them.)"""
        kwargs = {"use_reentrant": use_reentrant, **(gradient_checkpointing_kwargs or {})}
        enable_gradient_checkpointing(self.model, kwargs)
        self._bind_checkpointing()

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        params = dict(self.named_parameters())
        return {name: params[name] for name in self.adapter_parameter_names}

    def parameter_groups(self, learning_rate: float, fusion_lr_ratio: float = 1.0) -> list[dict]:
        """Optimizer parameter groups of the trainable weights, e.g. for a Trainer's `optimizers=`:
        ``torch.optim.AdamW(model.parameter_groups(1e-3, fusion_lr_ratio=30))``. With a ratio other
        than 1, a learned fusion's own parameters (`fusions`: a gate, cross-attention's projections)
        form a second group at learning_rate * fusion_lr_ratio. (A gate sits behind LoRA's
        zero-initialised B, so its gradients grow only as B does: at LoRA's rate it barely moves in
        a run of a few hundred steps.)"""
        trainable = list(self.trainable_parameters().values())
        own = {id(p) for p in self.fusions.parameters()} if fusion_lr_ratio != 1 else set()
        fused = [p for p in trainable if id(p) in own]
        if not fused:
            return [{"params": trainable, "lr": learning_rate}]
        return [{"params": [p for p in trainable if id(p) not in own], "lr": learning_rate},
                {"params": fused, "lr": learning_rate * fusion_lr_ratio}]

    def num_trainable_parameters(self) -> tuple[int, int]:
        return parameter_counts(self, self.trainable_parameters())

    # ----------------------------------------------------------------- persistence
    def save_pretrained(self, directory: str | Path) -> Path:
        """Everything needed to load the adapter in one call (core/sharing.py): flare_config.json,
        flare_adapter.safetensors (adapter, fusion, projection, heads), the stage-1 adapter in
        PEFT's format, the base model's config and a model card (README.md)."""
        directory = Path(directory)
        save_weights(self.trainable_parameters(), directory / WEIGHTS_NAME, {"format": "flare", "adapter": ADAPTER})
        self.flare_config.environment = sharing.environment()
        sharing.write_extras(directory, self.model, self._stage1, self.flare_config)
        self.flare_config.save(directory)
        return directory

    def push_to_hub(self, repo_id: str, *, private: bool | None = None, token: str | None = None,
                    revision: str | None = None, commit_message: str = "Upload FLARE adapter") -> str:
        """Upload the save_pretrained folder to a hub repository (created if missing)."""
        return sharing.push_folder(self.save_pretrained, repo_id, private=private, token=token, revision=revision,
                                   commit_message=commit_message)

    @classmethod
    def from_pretrained(cls, model_or_path, directory: str | Path | None = None, *, revision: str | None = None,
                        base_model: str | None = None, **model_kwargs) -> "FlareModel":
        """Load a saved adapter.

        ``FlareModel.from_pretrained(folder_or_repo_id)``: base model, stage-1 adapter and FLARE
        adapter, all from the folder (a hub repository id is downloaded; ``revision`` picks its
        version); ``base_model`` loads the base from another id or path (a local copy of it),
        ``model_kwargs`` go to the base model's ``from_pretrained`` (``device_map``, ``dtype``...).

        ``FlareModel.from_pretrained(stage1_model, folder)``: onto a model you built (the same
        base, stage-1 adapter included, passed as in training: a PEFT model holding it).

        Either way a model that does not match the saved fingerprint is refused before anything
        in it is changed."""
        if isinstance(model_or_path, nn.Module):
            if directory is None:
                raise FlareError("FlareModel.from_pretrained(model, folder): the folder is missing")
            model, directory = model_or_path, Path(directory)
        else:
            if directory is not None:
                raise FlareError("FlareModel.from_pretrained(folder_or_repo_id) takes one location")
            directory = sharing.resolve_folder(model_or_path, revision)
            model = sharing.load_base(directory, FlareConfig.load(directory), base_model, **model_kwargs)
        config = FlareConfig.load(directory)
        if not (directory / WEIGHTS_NAME).is_file():
            raise FlareError(f"{directory / WEIGHTS_NAME} is missing: is {directory} a folder written by save_pretrained?")
        flare_model = get_flare_model(model, config)
        load_weights_into(flare_model.trainable_parameters(), directory / WEIGHTS_NAME)
        return flare_model

    # ----------------------------------------------------------------- back to a plain model
    def unload(self) -> nn.Module:
        """Remove the hooks and the FLARE LoRA layers: the model as it was given (the stage-1
        adapter merged on a full-precision base, still a PEFT model on a quantized one)."""
        self.remove_hooks()
        if self.stacked:
            self.peft_model.delete_adapter(ADAPTER)
            return self.peft_model
        return self.peft_model.unload()

    def merge_and_unload(self) -> nn.Module:
        """Remove the hooks and merge the adapter's LoRA weights: the model computes the adapter's
        plain-LoRA path (what it computes with no source). The fusion itself cannot be merged."""
        self.remove_hooks()
        return self.peft_model.merge_and_unload()


def check_fingerprint(saved: str | None, actual: str) -> None:
    if saved is None or saved == actual:
        return
    if not saved.startswith("v2:"):
        warnings.warn("this adapter was saved by an older flare whose base-model fingerprint covered only part "
                      "of the weights; the base model is not verified", stacklevel=3)
        return
    raise FlareError(
        "this adapter was trained on a different base model (its weights or architecture config do not match "
        "the fingerprint in flare_config.json); load it onto the model it was trained for, the stage-1 model "
        "included, passed as in training (a PEFT model holding the stage-1 adapter). The model was not changed"
    )


def _explicit_targets(model: nn.Module, target_modules):
    """PEFT's "all-linear" on a model that already holds LoRA layers would also match their
    inner base layers: name the linear layers (LoRA-wrapped or plain) outside the output head."""
    if target_modules != "all-linear":
        return target_modules
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names = set()
    for name, module in model.named_modules():
        if module is output or ".lora_" in name or name.endswith("base_layer") or not name:
            continue
        if isinstance(module, LoraLayer) or type(module).__name__ in ("Linear", "Linear4bit", "Linear8bitLt"):
            if not any(name.startswith(f"{n}.") for n in names):
                names.add(name)
    return sorted({n.rsplit(".", 1)[-1] for n in names} - {"classifier", "score", "qa_outputs", "lm_head"})


def _remove_handles(handles: list) -> None:
    for handle in handles:
        handle.remove()
    handles.clear()


# --------------------------------------------------------------------- hooks (hold the model weakly)
def _capture_hook(this, key: str):
    def hook(module, args):
        model = this()
        if model is not None and model._capture is not None:
            model._capture[key] = args[0]

    return hook


def _capture_final(this):
    def hook(module, args, output):
        model = this()
        if model is not None and model._capture is not None:
            model._capture[FINAL] = output[0] if isinstance(output, tuple) else output.last_hidden_state

    return hook


def _track_position(this):
    def hook(module, args, kwargs):
        """With a KV cache, a step's first position is the cache length (generation)."""
        model = this()
        if model is None or model._context is None:
            return
        cache = kwargs.get("cache", kwargs.get("past_key_values"))  # renamed `cache` in transformers 5.2x
        model._context.position_offset = cache.get_seq_length() if hasattr(cache, "get_seq_length") else 0

    return hook


def _zero_in_source_pass(this):
    """The source pass is the stage-1 model: every FLARE LoRA branch gives zero there (B 0 = 0)."""
    def hook(lora_a, args, output):
        model = this()
        if model is not None and model._capture is not None:
            return torch.zeros_like(output)
        return None

    return hook


def _fusion_hook(this, name: str, layer: LoraLayer):
    model = this()
    key = model.source_key[name]
    dropout = layer.lora_dropout[ADAPTER]
    fusion_key = name.replace(".", "__")
    fusion_name = model.flare_config.fusion
    sequence_fusion = is_sequence_fusion(fusion_name)  # decided once, not on every call
    learned = has_parameters(fusion_name)
    del model

    def hook(lora_a: nn.Linear, args, target: torch.Tensor):
        model = this()
        if model is None:
            return None
        if model._capture is not None:
            return torch.zeros_like(target)  # the source pass
        context = model._context
        if context is None:
            return None  # plain LoRA
        if context.source_mask.shape[0] != target.shape[0]:
            context.expand_for_generation(target.shape[0])
        source = context.states.get(key, context.states.get("encoder"))
        if source is None:
            raise FlareError(f"the source states lack {key!r}, which {name} fuses: were they "
                             "computed by this model with the same settings?")
        if source.shape[0] != target.shape[0]:
            raise FlareError(f"source batch size {source.shape[0]} differs from the target's {target.shape[0]}")
        # follow the module: its dtype, and its device when the model is split over several
        source = source.to(device=target.device, dtype=lora_a.weight.dtype)
        if sequence_fusion:
            source_r = F.linear(dropout(source), lora_a.weight)
            return model.fusions[fusion_key](source_r, context.source_mask.to(target.device), target)
        index, valid = context.alignment.index(target.shape[-2], context.position_offset)
        index, valid = index.to(target.device), valid.to(target.device)
        # A is position-wise: gathering before projecting is the same and costs less.
        source_r = F.linear(dropout(gather_positions(source, index)), lora_a.weight)
        fused = model.fusions[fusion_key](source_r, target) if learned else FUSIONS[fusion_name](source_r, target)
        return torch.where(valid[..., None], fused, target)

    return hook


def _bound_checkpoint(this, function):
    """A checkpoint function that runs the block (and, in backward, its recomputation) with the
    context of the forward that called it."""
    def checkpoint(block, *args, **kwargs):
        model = this()
        context = None if model is None else model._context

        def run(*inner_args, **inner_kwargs):
            model = this()
            if model is None:
                return block(*inner_args, **inner_kwargs)
            previous, model._context = model._context, context
            try:
                return block(*inner_args, **inner_kwargs)
            finally:
                model._context = previous

        return function(run, *args, **kwargs)

    checkpoint._flare_bound = True
    return checkpoint
