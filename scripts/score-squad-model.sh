#!/usr/bin/env bash
# Scores a model trained by scripts/train-squad-model.sh:
#   score-squad-model.sh RUN_DIR OUT_DIR
# - converts it to f16 (OUT_DIR/model.megaqa.safetensors: the file megaqa ships);
# - predicts the whole CS224N dev half with the f32 run and with the f16 file (the
#   model's stored null threshold), and reports how many answers agree;
# - scores, with the official SQuAD v2.0 metrics, the eight dev-half articles it never
#   saw (OUT_DIR/data/eval.json), at its stored threshold and with answers forced
#   (every question's best span), and the two-article file (Normans,
#   Computational_complexity_theory) that CI checks with a floor;
# - finds, on the eight articles, the threshold where HasAns F1 reaches 75 and the
#   overall F1 there (the trade-off the stored threshold makes);
# - writes everything to OUT_DIR/scores.json.
# Steps whose output is there already are not redone.
set -euo pipefail
cd "$(dirname "$0")/.."
run=$1; out=$2
. scripts/megaqa-env.sh
dev="${DEV:-$shared/data/squad/dev-v2.0-cs224n-half.json}"
[ -f "$out/model.megaqa.safetensors" ] || "$M" convert --model "$run" --dtype f16 --out "$out/model.megaqa.safetensors"
two="$shared/data/squad/dev-v2.0-two-articles.json"
f16="$out/model.megaqa.safetensors"
# F16_ONLY=1: the run's weights are f16 values already (the PyTorch recipe saves f16), so
# an f32 file would hold the same numbers: the comparison is skipped, and said so.
[ -n "${F16_ONLY:-}" ] || [ -f "$out/pred-f32/nbest.json" ] ||
  "$M" predict --model "$run" --data "$dev" --out "$out/pred-f32" --device cpu --batch-size 32
[ -f "$out/pred-f16/nbest.json" ] || "$M" predict --model "$f16" --data "$dev" --out "$out/pred-f16" --device cpu --batch-size 32
# The two-article file carries the official ids (the dev half's are re-hashed).
[ -f "$out/pred-two/nbest.json" ] || "$M" predict --model "$f16" --data "$two" --out "$out/pred-two" --device cpu --batch-size 32
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
load = lambda p: json.load(open(p, encoding="utf-8"))
f16 = load(f"{out}/pred-f16/predictions.json")
try:
    f32 = load(f"{out}/pred-f32/predictions.json")
    agree = {"questions": len(f32), "identical": sum(f32[k] == f16[k] for k in f32)}
    agree["share"] = agree["identical"] / len(f32)
except FileNotFoundError:
    agree = {"questions": len(f16), "identical": None,
             "skipped": "the weights are f16 values (the PyTorch recipe saves f16): an f32 file holds the same numbers"}
# Forced answers: the best non-empty span of every question (the n-best list's first).
for d in ("pred-f16", "pred-two"):
    nbest = load(f"{out}/{d}/nbest.json")
    forced = {k: next((e["text"] for e in v if e["text"]), "") for k, v in nbest.items()}
    json.dump(forced, open(f"{out}/{d}/forced.json", "w"))
json.dump(agree, open(f"{out}/f16-vs-f32.json", "w"))
PY
# With the null odds as na-probs (for the official best-threshold search); forced answers
# also lift the official --na-prob-thresh (1.0), which would blank answers above it.
score() {
  "$M" evaluate --json --data "$1" --predictions "$2/$3" --na-prob-file "$2/null_odds.json" \
    --na-prob-thresh "$([ "$3" = forced.json ] && echo 1e300 || echo 1.0)"
}
# The trade-off the stored threshold makes: on the eight articles, the highest threshold
# (answering least) at which HasAns F1 still reaches 75, and the overall F1 there. HasAns
# F1 only grows as the threshold rises (a blank scores 0 on an answerable question), so a
# bisection over the questions' own null odds finds it.
python3 - "$M" "$out/data/eval.json" "$out/pred-f16" > "$out/operating-point.json" <<'PY'
import json, subprocess, sys, tempfile
m, data, pred = sys.argv[1:4]
forced = json.load(open(f"{pred}/forced.json"))
odds = json.load(open(f"{pred}/null_odds.json"))
def at(t):
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump({k: (a if odds[k] <= t else "") for k, a in forced.items()}, f)
        f.flush()
        return json.loads(subprocess.check_output([m, "evaluate", "--json", "--data", data, "--predictions", f.name]))
