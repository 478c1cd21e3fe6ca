"""A FLARE adapter as a folder (or hub repository) that loads in one call.

What `FlareModel.save_pretrained` writes:

    flare_config.json            the adapter's settings, the base model's id (and revision) and class,
                                 a fingerprint of the stage-1 model, the environment it was saved in
    flare_adapter.safetensors    every trainable weight (LoRA, fusion, projection, task head)
    base_config.json             the base model's transformers config (labels, sizes)
    stage1/                      the stage-1 (English task) adapter in PEFT's own format
    README.md                    a model card with hub metadata (base_model, library, languages, ...)

`load_folder(id_or_path)` rebuilds base model + stage-1 adapter + FLARE adapter from that alone;
`push_to_hub` uploads it with huggingface_hub. PEFT's `PeftModel.from_pretrained` does not load
it: FLARE's forward takes the English partner (`source_input_ids` / `source_states`), which
PEFT's model classes do not pass to a tuner, so a FLARE model registered as a PEFT method would
load its weights and then run as plain LoRA. `FlareModel.from_pretrained` is the loader; the
stage-1 folder inside is an ordinary PEFT adapter (the English task model, with
`PeftModel.from_pretrained`).
"""

from __future__ import annotations

import json
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import PeftConfig, PeftModel, get_peft_model_state_dict
from safetensors.torch import save_file
from torch import nn

from flare.core.lm_head import contiguous_lm_head_input
from flare.errors import FlareError

STAGE1_FOLDER = "stage1"
BASE_CONFIG = "base_config.json"
CARD = "README.md"


@dataclass
class Stage1Snapshot:
    """The stage-1 adapter as it was given (before a merge removes it): PEFT config + weights."""

    config: PeftConfig
    state: dict[str, torch.Tensor]


def snapshot_stage1(model: nn.Module) -> Stage1Snapshot | None:
    if not isinstance(model, PeftModel):
        return None
    name = model.active_adapter if isinstance(model.active_adapter, str) else model.active_adapters[0]
    # from the parameters, not model.state_dict(): on bitsandbytes' CPU 4-bit layers that repacks the
    # weights and changes the model's outputs (core/fingerprint.py)
    tensors = dict(model.named_parameters())
    state = {k: v.detach().to("cpu", copy=True)
             for k, v in get_peft_model_state_dict(model, state_dict=tensors, adapter_name=name).items()}
    return Stage1Snapshot(model.peft_config[name], state)


def environment() -> dict:
    """Versions of what computed the weights, and the checkout's commit (recorded with every saved adapter)."""
    from flare.environment import git_state, package_versions

    return {"python": platform.python_version(), **package_versions(), "git": git_state()}


def write_extras(directory: Path, base: nn.Module, stage1: Stage1Snapshot | None, flare_config) -> None:
    """Everything but the adapter weights and flare_config.json: base config, stage 1, card."""
    config = getattr(base, "config", None)
    if config is not None and hasattr(config, "to_dict"):
        data = {k: v for k, v in config.to_dict().items() if k != "quantization_config"}
        (directory / BASE_CONFIG).write_text(json.dumps(data, indent=2, default=str) + "\n")
    if stage1 is not None:
        folder = directory / STAGE1_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        peft_config = PeftConfig.from_peft_type(**{k: v for k, v in stage1.config.to_dict().items()})
        peft_config.base_model_name_or_path = flare_config.base_model_name_or_path
        peft_config.inference_mode = True
        peft_config.save_pretrained(str(folder))
        save_file({k: v.contiguous() for k, v in stage1.state.items()}, str(folder / "adapter_model.safetensors"),
                  metadata={"format": "pt"})
    (directory / CARD).write_text(model_card(flare_config))


