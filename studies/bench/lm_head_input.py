"""The LM head's input, strided (as transformers slices it for `logits_to_keep`) or contiguous
(`flare.core.lm_head.contiguous_lm_head_input`), on CPU: time and peak memory, each measured in a
fresh worker process (peak resident memory above the level before the measured call), all in one
run so the ratios compare like with like.

- kernel: `linear` of the last position of a (batch, 256, 640) hidden state with a 262,144 x 640
  weight (Gemma 3 270M's head), bfloat16 and float32;
- generate: Gemma 3 270M as flare loads it (its bfloat16 weights), frozen as under any adapter,
  greedy generation of 4 tokens after a batch of 256-token prompts, without and with the hook; the
  generated tokens must match. (With weights that require grad, as a freshly loaded model's do,
  the strided input takes a fast path: the cost appears once the base model is frozen.)

Writes lm-head-input.json beside this file. Run from the repository root (a few minutes at one
thread; the strided bfloat16 rows need a few GB of memory):

    python studies/bench/lm_head_input.py
"""

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

BATCH, LENGTH, VOCAB, HIDDEN, NEW_TOKENS = 8, 256, 262144, 640, 4


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def kernel(dtype: str, contiguous: bool) -> dict:
    weight = torch.randn(VOCAB, HIDDEN, dtype=getattr(torch, dtype))
    last = torch.randn(BATCH, LENGTH, HIDDEN, dtype=weight.dtype)[:, -1:, :]
    last = last.contiguous() if contiguous else last
    before, started = peak_mb(), time.perf_counter()
    torch.nn.functional.linear(last, weight)
    return {"seconds": time.perf_counter() - started, "peak_mb_above": peak_mb() - before}


def generate(hooked: bool) -> dict:
    from transformers import AutoModelForCausalLM

    from flare.core.lm_head import contiguous_lm_head_input
    from flare.pretrained.resolve import resolve_model

    model = AutoModelForCausalLM.from_pretrained(resolve_model("gemma3-270m").path_or_id).eval()
    model.requires_grad_(False)  # frozen, as under any adapter (a weight that requires grad takes another path)
    if hooked:
        contiguous_lm_head_input(model)
    ids = torch.randint(1000, 20000, (BATCH, LENGTH), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model(input_ids=ids[:1, :8])  # every weight touched before the measurement
        before, started = peak_mb(), time.perf_counter()
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW_TOKENS,
                             do_sample=False, num_beams=1)
    return {"seconds": time.perf_counter() - started, "peak_mb_above": peak_mb() - before,
            "weights_dtype": str(model.get_output_embeddings().weight.dtype),
            "generated": out[:, LENGTH:].tolist()}


def worker(args: list[str]) -> None:
    torch.set_num_threads(1)
    row = kernel(args[1], args[2] == "contiguous") if args[0] == "kernel" else generate(args[1] == "hooked")
    print(json.dumps(row))


def main() -> None:
    jobs = [("kernel", dtype, layout) for dtype in ("bfloat16", "float32") for layout in ("strided", "contiguous")]
    jobs += [("generate", hook) for hook in ("plain", "hooked")]
    rows = {}
    for job in jobs:
        done = subprocess.run([sys.executable, __file__, *job], capture_output=True, text=True, check=True)
        rows["/".join(job)] = json.loads(done.stdout.strip().splitlines()[-1])
        print("/".join(job), {k: v for k, v in rows["/".join(job)].items() if k != "generated"}, flush=True)
    plain, hooked = rows["generate/plain"], rows["generate/hooked"]
    result = {
        "batch": BATCH, "length": LENGTH, "vocab": VOCAB, "hidden": HIDDEN, "new_tokens": NEW_TOKENS, "threads": 1,
        "torch": torch.__version__, "rows": rows,
        "ratios": {
            "kernel_bfloat16_strided_over_contiguous_seconds":
                rows["kernel/bfloat16/strided"]["seconds"] / rows["kernel/bfloat16/contiguous"]["seconds"],
            "kernel_float32_strided_over_contiguous_seconds":
                rows["kernel/float32/strided"]["seconds"] / rows["kernel/float32/contiguous"]["seconds"],
            "generate_plain_over_hooked_seconds": plain["seconds"] / hooked["seconds"],
        },
        "same_generated_tokens": plain["generated"] == hooked["generated"],
    }
    out = Path(__file__).with_name("lm-head-input.json")
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["ratios"], indent=2), "same tokens:", result["same_generated_tokens"])


if __name__ == "__main__":
    worker(sys.argv[1:]) if len(sys.argv) > 1 else main()
