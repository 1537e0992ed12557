#!/usr/bin/env bash
# One 384-token window of the Megatron-BERT 345M shape (random weights) on the CPU:
# megaqa's model bench, `megaqa bench` (with its per-step profile, then again with
# MEGAQA_FUSED=off: Burn's own ops instead of megaqa's fused CPU kernels), and PyTorch
# eager, one after the other in the same run, then the ratio. Needs: pip install torch
# transformers. Run idle.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/megaqa/target}"
cargo build --release -q -p megaqa-model --bench window -p megaqa-cli
ours=$(cargo bench -q -p megaqa-model --bench window 2>/dev/null | grep '^{')
cli=$("$CARGO_TARGET_DIR/release/megaqa" bench --random megatron-345m --device cpu --runs 5 --profile --json | tr -d '\n ')
int8=$("$CARGO_TARGET_DIR/release/megaqa" bench --random megatron-345m --device cpu --runs 5 --precision int8 --json | tr -d '\n ')
unfused=$(MEGAQA_FUSED=off "$CARGO_TARGET_DIR/release/megaqa" bench --random megatron-345m --device cpu --runs 5 --json | tr -d '\n ')
theirs=$(python3 tests/reference/bench_pytorch.py | grep '^{')
echo "$ours"
echo "$cli"
echo "$theirs"
python3 - "$ours" "$cli" "$theirs" "$unfused" "$int8" <<'PY'
import json, sys
a, c, b, u, q = (json.loads(x) for x in sys.argv[1:])
cli_ms = 1000 / c["windows_per_s"]
print(f"megaqa/pytorch time per window: model bench {a['ms_per_window_median'] / b['ms_per_window_median']:.2f}x, "
      f"megaqa bench {cli_ms / b['ms_per_window_median']:.2f}x "
      f"(megaqa {a['ms_per_window_median']:.0f} / {cli_ms:.0f} ms, pytorch {b['ms_per_window_median']:.0f} ms); "
      f"peak RSS megaqa {a['peak_rss_mb']:.0f} MB ({a['peak_over_weights']}x weights), pytorch {b['peak_rss_mb']:.0f} MB")
print(f"--precision int8: {1000 / q['windows_per_s']:.0f} ms per window, "
      f"{q['windows_per_s'] * b['ms_per_window_median'] / 1000:.2f}x PyTorch f32's windows/s; "
      f"int8 weights {q['int8_weights_mb']:.0f} MB")
print(f"without the fused kernels (MEGAQA_FUSED=off): {1000 / u['windows_per_s']:.0f} ms per window")
print("where megaqa bench's window goes: " + ", ".join(
    f"{r['op']} {r['ms']:.0f} ms" for r in c["profile"]["steps"]))
PY
