#!/usr/bin/env bash
# The shipped model's GPU recipe through the device tool (a lent H100/H200 that sees
# only what travels with the checkout, 64 MiB at most):
#
#   bash scripts/device-prepare.sh pack      # here: inputs into .gpu/ .gpu2/ .gl/, big tracked files set aside
#   device run: bash scripts/device-train-squad.sh   carry [".gpu"]         (about 4-8 min)
#   device run: bash scripts/device-check-squad.sh   carry [".gpu2", ".gl"] (at once, same warm machine)
#   (issue 12's speed table: bash scripts/gpu-check.sh, carry [".gpu2", ".gl"], any machine)
#   bash scripts/device-prepare.sh restore   # here, right after: the index as it was
#   bash scripts/device-prepare.sh unpack DIR  # DIR: where the first run's files came back
#   GPU=1 bash scripts/train-squad-model.sh  # here: threshold on the held-out articles, scores
#
# Why the set-aside: the tracked tree (the shipped model, the test fixtures) is over
# the 64 MiB that travels, and the device needs none of it; `pack` drops those paths
# from the index (they stay on disk, ignored through .git/info/exclude) and `restore`
# puts them back. Commit nothing in between.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$HOME/.cache/megaqa/squad-model}
BIG=(assets/models tests/fixtures)
exclude=.git/info/exclude
case "${1:-}" in
pack)
  EXPORT_ONLY=1 GPU=1 bash scripts/train-squad-model.sh
  G=$OUT/gpu
  rm -rf .gpu .gpu2 && mkdir -p .gpu/start .gpu2 .gl
  for f in config.json vocab.txt tokenizer.json tokenizer_config.json special_tokens_map.json; do
    [ -f "$G/start/$f" ] && cp "$G/start/$f" .gpu/start/
  done
  xz -6 -T2 -c "$G/start/model.safetensors" > .gpu/start.model.safetensors.xz
  xz -9e -T2 -c "$G/windows.safetensors" > .gpu/windows.safetensors.xz
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/megaqa/target}"
  strip -o /tmp/megaqa-device "$CARGO_TARGET_DIR/release/megaqa"
  xz -9e -T2 -c /tmp/megaqa-device > .gpu2/megaqa.xz
  xz -9 -T2 -c "$G/train.json" > .gpu2/train.json.xz
  cp ../shared/data/squad/dev-v2.0-two-articles.json .gpu2/two-articles.json
  # The other fixture scripts/gpu-check.sh reads (tests/fixtures stays here).
  cp -r tests/fixtures/models/megatron-tiny .gpu2/
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  mkdir -p /tmp/amd64/partial && apt-get $o update -q >/dev/null &&
    (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
  for p in /.gpu/ /.gpu2/ /.gl/ "${BIG[@]/#//}"; do grep -qxF "$p/" $exclude 2>/dev/null || grep -qxF "$p" $exclude 2>/dev/null || echo "${p%/}/" >> $exclude; done
  git rm -r --cached -q "${BIG[@]}"
  du -sh .gpu .gpu2 .gl
  echo "packed; run the two device commands, then: bash scripts/device-prepare.sh restore"
  ;;
restore)
  git reset -q -- "${BIG[@]}"
  for p in "${BIG[@]}"; do sed -i "\#^/$p/\$#d" $exclude; done
  git status --short
  ;;
unpack)
  from=${2:?unpack DIR: the folder where the device run files came back}
  T=$OUT/gpu/trained; mkdir -p "$T"
  cat "$from"/model.safetensors.part* > "$T/model.safetensors.tmp"
  want=$(awk '{print $1}' "$from/model.sha256")
  got=$(sha256sum "$T/model.safetensors.tmp" | awk '{print $1}')
  [ "$want" = "$got" ] || { echo "the parts do not add up to the trained model (sha256 $got, not $want)" >&2; exit 1; }
  mv "$T/model.safetensors.tmp" "$T/model.safetensors"
  cp "$from/metrics.jsonl" "$from/summary.json" "$T/"
  for f in config.json vocab.txt tokenizer.json tokenizer_config.json special_tokens_map.json; do
    [ -f "$OUT/gpu/start/$f" ] && cp "$OUT/gpu/start/$f" "$T/"
  done
  echo "unpacked into $T; now: GPU=1 bash scripts/train-squad-model.sh"
  ;;
*) echo "usage: device-prepare.sh pack | restore | unpack DIR" >&2; exit 2 ;;
esac
