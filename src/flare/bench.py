"""`flare bench`: what each method costs per training step, in memory and at evaluation.

Every method runs in a fresh subprocess (so that its peak memory is its own), one after the
other in one invocation, on the same model, batch and length; figures are reported as ratios to
PEFT's own LoRA measured in the same run. Training step = forward + backward + optimizer step
(and, for cached FLARE, collating the cached states, as the training loop does).

With `profile`, the measured training steps also run under cProfile, and the time spent in the
bodies of flare's own functions (hooks, alignment, fusion dispatch, collation: their "tottime",
which leaves out the torch operations they call) is reported as a share of the step: the Python
overhead of the capture and fusion machinery. Deterministic profiling slows Python down, so the
share is an upper bound. The synthetic sizes "random-base" and "random-large" (BERT-base and
-large shapes, random weights, small vocabulary) show how that overhead grows with the model.

The FLARE rows use add_relu fusion; `fusions` measures them once per fusion function, in the same
run (rows "flare-cached", "flare-cached-mul", ...), so that the cost of each function is a ratio
like every other. `precisions` does the same for mixed precision: every row once per precision
("no": float32; "bf16"/"fp16": the forward passes under torch's CPU autocast, as `precision:` in an
experiment config gives through accelerate), rows "lora-bf16", ..., all as ratios to float32 PEFT
LoRA. The bench runs on the CPU.
"""

from __future__ import annotations

import cProfile
import json
import pstats
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

METHODS = ("peft-lora", "lora", "flare-live", "flare-cached", "flare-mt", "input-fusion", "xmixup")
FUSED_METHODS = ("flare-live", "flare-cached", "flare-mt")  # the rows that fusion changes
DEFAULT_FUSION = "add_relu"
PRECISIONS = {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # autocast dtype
NOTES = {
    "peft-lora": "PEFT LoraConfig on query/value: the peer a user would otherwise run",
    "lora": "our adapter with no source (exactly PEFT's LoRA)",
    "flare-live": "FLARE {fusion}, k=1, source pass every step",
    "flare-cached": "FLARE {fusion}, k=1, source states from the cache (float16)",
    "flare-mt": "FLARE-MT ({fusion}), encoder states from the cache (the encoder runs once per example)",
    "input-fusion": "LoRA on English+target in one input (twice the length)",
    "xmixup": "X-Mixup over LoRA: source pass with gradients, mixing at one block",
}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# Random-weight shapes: step time depends on the shape, not on the values.
SYNTHETIC = {"tiny": (4, 128, 4), "random-base": (12, 768, 12), "random-large": (24, 1024, 16)}


def _build_model(model_name: str):
    from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification

    if model_name in SYNTHETIC:
        layers, hidden, heads = SYNTHETIC[model_name]
        torch.manual_seed(0)
        config = BertConfig(vocab_size=1000, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                            intermediate_size=4 * hidden, num_labels=3)
        return BertForSequenceClassification(config)
    from flare.pretrained.resolve import resolve_model

    return AutoModelForSequenceClassification.from_pretrained(resolve_model(model_name).path_or_id, num_labels=3)


def flare_python_seconds(profiler: cProfile.Profile) -> float:
    """Seconds spent in the bodies of flare's functions (not in what they call), bench excluded."""
    package = str(Path(__file__).parent)
    return sum(stat[2] for (filename, _, _), stat in pstats.Stats(profiler).stats.items()
               if filename.startswith(package) and not filename.endswith("bench.py"))


def measure(method: str, model_name: str, batch_size: int, length: int, steps: int, warmup: int,
            threads: int | None, profile: bool = False, fusion: str = DEFAULT_FUSION, precision: str = "no") -> dict:
    """Runs in the worker process."""
    from peft import LoraConfig, get_peft_model

    from flare.core.config import FlareConfig
    from flare.core.model import get_flare_model
    from flare.pipeline.data import collate_source_states

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = _build_model(model_name)
    vocab = model.config.vocab_size
    ids = torch.randint(5, vocab, (batch_size, length))
    source_ids = torch.randint(5, vocab, (batch_size, length))
    labels = torch.randint(0, 3, (batch_size,))
    ones = torch.ones_like(ids)
    heads = ["classifier"]
    inputs = {"input_ids": ids, "attention_mask": ones}
    source: dict = {}
    make_source = None
    if method == "peft-lora":
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, modules_to_save=heads))
    elif method == "xmixup":
        from flare.baselines.xmixup import XMixupConfig, XMixupModel

        model = XMixupModel(get_peft_model(model, LoraConfig(r=8, lora_alpha=16, modules_to_save=heads)),
                            XMixupConfig())
        source = {"source_input_ids": source_ids, "source_attention_mask": ones}
    elif method == "flare-mt":
        with torch.no_grad():
            encoder_states = model.base_model(input_ids=ids).last_hidden_state  # cached encoder output
        model = get_flare_model(model, FlareConfig(source_kind="encoder", source_encoder_dim=encoder_states.shape[-1],
                                                   fusion=fusion, modules_to_save=heads))
        source = {"source_encoder_states": encoder_states, "source_attention_mask": ones}
    else:
        model = get_flare_model(model, FlareConfig(fusion=fusion, modules_to_save=heads))
        if method == "flare-live":
            source = {"source_input_ids": source_ids, "source_attention_mask": ones}
        elif method == "flare-cached":
            states = model.compute_source_states(source_ids, ones)
            per_example = []
            for row in range(batch_size):
                done: dict[int, torch.Tensor] = {}
                per_example.append({k: done.setdefault(id(t), t[row].half()) for k, t in states.states.items()})
            make_source = lambda: {"source_states": collate_source_states(per_example)}  # noqa: E731
        elif method == "input-fusion":
            inputs = {"input_ids": torch.cat([source_ids, ids], 1), "attention_mask": torch.cat([ones, ones], 1)}
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    dtype = PRECISIONS[precision]

    def autocast():
        return torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None)
    baseline = _rss_mb()

    def step():
        extra = make_source() if make_source else source
        with autocast():
            loss = model(**inputs, labels=labels, **extra).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    model.train()
    times = []
    for i in range(warmup + steps):
        started = time.perf_counter()
        step()
        if i >= warmup:
            times.append(time.perf_counter() - started)
    profiled = {}
    if profile:  # separate steps: the profiler's own cost must not touch the timings above
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.runcall(lambda: [step() for _ in range(steps)])
        total = time.perf_counter() - started
        profiled = {"profiled_step_seconds": total / steps,
                    "flare_python_seconds_per_step": flare_python_seconds(profiler) / steps,
                    "flare_python_share": flare_python_seconds(profiler) / total}
    model.eval()
    eval_times = []
    with torch.no_grad():
        for i in range(warmup + steps):
            started = time.perf_counter()
            extra = make_source() if make_source else source
            with autocast():
                model(**inputs, **extra)
            if i >= warmup:
                eval_times.append(time.perf_counter() - started)
    return {"method": row_name(method, fusion, precision), "fusion": fusion if method in FUSED_METHODS else None,
            "precision": precision,
            "step_seconds": statistics.median(times), "step_times": times,
            "eval_examples_per_second": batch_size / statistics.median(eval_times),
            "peak_rss_mb": _rss_mb(), "rss_before_training_mb": baseline,
            "trainable_parameters": sum(p.numel() for p in params), "note": NOTES[method].format(fusion=fusion),
            **profiled}


