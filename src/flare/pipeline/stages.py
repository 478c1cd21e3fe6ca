"""Stage 1 (English task LoRA) and the stage-3 model of every method."""

from __future__ import annotations

from pathlib import Path

from peft import LoraConfig, PeftModel, get_peft_model

from flare.core.config import FlareConfig
from flare.core.model import get_flare_model
from flare.errors import ConfigError
from flare.methods import get_method
from flare.pipeline.config import AdapterConfig, ExperimentConfig
from flare.results.training import NOT_THE_RECORDED_MODEL

STAGE1_ADAPTER = "english"


def lora_config(adapter: AdapterConfig, head) -> LoraConfig:
    return LoraConfig(r=adapter.r, lora_alpha=adapter.alpha, lora_dropout=adapter.dropout,
                      target_modules=adapter.target_modules or head.lora_targets,
                      modules_to_save=head.trainable_heads or None)


def new_stage1_model(config: ExperimentConfig, head):
    """Pretrained model + a fresh LoRA adapter (and trainable task head)."""
    model = head.load_model()
    return get_peft_model(model, lora_config(config.adapter, head))


def _close(a, b) -> bool:
    return a is None and b is None or (a is not None and b is not None and abs(a - b) <= 1e-6 * max(1, abs(a)))


def stage1_curve_drift(recorded: dict, history: list[dict]) -> str | None:
    """Where a stage-1 retrain in progress has left its record (a fresh checkout: stage1.json
    committed, weights not): the first evaluation whose step, validation score or mean training
    loss differs beyond float noise, as a sentence; None while it follows the record."""
    before = recorded.get("history", [])
    for index, row in enumerate(history):
        if index >= len(before):
            return f"evaluation {index + 1} (step {row['step']}) is past the recorded curve's end"
        old = before[index]
        same_loss = old.get("train_loss") is None or _close(old["train_loss"], row.get("train_loss"))  # older records
        if row["step"] != old["step"] or not (_close(old["validation"], row["validation"]) and same_loss):
            return (f"evaluation {index + 1} (step {row['step']}): validation {row['validation']}, training loss "
                    f"{row.get('train_loss')} against {old['validation']}, {old.get('train_loss')} recorded")
    return None


def machines(recorded: dict, here: dict) -> str:
    """The recorded CPU against this one (`flare.environment.cpu_record`), for a retrain's warning."""
    if "cpu" not in recorded:
        return f"this machine's CPU: {here}; the record does not name its CPU"
    same = "the same" if recorded["cpu"] == here else "a different"
    return f"{same} CPU: {here} here, {recorded['cpu']} recorded"


def arithmetic_settings_differ(recorded: dict, here: dict) -> str | None:
    """The instruction-set settings (`MKL_CBWR`, `ONEDNN_MAX_CPU_ISA`) a stage-1 record was trained
    under that this process does not have, e.g. "MKL_CBWR=COMPATIBLE recorded, unset here"; None when
    they agree or the record names no CPU. A retrain under other settings is a different model."""
    cpu = recorded.get("cpu")
    if not cpu:
        return None
    differ = [f"{variable}={cpu.get(key) or 'unset'} recorded, {here.get(key) or 'unset'} here"
              for key, variable in (("mkl_cbwr", "MKL_CBWR"), ("onednn_max_cpu_isa", "ONEDNN_MAX_CPU_ISA"))
              if cpu.get(key) != here.get(key)]
    return "; ".join(differ) or None


def stage1_differences(recorded: dict, history: list[dict], test: dict | None, here: dict) -> list[str]:
    """Warnings where a retrained stage-1 model is not the recorded one: its learning curve (validation
    and training loss) or its test scores differ beyond float noise."""
    drift = stage1_curve_drift(recorded, history)
    if drift is None and len(history) < len(recorded.get("history", [])):
        drift = f"the retrain stopped after {len(history)} evaluations, the record after {len(recorded['history'])}"
    recorded_test, test = recorded.get("test") or {}, test or {}
    same_test = recorded_test.keys() == test.keys() and all(_close(recorded_test[k], test[k]) for k in test)
    if drift is None and same_test:
        return []
    return [f"stage 1 (English) retrained here {NOT_THE_RECORDED_MODEL}: {drift or 'the same curve'}; test {test} "
            f"against {recorded_test} recorded ({machines(recorded, here)}; another CPU, thread count or library "
            "version changes the arithmetic); the stage-3 runs of this sitting build on the new one"]


def load_stage1_model(head, stage1_dir: Path) -> PeftModel:
    model = head.load_model()
    return PeftModel.from_pretrained(model, str(stage1_dir), is_trainable=False)


def resolve_alignment(alignment: str, head_kind: str) -> str:
    """Alignment "auto": decoders pair the prompts at their end (the state that has read the whole English
    prompt meets the position that predicts; docs/core.md), encoders and encoder-decoders at
    their start (every encoder state has read the whole sentence)."""
    if alignment != "auto":
        return alignment
    return "end" if head_kind == "decoder" else "start"


def stage3_model(method: str, config: ExperimentConfig, adapter: AdapterConfig, head, stage1_dir: Path,
                 encoder_dim: int | None = None, seed: int = 0):
    """The model a method trains (or, for zero-shot / translate-test, evaluates): its model kind
    in the method table (flare.methods)."""
    spec = get_method(method)
    stage1 = load_stage1_model(head, stage1_dir)
    if spec.model == "stage1":
        return stage1
    if spec.model == "xmixup":
        from flare.baselines.xmixup import XMixupModel

        if head.kind == "encoder-decoder":
            raise ConfigError("xmixup runs with encoder and decoder models; encoder-decoder models "
                              "(its source pass has no decoder input) are not supported")
        _refuse_quantized_xmixup(stage1)
        lora = get_peft_model(stage1.merge_and_unload(), lora_config(adapter, head))
        return XMixupModel(lora, config.xmixup)
    flare_config = FlareConfig(
        r=adapter.r, alpha=adapter.alpha, dropout=adapter.dropout,
        target_modules=adapter.target_modules or head.lora_targets,
        fusion=adapter.fusion, source_layer_offset=adapter.source_layer_offset,
        alignment=resolve_alignment(adapter.alignment, head.kind),
        cross_attention_heads=adapter.cross_attention_heads, modules_to_save=list(head.trainable_heads),
        source_kind="encoder" if spec.source == "encoder" else "model", source_encoder_dim=encoder_dim,
        init_seed=seed,
    )
    # lora and input-fusion are the same adapter given no source: exactly PEFT's LoRA.
    return get_flare_model(stage1, flare_config)


def _refuse_quantized_xmixup(stage1) -> None:
    from flare.core.introspect import is_quantized

    if is_quantized(stage1):
        raise ConfigError("xmixup on a quantized (4-bit / 8-bit) base is not supported: its model merges the "
                          "stage-1 adapter, which would re-quantize the weights and change the stage-1 model "
                          "(FLARE, LoRA and input-fusion keep it unmerged); run xmixup without quantization")


def load_stage3(method: str, config: ExperimentConfig, adapter: AdapterConfig, head, stage1_dir: Path, folder: Path):
    """A trained stage-3 model back from its saved adapter folder."""
    if get_method(method).model == "xmixup":
        from flare.baselines.xmixup import XMixupModel

        lora = get_peft_model(load_stage1_model(head, stage1_dir).merge_and_unload(), lora_config(adapter, head))
        return XMixupModel.from_pretrained(lora, folder)
    from flare.core.model import FlareModel

    return FlareModel.from_pretrained(load_stage1_model(head, stage1_dir), folder)
