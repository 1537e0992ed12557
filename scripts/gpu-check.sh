#!/usr/bin/env bash
# Parity and speed on a GPU machine, with a prebuilt `megaqa` (MEGAQA=path) and the
# committed fixtures; megaqa and PyTorch eager CUDA in the same run. Results go to $OUT
# (or ./gpu-out), one JSON line per measurement in bench.jsonl. The default build runs
# SPIR-V kernels on Vulkan (tensor cores for f16); MEGAQA=a WGSL-only build
# (`--no-default-features --features wgpu`) measures the WGSL path for comparison.
# 1. parity: wgpu vs cpu over the two-article dev file (exported for `megaqa parity
#    --against` elsewhere), in f32 and f16.
# 2. tuning cache: the same `bench` twice in two processes on a fresh cache; the second
#    run's first_ms (compile + tune) should drop to about its ms_per_batch.
# 3. inference, 345M shape, 384 tokens: f32 and f16 at batch 1, 8, 32; PyTorch f32 and
#    fp16 beside it.
# 4. training updates: 345M batch 12 and the MiniLM shape batch 32 x 256, f32 and
#    mixed; PyTorch f32 and AMP beside them.
# On a lent device machine the checkout travels without tests/fixtures (over the 64
# MiB with the shipped model): after `scripts/device-prepare.sh pack`, carry [".gpu2",
# ".gl"] and this takes megaqa (and the Vulkan loaders) from scripts/device-env.sh and
# the two fixtures it needs from .gpu2 (the tiny Megatron; the two-article file that
# device-check-squad.sh reads too).
set -uo pipefail
cd "$(dirname "$0")/.."
tiny=tests/fixtures/models/megatron-tiny
two=tests/fixtures/squad/dev-v2.0-two-articles.json
if [ ! -d $tiny ] && [ -f "${GPU_IN2:-.gpu2}/megaqa.xz" ]; then  # the device machine
  source scripts/device-env.sh
  MEGAQA=${MEGAQA:-$M}
  tiny="${GPU_IN2:-.gpu2}/megatron-tiny" two="${GPU_IN2:-.gpu2}/two-articles.json"
fi
M="${MEGAQA:-megaqa}"
O="${OUT:-gpu-out}"; mkdir -p "$O"
J="$O/bench.jsonl"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
export MEGAQA_TUNE_CACHE="${MEGAQA_TUNE_CACHE:-/tmp/megaqa-tune}"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | tee "$O/gpu.txt"
one() { tr -d '\n' | sed 's/  */ /g'; echo; }  # a pretty-printed JSON object on one line
for p in f32 f16; do
  "$M" parity --model $tiny --data $two --device-a wgpu --device-b cpu \
    --precision "$p" --tolerance 1e-2 --export "$O/wgpu-results-$p.json" 2>&1 | tee "$O/parity-$p.txt"
done
rm -rf "$MEGAQA_TUNE_CACHE"
for run in first second; do
  "$M" bench --random megatron-345m --device wgpu --batch-size 8 --runs 3 --json 2>/dev/null | one |
    sed "s/^{/{\"tuning_cache\": \"$run run\", /" | tee -a "$J"
done
for p in f32 f16; do
  for b in 1 8 32; do
    "$M" bench --random megatron-345m --device wgpu --precision $p --batch-size $b --runs 5 --json 2>/dev/null | one | tee -a "$J"
    MEGAQA_BENCH_DEVICE=cuda MEGAQA_BENCH_RUNS=10 MEGAQA_BENCH_BATCH=$b MEGAQA_BENCH_DTYPE=$p \
      python3 tests/reference/bench_pytorch.py 2>/dev/null | grep '^{' | tee -a "$J"
  done
done
for p in f32 mixed; do
  amp=$([ $p = mixed ] && echo 1 || echo 0)
  "$M" bench --random megatron-345m --device wgpu --train --precision $p --batch-size 12 --runs 5 --json 2>/dev/null | one | tee -a "$J"
  MEGAQA_BENCH_DEVICE=cuda MEGAQA_BENCH_AMP=$amp MEGAQA_BENCH_BATCH=12 MEGAQA_BENCH_RUNS=5 \
    python3 tests/reference/bench_train_pytorch.py 2>/dev/null | grep '^{' | tee -a "$J"
  MEGAQA_BENCH_DEVICE=cuda MEGAQA_BENCH_AMP=$amp MEGAQA_BENCH_SHAPE=minilm MEGAQA_BENCH_BATCH=32 MEGAQA_BENCH_SEQ=256 \
    MEGAQA_BENCH_RUNS=10 python3 tests/reference/bench_train_pytorch.py 2>/dev/null | grep '^{' | tee -a "$J"
done
"$M" bench --random megatron-345m --device cpu --runs 2 --json 2>/dev/null | one | tee -a "$J"
