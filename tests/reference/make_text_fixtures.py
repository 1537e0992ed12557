"""Reference fixtures for the text crate, made with HF tokenizers/transformers.

Writes tests/fixtures/text/:
- windows.json.gz: for every question of ../shared/data/squad/dev-v2.0-cs224n-half.json
  a sha256 of its windows (ids, token types, context offsets) as HF makes them with
  tokenizer(question.lstrip(), context, truncation="only_second", max_length=384,
  stride=128, return_overflowing_tokens=True, return_offsets_mapping=True), full
  vectors for every 40th question, and hand-picked Unicode cases in full.
- decode.json.gz: random logits over real SQuAD windows and what the reference
  post-processing (transformers' postprocess_qa_predictions, version_2_with_negative)
  makes of them: prediction text, null_odds (score_diff) and the n-best list.
- scoring.json: prediction files scored by the SQuAD v2.0 evaluation (the official
  functions as shipped in transformers 4.x data/metrics/squad_metrics.py, driven the
  way evaluate-v2.0.py's main() drives them).

CI never runs this; its outputs are committed. Needs: pip install transformers tokenizers
numpy, and a transformers 4.x wheel for the scoring functions:
    pip download --no-deps transformers==4.46.3 -d /tmp/tf4
    python3 tests/reference/make_text_fixtures.py /tmp/tf4/transformers-4.46.3-py3-none-any.whl
"""

import collections
import gzip
import hashlib
import json
import random
import sys
import zipfile
from pathlib import Path

import numpy as np
from tokenizers import BertWordPieceTokenizer
from transformers import BertTokenizerFast

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/fixtures/text"
VOCAB = ROOT / "assets/vocab-uncased.txt"
SHARED = ROOT.parent / "shared"

wp = BertWordPieceTokenizer(str(VOCAB), lowercase=True)
tok = BertTokenizerFast(tokenizer_object=wp._tokenizer, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                        cls_token="[CLS]", mask_token="[MASK]", do_lower_case=True)
# The transformers-5 trap (DESIGN.md): check the vocabulary is really there.
assert tok("the normans", add_special_tokens=True)["input_ids"] == [101, 1996, 5879, 2015, 102]


def windows(question, context):
    enc = tok(question.lstrip(), context, truncation="only_second", max_length=384, stride=128,
              return_overflowing_tokens=True, return_offsets_mapping=True)
    out = []
    for i in range(len(enc["input_ids"])):
        seq = enc.sequence_ids(i)
        offs = [list(o) if s == 1 else None for o, s in zip(enc["offset_mapping"][i], seq)]
        out.append({"ids": enc["input_ids"][i], "types": enc["token_type_ids"][i], "offsets": offs})
    return out


def digest(ws):
    """sha256 of `ids;types;offsets` lines, one per window (offsets `s-e` or `n`)."""
    lines = []
    for w in ws:
        offs = ",".join("n" if o is None else f"{o[0]}-{o[1]}" for o in w["offsets"])
        lines.append(",".join(map(str, w["ids"])) + ";" + ",".join(map(str, w["types"])) + ";" + offs)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def examples(path):
    data = json.loads(Path(path).read_text())
    for a in data["data"]:
        for p in a["paragraphs"]:
            for q in p["qas"]:
                yield q, p["context"]


UNICODE_CASES = [
    ("Who wrote Les Misérables?", "Les Misérables was written by Victor Hugo in 1862, a novel of naïve façades."),
    ("What is 東京?", "東京 (Tokyo) is the capital of 日本; 北京 is in China."),
    ("Which emoji?", "The party 🎉 ended with 👍🏽 and a family 👨‍👩‍👧 photo."),
    ("Combining marks?", "Cafe\u0301 and re\u0301sume\u0301 use combining accents; Ångström too."),
    ("Line breaks?", "First line.\r\nSecond line with\r\nWindows breaks.\n\nThird paragraph."),
    ("  Leading spaces\u00a0and nbsp?", "Non\u00a0breaking\u00a0spaces sit here:\u00a0100\u00a0km, and\u2009thin ones."),
    ("Control chars?", "Tabs\there, a zero\u200bwidth space, and a soft\u00adhyphen."),
    ("Arabic and Hebrew?", "مرحبا بالعالم and שלום עולם mixed with English text."),
    ("A very long question " + "about many things " * 30 + "?", "A short context about things."),
]


def make_windows():
    cs = list(examples(SHARED / "data/squad/dev-v2.0-cs224n-half.json"))
    assert len(cs) == 6078, len(cs)
    digests, samples = {}, []
    for i, (q, c) in enumerate(cs):
        ws = windows(q["question"], c)
        digests[q["id"]] = digest(ws)
        if i % 40 == 0:
            samples.append({"id": q["id"], "windows": ws})
    unicode = []
    for q, c in UNICODE_CASES:
        unicode.append({"question": q, "context": c, "windows": windows(q, c)})
    # Long contexts: several windows each.
    long_ctx = []
    paras = [c for _, c in examples(SHARED / "data/squad/dev-v2.0-two-articles.json")]
    paras = list(dict.fromkeys(paras))
    for k in range(3):
        c = " ".join(paras[k * 5:(k + 1) * 5])
        ws = windows("What did the Normans do?", c)
        assert len(ws) >= 2
        long_ctx.append({"question": "What did the Normans do?", "context": c, "windows": ws})
    with gzip.open(OUT / "windows.json.gz", "wt") as f:
        json.dump({"digests": digests, "samples": samples, "unicode": unicode, "long": long_ctx}, f)


