#!/usr/bin/env bash
# Reproduces megaqa's shipped SQuAD model from ../shared, then scores it.
#
#   bash scripts/train-squad-model.sh          # the shipped CPU recipe: five stages, about 5 h on 2 idle cores
#   GPU=1 bash scripts/train-squad-model.sh    # all of SQuAD v1.1 (+ swapped negatives), 3 epochs, on a CUDA GPU (PyTorch)
#
# Base: all-MiniLM-L6-v2 (../shared/models, 6 layers x 384, uncased WordPiece, Apache-2.0).
# Data (scripts/squad-mix.py): SQuAD v1.1 train articles (a seeded sample of about
# TRAIN_QUESTIONS questions, 0 = all 87,599) + six CS224N dev-half articles (real SQuAD 2.0
# unanswerable questions) + two more dev-half articles held out to choose the null
# threshold; about 0.5 same-article negative per answerable question (the paragraph
# sharing the most rare words with the question), and in stage 5 and the GPU recipe about
# 0.5 swapped question (a name or number the paragraph holds swapped for one it lacks,
# over the question's own paragraph). Evaluated on the other eight dev-half
# articles (Normans and Computational_complexity_theory among them), never trained or
# tuned on. Recipe and why: README, "The shipped model".
#
# Stages 1 and 2 run `megaqa train`. Stages 3 to 5 (and the whole GPU=1 recipe) run the
# PyTorch recipe tests/reference/train_squad_reference.py on `megaqa train --export`:
# megaqa's own windows, labels, negatives, batch order and learning rates, with the loss,
# clipping and AdamW `megaqa train` is proven step-equal to (same losses to 1e-6 on the
# shipped recipe's first updates), about twice as fast as `megaqa train` on this CPU; `megaqa train
# --max-steps 0` then chooses the null threshold on the held-out articles, as a run does.
# It needs python3 with torch, transformers, safetensors and numpy (PYTHON=...).
# Everything lands in $OUT (default ~/.cache/megaqa/squad-model); a killed megaqa stage
# resumes, finished stages are not redone.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/megaqa-env.sh
need_shared models/all-minilm-l6-v2/model.safetensors data/squad/train-v1.1.json data/squad/dev-v2.0-cs224n-half.json
build_megaqa
OUT=${OUT:-$HOME/.cache/megaqa/squad-model}
PY=${PYTHON:-python3}
R=tests/reference/train_squad_reference.py
MINILM="$shared/models/all-minilm-l6-v2"

# The last two articles of a mixed training file (the held-out ones), after one other:
# what `megaqa train --holdout-articles 2 --max-steps 0` needs to choose the threshold.
calibration_file() {
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); d["data"] = d["data"][:1] + d["data"][-2:]; json.dump(d, open(sys.argv[2], "w"))' "$1" "$2"
}
# PyTorch on megaqa's export, then the threshold: pytorch_stage START DATA_DIR RUN_DIR SEED [train flags...]
pytorch_stage() {
  local start=$1 data=$2 run=$3 seed=$4; shift 4
  [ -f "$run/megaqa.safetensors" ] && return
  local flags=(--holdout-articles 2 --negatives 0.5 --swap-negatives "${SWAP:-0}" --max-seq-len 256 --doc-stride 64 --seed "$seed")
  [ -f "$data/windows.safetensors" ] || "$M" train --model "$start" --train "$data/train.json" --out "$run" \
    "${flags[@]}" --group-by-length --weight-decay 0.01 "$@" --export "$data/windows.safetensors"
  [ -n "${EXPORT_ONLY:-}" ] && return
  [ -f "$data/trained/model.safetensors" ] || "$PY" $R train --start "$start" --export "$data/windows.safetensors" \
    --out "$data/trained" ${PRECISION:+--precision "$PRECISION"} ${STEPS:+--steps "$STEPS"} \
    ${BUDGET_S:+--budget-s "$BUDGET_S" --hard-stop-s $((BUDGET_S * 6 / 5))}
  calibration_file "$data/train.json" "$data/calibrate.json"
  "$M" train --model "$data/trained" --train "$data/calibrate.json" --out "$run" "${flags[@]}" --max-steps 0
}

