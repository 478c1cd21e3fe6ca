"""Why a seeded bf16 stage-1 retrain can leave its record on another machine: the same seeded bf16
linear layer (forward and backward, under CPU autocast, one thread) run with oneDNN allowed each
instruction set in turn (`ONEDNN_MAX_CPU_ISA`; the default is the best the CPU has, AMX where there
are AMX tiles). Each setting runs in its own process (oneDNN reads the variable once) and prints a
hash of the output and gradients, and its time; equal hashes mean bit-identical arithmetic.
Writes bf16-isa.json beside this file, with this machine's `cpu_record`. Seconds to run, from the
repository root:

    python studies/bench/bf16_isa.py
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from flare.environment import cpu_record

SETTINGS = ("", "AVX512_CORE_AMX", "AVX512_CORE_BF16", "AVX512_CORE", "AVX2")
SHAPE = (256, 384, 1536)  # tokens x e5-small's hidden size x its feed-forward size
REPEATS = 20

ONE = f"""
import hashlib, time, torch
torch.manual_seed(0); torch.set_num_threads(1)
x = torch.randn({SHAPE[0]}, {SHAPE[1]}, requires_grad=True)
layer = torch.nn.Linear({SHAPE[1]}, {SHAPE[2]})
started = time.perf_counter()
for _ in range({REPEATS}):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    y.float().square().mean().backward()
seconds = time.perf_counter() - started
digest = hashlib.sha256(y.detach().float().numpy().tobytes() + x.grad.numpy().tobytes()
                        + layer.weight.grad.numpy().tobytes()).hexdigest()[:16]
print(digest, seconds)
"""


def main() -> None:
    rows = []
    for isa in SETTINGS:
        env = {key: value for key, value in os.environ.items() if key not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")}
        if isa:
            env["ONEDNN_MAX_CPU_ISA"] = isa
        out = subprocess.run([sys.executable, "-c", ONE], env=env, capture_output=True, text=True, check=True)
        digest, seconds = out.stdout.split()
        rows.append({"onednn_max_cpu_isa": isa or "default", "hash": digest, "seconds": round(float(seconds), 3)})
        print(rows[-1])
    record = {"what": f"bf16 linear {SHAPE[0]}x{SHAPE[1]} -> {SHAPE[2]}, forward + backward x {REPEATS}, 1 thread",
              "cpu": cpu_record(), "rows": rows}
    Path(__file__).with_name("bf16-isa.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
