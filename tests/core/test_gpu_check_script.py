"""scripts/gpu_check.py, the GPU check of docs/performance.md, runs its checks on the CPU as well,
so that the script a GPU session runs is known to work."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.py"


def test_gpu_check_passes_on_the_cpu(capsys):
    pytest.importorskip("bitsandbytes")
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--device", "cpu", "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert '"cached_equals_live": true' in out and '"fresh_flare_equals_stage1": true' in out
    assert "all checks passed" in out
