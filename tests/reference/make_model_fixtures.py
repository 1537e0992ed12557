"""Reference fixtures for the model crate, made with PyTorch + transformers.

Writes tests/fixtures/models/: tiny random MegatronBertForQuestionAnswering and
BertForQuestionAnswering checkpoints (HF directories), the same Megatron weights as
NeMo `.nemo` archives (fused QKV in checkpoint-version 0, 1.0 and 2.0 layouts, both
Megatron-LM spellings), hostile archives for the loader's safety tests, and
expected.safetensors with the inputs and the reference start/end logits. Also the
last hidden states of the real all-MiniLM-L6-v2 (from ../shared/models) for a few
sentences.

CI never runs this; its outputs are committed. Run from the repository root:
    python3 tests/reference/make_model_fixtures.py
Weights are random (seeded): these models show the mechanics, they answer nothing.
"""

import io
import json
import os
import pickle
import tarfile
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import BertWordPieceTokenizer
from transformers import (AutoModel, BertConfig, BertForQuestionAnswering,
                          MegatronBertConfig, MegatronBertForQuestionAnswering)

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "models"
VOCAB = ROOT / "assets" / "vocab-uncased.txt"
SHARED = ROOT.parent / "shared"

torch.manual_seed(1234)
tok = BertWordPieceTokenizer(str(VOCAB), lowercase=True)
# The transformers-5 trap (DESIGN.md): make sure the vocabulary is really loaded.
assert tok.encode("the normans").ids == [101, 1996, 5879, 2015, 102], tok.encode("the normans").ids

# Real SQuAD text (CC BY-SA 4.0), first article of the dev set.
squad = json.loads((SHARED / "data/squad/dev-v2.0-two-articles.json").read_text())
para = squad["data"][0]["paragraphs"][0]
CONTEXT = para["context"]
QUESTIONS = [q["question"] for q in para["qas"][:3]]
LONG_CONTEXT = " ".join(p["context"] for p in squad["data"][0]["paragraphs"][:4])


def batch(pairs, seq):
    ids, types, mask = [], [], []
    for q, c in pairs:
        tok.enable_truncation(max_length=seq, strategy="only_second")
        e = tok.encode(q, c)
        n = len(e.ids)
        ids.append(e.ids + [0] * (seq - n))
        types.append(e.type_ids + [0] * (seq - n))
        mask.append([1] * n + [0] * (seq - n))
    return [torch.tensor(x, dtype=torch.int64) for x in (ids, types, mask)]


# Batch A: three questions over one passage, padded to 192 (padding exercises the mask).
INPUT_A = batch([(q, CONTEXT) for q in QUESTIONS], 192)
# Batch B: one full 384-token window over a long passage.
INPUT_B = batch([(QUESTIONS[0], LONG_CONTEXT)], 384)
assert INPUT_B[2].sum() == 384


