//! The network's shape and numerics, as data. Read from a Hugging Face
//! `config.json` or from NeMo's encoder config; written into converted files.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Feed-forward activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Exact GELU, `x * Phi(x)` with erf (BERT, Megatron default).
    Gelu,
    /// The tanh approximation of GELU (`gelu_new`, `gelu_pytorch_tanh`, Megatron `openai_gelu`).
    GeluTanh,
    Relu,
}

/// Everything needed to build the network before its weights are known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub activation: Activation,
    /// Megatron-BERT: LayerNorm before each sub-block, one final LayerNorm, none on the
    /// embeddings. Classic BERT (false): LayerNorm on the embeddings and after each residual add.
    pub pre_layer_norm: bool,
}

impl ModelConfig {
    /// The Megatron-BERT 345M uncased shape (BERT-large with pre-LN).
    pub fn megatron_345m() -> Self {
        Self {
            vocab_size: 30592,
            hidden_size: 1024,
            num_layers: 24,
            num_heads: 16,
            intermediate_size: 4096,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-5,
            activation: Activation::Gelu,
            pre_layer_norm: true,
        }
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }

    /// Checks the relations that the forward pass relies on.
    pub fn validate(&self) -> Result<(), String> {
        let dims = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_layers", self.num_layers),
            ("num_heads", self.num_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        for (name, v) in dims {
            if v == 0 || v > 1 << 24 {
                return Err(format!("{name} = {v} is out of range"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_heads) {
            return Err(format!(
                "hidden_size {} is not divisible by num_heads {}",
                self.hidden_size, self.num_heads
            ));
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps < 1.0) {
            return Err(format!(
                "layer_norm_eps {} is out of range",
                self.layer_norm_eps
            ));
        }
        Ok(())
    }

    /// From a Hugging Face `config.json` (`bert` or `megatron-bert`).
    pub fn from_hf_json(json: &Value) -> Result<Self, String> {
        let model_type = json
            .get("model_type")
            .and_then(Value::as_str)
            .unwrap_or("bert");
        let pre_layer_norm = match model_type {
            "megatron-bert" => true,
            "bert" => false,
            other => {
                return Err(format!(
                    "model_type `{other}` is not supported (bert or megatron-bert)"
                ));
            }
        };
        let act = json
            .get("hidden_act")
            .and_then(Value::as_str)
            .unwrap_or("gelu");
        let hidden = req(json, &["hidden_size"])?;
        let cfg = Self {
            vocab_size: req(json, &["vocab_size"])?,
            hidden_size: hidden,
            num_layers: req(json, &["num_hidden_layers"])?,
            num_heads: req(json, &["num_attention_heads"])?,
            intermediate_size: opt(json, &["intermediate_size"])?.unwrap_or(4 * hidden),
            max_position_embeddings: opt(json, &["max_position_embeddings"])?.unwrap_or(512),
            type_vocab_size: opt(json, &["type_vocab_size"])?.unwrap_or(2),
            layer_norm_eps: json
                .get("layer_norm_eps")
                .and_then(Value::as_f64)
                .unwrap_or(1e-12),
            activation: parse_activation(act)?,
            pre_layer_norm,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// From NeMo's encoder config (Megatron-LM argument names with dashes or
    /// underscores, or HF names). The vocabulary size comes from the embedding tensor.
    pub fn from_nemo_json(json: &Value, vocab_size: usize) -> Result<Self, String> {
        let hidden = req(json, &["hidden_size", "hidden-size"])?;
        let gelu_tanh = json
            .get("openai_gelu")
            .or_else(|| json.get("openai-gelu"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let act = match json.get("hidden_act").and_then(Value::as_str) {
            Some(a) => parse_activation(a)?,
            None if gelu_tanh => Activation::GeluTanh,
            None => Activation::Gelu,
        };
        let cfg = Self {
            vocab_size,
            hidden_size: hidden,
            num_layers: req(json, &["num_layers", "num-layers", "num_hidden_layers"])?,
            num_heads: req(json, &["num_attention_heads", "num-attention-heads"])?,
            intermediate_size: opt(
                json,
                &["ffn_hidden_size", "ffn-hidden-size", "intermediate_size"],
            )?
            .unwrap_or(4 * hidden),
            max_position_embeddings: opt(
                json,
                &[
                    "max_position_embeddings",
                    "max-position-embeddings",
                    "max_seq_length",
                    "max-seq-length",
                ],
            )?
            .unwrap_or(512),
            type_vocab_size: opt(json, &["type_vocab_size", "num_tokentypes"])?.unwrap_or(2),
            layer_norm_eps: ["layernorm_epsilon", "layernorm-epsilon", "layer_norm_eps"]
                .iter()
                .find_map(|k| json.get(*k).and_then(Value::as_f64))
                .unwrap_or(1e-5),
            activation: act,
            pre_layer_norm: true,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

fn parse_activation(name: &str) -> Result<Activation, String> {
    match name {
        "gelu" => Ok(Activation::Gelu),
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" | "openai_gelu" => Ok(Activation::GeluTanh),
        "relu" => Ok(Activation::Relu),
        other => Err(format!(
            "hidden_act `{other}` is not supported (gelu, gelu_new, relu)"
        )),
    }
}

fn opt(json: &Value, keys: &[&str]) -> Result<Option<usize>, String> {
    for key in keys {
        if let Some(v) = json.get(*key) {
            return v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| format!("field `{key}` is not a non-negative integer: {v}"));
        }
    }
    Ok(None)
}

fn req(json: &Value, keys: &[&str]) -> Result<usize, String> {
    opt(json, keys)?.ok_or_else(|| format!("field `{}` is missing", keys[0]))
}
