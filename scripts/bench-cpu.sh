#!/usr/bin/env bash
# One 384-token window of the Megatron-BERT 345M shape on the CPU: megaqa (Burn flex)
# and PyTorch eager, one after the other in the same run, then the ratio.
# Needs: pip install torch transformers. Run on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/megaqa/target}"
cargo build --release -q -p megaqa-model --bench window
ours=$(cargo bench -q -p megaqa-model --bench window 2>/dev/null | grep '^{')
theirs=$(python3 tests/reference/bench_pytorch.py | grep '^{')
echo "$ours"
echo "$theirs"
python3 - "$ours" "$theirs" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"megaqa/pytorch time ratio: {a['ms_per_window_median'] / b['ms_per_window_median']:.2f}x "
      f"(megaqa {a['ms_per_window_median']} ms, pytorch {b['ms_per_window_median']} ms per window)")
PY
