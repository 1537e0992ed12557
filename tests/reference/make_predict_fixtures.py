"""Reference for `megaqa predict`: transformers (MegatronBertForQuestionAnswering,
the random tiny fixture) over every question of the two-article SQuAD v2.0 dev file,
windows from HF's tokenizer, then the reference post-processing. Writes
tests/fixtures/predict/{predictions,null_odds,nbest}.json and logits.json.gz with
the per-window start/end logits of every 4th question.

CI never runs this; outputs are committed. Run after make_model_fixtures.py:
    python3 tests/reference/make_predict_fixtures.py
"""
import gzip
import json
from pathlib import Path

import numpy as np
import torch
from transformers import MegatronBertForQuestionAnswering

import make_text_fixtures as text  # the HF tokenizer set up as run_qa does, and postprocess()

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/fixtures/predict"
OUT.mkdir(parents=True, exist_ok=True)
model = MegatronBertForQuestionAnswering.from_pretrained(str(ROOT / "tests/fixtures/models/megatron-tiny")).eval()
data = json.loads((ROOT / "tests/fixtures/squad/dev-v2.0-two-articles.json").read_text())
preds, odds, nbest, logits = {}, {}, {}, {}
n = 0
for a in data["data"]:
    for p in a["paragraphs"]:
        for q in p["qas"]:
            ws = text.windows(q["question"], p["context"])
            feats = []
            for w in ws:
                with torch.no_grad():
                    out = model(input_ids=torch.tensor([w["ids"]]), token_type_ids=torch.tensor([w["types"]]),
                                attention_mask=torch.ones(1, len(w["ids"]), dtype=torch.long))
                feats.append({"start": out.start_logits[0].numpy(), "end": out.end_logits[0].numpy(), "offsets": w["offsets"]})
            t, o, nb = text.postprocess(p["context"], feats)
            preds[q["id"]], odds[q["id"]], nbest[q["id"]] = t, o, nb
            if n % 4 == 0:
                logits[q["id"]] = {"start": [[float(x) for x in f["start"]] for f in feats],
                                   "end": [[float(x) for x in f["end"]] for f in feats]}
            n += 1
(OUT / "predictions.json").write_text(json.dumps(preds, indent=1))
(OUT / "null_odds.json").write_text(json.dumps(odds, indent=1))
with gzip.open(OUT / "nbest.json.gz", "wt") as f:
    json.dump(nbest, f)
with gzip.open(OUT / "logits.json.gz", "wt") as f:
    json.dump(logits, f)
print(n, "questions;", sum(1 for v in preds.values() if v == ""), "answered with no answer")