def model_card(config) -> str:
    """A README.md with the hub's metadata block, from what the config knows."""
    info = dict(config.card or {})
    languages = info.get("languages") or []
    base = info.get("base_model") or config.base_model_name_or_path  # a hub id where the caller knows one
    lines = ["---", "library_name: flare", "tags:", "- flare", "- lora", "- peft", "- cross-lingual-transfer"]
    if base:
        lines.append(f"base_model: {base}")
    if languages:
        lines.append("language:")
        lines += [f"- {code}" for code in languages]
    metrics = info.get("metrics") or {}
    if metrics:
        lines.append("metrics:")
        lines += [f"- {name}" for name in metrics]
    lines += ["---", "", f"# FLARE adapter{' for ' + base if base else ''}",
              "", "A FLARE adapter (Language Fusion for Parameter-Efficient Cross-lingual Transfer, ACL 2025): LoRA",
              "whose bottleneck fuses each target-language input with its English translation, read by the frozen",
              "English-task (stage-1) model.", ""]
    rows = [("base model", base), ("loaded from", config.base_model_name_or_path if base != config.base_model_name_or_path
                                      else None), ("revision", config.base_model_revision),
            ("task", info.get("task")), ("method", info.get("method")),
            ("languages", ", ".join(languages) if languages else None), ("fusion", config.fusion),
            ("layer offset k", config.source_layer_offset), ("alignment", config.alignment), ("LoRA r", config.r)]
    lines += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows if v not in (None, "")]
    if metrics:
        lines += ["", "| metric | value |", "|---|---|"] + [f"| {k} | {v:.2f} |" if isinstance(v, float)
                                                          else f"| {k} | {v} |" for k, v in metrics.items()]
    lines += ["", "## Use", "", "```python", "import flare", "",
              "model = flare.FlareModel.from_pretrained(\"REPO_OR_FOLDER\")   # base + stage 1 + FLARE adapter",
              "out = model(input_ids=target_ids, attention_mask=target_mask,",
              "            source_input_ids=english_ids, source_attention_mask=english_mask)", "```", "",
              "Without an English partner (no `source_*` argument) the adapter runs as plain LoRA.", ""]
    return "\n".join(lines)


def resolve_folder(id_or_path: str | Path, revision: str | None = None) -> Path:
    """A local folder as it is; anything else is a hub repository id (downloaded by huggingface_hub)."""
    path = Path(id_or_path)
    if path.is_dir():
        return path
    if path.exists() or str(id_or_path).startswith((".", "/")) or str(id_or_path).count("/") != 1:
        raise FlareError(f"{id_or_path} is not a folder written by FlareModel.save_pretrained, nor a hub repository id")
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(str(id_or_path), revision=revision))


def load_base(folder: Path, config, base_model: str | None = None, **model_kwargs) -> nn.Module:
    """The base model (and the stage-1 adapter, when the folder has it) that the adapter was made on."""
    import transformers

    name = base_model or config.base_model_name_or_path
    if not name or not config.base_model_class:
        raise FlareError(f"{folder / 'flare_config.json'} names no base model (saved by an older flare): "
                         "build the stage-1 model yourself and call FlareModel.from_pretrained(model, folder)")
    model_class = getattr(transformers, config.base_model_class, None)
    if model_class is None:
        raise FlareError(f"transformers has no model class {config.base_model_class!r} (saved with another version?)")
    kwargs = dict(model_kwargs)
    if (folder / BASE_CONFIG).is_file() and "config" not in kwargs:
        data = json.loads((folder / BASE_CONFIG).read_text())
        kwargs["config"] = transformers.AutoConfig.for_model(**data)
    if config.base_model_revision and base_model is None:
        kwargs.setdefault("revision", config.base_model_revision)
    model = contiguous_lm_head_input(model_class.from_pretrained(name, **kwargs))
    if (folder / STAGE1_FOLDER).is_dir():
        model = PeftModel.from_pretrained(model, str(folder / STAGE1_FOLDER), is_trainable=False)
    return model


def push_folder(folder_writer, repo_id: str, *, private: bool | None = None, token: str | None = None,
                revision: str | None = None, commit_message: str = "Upload FLARE adapter") -> str:
    """Write the folder to a temporary place with `folder_writer(path)` and upload it whole."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder_writer(Path(tmp))
        info = api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message, revision=revision)
    return getattr(info, "commit_url", None) or str(info)
