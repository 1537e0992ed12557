#!/usr/bin/env bash
# trunk's post_build hook (Trunk.toml): shrinks the app's wasm with Binaryen's wasm-opt
# (npm's binaryen@132, installed by `npm ci --prefix web/e2e`; Debian's binaryen 108
# breaks Burn's wasm). -Oz with the features rustc's wasm32 target emits. Without
# wasm-opt the page still works, with a larger download: one warning line.
set -euo pipefail
opt=${MEGAQA_WASM_OPT:-web/e2e/node_modules/.bin/wasm-opt}
[ -x "$opt" ] || opt=$(command -v wasm-opt || true)
if [ -z "$opt" ] || ! "$opt" --version 2>/dev/null | grep -q 'version 132'; then
  echo "megaqa: warning: wasm-opt 132 not found (npm ci --prefix web/e2e installs it): the wasm is served unoptimised" >&2
  exit 0
fi
for wasm in "$TRUNK_STAGING_DIR"/*.wasm; do
  "$opt" "$wasm" -Oz --strip-debug --strip-producers --enable-bulk-memory --enable-sign-ext \
    --enable-mutable-globals --enable-nontrapping-float-to-int -o "$wasm.tmp"
  mv "$wasm.tmp" "$wasm"
done
