"""The record of the software a result or a saved adapter came from: package versions, the git
commit of a checkout, the model's resolved location and revision (`environment` in every result
file and in every adapter's flare_config.json)."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path

PACKAGES = ("flare-xl", "torch", "transformers", "peft", "accelerate", "bitsandbytes")


def package_versions() -> dict[str, str]:
    """Installed versions of flare and the libraries that decide its numbers (absent ones left out)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@lru_cache(maxsize=1)
def git_state() -> dict[str, str | bool] | None:
    """The commit of the checkout flare runs from (and whether it has uncommitted changes); None
    for an installed package or where git is missing."""
    folder = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())} if commit else None


# CPU features that change the arithmetic of a run on the CPU (not only its speed): oneDNN's bf16
# matmuls take AMX tiles where there are some, AVX-512 BF16 or plain AVX-512 otherwise (MKL's float32
# ones AVX-512 or AVX2), and their sums differ in the last bits, so a seeded retrain on another
# machine drifts from its record
ARITHMETIC_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16")


@lru_cache(maxsize=1)
def cpu_record() -> dict:
    """The CPU a run used, as far as it decides the numbers: the architecture, torch's vector
    kernels (its CPU capability), which of `ARITHMETIC_FLAGS` the processor has (Linux only;
    elsewhere None), a cap set on oneDNN's instructions (bf16 products) and a code path set for
    MKL's (float32 products; `studies/bench/cpu_arithmetic.py`). Recorded with every stage-1 model, so
    that a retrain that does not reproduce its record can say whether the machine is the reason."""
    import torch

    flags = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                flags = [flag for flag in ARITHMETIC_FLAGS if flag in present]
                break
    except OSError:
        pass
    return {"machine": platform.machine(), "torch_capability": torch.backends.cpu.get_cpu_capability(),
            "flags": flags,
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA"),
            "mkl_cbwr": os.environ.get("MKL_CBWR")}


def finished_at() -> str:
    """The UTC time, to the second, that result files record as "finished"."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def portable_path(path: str) -> str:
    """A local path with the home folder written as ``~`` (result files are shared and committed:
    they should not carry the user's home path); hub ids and other paths are kept as they are."""
    home, local = Path.home(), Path(path)
    if home == Path("/") or not local.is_relative_to(home):
        return path
    return str(Path("~") / local.relative_to(home))


def environment_record(model: str, resolved: str, revision: str | None, device: str) -> dict:
    return {"python": platform.python_version(), **package_versions(), "git": git_state(), "model": model,
            "model_resolved": portable_path(resolved), "model_revision": revision,
            "device": device, "cpu": cpu_record()}
