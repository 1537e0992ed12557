#!/usr/bin/env bash
# Open-collection evaluation (the DrQA / SQuAD-open protocol at collection scale):
#   retrieval-eval.sh MODEL OUT_DIR [PASSAGES]
# - the collection: every paragraph of the CS224N dev half's 16 articles (one document
#   per article), cut into passages by megaqa's retriever;
# - the questions: the answerable questions of the eight dev-half articles the shipped
#   model never trained or tuned on (scripts/squad-mix.py's evaluation articles), each
#   asked without its paragraph;
# - reads the PASSAGES (default 10) best BM25 passages per question, and, to compare, the
#   gold paragraph alone; answers forced (every question's best span) and at the model's
#   stored null threshold;
# - reports passage recall@1/5/10 (a retrieved passage covers the gold answer) and the
#   official EM/F1 of both, in OUT_DIR/retrieval-scores.json.
set -euo pipefail
cd "$(dirname "$0")/.."
model=$1; out=$2; k=${3:-10}
. scripts/megaqa-env.sh
dev="$shared/data/squad/dev-v2.0-cs224n-half.json"
mkdir -p "$out"
[ -x "$M" ] || build_megaqa
python3 - "$dev" "$out/questions.json" <<'PY'
import json, sys
sys.path.insert(0, "scripts")
from importlib import import_module
mix = import_module("squad-mix")
dev = json.load(open(sys.argv[1], encoding="utf-8"))["data"]
arts = []
for i in mix.DEV_EVAL:
    a = json.loads(json.dumps(dev[i]))
    for p in a["paragraphs"]:
        p["qas"] = [q for q in p["qas"] if q["answers"] and not q.get("is_impossible")]
    arts.append(a)
json.dump({"version": "v2.0", "data": arts}, open(sys.argv[2], "w", encoding="utf-8"))
PY
[ -f "$out/gold/null_odds.json" ] || "$M" predict --model "$model" --device cpu --data "$out/questions.json" --out "$out/gold" --null-threshold 1e300 --batch-size 32
[ -f "$out/open/null_odds.json" ] || "$M" predict --model "$model" --device cpu --data "$out/questions.json" --out "$out/open" --null-threshold 1e300 --batch-size 32 --docs "$dev" --passages "$k"
python3 - "$M" "$model" "$dev" "$out" "$k" <<'PY'
import json, struct, subprocess, sys
M, model, dev_path, out, k = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
qs = json.load(open(f"{out}/questions.json", encoding="utf-8"))["data"]
# Gold answer spans in the documents (an article's paragraphs joined by a blank line, as
# megaqa makes documents of a SQuAD file).
gold = {}
for a in qs:
    name, off = f"{dev_path}#{a['title']}", 0
    for p in a["paragraphs"]:
        for q in p["qas"]:
            s = off + q["answers"][0]["answer_start"]
            gold[q["id"]] = (name, s, s + len(q["answers"][0]["text"]))
        off += len(p["context"]) + 2
ret = json.load(open(f"{out}/open/retrieval.json", encoding="utf-8"))
def recall(n):
    hit = sum(any(r["document"] == g[0] and r["start"] <= g[1] and g[2] <= r["end"] for r in ret[i][:n])
              for i, g in gold.items())
    return round(100 * hit / len(gold), 2)
# The model's stored null threshold (safetensors metadata of a converted megaqa file).
with open(model, "rb") as f:
    header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
threshold = json.loads(header["__metadata__"]["megaqa.defaults"])["null_threshold"]
def score(run, thresh):
    cmd = [M, "evaluate", "--data", f"{out}/questions.json", "--predictions", f"{out}/{run}/predictions.json",
           "--na-prob-file", f"{out}/{run}/null_odds.json", "--na-prob-thresh", repr(thresh), "--json"]
    r = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    return {"exact": round(r["exact"], 2), "f1": round(r["f1"], 2)}
result = {
    "questions": len(gold), "passages_read": k,
    "recall_at": {str(n): recall(n) for n in (1, 5, 10) if n <= k},
    "forced": {"gold_paragraph": score("gold", 1e300), "retrieved": score("open", 1e300)},
    "stored_threshold": threshold,
    "at_stored_threshold": {"gold_paragraph": score("gold", threshold), "retrieved": score("open", threshold)},
}
json.dump(result, open(f"{out}/retrieval-scores.json", "w"), indent=1)
print(json.dumps(result, indent=1))
PY
