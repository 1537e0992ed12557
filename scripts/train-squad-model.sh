#!/usr/bin/env bash
# Reproduces megaqa's shipped SQuAD model from ../shared with `megaqa train`, then scores it.
#
#   bash scripts/train-squad-model.sh            # the interim CPU recipe: two stages, about 1.5 h on 2 idle cores
#   TRAIN_QUESTIONS=0 MAX_STEPS= DEVICE=wgpu EPOCHS=2 bash scripts/train-squad-model.sh   # all of it, on a GPU
#
# Base: all-MiniLM-L6-v2 (../shared/models, 6 layers x 384, uncased WordPiece, Apache-2.0).
# Data (scripts/squad-mix.py): SQuAD v1.1 train articles (a seeded sample of about
# TRAIN_QUESTIONS questions, 0 = all 87,599) + six CS224N dev-half articles (real SQuAD 2.0
# unanswerable questions) + two more dev-half articles held out to choose the null
# threshold; about 0.5 same-article negative per answerable question (the paragraph
# sharing the most rare words with the question). Evaluated on the other eight dev-half
# articles (Normans and Computational_complexity_theory among them), never trained or
# tuned on. Recipe and why: README, "The shipped model".
# Everything lands in $OUT (default ~/.cache/megaqa/squad-model); a killed run resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=../shared
for f in "$shared/models/all-minilm-l6-v2/model.safetensors" "$shared/data/squad/train-v1.1.json" "$shared/data/squad/dev-v2.0-cs224n-half.json"; do
  [ -f "$f" ] || { echo "missing $f (../shared)" >&2; exit 1; }
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/megaqa/target}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/megaqa-xdg}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
cargo build --release -q -p megaqa-cli
M="$CARGO_TARGET_DIR/release/megaqa"
OUT=${OUT:-$HOME/.cache/megaqa/squad-model}
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

bash scripts/score-squad-model.sh "$final" "$OUT"
