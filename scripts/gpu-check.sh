#!/usr/bin/env bash
# Parity and speed on a GPU machine, with a prebuilt `megaqa` (MEGAQA=path) and the
# committed fixtures: wgpu vs cpu parity over the two-article dev file (results
# exported for `megaqa parity --against` elsewhere), the 345M-shape window on wgpu and
# cpu, and PyTorch eager on CUDA for comparison. Results go to $OUT (or ./gpu-out).
set -uo pipefail
cd "$(dirname "$0")/.."
M="${MEGAQA:-megaqa}"
O="${OUT:-gpu-out}"; mkdir -p "$O"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | tee "$O/gpu.txt"
"$M" parity --model tests/fixtures/models/megatron-tiny --data tests/fixtures/squad/dev-v2.0-two-articles.json \
  --device-a wgpu --device-b cpu --tolerance 1e-4 --export "$O/wgpu-results.json" 2>&1 | tee "$O/parity.txt"
for b in 1 8; do
  "$M" bench --random megatron-345m --device wgpu --batch-size $b --runs 5 --json 2>&1 | tee "$O/bench-wgpu-b$b.json"
done
"$M" bench --random megatron-345m --device cpu --runs 2 --json 2>&1 | tee "$O/bench-cpu.json"
MEGAQA_BENCH_DEVICE=cuda MEGAQA_BENCH_RUNS=10 python3 tests/reference/bench_pytorch.py 2>&1 | grep '^{' | tee "$O/bench-pytorch-cuda.json"
