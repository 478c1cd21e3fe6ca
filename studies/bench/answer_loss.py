"""The decoder training loss over Gemma's 262k-token vocabulary: the LM head at every position (the
model's own loss) against the LM head at the answer positions only (`CausalLMHead.loss`, what flare
trains with for label words and generated QA answers). One process, the two alternating, so the
ratio is measured in one run. Study 5's shape: LoRA r = 8 on every linear layer, batch 8 x 256
tokens, the last 6 tokens the answer. Writes answer-loss-gemma3-270m.json beside this file. Run
from the repository root (a few minutes per step at one thread on a 2-core CPU):

    python studies/bench/answer_loss.py
"""

import json
import statistics
import threading
import time
from pathlib import Path

import psutil
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from bench_heads import LossOnly
from flare.heads.base import BaseHead
from flare.pretrained.resolve import resolve_model

BATCH, LENGTH, ANSWER, REPEATS = 8, 256, 6, 2
torch.set_num_threads(1)
torch.manual_seed(0)


class PeakMemory:
    """Peak resident memory of this process above the level at `start()`, sampled every 20 ms."""

    def __init__(self):
        self.process, self.peak, self.base = psutil.Process(), 0, 0
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self):
        while True:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def start(self):
        self.base = self.peak = self.process.memory_info().rss

    def above_start_mb(self) -> float:
        return (self.peak - self.base) / 2**20


model = AutoModelForCausalLM.from_pretrained(resolve_model("gemma3-270m").path_or_id, dtype=torch.float32)
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"))
ids = torch.randint(10, 20000, (BATCH, LENGTH))
labels = torch.full_like(ids, -100)
labels[:, -ANSWER:] = ids[:, -ANSWER:]
batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
head, memory = LossOnly(), PeakMemory()
variants = {"full_logits": lambda: BaseHead.loss(head, model, batch, {}),
            "answer_positions": lambda: head.loss(model, batch, {})}
rows = {name: {"step_seconds": [], "peak_mb": [], "loss": None} for name in variants}
for _ in range(REPEATS):
    for name, loss_fn in variants.items():
        memory.start()
        start = time.perf_counter()
        loss = loss_fn()
        loss.backward()
        rows[name]["step_seconds"].append(time.perf_counter() - start)
        rows[name]["peak_mb"].append(memory.above_start_mb())
        rows[name]["loss"] = loss.item()
        model.zero_grad()
full, answer = rows["full_logits"], rows["answer_positions"]
result = {"model": "gemma3-270m", "batch_size": BATCH, "length": LENGTH, "answer_tokens": ANSWER,
          "threads": 1, "repeats": REPEATS, "torch": torch.__version__, "rows": rows,
          "step_ratio_full_over_answer": statistics.median(full["step_seconds"])
          / statistics.median(answer["step_seconds"]),
          "same_loss": abs(full["loss"] - answer["loss"]) <= 1e-4 * abs(full["loss"])}
out = Path(__file__).with_name("answer-loss-gemma3-270m.json")
out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
print(json.dumps(result, indent=2))
