#!/usr/bin/env bash
# The GPU check, on one GPU within 8 minutes: pytest -m gpu, the loader benchmark on CUDA,
# training throughput of the base model (bf16 + compile) with model FLOP utilisation, and
# onnxruntime CUDA parity; writes benchmarks/results/gpu_check.json (see benchmarks/gpu_check.py).
#   benchmarks/gpu_check.sh [--budget 420] [--events 32768] [--out FILE]
# PYTHON picks the interpreter (default: python). Without a GPU it stops at once (exit 2).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "Error: no NVIDIA GPU here (nvidia-smi finds none); run benchmarks/gpu_check.sh on a GPU node" >&2
    exit 2
fi
exec "${PYTHON:-python}" benchmarks/gpu_check.py "$@"