if [ -n "${GPU:-}" ]; then
  # Everything in one PyTorch stage from the pretrained encoder (f16-rounded, as it
  # travels to a lent GPU machine: scripts/device-train-squad.sh runs the same).
  mkdir -p "$OUT/gpu"
  python3 scripts/squad-mix.py --shared "$shared" --out "$OUT/gpu" --train-questions 0 | tee "$OUT/gpu/summary.json"
  [ -f "$OUT/gpu/start/model.safetensors" ] || "$PY" $R start --base "$MINILM" --out "$OUT/gpu/start"
  PRECISION=bf16 SWAP=${GPU_SWAP-0.5} pytorch_stage "$OUT/gpu/start" "$OUT/gpu" "$OUT/gpu/run" 42 \
    --batch-size 32 --lr 1e-4 --warmup-ratio 0.1 --dropout 0.1 --epochs 3
  [ -n "${EXPORT_ONLY:-}" ] && exit 0  # scripts/device-prepare.sh takes it from here
  mkdir -p "$OUT/data" && cp "$OUT/gpu/eval.json" "$OUT/gpu/summary.json" "$OUT/data/"
  F16_ONLY=1 bash scripts/score-squad-model.sh "$OUT/gpu/run" "$OUT"
  exit
fi

TRAIN_QUESTIONS=${TRAIN_QUESTIONS-12000}
MAX_STEPS=${MAX_STEPS-720}
EPOCHS=${EPOCHS:-1}
DEVICE=${DEVICE:-cpu}
mkdir -p "$OUT/data"

python3 scripts/squad-mix.py --shared "$shared" --out "$OUT/data" --train-questions "$TRAIN_QUESTIONS" | tee "$OUT/data/summary.json"
resume=(); [ -f "$OUT/run/megaqa.safetensors" ] && resume=(--resume)
steps=(); [ -n "$MAX_STEPS" ] && steps=(--max-steps "$MAX_STEPS")
"$M" train --model "$shared/models/all-minilm-l6-v2" --train "$OUT/data/train.json" --out "$OUT/run" \
  --device "$DEVICE" --holdout-articles 2 --negatives 0.5 --max-seq-len 256 --doc-stride 64 \
  --batch-size 16 --lr 1.5e-4 --warmup-ratio 0.06 --weight-decay 0.01 --dropout 0 --group-by-length \
  --epochs "$EPOCHS" "${steps[@]}" --seed 42 --save-every 40 --log-every 10 "${resume[@]}"

final="$OUT/run"
# Stage 2 (CPU recipe only): continue from stage 1's model on articles it never saw, with a
# fresh, lower learning-rate schedule; the null threshold is chosen again on the same
# held-out articles. A GPU run (TRAIN_QUESTIONS=0) sees every article in stage 1.
CONTINUE_QUESTIONS=${CONTINUE_QUESTIONS-16000}
CONTINUE_STEPS=${CONTINUE_STEPS-1000}
if [ "$TRAIN_QUESTIONS" != 0 ] && [ "$CONTINUE_QUESTIONS" != 0 ]; then
  mkdir -p "$OUT/data2"
  python3 scripts/squad-mix.py --shared "$shared" --out "$OUT/data2" \
    --skip-questions "$TRAIN_QUESTIONS" --train-questions "$CONTINUE_QUESTIONS" | tee "$OUT/data2/summary.json"
  resume=(); [ -f "$OUT/run2/megaqa.safetensors" ] && resume=(--resume)
  "$M" train --model "$OUT/run" --train "$OUT/data2/train.json" --out "$OUT/run2" \
    --device "$DEVICE" --holdout-articles 2 --negatives 0.5 --max-seq-len 256 --doc-stride 64 \
    --batch-size 16 --lr 1e-4 --warmup-ratio 0.03 --weight-decay 0.01 --dropout 0 --group-by-length \
    --epochs 1 --max-steps "$CONTINUE_STEPS" --seed 43 --save-every 40 --log-every 10 "${resume[@]}"
  final="$OUT/run2"
