#!/usr/bin/env bash
# Tokenize + window the 6078 CS224N questions: megaqa-text vs HF tokenizers (Python), same run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/megaqa/target}"
cargo bench -q -p megaqa-text --bench windows 2>/dev/null | grep '^{'
python3 tests/reference/bench_text.py
