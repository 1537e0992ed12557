# A random Megatron-BERT 345M-shape HF directory (MegatronBertForQuestionAnswering names,
# N(0, 0.02) matrices as HF initialises them) for scripts/browser-big-model.sh.
import json, os, sys, numpy as np
from safetensors.numpy import save_file
out = sys.argv[1]; os.makedirs(out, exist_ok=True)
h, layers, inter, vocab = 1024, 24, 4096, 30592
rng = np.random.default_rng(7)
def n(*s): return (rng.standard_normal(s, dtype=np.float32) * 0.02)
t = {
 "bert.embeddings.word_embeddings.weight": n(vocab, h),
 "bert.embeddings.position_embeddings.weight": n(512, h),
 "bert.embeddings.token_type_embeddings.weight": n(2, h),
 "bert.encoder.ln.weight": np.ones(h, np.float32), "bert.encoder.ln.bias": np.zeros(h, np.float32),
 "qa_outputs.weight": n(2, h), "qa_outputs.bias": np.zeros(2, np.float32),
}
for i in range(layers):
    p = f"bert.encoder.layer.{i}."
    for m in ["query", "key", "value"]:
        t[p+f"attention.self.{m}.weight"] = n(h, h); t[p+f"attention.self.{m}.bias"] = np.zeros(h, np.float32)
    t[p+"attention.output.dense.weight"] = n(h, h); t[p+"attention.output.dense.bias"] = np.zeros(h, np.float32)
    t[p+"attention.ln.weight"] = np.ones(h, np.float32); t[p+"attention.ln.bias"] = np.zeros(h, np.float32)
    t[p+"ln.weight"] = np.ones(h, np.float32); t[p+"ln.bias"] = np.zeros(h, np.float32)
    t[p+"intermediate.dense.weight"] = n(inter, h); t[p+"intermediate.dense.bias"] = np.zeros(inter, np.float32)
    t[p+"output.dense.weight"] = n(h, inter); t[p+"output.dense.bias"] = np.zeros(h, np.float32)
save_file(t, f"{out}/model.safetensors")
json.dump({"architectures": ["MegatronBertForQuestionAnswering"], "model_type": "megatron-bert",
  "vocab_size": vocab, "hidden_size": h, "num_hidden_layers": layers, "num_attention_heads": 16,
  "intermediate_size": inter, "hidden_act": "gelu", "max_position_embeddings": 512, "type_vocab_size": 2,
  "layer_norm_eps": 1e-12, "pad_token_id": 0}, open(f"{out}/config.json", "w"), indent=1)
