#!/usr/bin/env bash
# Training throughput on the CPU, megaqa and PyTorch eager one after the other in
# the same run: the tiny fixture (batch 8 x 384) and the Megatron 345M shape
# (batch 1 x 384), f32. Needs: pip install torch transformers. Run on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/megaqa-env.sh
build_megaqa
runs="${MEGAQA_BENCH_RUNS:-3}"
tiny=$("$M" bench --model tests/fixtures/models/megatron-tiny --device cpu --train --batch-size 8 --runs 10 --json | tr -d '\n ')
tiny_pt=$(MEGAQA_BENCH_SHAPE=tiny MEGAQA_BENCH_BATCH=8 MEGAQA_BENCH_RUNS=10 python3 tests/reference/bench_train_pytorch.py | grep '^{')
big=$("$M" bench --random megatron-345m --device cpu --train --batch-size 1 --runs "$runs" --json | tr -d '\n ')
big_pt=$(MEGAQA_BENCH_SHAPE=345m MEGAQA_BENCH_BATCH=1 MEGAQA_BENCH_RUNS="$runs" python3 tests/reference/bench_train_pytorch.py | grep '^{')
printf '%s\n' "$tiny" "$tiny_pt" "$big" "$big_pt"
python3 - "$tiny" "$tiny_pt" "$big" "$big_pt" <<'PY'
import json, sys
t, tp, b, bp = (json.loads(x) for x in sys.argv[1:])
for name, m, p in (("tiny, batch 8", t, tp), ("345M, batch 1", b, bp)):
    print(f"{name}: megaqa {m['windows_per_s']:.2f} windows/s ({m['ms_per_batch']:.0f} ms/update, peak {m['peak_rss_mb']:.0f} MB), "
          f"pytorch {p['windows_per_s']:.2f} windows/s ({p['ms_per_update']:.0f} ms/update, peak {p['peak_rss_mb']} MB): "
          f"megaqa takes {m['ms_per_batch'] / p['ms_per_update']:.2f}x the time")
PY
