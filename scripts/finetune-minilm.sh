#!/usr/bin/env bash
# A real fine-tuning run on this workplace's data, measured in the README: the pretrained
# all-MiniLM-L6-v2 (../shared/models, 6 layers x 384, 22.7M parameters) fine-tuned by
# `megaqa train` on the CS224N half of the SQuAD v2.0 dev set minus its first two
# articles (14 articles, 5452 questions, 2835 unanswerable), then scored on those two
# held-out articles (../shared/data/squad/dev-v2.0-two-articles.json, 626 questions).
# One epoch, batch 16, lr 1e-4, 10% warmup, 256-token windows, stride 128, seed 42:
# ~1 h on 2 CPU cores. Everything lands in $OUT (default: a new temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/megaqa-env.sh
need_shared models/all-minilm-l6-v2/model.safetensors data/squad/dev-v2.0-cs224n-half.json data/squad/dev-v2.0-two-articles.json
build_megaqa
OUT=${OUT:-$(mktemp -d)}
python3 - "$shared/data/squad/dev-v2.0-cs224n-half.json" "$OUT/train.json" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
held_out = {"Normans", "Computational_complexity_theory"}
data["data"] = [a for a in data["data"] if a["title"] not in held_out]
json.dump(data, open(sys.argv[2], "w"))
PY
resume=(); [ -f "$OUT/run/megaqa.safetensors" ] && resume=(--resume)
"$M" train --model "$shared/models/all-minilm-l6-v2" --train "$OUT/train.json" \
  --eval "$shared/data/squad/dev-v2.0-two-articles.json" --out "$OUT/run" --device cpu \
  --epochs 1 --batch-size 16 --lr 1e-4 --warmup-ratio 0.1 --max-seq-len 256 --doc-stride 128 \
  --seed 42 --save-every 50 --log-every 10 "${resume[@]}"
"$M" predict --model "$OUT/run" --data "$shared/data/squad/dev-v2.0-two-articles.json" \
  --out "$OUT/pred" --device cpu
"$M" evaluate --data "$shared/data/squad/dev-v2.0-two-articles.json" \
  --predictions "$OUT/pred/predictions.json" --na-prob-file "$OUT/pred/null_odds.json"
echo "run, predictions and loss curve in $OUT"
