"""PyTorch eager baseline for the window benchmark: MegatronBertForQuestionAnswering
of the 345M shape (random weights), 384-token windows, ms per window and peak RSS.
MEGAQA_BENCH_BATCH windows per call (default 1), MEGAQA_BENCH_DTYPE f32 or f16 (the
weights and the compute in half precision, as PyTorch users run BERT QA on tensor cores;
f16 needs a GPU). Prints one JSON line in the same form as `cargo bench -p megaqa-model
--bench window`, plus ms_per_batch."""

import json
import os
import resource
import time

import torch
from transformers import MegatronBertConfig, MegatronBertForQuestionAnswering

runs = int(os.environ.get("MEGAQA_BENCH_RUNS", "5"))
seq = int(os.environ.get("MEGAQA_BENCH_SEQ", "384"))
device = os.environ.get("MEGAQA_BENCH_DEVICE", "cpu")  # "cuda" on a GPU machine
batch = int(os.environ.get("MEGAQA_BENCH_BATCH", "1"))
dtype = {"f32": torch.float32, "f16": torch.float16}[os.environ.get("MEGAQA_BENCH_DTYPE", "f32")]
torch.manual_seed(7)
t0 = time.perf_counter()
cfg = MegatronBertConfig(vocab_size=30592, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                         intermediate_size=4096, max_position_embeddings=512, layer_norm_eps=1e-5)
model = MegatronBertForQuestionAnswering(cfg).eval().to(device=device, dtype=dtype)
build_s = time.perf_counter() - t0
params = sum(p.numel() for p in model.parameters())
ids = torch.tensor([[1000 + i * 7 for i in range(seq)]] * batch)
types = torch.tensor([[int(i >= 20) for i in range(seq)]] * batch)
mask = torch.ones(batch, seq, dtype=torch.long)
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
weights_mb = params * (2 if dtype == torch.float16 else 4) / 2**20
per_batch = times[len(times) // 2]
print(json.dumps({"impl": f"pytorch-{torch.__version__}-eager-{device}", "dtype": str(dtype).removeprefix("torch."),
                  "batch": batch, "ms_per_batch_median": round(per_batch, 1), "windows_per_s": round(batch * 1000 / per_batch, 1), "seq": seq, "params": params, "threads": torch.get_num_threads(),
                  "build_s": round(build_s, 2), "ms_per_window_median": round(per_batch / batch, 1),
                  "ms_per_window_min": round(times[0] / batch, 1), "peak_rss_mb": round(peak), "weights_mb": round(weights_mb),
                  "peak_over_weights": round(peak / weights_mb, 2)}))