cuts = sorted(set(odds.values()))
lo, hi = 0, len(cuts) - 1  # the lowest cut whose HasAns F1 reaches 75
forced_f1 = at(cuts[hi])["HasAns_f1"]
if forced_f1 < 75:
    print(json.dumps({"HasAns_f1_75": None, "forced_HasAns_f1": forced_f1}))
    sys.exit()
while lo < hi:
    mid = (lo + hi) // 2
    lo, hi = (lo, mid) if at(cuts[mid])["HasAns_f1"] >= 75 else (mid + 1, hi)
s = at(cuts[lo])
print(json.dumps({"HasAns_f1_75": {"threshold": cuts[lo], "HasAns_f1": s["HasAns_f1"], "NoAns_f1": s["NoAns_f1"], "f1": s["f1"]}}))
PY
python3 - "$out" "$(score "$out/data/eval.json" "$out/pred-f16" predictions.json)" \
  "$(score "$out/data/eval.json" "$out/pred-f16" forced.json)" \
  "$(score "$two" "$out/pred-two" predictions.json)" \
  "$(score "$two" "$out/pred-two" forced.json)" "$run" <<'PY'
import json, sys
out = sys.argv[1]
ev, ev_forced, two, two_forced = (json.loads(x) for x in sys.argv[2:6])
import os
meta = json.load(open(f"{out}/data/summary.json"))
if os.path.exists(f"{out}/data2/summary.json"):  # the CPU recipe's later stages
    meta = {"stage1": meta, "stage2": json.load(open(f"{out}/data2/summary.json"))}
    last = int(sys.argv[6].rstrip("/")[-1]) if sys.argv[6].rstrip("/")[-1].isdigit() else 1
    for n in range(3, last + 1):  # the PyTorch stages that led to the scored run
        meta[f"stage{n}"] = json.load(open(f"{out}/data{n}/summary.json"))
agree = json.load(open(f"{out}/f16-vs-f32.json"))
result = {
    "data": meta,
    "eval_8_articles": {"at_stored_threshold": ev, "forced_answers": ev_forced},
    "two_articles": {"at_stored_threshold": two, "forced_answers": two_forced},
    "f16_vs_f32_dev_half": agree,
    "eval_8_articles_operating_point": json.load(open(f"{out}/operating-point.json")),
}
json.dump(result, open(f"{out}/scores.json", "w"), indent=1)
r = lambda x: round(x, 2)
print(json.dumps({
    "eval8_f1": r(ev["f1"]), "eval8_exact": r(ev["exact"]), "eval8_HasAns_f1": r(ev["HasAns_f1"]),
    "eval8_NoAns_f1": r(ev["NoAns_f1"]), "eval8_forced_HasAns_f1": r(ev_forced["HasAns_f1"]),
    "eval8_best_f1": r(ev_forced["best_f1"]), "eval8_best_f1_thresh": r(ev_forced["best_f1_thresh"]), "eval8_always_null_f1": r(100 * ev["NoAns_total"] / ev["total"]),
    "two_f1": r(two["f1"]), "two_HasAns_f1": r(two["HasAns_f1"]), "two_forced_HasAns_f1": r(two_forced["HasAns_f1"]),
    "f16_vs_f32_identical": f"{agree['identical']}/{agree['questions']}",
    "eval8_at_HasAns_f1_75": result["eval_8_articles_operating_point"]["HasAns_f1_75"],
}))
PY
