#!/usr/bin/env bash
# The demo model the web app serves: the tiny random Megatron fixture (2 layers x 32)
# fine-tuned by `megaqa train` on 20 SQuAD v2.0 dev questions (16 answerable, 4 not)
# (assets/demo/train.json, CC BY-SA 4.0) until it answers them, then converted to
# one f16 file. It knows those 20 answers and nothing else: a demonstration of the
# mechanics, not a QA model. Deterministic (seeded): rerunning gives the same file.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/megaqa-env.sh
build_megaqa
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$M" train --model tests/fixtures/models/megatron-tiny --train assets/demo/train.json \
  --out "$work/run" --device cpu --epochs 100 --batch-size 20 --lr 3e-3 --warmup-ratio 0.1 \
  --dropout 0 --seed 42 --log-every 10 --save-every 1000
mkdir -p assets/models
"$M" convert --model "$work/run" --out assets/models/demo-tiny.megaqa.safetensors --dtype f16
cp "$work/run/loss.svg" assets/demo/demo-tiny-loss.svg
