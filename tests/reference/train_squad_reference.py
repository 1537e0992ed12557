"""The PyTorch recipe that trains megaqa's shipped SQuAD model on a GPU, taking exactly
megaqa's updates: the windows, labels, negatives, micro-batch order and learning rate
of every update come from `megaqa train --export` (see crates/megaqa/src/train/export.rs);
the loss (mean of start and end cross-entropy), global-norm clipping and AdamW (no
decay on biases and LayerNorm weights) are the ones `megaqa train` is proven
step-equal to (tests/reference/make_train_fixtures.py, crates/megaqa/tests/train_reference.rs).

Two commands:

  start  --base DIR --out DIR [--seed 42] [--dtype f16|f32]
         The run's starting point, in Hugging Face BertForQuestionAnswering layout and
         f16 (so that it travels to a GPU machine): the base encoder's weights rounded
         to f16 and a QA head drawn from N(0, 0.02) (bias 0), as megaqa draws one.
         --base FILE --like DIR: a model in megaqa's converted format instead (a later
         stage continues from it), config and tokenizer from DIR. Needs numpy and
         safetensors only.

  train  --start DIR --export FILE --out DIR [--precision f32|bf16] [--dropout P]
         [--steps N | --epochs E] [--budget-s S] [--log-every N]
         Trains from the start directory. --steps/--epochs cut the run short and set the
         learning-rate schedule as `megaqa train --max-steps/--epochs` would for the same
         data (an epoch's order does not depend on how many follow). --budget-s: the most
         seconds the run may take; it times a few updates first and takes as many whole
         epochs as fit. Writes metrics.jsonl (megaqa's schema), loss.svg, model.safetensors
         (f16, HF names) with config.json and the tokenizer files, and summary.json.

  plot   --metrics FILE --out FILE.svg [--title T]: the loss curve of a metrics.jsonl.
"""
import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def hf_name(canon):
    """megaqa's canonical name (post-LN BERT) -> BertForQuestionAnswering's."""
    module, param = canon.rsplit(".", 1) if canon.count(".") else (canon, "")
    if canon.startswith("embeddings.") and canon.count(".") == 1:
        return f"bert.embeddings.{canon.split('.')[1]}_embeddings.weight"
    if module == "embeddings.ln":
        return f"bert.embeddings.LayerNorm.{param}"
    if module == "qa":
        return f"qa_outputs.{param}"
    _, layer, sub = module.split(".")
    sub = {"ln1": "attention.output.LayerNorm", "ln2": "output.LayerNorm", "attn_out": "attention.output.dense",
           "ffn_in": "intermediate.dense", "ffn_out": "output.dense"}[sub]
    return f"bert.encoder.layer.{layer}.{sub}.{param}"


def start(a):
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    base, out = Path(a.base), Path(a.out)
    like = Path(a.like) if a.like else base
    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((like / "config.json").read_text())
    dtype = np.float16 if a.dtype == "f16" else np.float32
    tensors = {}
    if base.is_file():
        # A model in megaqa's converted format (canonical names, fused QKV rows q, k, v).
        with safe_open(str(base), "np") as f:
            meta = json.loads(f.metadata()["megaqa.config"])
            assert not meta["pre_layer_norm"], "only post-LN (BERT) models map to BertForQuestionAnswering"
            assert meta["hidden_size"] == config["hidden_size"], "--like has another shape"
            for name in f.keys():
                value = f.get_tensor(name).astype(np.float32)
                if ".qkv." in name:
                    layer = name.split(".")[1]
                    for part, rows in zip(("query", "key", "value"), np.split(value, 3, axis=0)):
                        tensors[f"bert.encoder.layer.{layer}.attention.self.{part}.{name.rsplit('.', 1)[1]}"] = rows
                else:
                    tensors[hf_name(name)] = value
    else:
        for name, value in load_file(str(base / "model.safetensors")).items():
            if name.startswith("pooler."):
                continue  # the QA model has no pooler
            tensors[name if name.startswith("bert.") else "bert." + name] = value
        hidden = config["hidden_size"]
        rng = np.random.default_rng(a.seed)
        tensors["qa_outputs.weight"] = rng.standard_normal((2, hidden)) * 0.02
        tensors["qa_outputs.bias"] = np.zeros(2)
    save_file({k: np.ascontiguousarray(v.astype(dtype)) for k, v in tensors.items()}, str(out / "model.safetensors"))
    config["architectures"] = ["BertForQuestionAnswering"]
    (out / "config.json").write_text(json.dumps(config, indent=2))
    for f in TOKENIZER_FILES:
        if (like / f).exists():
            shutil.copy(like / f, out / f)
    print(json.dumps({"start": str(out), "tensors": len(tensors), "seed": a.seed}))