def randomize(model):
    """Random weights with some spread (HF's N(0, 0.02) init makes near-constant logits)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or ".ln." in name or name.endswith(".ln.weight") or name.endswith(".ln.bias"):
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.08 * torch.randn_like(p))
    model.eval()
    return model


def logits(model, inputs):
    ids, types, mask = inputs
    with torch.no_grad():
        out = model(input_ids=ids, token_type_ids=types, attention_mask=mask)
    return out.start_logits.contiguous(), out.end_logits.contiguous()


def write_hf_dir(model, path, fmt, extra=None):
    path.mkdir(parents=True, exist_ok=True)
    model.config.to_json_file(path / "config.json")
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    if fmt == "safetensors":
        save_file(sd, str(path / "model.safetensors"))
    else:
        torch.save(OrderedDict(sd), path / "pytorch_model.bin")
    (path / "vocab.txt").write_text(VOCAB.read_text())
    (path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    (path / "README.md").write_text(
        "Random weights (seeded), made by tests/reference/make_model_fixtures.py. "
        "For tests of the mechanics only: this model answers nothing.\n")


def add_bytes(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def megatron_state_dict(model, cfg, version, spelling):
    """HF Megatron names -> Megatron-LM names as NeMo saves them, fused QKV in `version` layout."""
    sd = model.state_dict()
    h, heads = cfg.hidden_size, cfg.num_attention_heads
    hd = h // heads
    lm = "bert_model.language_model"
    enc = f"{lm}.transformer" if spelling == "old" else f"{lm}.encoder"
    att = "attention" if spelling == "old" else "self_attention"
    out = OrderedDict()
    out[f"{lm}.embedding.word_embeddings.weight"] = sd["bert.embeddings.word_embeddings.weight"]
    out[f"{lm}.embedding.position_embeddings.weight"] = sd["bert.embeddings.position_embeddings.weight"]
    out[f"{lm}.embedding.tokentype_embeddings.weight"] = sd["bert.embeddings.token_type_embeddings.weight"]
    for i in range(cfg.num_hidden_layers):
        p = f"bert.encoder.layer.{i}"
        q = f"{enc}.layers.{i}"
        for param in ("weight", "bias"):
            parts = [sd[f"{p}.attention.self.{n}.{param}"] for n in ("query", "key", "value")]
            if version == 0:
                fused = torch.cat(parts, 0)
            else:
                rest = parts[0].shape[1:]
                split = [t.reshape(heads, hd, *rest) for t in parts]
                if version == 1:  # [heads, head_dim, 3, ...]
                    fused = torch.stack(split, 2).reshape(3 * h, *rest)
                else:  # [heads, 3, head_dim, ...]
                    fused = torch.stack(split, 1).reshape(3 * h, *rest)
            out[f"{q}.input_layernorm.{param}"] = sd[f"{p}.attention.ln.{param}"]
            out[f"{q}.{att}.query_key_value.{param}"] = fused.contiguous()
            out[f"{q}.{att}.dense.{param}"] = sd[f"{p}.attention.output.dense.{param}"]
            out[f"{q}.post_attention_layernorm.{param}"] = sd[f"{p}.ln.{param}"]
            out[f"{q}.mlp.dense_h_to_4h.{param}"] = sd[f"{p}.intermediate.dense.{param}"]
            out[f"{q}.mlp.dense_4h_to_h.{param}"] = sd[f"{p}.output.dense.{param}"]
    for param in ("weight", "bias"):
        out[f"{enc}.final_layernorm.{param}"] = sd[f"bert.encoder.ln.{param}"]
        out[f"classifier.mlp.layer0.{param}"] = sd[f"qa_outputs.{param}"]
    # A pooler is in pre-trained Megatron checkpoints; QA ignores it.
    out[f"{lm}.pooler.dense.weight"] = torch.randn(h, h)
    out[f"{lm}.pooler.dense.bias"] = torch.randn(h)
    return out


def write_nemo(model, cfg, path, version, spelling, gz=True):
    buf = io.BytesIO()
    torch.save(megatron_state_dict(model, cfg, version, spelling), buf)
    yaml = (
        "language_model:\n  pretrained_model_name: megatron-bert-tiny-uncased\n  lm_checkpoint: null\n"
        "  config_file: nemo:megatron-bert-tiny_encoder_config.json\n"
        "tokenizer:\n  tokenizer_name: bert-base-uncased\n  vocab_file: nemo:0a1b_vocab.txt\n  do_lower_case: true\n"
        "token_classifier:\n  num_layers: 1\n  num_classes: 2\n  dropout: 0.0\n"
        "target: nemo.collections.nlp.models.question_answering.qa_model.QAModel\n"
    )
    enc = {"hidden-size": cfg.hidden_size, "num-attention-heads": cfg.num_attention_heads,
           "num-layers": cfg.num_hidden_layers, "max-seq-length": cfg.max_position_embeddings,
           "ffn-hidden-size": cfg.intermediate_size}
    with tarfile.open(path, "w:gz" if gz else "w") as tar:
        add_bytes(tar, "./model_config.yaml", yaml.encode())
        add_bytes(tar, "./model_weights.ckpt", buf.getvalue())
        add_bytes(tar, "./megatron-bert-tiny_encoder_config.json", json.dumps(enc).encode())
        add_bytes(tar, "./0a1b_vocab.txt", VOCAB.read_bytes())
        if version != 0:
            add_bytes(tar, "./megatron_checkpoint_version.json",
                      json.dumps({"checkpoint_version": float(version)}).encode())


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    expected = {}
    for key, t in zip(("ids", "types", "mask"), INPUT_A):
        expected[f"input_a.{key}"] = t
    for key, t in zip(("ids", "types", "mask"), INPUT_B):
        expected[f"input_b.{key}"] = t

    # Megatron-BERT, pre-LN: vocabulary padded to a multiple of 128 as Megatron does.
    mcfg = MegatronBertConfig(vocab_size=30592, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=64, max_position_embeddings=512, type_vocab_size=2,
                              layer_norm_eps=1e-5, hidden_act="gelu")
    meg = randomize(MegatronBertForQuestionAnswering(mcfg))
    write_hf_dir(meg, OUT / "megatron-tiny", "safetensors")
    for name, inputs in (("a", INPUT_A), ("b", INPUT_B)):
        s, e = logits(meg, inputs)
        expected[f"megatron.{name}.start"], expected[f"megatron.{name}.end"] = s, e
    write_nemo(meg, mcfg, OUT / "megatron-tiny.nemo", 0, "old")
    write_nemo(meg, mcfg, OUT / "megatron-tiny-v2.nemo", 2, "new", gz=False)

    # A micro Megatron (small vocab) for the 1.0 layout, so that fixture stays small.
    ucfg = MegatronBertConfig(vocab_size=256, hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
                              intermediate_size=40, max_position_embeddings=64, type_vocab_size=2,
                              layer_norm_eps=1e-5, hidden_act="gelu")
    micro = randomize(MegatronBertForQuestionAnswering(ucfg))
    micro_in = [torch.randint(1, 256, (2, 20)), torch.cat([torch.zeros(2, 8), torch.ones(2, 12)], 1).long(),
                torch.tensor([[1] * 20, [1] * 15 + [0] * 5])]
    for key, t in zip(("ids", "types", "mask"), micro_in):
        expected[f"input_micro.{key}"] = t
    s, e = logits(micro, micro_in)
    expected["micro.start"], expected["micro.end"] = s, e
    global VOCAB_SAVED
    write_nemo_micro = lambda path, version, spelling: write_nemo(micro, ucfg, path, version, spelling)
    # The micro archives carry a 256-token vocabulary cut from the real one.
    real_vocab = VOCAB
    cut = OUT / "micro_vocab.txt"
    cut.write_text("\n".join(VOCAB.read_text().splitlines()[:256]) + "\n")
    globals()["VOCAB"] = cut
    write_nemo_micro(OUT / "micro-v1.nemo", 1, "new")
    write_nemo_micro(OUT / "micro-v0.nemo", 0, "old")
    globals()["VOCAB"] = real_vocab
    cut.unlink()

    # Classic BERT, post-LN, saved as a torch zip pickle (pytorch_model.bin).
    bcfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64, max_position_embeddings=512, type_vocab_size=2,
                      layer_norm_eps=1e-12, hidden_act="gelu")
    bert = randomize(BertForQuestionAnswering(bcfg))
    write_hf_dir(bert, OUT / "bert-tiny", "bin")
    for name, inputs in (("a", INPUT_A), ("b", INPUT_B)):
        s, e = logits(bert, inputs)
        expected[f"bert.{name}.start"], expected[f"bert.{name}.end"] = s, e

    # The real pretrained all-MiniLM-L6-v2 (BertModel, no QA head): last hidden states.
    minilm_dir = SHARED / "models/all-minilm-l6-v2"
    mtok = BertWordPieceTokenizer(str(minilm_dir / "vocab.txt"), lowercase=True)
    sentences = [
        "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy.",
        "What is computational complexity theory?",
        "Café naïve façade — 東京 is a city.",
    ]
    enc = [mtok.encode(s) for s in sentences]
    seq = max(len(e.ids) for e in enc)
    ids = torch.tensor([e.ids + [0] * (seq - len(e.ids)) for e in enc])
    mask = torch.tensor([[1] * len(e.ids) + [0] * (seq - len(e.ids)) for e in enc])
    types = torch.zeros_like(ids)
    minilm = AutoModel.from_pretrained(str(minilm_dir)).eval()
    with torch.no_grad():
        hidden = minilm(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    expected["minilm.ids"], expected["minilm.types"], expected["minilm.mask"] = ids, types, mask
    expected["minilm.hidden"] = hidden.contiguous()

    save_file({k: v.contiguous() for k, v in expected.items()}, str(OUT / "expected.safetensors"))
    make_hostile(OUT / "hostile")
    print("wrote", sorted(p.name for p in OUT.iterdir()))


class Evil:
    """Pickled, never called: its reduce names os.system, which the loader must refuse."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def make_hostile(path):
    path.mkdir(parents=True, exist_ok=True)
    # A torch-style zip whose pickle calls os.system.
    evil_dir = path / "evil-pickle"
    evil_dir.mkdir(exist_ok=True)
    (evil_dir / "config.json").write_text(json.dumps({"model_type": "bert", "vocab_size": 8, "hidden_size": 4,
                                                       "num_hidden_layers": 1, "num_attention_heads": 1}))
    with zipfile.ZipFile(evil_dir / "pytorch_model.bin", "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"x": Evil()}, protocol=2))
        z.writestr("archive/byteorder", "little")
    # .nemo archives with an entry outside the archive, an absolute path and a symlink.
    for name, member in (("parent", "../escape.txt"), ("absolute", "/tmp/escape.txt")):
        with tarfile.open(path / f"{name}.nemo", "w") as tar:
            add_bytes(tar, "./model_config.yaml", b"language_model: {}\n")
            add_bytes(tar, member, b"x")
    with tarfile.open(path / "symlink.nemo", "w") as tar:
        add_bytes(tar, "./model_config.yaml", b"language_model: {}\n")
        info = tarfile.TarInfo("./model_weights.ckpt")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    # A Riva file is an encrypted archive; its content here is just noise.
    (path / "model.riva").write_bytes(os.urandom(64))


if __name__ == "__main__":
    main()
