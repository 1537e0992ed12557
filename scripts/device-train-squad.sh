#!/usr/bin/env bash
# The GPU half of the shipped model's recipe (scripts/train-squad-model.sh RECIPE=pytorch
# makes its inputs), run where PyTorch sees a CUDA GPU: on a lent device machine, from
# the repository root, with the inputs in $GPU_IN (default .gpu):
#   start/ (config and tokenizer files) + start.model.safetensors.xz   the starting point
#   windows.safetensors.xz                                              `megaqa train --export`
# 1. PyTorch f32 (no TF32, no dropout), the first $REF_STEPS updates on a schedule of
#    that many: the curve `megaqa train --max-steps $REF_STEPS --dropout 0` must track.
# 2. The recipe itself: bf16 autocast, the exported dropout, as many whole epochs as fit
#    in $BUDGET_S seconds (all three of the export when they fit).
# The trained model (f16, HF names) stays in $GPU_IN/trained and comes back in $OUT in
# parts of 15 MiB (cat model.safetensors.part* > model.safetensors). TRAIN_STEPS=N cuts
# step 2 to N updates (a dry run of this script on a CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
IN=${GPU_IN:-.gpu}
OUT=${OUT:-gpu-out}
REF_STEPS=${REF_STEPS:-200}
BUDGET_S=${BUDGET_S:-420}
mkdir -p "$OUT" "$IN/work"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
[ -f "$IN/start/model.safetensors" ] || xz -dc "$IN/start.model.safetensors.xz" > "$IN/start/model.safetensors"
[ -f "$IN/work/windows.safetensors" ] || xz -dc "$IN/windows.safetensors.xz" > "$IN/work/windows.safetensors"
R=tests/reference/train_squad_reference.py
python3 $R train --start "$IN/start" --export "$IN/work/windows.safetensors" --out "$IN/work/f32-ref" \
  --precision f32 --dropout 0 --steps "$REF_STEPS" --log-every 1 2>&1 | grep -v "Loading weights"
cp "$IN/work/f32-ref/metrics.jsonl" "$OUT/ref-f32-metrics.jsonl"
python3 $R train --start "$IN/start" --export "$IN/work/windows.safetensors" --out "$IN/trained" \
  --precision bf16 --budget-s "$BUDGET_S" ${TRAIN_STEPS:+--steps "$TRAIN_STEPS"} 2>&1 | grep -v "Loading weights"
cp "$IN/trained/metrics.jsonl" "$OUT/metrics.jsonl"
cp "$IN/trained/summary.json" "$OUT/summary.json"
split -b 15M -d "$IN/trained/model.safetensors" "$OUT/model.safetensors.part"
sha256sum "$IN/trained/model.safetensors" | tee "$OUT/model.sha256"
ls -la "$OUT"
