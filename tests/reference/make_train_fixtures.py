"""Reference for `megaqa train`: two optimisation steps of PyTorch/transformers on
the tiny random Megatron fixture, as HF `run_qa` + `Trainer` take them (dropout off
so that both sides compute the same function):

- features: `prepare_train_features` of run_qa (question lstripped, truncation
  only_second, max_length 128, stride 32 so that passages span several windows),
  labels by its algorithm; batches of 4 windows padded to the longest;
- loss: `MegatronBertForQuestionAnswering`'s (mean of start and end cross-entropy);
- `clip_grad_norm_(1.0)`, AdamW (betas 0.9/0.999, eps 1e-8, weight decay 0.01 except
  biases and LayerNorm weights), `get_linear_schedule_with_warmup(0 warmup, 2 steps)`,
  base lr 1e-3.

Writes tests/fixtures/train/reference.json (windows, labels, loss and gradient norm
of each step) and tests/fixtures/train/after-2-steps/ (the weights after both steps,
as a Hugging Face directory). CI never runs this; outputs are committed:
    python3 tests/reference/make_train_fixtures.py
"""
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import MegatronBertConfig, MegatronBertForQuestionAnswering, get_linear_schedule_with_warmup

import make_text_fixtures as text  # the HF tokenizer, set up and checked as run_qa uses it

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "tests/fixtures/models/megatron-tiny"
OUT = ROOT / "tests/fixtures/train"
MAX_LEN, STRIDE, BATCH, LR = 128, 32, 4, 1e-3

torch.manual_seed(0)
config = MegatronBertConfig.from_pretrained(str(MODEL))
config.hidden_dropout_prob = 0.0
config.attention_probs_dropout_prob = 0.0
model = MegatronBertForQuestionAnswering.from_pretrained(str(MODEL), config=config)
model.train()

data = json.loads((ROOT / "tests/fixtures/squad/dev-v2.0-two-articles.json").read_text())
paragraph = data["data"][0]["paragraphs"][0]
# Two answerable and two unanswerable questions over the first paragraph.
answerable = [q for q in paragraph["qas"] if q["answers"] and not q.get("is_impossible")][:2]
impossible = [q for q in paragraph["qas"] if q.get("is_impossible")][:2]
questions = answerable + impossible


def features(question, context, answers):
    """run_qa's prepare_train_features for one example."""
    enc = text.tok(question.lstrip(), context, truncation="only_second", max_length=MAX_LEN, stride=STRIDE,
                   return_overflowing_tokens=True, return_offsets_mapping=True)
    out = []
    for i, offsets in enumerate(enc["offset_mapping"]):
        ids = enc["input_ids"][i]
        seq = enc.sequence_ids(i)
        start = end = 0  # [CLS]
        if answers:
            start_char = answers[0]["answer_start"]
            end_char = start_char + len(answers[0]["text"])
            ts = 0
            while seq[ts] != 1:
                ts += 1
            te = len(ids) - 1
            while seq[te] != 1:
                te -= 1
            if offsets[ts][0] <= start_char and offsets[te][1] >= end_char:
                while ts < len(offsets) and offsets[ts][0] <= start_char:
                    ts += 1
                start = ts - 1
                while offsets[te][1] >= end_char:
                    te -= 1
                end = te + 1
        out.append({"ids": ids, "types": enc["token_type_ids"][i], "start": start, "end": end})
    return out


windows = []
for q in questions:
    answers = [] if q.get("is_impossible") else q["answers"]
    for w in features(q["question"], paragraph["context"], answers):
        w["id"] = q["id"]
        windows.append(w)
assert len(windows) >= 2 * BATCH, len(windows)
batches = [windows[:BATCH], windows[BATCH:2 * BATCH]]

no_decay = ("bias", "LayerNorm.weight")
params = [
    {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)], "weight_decay": 0.01},
    {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)], "weight_decay": 0.0},
]
opt = torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.999), eps=1e-8)
sched = get_linear_schedule_with_warmup(opt, 0, 2)

steps = []
for b in batches:
    seq = max(len(w["ids"]) for w in b)
    pad = lambda v: v + [0] * (seq - len(v))
    ids = torch.tensor([pad(w["ids"]) for w in b])
    types = torch.tensor([pad(w["types"]) for w in b])
    mask = torch.tensor([pad([1] * len(w["ids"])) for w in b])
    out = model(input_ids=ids, token_type_ids=types, attention_mask=mask,
                start_positions=torch.tensor([w["start"] for w in b]),
                end_positions=torch.tensor([w["end"] for w in b]))
    out.loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    steps.append({"loss": out.loss.item(), "grad_norm": norm.item(), "lr": sched.get_last_lr()[0]})
    opt.step()
    sched.step()
    opt.zero_grad()

OUT.mkdir(parents=True, exist_ok=True)
(OUT / "reference.json").write_text(json.dumps({
    "model": "tests/fixtures/models/megatron-tiny", "max_len": MAX_LEN, "stride": STRIDE, "batch": BATCH,
    "lr": LR, "weight_decay": 0.01, "max_grad_norm": 1.0,
    "questions": [q["id"] for q in questions], "windows": windows, "steps": steps,
}, indent=1))
after = OUT / "after-2-steps"
after.mkdir(exist_ok=True)
save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(after / "model.safetensors"))
for f in ("config.json", "vocab.txt", "tokenizer_config.json"):
    shutil.copy(MODEL / f, after / f)
print(json.dumps(steps))
