"""What glibc's `malloc_trim(0)` costs a training step (flare.heap.HeapTrim; docs/performance.md,
"Long runs on the CPU: the C allocator"). One process, Gemma 3 270M with LoRA r = 8 on every
linear layer, study 5's batch shape (8 x 256 tokens, the loss on the last 6), forward + backward +
AdamW step, one thread. Steps alternate: "trimmed" calls malloc_trim(0) just before the step, so
the step faults in again the pages the previous step had freed; "untrimmed" follows a trimmed step
without a trim and reuses the freed blocks the heap kept. The difference of the medians is what
one trim costs; flare trims at most every 30 s, so its share of the time is that cost over 30 s
(`share_at_interval`). Alternating in one process gives both variants the same machine load.
Writes heap-trim-gemma3-270m.json beside this file. Run from the repository root (a few minutes
at one thread on a 2-core CPU; glibc only):

    python studies/bench/heap_trim.py
"""

import json
import statistics
import time
from pathlib import Path

import psutil
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from bench_heads import LossOnly
from flare.heap import EVERY_SECONDS, malloc_trim
from flare.pretrained.resolve import resolve_model

BATCH, LENGTH, ANSWER, PAIRS, WARMUP = 8, 256, 6, 8, 2
torch.set_num_threads(1)
torch.manual_seed(0)


trim = malloc_trim()
if trim is None:
    raise SystemExit("this C library has no malloc_trim (not glibc): nothing to measure")
model = AutoModelForCausalLM.from_pretrained(resolve_model("gemma3-270m").path_or_id, dtype=torch.float32)
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"))
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
ids = torch.randint(10, 20000, (BATCH, LENGTH))
labels = torch.full_like(ids, -100)
labels[:, -ANSWER:] = ids[:, -ANSWER:]
batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
head, process = LossOnly(), psutil.Process()


def step() -> float:
    start = time.perf_counter()
    head.loss(model, batch, {}).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


for _ in range(WARMUP):
    step()
rows = {name: {"step_seconds": [], "trim_call_seconds": [], "rss_mb_before_step": []}
        for name in ("trimmed", "untrimmed")}
for _ in range(PAIRS):
    for name in rows:
        if name == "trimmed":
            start = time.perf_counter()
            trim(0)
            rows[name]["trim_call_seconds"].append(time.perf_counter() - start)
        rows[name]["rss_mb_before_step"].append(process.memory_info().rss / 2**20)
        rows[name]["step_seconds"].append(step())
trimmed = statistics.median(rows["trimmed"]["step_seconds"])
untrimmed = statistics.median(rows["untrimmed"]["step_seconds"])
per_trim = trimmed - untrimmed + statistics.median(rows["trimmed"]["trim_call_seconds"])
result = {
    "model": "gemma3-270m", "batch_size": BATCH, "length": LENGTH, "answer_tokens": ANSWER,
    "threads": 1, "pairs": PAIRS, "warmup_steps": WARMUP, "torch": torch.__version__, "rows": rows,
    "step_ratio_trimmed_over_untrimmed": trimmed / untrimmed,
    "seconds_per_trim": per_trim,
    "interval_seconds": EVERY_SECONDS,
    "share_at_interval": per_trim / EVERY_SECONDS,
}
out = Path(__file__).with_name("heap-trim-gemma3-270m.json")
out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