def postprocess(context, feats, n_best=20, max_answer_length=30, null_threshold=0.0):
    """transformers' examples/pytorch/question-answering/utils_qa.py postprocess_qa_predictions,
    version_2_with_negative=True, for one example."""
    min_null = None
    prelim = []
    for f in feats:
        start_logits, end_logits, offset_mapping = f["start"], f["end"], f["offsets"]
        feature_null_score = start_logits[0] + end_logits[0]
        if min_null is None or min_null["score"] > feature_null_score:
            min_null = {"offsets": (0, 0), "score": feature_null_score,
                        "start_logit": start_logits[0], "end_logit": end_logits[0]}
        start_indexes = np.argsort(start_logits)[-1: -n_best - 1: -1].tolist()
        end_indexes = np.argsort(end_logits)[-1: -n_best - 1: -1].tolist()
        for s in start_indexes:
            for e in end_indexes:
                if s >= len(offset_mapping) or e >= len(offset_mapping) or offset_mapping[s] is None \
                        or len(offset_mapping[s]) < 2 or offset_mapping[e] is None or len(offset_mapping[e]) < 2:
                    continue
                if e < s or e - s + 1 > max_answer_length:
                    continue
                prelim.append({"offsets": (offset_mapping[s][0], offset_mapping[e][1]),
                               "score": start_logits[s] + end_logits[e],
                               "start_logit": start_logits[s], "end_logit": end_logits[e]})
    prelim.append(min_null)
    null_score = min_null["score"]
    predictions = sorted(prelim, key=lambda x: x["score"], reverse=True)[:n_best]
    if not any(p["offsets"] == (0, 0) for p in predictions):
        predictions.append(min_null)
    for p in predictions:
        o = p.pop("offsets")
        p["text"] = context[o[0]:o[1]]
        p["start"], p["end"] = o
    if len(predictions) == 0 or (len(predictions) == 1 and predictions[0]["text"] == ""):
        predictions.insert(0, {"text": "empty", "start_logit": 0.0, "end_logit": 0.0, "score": 0.0, "start": 0, "end": 0})
    scores = np.array([p.pop("score") for p in predictions])
    exp_scores = np.exp(scores - np.max(scores))
    probs = exp_scores / exp_scores.sum()
    for prob, p in zip(probs, predictions):
        p["probability"] = float(prob)
    i = 0
    while predictions[i]["text"] == "":
        i += 1
    best = predictions[i]
    score_diff = null_score - best["start_logit"] - best["end_logit"]
    text = "" if score_diff > null_threshold else best["text"]
    nbest = [{k: (float(v) if isinstance(v, (np.float16, np.float32, np.float64)) else v) for k, v in p.items()}
             for p in predictions]
    return text, float(score_diff), nbest


def make_decode():
    rng = np.random.default_rng(42)
    items = list(examples(ROOT / "tests/fixtures/squad/dev-v2.0-two-articles.json"))[:90]
    paras = list(dict.fromkeys(c for _, c in examples(ROOT / "tests/fixtures/squad/dev-v2.0-two-articles.json")))
    cases = []
    for n, (q, c) in enumerate(items):
        if n % 6 == 5:  # a long context: the question's paragraph among others
            i = paras.index(c)
            c = " ".join(paras[max(0, i - 2): i + 3])
        ws = windows(q["question"], c)
        feats = []
        for w in ws:
            L = len(w["ids"])
            start = rng.normal(0, 2, L).astype(np.float32)
            end = rng.normal(0, 2, L).astype(np.float32)
            mode = n % 3
            if mode == 0:
                start[0] += 6
                end[0] += 6
            elif mode == 1 and q["answers"]:
                a = q["answers"][0]
                s_char, e_char = c.find(a["text"]), c.find(a["text"]) + len(a["text"])
                for t, o in enumerate(w["offsets"]):
                    if o is not None and o[0] <= s_char < o[1]:
                        start[t] += 8
                    if o is not None and o[0] < e_char <= o[1]:
                        end[t] += 8
            feats.append({"start": start, "end": end, "offsets": w["offsets"]})
        text, odds, nbest = postprocess(c, feats)
        cases.append({"id": q["id"], "question": q["question"], "context": c,
                      "start": [[float(x) for x in f["start"]] for f in feats],
                      "end": [[float(x) for x in f["end"]] for f in feats],
                      "expected": {"text": text, "null_odds": odds, "nbest": nbest}})
    with gzip.open(OUT / "decode.json.gz", "wt") as f:
        json.dump(cases, f)


