#!/usr/bin/env bash
# A 345M-shape model (random weights) in headless Chromium: loads an f16 file by URL on the
# CPU fallback and on WebGPU (SwiftShader), asks one question, and prints load time, the
# answer's timings and the peak RSS of Chromium's processes (sampled every 0.5 s).
# Needs what .ci/run installs (trunk, Chromium, web/e2e's packages) and a python with
# numpy and safetensors (PY=...). Writes into ${WORK:-/tmp/megaqa-big}.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/megaqa-big}; PY=${PY:-python3}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/megaqa-xdg}; mkdir -p "$XDG_RUNTIME_DIR" "$WORK"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/megaqa/target}
[ -f "$WORK/hf/model.safetensors" ] || { "$PY" scripts/browser-big/make-random-345m.py "$WORK/hf"; cp assets/vocab-uncased.txt "$WORK/hf/vocab.txt"; }
cargo build --release -q -p megaqa-cli
CARGO_TARGET_DIR=${MEGAQA_WEB_TARGET_DIR:-$HOME/.cache/megaqa/target-web} trunk build --dist "$WORK/dist" >"$WORK/trunk.log" 2>&1
[ -f "$WORK/dist/big.f16.safetensors" ] || "$CARGO_TARGET_DIR/release/megaqa" convert --model "$WORK/hf" --out "$WORK/dist/big.f16.safetensors" --dtype f16
echo "Normandy is a region in France. The Normans gave their name to it in the 10th century." >"$WORK/passage.txt"
echo "[{\"passage_file\": \"$WORK/passage.txt\", \"question\": \"In what country is Normandy located?\"}]" >"$WORK/cases.json"
for mode in ${MODES:-cpu webgpu}; do
  : >"$WORK/timeline.$mode"  # seconds, the largest process's RSS and all of them (MB), every 0.5 s
  ( peak1=0; peakall=0
    while true; do
      tot=0; one=0
      for p in $(pgrep -f chromium || true); do
        r=$(awk '/VmRSS/{print $2}' /proc/$p/status 2>/dev/null || true); r=${r:-0}
        tot=$((tot + r)); [ "$r" -gt "$one" ] && one=$r
      done
      [ "$one" -gt "$peak1" ] && peak1=$one; [ "$tot" -gt "$peakall" ] && peakall=$tot
      echo "$((peak1 * 1024 / 1000000)) $((peakall * 1024 / 1000000))" >"$WORK/peak.$mode"
      echo "$(date +%s.%N | cut -c1-14) $((one * 1024 / 1000000)) $((tot * 1024 / 1000000))" >>"$WORK/timeline.$mode"
      sleep 0.5
    done ) & sampler=$!
  node web/e2e/drive.mjs --dist "$WORK/dist" --mode "$mode" --out "$WORK/$mode" --cases "$WORK/cases.json" \
    --query "?model=big.f16.safetensors" >"$WORK/$mode.json" 2>"$WORK/$mode.err" || true
  kill "$sampler"
  read -r one all <"$WORK/peak.$mode"
  node -e 'const d=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); const c=(d.cases||[])[0]||{};
    console.log(`${d.mode}: loaded ${d.load_ms} ms, ready ${d.ready_ms ?? "no"} ms, answer ${c.timings ?? "none"}, ${d.error ? "error: " + d.error.split("\n")[0] : "ok"}`)' "$WORK/$mode.json"
  echo "$mode: peak RSS MB (10^6): largest Chromium process $one, all $all"
done
