"""PyTorch eager baseline for the CPU window benchmark: MegatronBertForQuestionAnswering
of the 345M shape (random weights), one 384-token window, ms per window and peak RSS.
Prints one JSON line in the same form as `cargo bench -p megaqa-model --bench window`."""

import json
import os
import resource
import time

import torch
from transformers import MegatronBertConfig, MegatronBertForQuestionAnswering

runs = int(os.environ.get("MEGAQA_BENCH_RUNS", "5"))
seq = int(os.environ.get("MEGAQA_BENCH_SEQ", "384"))
device = os.environ.get("MEGAQA_BENCH_DEVICE", "cpu")  # "cuda" on a GPU machine
torch.manual_seed(7)
t0 = time.perf_counter()
cfg = MegatronBertConfig(vocab_size=30592, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                         intermediate_size=4096, max_position_embeddings=512, layer_norm_eps=1e-5)
model = MegatronBertForQuestionAnswering(cfg).eval().to(device)
build_s = time.perf_counter() - t0
params = sum(p.numel() for p in model.parameters())
ids = torch.tensor([[1000 + i * 7 for i in range(seq)]])
types = torch.tensor([[int(i >= 20) for i in range(seq)]])
mask = torch.ones(1, seq, dtype=torch.long)
ids, types, mask = ids.to(device), types.to(device), mask.to(device)
sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
times = []
with torch.inference_mode():
    model(input_ids=ids, token_type_ids=types, attention_mask=mask)
    sync()
    for _ in range(runs):
        t = time.perf_counter()
        model(input_ids=ids, token_type_ids=types, attention_mask=mask)
        sync()
        times.append((time.perf_counter() - t) * 1000)
times.sort()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
weights_mb = params * 4 / 2**20
print(json.dumps({"impl": f"pytorch-{torch.__version__}-eager-{device}", "seq": seq, "params": params, "threads": torch.get_num_threads(),
                  "build_s": round(build_s, 2), "ms_per_window_median": round(times[len(times) // 2], 1),
                  "ms_per_window_min": round(times[0], 1), "peak_rss_mb": round(peak), "weights_mb": round(weights_mb),
                  "peak_over_weights": round(peak / weights_mb, 2)}))
