#!/usr/bin/env bash
# A 345M-shape model (random weights) in headless Chromium: loads an f16 file by URL on the
# CPU fallback and on WebGPU (SwiftShader), asks one question, and prints load time, the
# answer's timings and the peak RSS of Chromium's processes (sampled every 0.5 s).
# Needs what .ci/run installs (trunk, Chromium, web/e2e's packages) and a python with
# numpy and safetensors (PY=...). Writes into ${WORK:-/tmp/megaqa-big}. MODES=cpu|webgpu
# picks one backend; DTYPE=f32 loads the f32 file instead of the f16 one; TIMEOUT_S (900)
# bounds each wait in the page. PRECISION=f16 asks the page for f16 compute, which
# WebGPU gives only on an adapter with shader-f16: run it with
# CHROMIUM=$(scripts/chromium-f16-rig.sh) (lavapipe in SwiftShader's place).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/megaqa-big}; PY=${PY:-python3}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/megaqa-xdg}; mkdir -p "$XDG_RUNTIME_DIR" "$WORK"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/megaqa/target}
[ -f "$WORK/hf/model.safetensors" ] || { "$PY" scripts/browser-big/make-random-345m.py "$WORK/hf"; cp assets/vocab-uncased.txt "$WORK/hf/vocab.txt"; }
cargo build --release -q -p megaqa-cli
CARGO_TARGET_DIR=${MEGAQA_WEB_TARGET_DIR:-$HOME/.cache/megaqa/target-web} trunk build --dist "$WORK/dist" >"$WORK/trunk.log" 2>&1
DTYPE=${DTYPE:-f16}
[ -f "$WORK/dist/big.$DTYPE.safetensors" ] || "$CARGO_TARGET_DIR/release/megaqa" convert --model "$WORK/hf" --out "$WORK/dist/big.$DTYPE.safetensors" --dtype "$DTYPE"
echo "Normandy is a region in France. The Normans gave their name to it in the 10th century." >"$WORK/passage.txt"
echo "[{\"passage_file\": \"$WORK/passage.txt\", \"question\": \"In what country is Normandy located?\"}]" >"$WORK/cases.json"
# THEN_LOAD=URL: load that model next through the page (a new engine worker replaces
# the one holding the big model); FULL=1: also the browser test's later steps (bad URLs,
# the export, the offline reload from browser storage).
extra=(${THEN_LOAD:+--then-load "$THEN_LOAD"})
[ "${FULL:-0}" = 1 ] || extra+=(--cases-only 1)
for mode in ${MODES:-cpu webgpu}; do
  : >"$WORK/timeline.$mode"  # seconds, the tab's RSS and all processes' (MB), every 0.5 s
  # The tab is the largest renderer process (the page and its engine's worker).
  ( peak1=0; peakall=0
    while true; do
      tot=0; one=0
      for p in $(pgrep -f chromium || true); do
        r=$(awk '/VmRSS/{print $2}' /proc/$p/status 2>/dev/null || true); r=${r:-0}
        tot=$((tot + r))
        if grep -q -- '--type=renderer' /proc/$p/cmdline 2>/dev/null && [ "$r" -gt "$one" ]; then one=$r; fi
      done
      [ "$one" -gt "$peak1" ] && peak1=$one; [ "$tot" -gt "$peakall" ] && peakall=$tot
      echo "$((peak1 * 1024 / 1000000)) $((peakall * 1024 / 1000000))" >"$WORK/peak.$mode"
      echo "$(date +%s.%N | cut -c1-14) $((one * 1024 / 1000000)) $((tot * 1024 / 1000000))" >>"$WORK/timeline.$mode"
      sleep 0.5
    done ) & sampler=$!
  # A profile on disk, as a user's browser has: a fresh context keeps browser storage in
  # memory (another process), which is not where a user's big model is kept.
  rm -rf "$WORK/profile-$mode"
  node web/e2e/drive.mjs --dist "$WORK/dist" --mode "$mode" --out "$WORK/$mode" --cases "$WORK/cases.json" \
    --profile "$WORK/profile-$mode" \
    --query "?model=big.$DTYPE.safetensors${PRECISION:+&precision=$PRECISION}" --timeout-s "${TIMEOUT_S:-900}" "${extra[@]}" >"$WORK/$mode.json" 2>"$WORK/$mode.err" || true
  kill "$sampler"
  read -r one all <"$WORK/peak.$mode"
  node -e 'const d=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); const c=(d.cases||[])[0]||{};
    console.log(`${d.mode}: loaded ${d.load_ms} ms, ready ${d.ready_ms ?? "no"} ms, answer ${c.timings ?? "none"}, ${d.error ? "error: " + d.error.split("\n")[0] : "ok"}`)' "$WORK/$mode.json"
  echo "$mode: peak RSS MB (10^6): the tab (largest renderer) $one, all Chromium processes $all"
done