fi

# Stages 3 to 5: PyTorch on megaqa's export (CPU here), each from the previous stage's
# model, on the next articles of the same seeded order; the threshold is chosen again on
# the held-out two. continue_stage N QUESTIONS SKIP SEED [budget seconds] [updates] [swap share]
continue_stage() {
  local n=$1 questions=$2 skip=$3 seed=$4 budget=${5:-} steps=${6:-} swap=${7:-0}
  local prev=$final data="$OUT/data$1"
  mkdir -p "$data"
  python3 scripts/squad-mix.py --shared "$shared" --out "$data" \
    --skip-questions "$skip" --train-questions "$questions" | tee "$data/summary.json"
  [ -f "$data/start/model.safetensors" ] ||
    "$PY" $R start --base "$prev/megaqa.safetensors" --like "$MINILM" --dtype f32 --out "$data/start"
  PRECISION=f32 BUDGET_S=$budget STEPS=$steps SWAP=$swap pytorch_stage "$data/start" "$data" "$OUT/run$n" "$seed" \
    --batch-size 32 --lr 1e-4 --warmup-ratio 0.05 --dropout 0 --epochs 1
  final="$OUT/run$n"
}
STAGE3_QUESTIONS=${STAGE3_QUESTIONS-20000}
if [ "$final" = "$OUT/run2" ] && [ "$STAGE3_QUESTIONS" != 0 ]; then
  continue_stage 3 "$STAGE3_QUESTIONS" $((TRAIN_QUESTIONS + CONTINUE_QUESTIONS)) 44
fi
# Stage 4 took the 1,192 updates that its budget (5400 s) fitted on 2026-11-28, pinned
# here so that the run is the same on any machine (STAGE4_STEPS= STAGE4_BUDGET_S=5400: the
# recipe times a few updates and keeps the ones that fit, with the learning-rate schedule
# made for them, and stops at 1.2x the budget whatever happens).
STAGE4_QUESTIONS=${STAGE4_QUESTIONS-20000}
if [ "$final" = "$OUT/run3" ] && [ "$STAGE4_QUESTIONS" != 0 ]; then
  continue_stage 4 "$STAGE4_QUESTIONS" $((TRAIN_QUESTIONS + CONTINUE_QUESTIONS + STAGE3_QUESTIONS)) 45 "${STAGE4_BUDGET_S-}" "${STAGE4_STEPS-1192}"
fi
# Stage 5 takes the rest of train-v1.1 (91 articles, 19,351 questions), so that the model
# has read all 442 SQuAD v1.1 articles, and adds swapped-question negatives
# (--swap-negatives 0.5: entity swaps, one of SQuAD 2.0's commonest kinds of unanswerable
# question). The
# shipped run took 1,136 updates (what a 4500 s budget fitted on 2026-11-29), pinned here
# so that the run is the same on any machine. Without the swaps (the trial of
# 2026-11-28, STAGE5_SWAP=0 and a budget) it did not beat stage 4: README, "The shipped
# model".
STAGE5_QUESTIONS=${STAGE5_QUESTIONS-20000}
if [ "$final" = "$OUT/run4" ] && [ "$STAGE5_QUESTIONS" != 0 ]; then
  continue_stage 5 "$STAGE5_QUESTIONS" $((TRAIN_QUESTIONS + CONTINUE_QUESTIONS + STAGE3_QUESTIONS + STAGE4_QUESTIONS)) 46 \
    "${STAGE5_BUDGET_S-}" "${STAGE5_STEPS-1136}" "${STAGE5_SWAP-0.5}"
fi

# The PyTorch recipe saves f16 weights: no separate f32 file to compare with.
F16_ONLY=$(case "$final" in "$OUT"/run[345]) echo 1 ;; esac) bash scripts/score-squad-model.sh "$final" "$OUT"
