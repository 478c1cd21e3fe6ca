"""Why a seeded stage-1 retrain can leave its record on another machine: the same seeded linear
layer (forward and backward, one thread) run under each instruction-set setting in turn. bf16
(under CPU autocast: study 4) goes through oneDNN, whose instructions `ONEDNN_MAX_CPU_ISA` caps
(the default is the best the CPU has, AMX where there are AMX tiles); float32 (studies 5 and 7)
goes through MKL, whose code path `MKL_CBWR` fixes (the default picks one for the CPU). Each
setting runs in its own process (both libraries read the variable once) and prints a hash of the
output and gradients, and its time; equal hashes mean bit-identical arithmetic. Writes
cpu-arithmetic.json (or the file name given) beside this file, with this machine's `cpu_record`.
Seconds to run, from the repository root:

    python studies/bench/cpu_arithmetic.py [cpu-arithmetic-<machine>.json]

Committed: cpu-arithmetic.json (a machine with AMX) and cpu-arithmetic-no-amx.json (AVX-512 with
bf16, no AMX). Compare hashes across the two files to see which settings agree between machines.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from flare.environment import cpu_record

SETTINGS = {"bfloat16": ("ONEDNN_MAX_CPU_ISA", ("", "AVX512_CORE_AMX", "AVX512_CORE_BF16", "AVX512_CORE", "AVX2")),
            "float32": ("MKL_CBWR", ("", "AVX512", "AVX2", "COMPATIBLE"))}
VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_CBWR")
SHAPE = (256, 384, 1536)  # tokens x e5-small's hidden size x its feed-forward size
REPEATS = 20

ONE = f"""
import hashlib, sys, time, torch
torch.manual_seed(0); torch.set_num_threads(1)
x = torch.randn({SHAPE[0]}, {SHAPE[1]}, requires_grad=True)
layer = torch.nn.Linear({SHAPE[1]}, {SHAPE[2]})
started = time.perf_counter()
for _ in range({REPEATS}):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=sys.argv[1] == "bfloat16"):
        y = layer(x)
    y.float().square().mean().backward()
seconds = time.perf_counter() - started
digest = hashlib.sha256(y.detach().float().numpy().tobytes() + x.grad.numpy().tobytes()
                        + layer.weight.grad.numpy().tobytes()).hexdigest()[:16]
print(digest, seconds)
"""


def main() -> None:
    rows = []
    for dtype, (variable, values) in SETTINGS.items():
        for value in values:
            env = {key: setting for key, setting in os.environ.items() if key not in VARIABLES}
            if value:
                env[variable] = value
            out = subprocess.run([sys.executable, "-c", ONE, dtype], env=env, capture_output=True, text=True,
                                 check=True)
            digest, seconds = out.stdout.split()
            rows.append({"dtype": dtype, variable: value or "default", "hash": digest,
                         "seconds": round(float(seconds), 3)})
            print(rows[-1])
    record = {"what": f"linear {SHAPE[0]}x{SHAPE[1]} -> {SHAPE[2]}, forward + backward x {REPEATS}, 1 thread",
              "cpu": cpu_record(), "rows": rows}
    name = sys.argv[1] if len(sys.argv) > 1 else "cpu-arithmetic.json"
    Path(__file__).with_name(name).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
