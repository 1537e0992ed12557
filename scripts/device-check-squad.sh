#!/usr/bin/env bash
# megaqa itself on the GPU machine that ran scripts/device-train-squad.sh (same warm
# machine: it reads that script's $GPU_IN), with a prebuilt megaqa in $GPU_IN2:
#   megaqa.xz, train.json.xz (scripts/squad-mix.py --train-questions 0), two-articles.json
# 1. `megaqa train` on wgpu, f32, no dropout, the recipe's first $REF_STEPS updates on a
#    schedule of that many: its loss against PyTorch's (ref-f32-metrics.jsonl).
# 2. The trained model converted; `parity` wgpu vs cpu on the two-article dev file.
# 3. Speed: training updates of the MiniLM shape (mixed, batch 32 x 256) and the 345M
#    window (batch 1 and 8) on wgpu, PyTorch eager CUDA beside them.
# 4. Last, so that a run cut short loses only this: `predict`'s default batch on a GPU
#    (32; crates/megaqa-cli/src/shared.rs), the trained model over the two-article file
#    at batch 8, 32 and 64, each after a run that tunes its shapes (parity tuned 32's).
#    PREDICT_DEVICE=cpu PREDICT_MODEL=file tries it on a CPU.
# Vulkan loaders: .gl (scripts/device-env.sh). Results in $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
IN=${GPU_IN:-.gpu}
IN2=${GPU_IN2:-.gpu2}
OUT=${OUT:-gpu-out}
REF_STEPS=${REF_STEPS:-200}
mkdir -p "$OUT"
source scripts/device-env.sh  # Vulkan loaders, $M
xz -dc "$IN2/train.json.xz" > /tmp/mq/train.json
[ -f "$IN/start/model.safetensors" ] || { echo "no $IN/start/model.safetensors: not the machine that trained" >&2; exit 2; }
t0=$(date +%s)
$M train --model "$IN/start" --train /tmp/mq/train.json --out /tmp/mq/ref --device wgpu --holdout-articles 2 \
  --negatives 0.5 --swap-negatives 0.5 --max-seq-len 256 --doc-stride 64 --batch-size 32 --lr 1e-4 --warmup-ratio 0.1 \
  --weight-decay 0.01 --dropout 0 --group-by-length --epochs 3 --max-steps "$REF_STEPS" --seed 42 \
  --log-every 1 --save-every 100000 2>&1 | grep -v '^\s*$' | tail -4
cp /tmp/mq/ref/metrics.jsonl "$OUT/megaqa-wgpu-f32-metrics.jsonl"
echo "train check: $(( $(date +%s) - t0 )) s"
if [ -f "$IN/trained/model.safetensors" ]; then
  $M convert --model "$IN/trained" --out /tmp/mq/trained.safetensors 2>&1 | tail -1
  $M parity --model /tmp/mq/trained.safetensors --data "$IN2/two-articles.json" --device-a wgpu --device-b cpu \
    --tolerance 1e-3 --batch-size 32 2>&1 | tail -4 | tee "$OUT/parity.txt"
  $M bench --model "$IN/start" --device wgpu --train --precision mixed --batch-size 32 --seq-len 256 --runs 10 --json 2>&1 | tee "$OUT/bench-train-minilm.json"
  $M bench --model "$IN/start" --device wgpu --train --precision f32 --batch-size 32 --seq-len 256 --runs 10 --json 2>&1 | tee -a "$OUT/bench-train-minilm.json"
fi
for b in 1 8; do
  $M bench --random megatron-345m --device wgpu --batch-size $b --runs 5 --json 2>&1 | tee -a "$OUT/bench-345m.json"
done
MEGAQA_BENCH_DEVICE=cuda MEGAQA_BENCH_RUNS=10 python3 tests/reference/bench_pytorch.py 2>&1 | grep '^{' | tee -a "$OUT/bench-345m.json"
pm=${PREDICT_MODEL:-/tmp/mq/trained.safetensors}
for b in 8 32 64; do
  for run in tune timed; do
    [ $run = tune ] && [ $b = 32 ] && [ -z "${PREDICT_MODEL:-}" ] && continue
    $M predict --model "$pm" --data "$IN2/two-articles.json" --out /tmp/mq/predict-b$b \
      --device "${PREDICT_DEVICE:-wgpu}" --batch-size $b 2>&1 | tail -1 > /tmp/mq/predict-b$b-$run.txt
  done
  sed -n "s/.*windows in \([0-9.]*\) s (\([0-9.]*\) windows\/s.*/{\"predict_batch\": $b, \"secs\": \1, \"windows_per_s\": \2}/p" \
    /tmp/mq/predict-b$b-timed.txt | tee -a "$OUT/predict-batch.jsonl"
done
echo "done: $(( $(date +%s) - t0 )) s"
