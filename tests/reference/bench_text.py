"""HF tokenizers (Python) baseline for the text benchmark: windows for all 6078
questions of the CS224N half, as run_qa makes them. Best of 5, one question at a
time (as megaqa does) and as one batch call (HF's own parallel batch path)."""
import json, time
from pathlib import Path
from tokenizers import BertWordPieceTokenizer
from transformers import BertTokenizerFast

root = Path(__file__).resolve().parents[2]
wp = BertWordPieceTokenizer(str(root / "assets/vocab-uncased.txt"), lowercase=True)
tok = BertTokenizerFast(tokenizer_object=wp._tokenizer, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                        cls_token="[CLS]", mask_token="[MASK]")
data = json.loads((root.parent / "shared/data/squad/dev-v2.0-cs224n-half.json").read_text())
qs, cs = [], []
for a in data["data"]:
    for p in a["paragraphs"]:
        for q in p["qas"]:
            qs.append(q["question"].lstrip()); cs.append(p["context"])
kw = dict(truncation="only_second", max_length=384, stride=128, return_overflowing_tokens=True, return_offsets_mapping=True)
for mode in ("per-question", "batch"):
    best = 1e9
    for _ in range(5):
        t = time.perf_counter()
        if mode == "batch":
            n = len(tok(qs, cs, **kw)["input_ids"])
        else:
            n = sum(len(tok(q, c, **kw)["input_ids"]) for q, c in zip(qs, cs))
        best = min(best, time.perf_counter() - t)
    print(json.dumps({"impl": f"hf-tokenizers-python-{mode}", "questions": len(qs), "windows": n, "seconds": round(best, 3),
                      "questions_per_s": round(len(qs) / best)}))
