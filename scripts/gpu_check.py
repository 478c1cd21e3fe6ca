"""The GPU check: FLARE's core on a CUDA device, in one short run (about a minute; under 5).

    python scripts/gpu_check.py            # on a machine with a CUDA GPU (bash scripts/gpu-check.sh)
    python scripts/gpu_check.py --device cpu   # the same checks on the CPU (what the test suite runs)

On tiny random models built from configs (no download): trains a few steps of LoRA and FLARE in
bf16 and on a 4-bit (bitsandbytes NF4) base, and checks on the device that
  - a cached source gives the same loss as a live source pass,
  - each generated step's logits equal the teacher-forced logits of the same sequence,
  - on the 4-bit base a fresh FLARE adapter (B = 0) is exactly the stage-1 model,
then prints the step-time ratios (FLARE live and cached over LoRA, same run). Exit status 1 when
a check fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import torch
from peft import LoraConfig, get_peft_model

from flare.core.config import FlareConfig
from flare.core.model import get_flare_model
from flare.testing.tiny_models import random_batch, tiny_model

SHAPE = dict(hidden_size=64, intermediate_size=128, head_dim=16)  # bitsandbytes' 4-bit kernels want 64-blocks


def step_time(model, batch, source: dict, steps: int) -> tuple[float, float]:
    """Seconds per optimizer step (median of `steps`) and the last loss."""
    optimizer = torch.optim.AdamW(model.trainable_parameters().values(), lr=1e-3)
    times, loss = [], None
    for _ in range(steps + 1):
        if batch["input_ids"].is_cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        loss = model(**batch, **source).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if batch["input_ids"].is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return sorted(times[1:])[len(times[1:]) // 2], loss.item()


def to(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def check_bf16(device: str, steps: int, dtype: torch.dtype) -> dict:
    batch = to(random_batch("llama", batch=4, length=32), device)
    source = to(random_batch("llama", batch=4, length=24, seed=1, labels=False), device)
    live = {"source_input_ids": source["input_ids"], "source_attention_mask": source["attention_mask"]}
    results = {}

    def fresh():
        base = tiny_model("llama", **SHAPE).to(device=device, dtype=dtype)
        return get_flare_model(base, FlareConfig(target_modules="all-linear", init_seed=0))

    lora = fresh()
    results["lora_step_s"], _ = step_time(lora, batch, {}, steps)
    model = fresh()
    results["flare_live_step_s"], live_loss = step_time(model, batch, live, steps)
    model = fresh()
    states = model.compute_source_states(source["input_ids"], source["attention_mask"])
    results["flare_cached_step_s"], cached_loss = step_time(model, batch, {"source_states": states}, steps)
    results["cached_equals_live"] = abs(cached_loss - live_loss) <= 1e-2 * max(1.0, abs(live_loss))

    # generation == teacher forcing (greedy, on the device)
    model = fresh().eval()
    with torch.no_grad():
        for param in model.trainable_parameters().values():
            param.add_(torch.randn_like(param) * 0.05)
        prompt = {k: v[:, :12] for k, v in batch.items() if k != "labels"}
        out = model.generate(**prompt, **live, max_new_tokens=6, do_sample=False, output_logits=True,
                             return_dict_in_generate=True, pad_token_id=0)
        sequence = out.sequences
        forced = model(input_ids=sequence, attention_mask=torch.ones_like(sequence), **live,
                       target_lengths=prompt["attention_mask"].sum(1)).logits
        steps_logits = torch.stack(out.logits, dim=1).float()
        forced_logits = forced[:, 11:-1].float()
        results["generation_equals_teacher_forcing"] = bool(
            torch.allclose(steps_logits, forced_logits, rtol=0, atol=5e-2 if dtype != torch.float32 else 1e-4))
    return results


def check_4bit(device: str, steps: int) -> dict:
    try:
        from transformers import BitsAndBytesConfig, LlamaForCausalLM
        import bitsandbytes  # noqa: F401
    except ImportError:
        return {"skipped": "bitsandbytes is not installed"}
    folder = tempfile.mkdtemp()
    tiny_model("llama", **SHAPE).save_pretrained(folder)
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
                               if device == "cuda" else torch.float32)
    base = LlamaForCausalLM.from_pretrained(folder, quantization_config=quant, device_map=device)
    stage1 = get_peft_model(base, LoraConfig(r=8, target_modules="all-linear"))
    with torch.no_grad():
        for name, param in stage1.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.02)
    batch = to(random_batch("llama", batch=4, length=32), device)
    source = to(random_batch("llama", batch=4, length=24, seed=1, labels=False), device)
    stage1.eval()
    with torch.no_grad():
        expected = stage1(**{k: v for k, v in batch.items() if k != "labels"}).logits.float()
    model = get_flare_model(stage1, FlareConfig(target_modules="all-linear", init_seed=0))
    model.eval()
    with torch.no_grad():
        got = model(**{k: v for k, v in batch.items() if k != "labels"}, source_input_ids=source["input_ids"],
                    source_attention_mask=source["attention_mask"]).logits.float()
    model.train()
    live = {"source_input_ids": source["input_ids"], "source_attention_mask": source["attention_mask"]}
    seconds, loss = step_time(model, batch, live, steps)
    return {"stage1_kept_unmerged": model.stacked, "fresh_flare_equals_stage1": bool(torch.allclose(got, expected, atol=1e-3)),
            "flare_live_step_s": seconds, "loss_finite": bool(torch.isfinite(torch.tensor(loss)))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU here (torch.cuda.is_available() is False): nothing checked; "
              "use --device cpu for the CPU version of the checks")
        return 2
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    started = time.perf_counter()
    report = {"device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu",
              "torch": torch.__version__, "dtype": str(dtype)}
    report["bf16" if args.device == "cuda" else "float32"] = full = check_bf16(args.device, args.steps, dtype)
    full["ratio_flare_live_over_lora"] = full["flare_live_step_s"] / full["lora_step_s"]
    full["ratio_flare_cached_over_lora"] = full["flare_cached_step_s"] / full["lora_step_s"]
    report["4bit"] = check_4bit(args.device, args.steps)
    report["seconds"] = time.perf_counter() - started
    print(json.dumps(report, indent=2))
    checks = [full["cached_equals_live"], full["generation_equals_teacher_forcing"]]
    if "skipped" not in report["4bit"]:
        checks += [report["4bit"]["fresh_flare_equals_stage1"], report["4bit"]["loss_finite"]]
    ok = all(checks)
    print("gpu check:", "all checks passed" if ok else "A CHECK FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
