#!/usr/bin/env bash
# The GPU check: matmul ceiling (float32, bfloat16), one default trial's breakdown, trials per
# hour at K = 1, 2, 4 trials per GPU, mixed precision off/on with validation metrics. Under
# 8 minutes on one GPU; writes its blocks of benchmarks/RESULTS.md (benchmarks/gpu_check.py).
#
#   benchmarks/gpu_check.sh              # on a machine with GPU 0 (pip install '.[gpu]')
#   benchmarks/gpu_check.sh --cpu-smoke  # the same steps at toy sizes on the CPU
#
# PYTHON picks the interpreter (default: .venv/bin/python, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if [[ " $* " != *" --cpu-smoke "* ]]; then
  command -v nvidia-smi >/dev/null || { echo "gpu_check: no nvidia-smi; use --cpu-smoke" >&2; exit 2; }
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
if [[ " $* " == *" --cpu-smoke "* ]]; then
  exec "$PYTHON" benchmarks/gpu_check.py "$@"   # no time limit on a (shared) CPU
fi
# 8 minutes at most on the GPU: a stuck step must not eat a borrowed GPU's time.
exec timeout --signal=INT --kill-after=20 480 "$PYTHON" benchmarks/gpu_check.py "$@"
