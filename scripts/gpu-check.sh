#!/usr/bin/env bash
# The GPU check (docs/performance.md): FLARE's core on a CUDA GPU, bf16 and 4-bit, in about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
exec "$PYTHON" scripts/gpu_check.py "$@"