def row_name(method: str, fusion: str, precision: str = "no") -> str:
    name = method if fusion == DEFAULT_FUSION or method not in FUSED_METHODS else f"{method}-{fusion}"
    return name if precision == "no" else f"{name}-{precision}"


def bench_jobs(methods: tuple[str, ...], fusions: tuple[str, ...],
               precisions: tuple[str, ...] = ("no",)) -> list[tuple[str, str, str]]:
    """(method, fusion, precision) in order: the FLARE rows once per fusion, every other method once,
    each once per precision (a method's precisions side by side)."""
    return [(m, f, p) for m in methods for f in (fusions if m in FUSED_METHODS else (DEFAULT_FUSION,))
            for p in precisions]


def run_bench(model_name: str = "e5-small", batch_size: int = 16, length: int = 128, steps: int = 5,
              warmup: int = 2, threads: int | None = 2, methods: tuple[str, ...] = METHODS,
              log=print, profile: bool = False, fusions: tuple[str, ...] = (DEFAULT_FUSION,),
              precisions: tuple[str, ...] = ("no",)) -> dict:
    if model_name not in SYNTHETIC:
        from flare.pretrained.resolve import resolve_model

        resolve_model(model_name)  # provision once, outside the workers
    rows = []
    for method, fusion, precision in bench_jobs(methods, fusions, precisions):
        spec = json.dumps({"method": method, "model_name": model_name, "batch_size": batch_size, "length": length,
                           "steps": steps, "warmup": warmup, "threads": threads, "profile": profile,
                           "fusion": fusion, "precision": precision})
        name = row_name(method, fusion, precision)
        log(f"bench: {name} ...")
        done = subprocess.run([sys.executable, "-m", "flare.bench", spec], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"bench worker for {name} failed:\n{done.stderr[-2000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    reference = next((r for r in rows if r["method"] == "peft-lora"), rows[0])
    for row in rows:
        row["step_ratio"] = row["step_seconds"] / reference["step_seconds"]
        row["memory_ratio"] = row["peak_rss_mb"] / reference["peak_rss_mb"]
        row["eval_ratio"] = row["eval_examples_per_second"] / reference["eval_examples_per_second"]
    return {"model": model_name, "batch_size": batch_size, "length": length, "steps": steps, "warmup": warmup,
            "threads": threads, "profile": profile, "fusions": list(fusions), "precisions": list(precisions),
            "torch": torch.__version__,
            "reference": reference["method"], "rows": rows,
            "memory_note": "peak resident memory of the whole worker process (model, data, activations)"}


def format_table(result: dict) -> str:
    lines = [f"model {result['model']}, batch {result['batch_size']}, length {result['length']}, "
             f"{result['threads']} threads, median of {result['steps']} steps after {result['warmup']} warm-up",
             "step: seconds per training step; MiB: peak memory; eval/s: examples per second; x: the ratio to PEFT LoRA",
             "",
             "| method | step | x | MiB | x | eval/s | x |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['method']} | {r['step_seconds']:.3f} | {r['step_ratio']:.2f} | {r['peak_rss_mb']:.0f} | "
                     f"{r['memory_ratio']:.2f} | {r['eval_examples_per_second']:.1f} | {r['eval_ratio']:.2f} |")
    if result.get("profile"):
        lines += ["", "Python time in flare's own code, per training step (cProfile, an upper bound):", "",
                  "| method | flare ms | share |", "|---|---|---|"]
        for r in result["rows"]:
            lines.append(f"| {r['method']} | {1000 * r['flare_python_seconds_per_step']:.1f} | "
                         f"{100 * r['flare_python_share']:.1f} % |")
    return "\n".join(lines)


def write_bench(result: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":  # worker: one method, one JSON line on stdout
    print(json.dumps(measure(**json.loads(sys.argv[1]))))