def loss_svg(metrics_path, svg_path, title):
    """The loss curve of a metrics.jsonl as a small SVG (as `megaqa train` draws its own)."""
    pts = [(v["step"], v["loss"]) for v in map(json.loads, open(metrics_path)) if "loss" in v]
    if not pts:
        return
    w, h, m = 640, 360, 48
    x0, x1 = pts[0][0], max(pts[-1][0], pts[0][0] + 1)
    y1 = max(p[1] for p in pts) * 1.05
    sx = lambda x: m + (x - x0) / (x1 - x0) * (w - 2 * m)
    sy = lambda y: h - m - y / y1 * (h - 2 * m)
    line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
    ticks = "".join(f'<text x="{m - 6}" y="{sy(y1 * k / 4) + 4:.1f}" text-anchor="end">{y1 * k / 4:.2f}</text>'
                    for k in range(5))
    Path(svg_path).write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">'
        f'<rect width="{w}" height="{h}" fill="white"/><text x="{w / 2}" y="20" text-anchor="middle">{title}</text>'
        f'<line x1="{m}" y1="{h - m}" x2="{w - m}" y2="{h - m}" stroke="black"/>'
        f'<line x1="{m}" y1="{m}" x2="{m}" y2="{h - m}" stroke="black"/>{ticks}'
        f'<text x="{m}" y="{h - m + 16}">{x0}</text><text x="{w - m}" y="{h - m + 16}" text-anchor="end">{x1}</text>'
        f'<text x="{w / 2}" y="{h - 10}" text-anchor="middle">update</text>'
        f'<polyline fill="none" stroke="steelblue" stroke-width="1.5" points="{line}"/></svg>\n')


def linear_schedule(base, step, warmup, total):
    """crates/megaqa/src/train/optim.rs `linear_schedule`."""
    if step < warmup:
        return base * step / max(warmup, 1)
    return base * (max(total - step, 0) / max(total - warmup, 1))