def load_metrics(wheel):
    src = zipfile.ZipFile(wheel).read("transformers/data/metrics/squad_metrics.py").decode()
    src = "\n".join(l for l in src.splitlines() if not l.startswith("from ...") and not l.startswith("logger ="))
    ns = {"__name__": "squad_metrics", "logger": None}
    exec(compile(src, "squad_metrics.py", "exec"), ns)
    return ns


def official_eval(m, dataset, preds, na_probs, na_prob_thresh):
    """evaluate-v2.0.py main(), with its functions."""
    qid_to_has_ans = {}
    for a in dataset:
        for p in a["paragraphs"]:
            for qa in p["qas"]:
                qid_to_has_ans[qa["id"]] = bool(qa["answers"])
    has_ans_qids = [k for k, v in qid_to_has_ans.items() if v]
    no_ans_qids = [k for k, v in qid_to_has_ans.items() if not v]
    exact_raw, f1_raw = {}, {}
    for a in dataset:
        for p in a["paragraphs"]:
            for qa in p["qas"]:
                gold = [x["text"] for x in qa["answers"] if m["normalize_answer"](x["text"])] or [""]
                pred = preds[qa["id"]]
                exact_raw[qa["id"]] = max(m["compute_exact"](g, pred) for g in gold)
                f1_raw[qa["id"]] = max(m["compute_f1"](g, pred) for g in gold)
    use_na = na_probs if na_probs is not None else {k: 0.0 for k in preds}
    exact_t = m["apply_no_ans_threshold"](exact_raw, use_na, qid_to_has_ans, na_prob_thresh)
    f1_t = m["apply_no_ans_threshold"](f1_raw, use_na, qid_to_has_ans, na_prob_thresh)
    out = m["make_eval_dict"](exact_t, f1_t)
    if has_ans_qids:
        m["merge_eval"](out, m["make_eval_dict"](exact_t, f1_t, qid_list=has_ans_qids), "HasAns")
    if no_ans_qids:
        m["merge_eval"](out, m["make_eval_dict"](exact_t, f1_t, qid_list=no_ans_qids), "NoAns")
    if na_probs is not None:
        m["find_all_best_thresh"](out, preds, exact_raw, f1_raw, na_probs, qid_to_has_ans)
    return out


def make_scoring(wheel):
    m = load_metrics(wheel)
    data = json.loads((ROOT / "tests/fixtures/squad/dev-v2.0-two-articles.json").read_text())["data"]
    qas = [qa for a in data for p in a["paragraphs"] for qa in p["qas"]]
    all_ctx = [p["context"] for a in data for p in a["paragraphs"]]
    rnd = random.Random(7)
    perfect = {q["id"]: (q["answers"][0]["text"] if q["answers"] else "") for q in qas}
    empty = {q["id"]: "" for q in qas}

    def partly():
        out = {}
        for q in qas:
            r = rnd.random()
            if q["answers"]:
                t = q["answers"][0]["text"]
                out[q["id"]] = [t, t.split()[0], "The " + t + ".", rnd.choice(all_ctx)[:30], ""][int(r * 5)]
            else:
                out[q["id"]] = "" if r < 0.6 else rnd.choice(all_ctx).split(".")[0][:40]
        return out

    wrong = partly()
    na = {q["id"]: round(rnd.random(), 6) for q in qas}
    rnd.shuffle(shuffled := list(na.items()))
    cases = [("perfect", perfect, None, 1.0), ("all-empty", empty, None, 1.0), ("partly-wrong", wrong, None, 1.0),
             ("with-na-probs", wrong, dict(shuffled), 1.0), ("na-thresh-0.5", partly(), na, 0.5),
             ("perfect-with-na", perfect, {k: 0.0 for k in perfect}, 1.0)]
    out = []
    for name, preds, nap, th in cases:
        out.append({"name": name, "preds": preds, "na_probs": nap, "na_prob_thresh": th,
                    "expected": official_eval(m, data, preds, nap, th)})
    (OUT / "scoring.json").write_text(json.dumps(out, indent=1))
    # Normalisation and F1 on tricky strings.
    pairs = [("The Eiffel Tower", "eiffel tower"), ("an apple a day", "apple day"), ("Café—naïve", "cafe naive"),
             ("U.S.A.", "USA"), ("the the the", ""), ("a", "an"), ("İstanbul", "i̇stanbul"), ("ÆSIR", "æsir"),
             ("theatre", "atheatre"), ("Don't stop", "dont stop"), ("1,000", "1000"), ("x  y\tz", "x y z")]
    norm = [{"gold": g, "pred": p, "norm_gold": m["normalize_answer"](g), "norm_pred": m["normalize_answer"](p),
             "exact": m["compute_exact"](g, p), "f1": m["compute_f1"](g, p)} for g, p in pairs]
    (OUT / "normalize.json").write_text(json.dumps(norm, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    make_windows()
    make_decode()
    make_scoring(sys.argv[1])
    print("wrote", sorted(p.name for p in OUT.iterdir()))
