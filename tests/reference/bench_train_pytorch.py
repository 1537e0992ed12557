"""PyTorch eager baseline for `megaqa bench --train`: training updates (forward with
dropout 0.1, span loss, backward, clip_grad_norm_, AdamW) of
MegatronBertForQuestionAnswering with random weights. MEGAQA_BENCH_SHAPE=345m (the
full Megatron shape) or tiny (the test fixture's shape); batch and sequence from
MEGAQA_BENCH_BATCH / MEGAQA_BENCH_SEQ; MEGAQA_BENCH_AMP=1 runs the forward in f16
autocast with a GradScaler (PyTorch's mixed precision, what `megaqa bench --train
--precision mixed` compares with on a GPU). Prints one JSON line: ms per update,
windows/s, peak RSS."""

import json
import os
import resource
import time

import torch
from transformers import MegatronBertConfig, MegatronBertForQuestionAnswering

shape = os.environ.get("MEGAQA_BENCH_SHAPE", "345m")
runs = int(os.environ.get("MEGAQA_BENCH_RUNS", "3"))
batch = int(os.environ.get("MEGAQA_BENCH_BATCH", "1"))
seq = int(os.environ.get("MEGAQA_BENCH_SEQ", "384"))
device = os.environ.get("MEGAQA_BENCH_DEVICE", "cpu")
amp = os.environ.get("MEGAQA_BENCH_AMP", "") == "1"
torch.manual_seed(7)
if shape == "minilm":  # all-MiniLM-L6-v2's shape (BERT post-LN there; the cost is the same)
    cfg = MegatronBertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                             intermediate_size=1536, max_position_embeddings=512, layer_norm_eps=1e-12)
elif shape == "345m":
    cfg = MegatronBertConfig(vocab_size=30592, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                             intermediate_size=4096, max_position_embeddings=512, layer_norm_eps=1e-5)
else:
    cfg = MegatronBertConfig(vocab_size=30592, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=64, max_position_embeddings=512, layer_norm_eps=1e-5)
model = MegatronBertForQuestionAnswering(cfg).train().to(device)
opt = torch.optim.AdamW(model.parameters(), lr=3e-5, weight_decay=0.01)
ids = torch.tensor([[1000 + (b * seq + i) * 7919 % 29522 for i in range(seq)] for b in range(batch)], device=device)
types = torch.tensor([[int(i >= seq // 8) for i in range(seq)]] * batch, device=device)
mask = torch.ones(batch, seq, dtype=torch.long, device=device)
starts = torch.tensor([b * 7 % seq for b in range(batch)], device=device)
ends = torch.tensor([(b * 7 + 3) % seq for b in range(batch)], device=device)
sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
scaler = torch.amp.GradScaler(device, enabled=amp)
times = []
for r in range(runs + 1):
    t = time.perf_counter()
    with torch.autocast(device_type=device, dtype=torch.float16, enabled=amp):
        out = model(input_ids=ids, token_type_ids=types, attention_mask=mask, start_positions=starts, end_positions=ends)
    scaler.scale(out.loss).backward()
    scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    scaler.step(opt)
    scaler.update()
    opt.zero_grad()
    sync()
    if r > 0:
        times.append(time.perf_counter() - t)
times.sort()
median = times[len(times) // 2]
print(json.dumps({"impl": f"pytorch-{torch.__version__}-eager-{device}", "shape": shape, "amp": amp, "batch": batch, "seq": seq,
                  "ms_per_update": round(median * 1000, 1), "windows_per_s": round(batch / median, 2),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