def train(a):
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
    from transformers import BertConfig, BertForQuestionAnswering

    t_begin = time.perf_counter()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    ex = load_file(a.export)
    with safe_open(a.export, "pt") as f:
        cfg = json.loads(f.metadata()["megaqa.train_config"])
    ids, types, offsets = ex["ids"].long(), ex["types"].long(), ex["offsets"].tolist()
    starts, ends = ex["starts"].long(), ex["ends"].long()
    sizes = ex["micro_batch_sizes"].tolist()
    order = ex["order"].tolist()
    exported_lr = ex["lr"].tolist()
    accum, batch = cfg["grad_accum"], cfg["batch_size"]
    exported_steps = len(exported_lr)
    windows = len(offsets) - 1
    steps_per_epoch = math.ceil(windows / (batch * accum))
    # The exported schedule is what megaqa_train computes: check ours against it.
    warm = math.ceil(cfg["warmup_ratio"] * exported_steps)
    for s in (0, 1, warm, exported_steps // 2, exported_steps - 1):
        mine = linear_schedule(cfg["lr"], s, warm, exported_steps)
        assert abs(mine - exported_lr[s]) <= 1e-12 * max(1.0, abs(mine)), (s, mine, exported_lr[s])
    # Micro-batches of every update, cut from the exported order.
    mbs, at = [], 0
    for n in sizes:
        mbs.append(order[at:at + n])
        at += n
    updates = [mbs[k * accum:(k + 1) * accum] for k in range(exported_steps)]

    dropout = cfg["dropout"] if a.dropout is None else a.dropout
    start_dir = Path(a.start)
    config = BertConfig.from_pretrained(str(start_dir))
    config.hidden_dropout_prob = dropout
    config.attention_probs_dropout_prob = dropout
    model = BertForQuestionAnswering.from_pretrained(str(start_dir), config=config, torch_dtype=torch.float32)
    model.to(device).train()
    qa = model.qa_outputs
    head_w, head_b = ex["qa.weight"].to(device), ex["qa.bias"].to(device)
    assert torch.equal(qa.weight.data, head_w) and torch.equal(qa.bias.data, head_b), \
        "the export's QA head is not the start directory's: export from the start directory"

    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
         "weight_decay": cfg["adamw"]["weight_decay"]},
        {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
         "weight_decay": 0.0},
    ]
    kw = {"fused": True} if device == "cuda" else {}
    opt = torch.optim.AdamW(groups, lr=cfg["lr"], betas=(cfg["adamw"]["beta1"], cfg["adamw"]["beta2"]),
                            eps=cfg["adamw"]["eps"], **kw)
    bf16 = a.precision == "bf16"
    if a.precision == "f32":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    def tensors_of(mb):
        n = max(offsets[i + 1] - offsets[i] for i in mb)
        x = torch.zeros((len(mb), n), dtype=torch.long)
        t = torch.zeros_like(x)
        m = torch.zeros_like(x)
        for r, i in enumerate(mb):
            lo, hi = offsets[i], offsets[i + 1]
            x[r, :hi - lo] = ids[lo:hi]
            t[r, :hi - lo] = types[lo:hi]
            m[r, :hi - lo] = 1
        idx = torch.tensor(mb)
        return [v.pin_memory().to(device, non_blocking=True) if device == "cuda" else v
                for v in (x, t, m, starts[idx], ends[idx])]

    def forward_backward(step_mbs):
        total = None
        for mb in step_mbs:
            x, t, m, s, e = tensors_of(mb)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
                out = model(input_ids=x, token_type_ids=t, attention_mask=m, start_positions=s, end_positions=e)
            (out.loss / len(step_mbs)).backward()
            total = out.loss.detach() if total is None else total + out.loss.detach()
        return total / len(step_mbs)

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    # How many updates to take, and their schedule.
    if a.steps is not None:
        steps = min(a.steps, exported_steps)
    elif a.epochs is not None:
        steps = min(a.epochs * steps_per_epoch, exported_steps)
    else:
        steps = exported_steps
    if a.budget_s:
        # Time a few updates' forward and backward (no update: the weights stay as they are).
        probe = updates[steps_per_epoch // 2: steps_per_epoch // 2 + 12]
        forward_backward(probe[0])
        opt.zero_grad(set_to_none=True)
        sync()
        t0 = time.perf_counter()
        for u in probe[1:]:
            forward_backward(u)
            opt.zero_grad(set_to_none=True)
        sync()
        per_update = (time.perf_counter() - t0) / (len(probe) - 1) * 1.15  # + the optimizer
        left = a.budget_s - (time.perf_counter() - t_begin)
        fit = int(left / per_update)
        if fit < steps:
            # Whole epochs where one fits; else the updates that fit (as --max-steps).
            cut = fit // steps_per_epoch * steps_per_epoch or max(fit, 1)
            print(f"budget: {per_update * 1000:.1f} ms per update, {fit} updates fit in {left:.0f} s: "
                  f"{cut} updates ({cut / steps_per_epoch:.2f} epochs) instead of {steps}", file=sys.stderr)
            steps = cut
    warm = math.ceil(cfg["warmup_ratio"] * steps)

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    metrics = open(out / "metrics.jsonl", "w")
    t0 = time.perf_counter()
    since, acc, acc_n, acc_w = time.perf_counter(), None, 0, 0
    stopped = None
    for step in range(steps):
        if a.hard_stop_s and time.perf_counter() - t_begin > a.hard_stop_s:
            stopped = step  # out of time: keep what was learnt (the schedule did not finish)
            print(f"hard stop after {step} of {steps} updates", file=sys.stderr)
            break
        lr = linear_schedule(cfg["lr"], step, warm, steps)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = forward_backward(updates[step])
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["max_grad_norm"]) \
            if cfg["max_grad_norm"] > 0 else torch.zeros(())
        opt.step()
        opt.zero_grad(set_to_none=True)
        acc = loss if acc is None else acc + loss
        acc_n += 1
        acc_w += sum(len(mb) for mb in updates[step])
        done = step + 1
        if done % a.log_every == 0 or done == steps:
            mean = (acc / acc_n).item()
            if not math.isfinite(mean):
                sys.exit(f"step {done}: the loss is not finite ({mean})")
            secs = time.perf_counter() - since
            line = {"step": done, "loss": mean, "lr": lr, "windows_per_s": acc_w / secs,
                    "grad_norm": float(norm), "loss_scale": 1.0}
            metrics.write(json.dumps(line) + "\n")
            metrics.flush()
            if done % (a.log_every * 50) == 0 or done == steps:
                print(json.dumps(line), file=sys.stderr)
            since, acc, acc_n, acc_w = time.perf_counter(), None, 0, 0
    sync()
    train_s = time.perf_counter() - t0
    metrics.close()

    state = {k: v.detach().to(torch.float16).contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"))
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.1
    config.save_pretrained(str(out))
    for f in TOKENIZER_FILES:
        if (start_dir / f).exists():
            shutil.copy(start_dir / f, out / f)
    if stopped is not None:
        steps = stopped
    trained = sum(len(mb) for u in updates[:steps] for mb in u)
    summary = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
               "torch": torch.__version__, "precision": a.precision, "dropout": dropout,
               "updates": steps, "epochs": steps / steps_per_epoch, "windows": trained,
               "train_s": round(train_s, 1), "windows_per_s": round(trained / train_s, 1),
               "hard_stop": stopped is not None, "lr": cfg["lr"], "batch": batch, "grad_accum": accum, "warmup_updates": warm}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    loss_svg(out / "metrics.jsonl", out / "loss.svg", f"train_squad_reference.py ({a.precision}): {Path(a.export).name}")
    print(json.dumps(summary))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start")
    s.add_argument("--base", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--like", help="with a megaqa model file as --base: the HF directory with its config and tokenizer")
    s.add_argument("--dtype", choices=("f16", "f32"), default="f16")
    t = sub.add_parser("train")
    t.add_argument("--start", required=True)
    t.add_argument("--export", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--precision", choices=("f32", "bf16"), default="bf16")
    t.add_argument("--dropout", type=float)
    t.add_argument("--steps", type=int)
    t.add_argument("--epochs", type=int)
    t.add_argument("--budget-s", type=float)
    t.add_argument("--hard-stop-s", type=float, help="stop (and save) whatever the schedule once this many seconds passed")
    t.add_argument("--log-every", type=int, default=10)
    p = sub.add_parser("plot", help="loss.svg from a metrics.jsonl")
    p.add_argument("--metrics", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--title", default="loss")
    a = ap.parse_args()
    if a.cmd == "plot":
        return loss_svg(a.metrics, a.out, a.title)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    (start if a.cmd == "start" else train)(a)


if __name__ == "__main__":
    main()
