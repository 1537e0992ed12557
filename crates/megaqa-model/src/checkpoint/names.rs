//! The key remap table: checkpoint tensor names (Hugging Face BERT / Megatron-BERT,
//! Megatron-LM as saved by NeMo) to megaqa's canonical names, with shape checks
//! that name the tensor as the file spells it.
//!
//! Canonical names (PyTorch layout, Linear weights are `[out, in]`):
//! `embeddings.{word,position,token_type}`, `embeddings.ln.{weight,bias}` (post-LN),
//! `layers.N.{ln1,qkv,attn_out,ln2,ffn_in,ffn_out}.{weight,bias}` where `qkv` is
//! `[3*hidden, hidden]` with the Q rows, then K, then V, `final_ln.{weight,bias}` (pre-LN),
//! `qa.{weight,bias}`.

use std::collections::BTreeMap;

use super::error::LoadError;
use super::tensor::RawTensor;
use crate::config::ModelConfig;

/// How the file names its tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    HuggingFace,
    Megatron,
    Canonical,
}

/// Row order of Megatron's fused `query_key_value` weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QkvLayout {
    /// Checkpoint version 0 (the NGC QA release): Q rows, then K rows, then V rows.
    V0,
    /// Version 1.0: rows ordered as `[heads, head_dim, 3]`.
    V1,
    /// Version 2.0 and later: rows ordered as `[heads, 3, head_dim]`.
    V2,
}

impl QkvLayout {
    pub fn from_version(v: f64) -> Self {
        if v >= 2.0 {
            QkvLayout::V2
        } else if v >= 1.0 {
            QkvLayout::V1
        } else {
            QkvLayout::V0
        }
    }
}

/// Tensors by canonical name.
pub type Weights = BTreeMap<String, RawTensor>;

/// A tensor with the name the file gives it.
type NamedTensor = (String, RawTensor);

pub fn detect_naming(names: &[&String]) -> Naming {
    if names.iter().any(|n| n.contains("language_model.")) {
        Naming::Megatron
    } else if names
        .iter()
        .any(|n| n.starts_with("layers.") || n.starts_with("embeddings.word"))
    {
        Naming::Canonical
    } else {
        Naming::HuggingFace
    }
}

/// The shape every canonical tensor must have under `cfg`.
pub fn expected_shape(canon: &str, cfg: &ModelConfig) -> Option<Vec<usize>> {
    let h = cfg.hidden_size;
    let (module, param) = canon.rsplit_once('.')?;
    let module = module
        .split('.')
        .skip_while(|p| *p == "layers" || p.parse::<usize>().is_ok())
        .collect::<Vec<_>>();
    Some(match (module.join(".").as_str(), param) {
        ("embeddings", "word") => vec![cfg.vocab_size, h],
        ("embeddings", "position") => vec![cfg.max_position_embeddings, h],
        ("embeddings", "token_type") => vec![cfg.type_vocab_size, h],
        ("embeddings.ln" | "ln1" | "ln2" | "final_ln", "weight" | "bias") => vec![h],
        ("qkv", "weight") => vec![3 * h, h],
        ("qkv", "bias") => vec![3 * h],
        ("attn_out", "weight") => vec![h, h],
        ("attn_out" | "ffn_out", "bias") => vec![h],
        ("ffn_in", "weight") => vec![cfg.intermediate_size, h],
        ("ffn_in", "bias") => vec![cfg.intermediate_size],
        ("ffn_out", "weight") => vec![h, cfg.intermediate_size],
        ("qa", "weight") => vec![2, h],
        ("qa", "bias") => vec![2],
        _ => return None,
    })
}

/// All canonical names the network needs, QA head last.
pub fn required_names(cfg: &ModelConfig) -> Vec<String> {
    let mut names: Vec<String> = [
        "embeddings.word",
        "embeddings.position",
        "embeddings.token_type",
    ]
    .map(String::from)
    .to_vec();
    if !cfg.pre_layer_norm {
        names.extend(["embeddings.ln.weight".into(), "embeddings.ln.bias".into()]);
    }
    for i in 0..cfg.num_layers {
        for m in ["ln1", "qkv", "attn_out", "ln2", "ffn_in", "ffn_out"] {
            for p in ["weight", "bias"] {
                names.push(format!("layers.{i}.{m}.{p}"));
            }
        }
    }
    if cfg.pre_layer_norm {
        names.extend(["final_ln.weight".into(), "final_ln.bias".into()]);
    }
    names.extend(["qa.weight".into(), "qa.bias".into()]);
    names
}

/// What a tensor of the file becomes.
enum Target {
    /// A canonical tensor as is.
    Canon(String),
    /// One of HF's separate Q/K/V projections of layer N (0, 1, 2) for `weight`/`bias`.
    QkvPart {
        layer: usize,
        part: usize,
        param: String,
    },
    /// Megatron's fused QKV, to be reordered.
    FusedQkv(String),
    /// Known but unused (pooler, pre-training heads, position-id buffers).
    Ignore,
}

fn hf_target(name: &str, cfg: &ModelConfig) -> Option<Target> {
    let n = name.strip_prefix("bert.").unwrap_or(name);
    if n.starts_with("pooler.") || n.starts_with("cls.") || n.ends_with("position_ids") {
        return Some(Target::Ignore);
    }
    let (module, param) = n.rsplit_once('.')?;
    let param = match param {
        "gamma" => "weight",
        "beta" => "bias",
        p => p,
    };
    let canon = |m: &str| Some(Target::Canon(format!("{m}.{param}")));
    match module {
        "embeddings.word_embeddings" if param == "weight" => {
            return Some(Target::Canon("embeddings.word".into()));
        }
        "embeddings.position_embeddings" if param == "weight" => {
            return Some(Target::Canon("embeddings.position".into()));
        }
        "embeddings.token_type_embeddings" if param == "weight" => {
            return Some(Target::Canon("embeddings.token_type".into()));
        }
        "embeddings.LayerNorm" if !cfg.pre_layer_norm => return canon("embeddings.ln"),
        "encoder.ln" if cfg.pre_layer_norm => return canon("final_ln"),
        "qa_outputs" => return canon("qa"),
        _ => {}
    }
    let rest = module.strip_prefix("encoder.layer.")?;
    let (layer, sub) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let l = |m: &str| canon(&format!("layers.{layer}.{m}"));
    match (sub, cfg.pre_layer_norm) {
        ("attention.self.query", _) => Some(Target::QkvPart {
            layer,
            part: 0,
            param: param.into(),
        }),
        ("attention.self.key", _) => Some(Target::QkvPart {
            layer,
            part: 1,
            param: param.into(),
        }),
        ("attention.self.value", _) => Some(Target::QkvPart {
            layer,
            part: 2,
            param: param.into(),
        }),
        ("attention.output.dense", _) => l("attn_out"),
        ("intermediate.dense", _) => l("ffn_in"),
        ("output.dense", _) => l("ffn_out"),
        ("attention.ln", true) => l("ln1"),
        ("ln", true) => l("ln2"),
        ("attention.output.LayerNorm", false) => l("ln1"),
        ("output.LayerNorm", false) => l("ln2"),
        _ => None,
    }
}

fn megatron_target(name: &str) -> Option<Target> {
    if let Some(rest) = name
        .strip_prefix("classifier.mlp.layer0.")
        .or_else(|| name.strip_prefix("classifier.layer0."))
    {
        return Some(Target::Canon(format!("qa.{rest}")));
    }
    let Some((_, n)) = name.split_once("language_model.") else {
        // bert_model.lm_head / binary_head: pre-training heads.
        return (name.contains("lm_head.") || name.contains("binary_head."))
            .then_some(Target::Ignore);
    };
    if n.starts_with("pooler.") || n.ends_with("position_ids") {
        return Some(Target::Ignore);
    }
    let (module, param) = n.rsplit_once('.')?;
    match module {
        "embedding.word_embeddings" if param == "weight" => {
            return Some(Target::Canon("embeddings.word".into()));
        }
        "embedding.position_embeddings" if param == "weight" => {
            return Some(Target::Canon("embeddings.position".into()));
        }
        "embedding.tokentype_embeddings" if param == "weight" => {
            return Some(Target::Canon("embeddings.token_type".into()));
        }
        "transformer.final_layernorm" | "encoder.final_layernorm" => {
            return Some(Target::Canon(format!("final_ln.{param}")));
        }
        _ => {}
    }
    let rest = module
        .strip_prefix("transformer.layers.")
        .or_else(|| module.strip_prefix("encoder.layers."))?;
    let (layer, sub) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let sub = sub
        .strip_prefix("self_attention.")
        .map(|s| format!("attention.{s}"))
        .unwrap_or(sub.to_owned());
    let m = match sub.as_str() {
        "input_layernorm" => "ln1",
        "attention.query_key_value" => {
            return Some(Target::FusedQkv(format!("layers.{layer}.qkv.{param}")));
        }
        "attention.dense" => "attn_out",
        "post_attention_layernorm" => "ln2",
        "mlp.dense_h_to_4h" => "ffn_in",
        "mlp.dense_4h_to_h" => "ffn_out",
        _ => return None,
    };
    Some(Target::Canon(format!("layers.{layer}.{m}.{param}")))
}

/// Remaps `tensors` to canonical names, checking each shape against `cfg`.
/// Reports missing tensors (the QA head excepted: see `has_qa_head`).
pub fn canonicalize(
    file: &str,
    tensors: BTreeMap<String, RawTensor>,
    naming: Naming,
    qkv: QkvLayout,
    cfg: &ModelConfig,
) -> Result<Weights, LoadError> {
    let mut out = Weights::new();
    // HF's separate projections, gathered per (layer, param) as [q, k, v].
    let mut parts: BTreeMap<(usize, String), [Option<NamedTensor>; 3]> = BTreeMap::new();
    for (name, tensor) in tensors {
        let target = match naming {
            Naming::HuggingFace => hf_target(&name, cfg),
            Naming::Megatron => megatron_target(&name),
            Naming::Canonical => Some(Target::Canon(name.clone())),
        };
        let unexpected = || LoadError::UnexpectedTensor {
            file: file.into(),
            name: name.clone(),
            shape: tensor.shape.clone(),
        };
        let Some(target) = target else {
            return Err(unexpected());
        };
        let check = |canon: &str, expected: Vec<usize>| -> Result<(), LoadError> {
            if !tensor.is_float() {
                return Err(LoadError::invalid(
                    file,
                    format!(
                        "tensor `{name}` has dtype {:?}, expected a float type",
                        tensor.dtype
                    ),
                ));
            }
            let ok = if canon == "embeddings.word" && naming == Naming::Megatron {
                // Megatron pads the vocabulary (to a multiple of 128); the config takes its size from here.
                tensor.shape.len() == 2
                    && tensor.shape[1] == expected[1]
                    && tensor.shape[0] >= expected[0]
            } else {
                tensor.shape == expected
            };
            if ok {
                Ok(())
            } else {
                Err(LoadError::ShapeMismatch {
                    file: file.into(),
                    name: name.clone(),
                    found: tensor.shape.clone(),
                    expected,
                })
            }
        };
        match target {
            Target::Ignore => {}
            Target::Canon(canon) => {
                let expected = expected_shape(&canon, cfg)
                    .filter(|_| in_range(&canon, cfg))
                    .ok_or_else(unexpected)?;
                check(&canon, expected)?;
                out.insert(canon, tensor);
            }
            Target::FusedQkv(canon) => {
                let expected = expected_shape(&canon, cfg)
                    .filter(|_| in_range(&canon, cfg))
                    .ok_or_else(unexpected)?;
                check(&canon, expected)?;
                out.insert(canon, reorder_qkv(&tensor, qkv, cfg));
            }
            Target::QkvPart { layer, part, param } => {
                if layer >= cfg.num_layers || !matches!(param.as_str(), "weight" | "bias") {
                    return Err(unexpected());
                }
                let h = cfg.hidden_size;
                check(
                    "",
                    if param == "weight" {
                        vec![h, h]
                    } else {
                        vec![h]
                    },
                )?;
                parts.entry((layer, param)).or_default()[part] = Some((name.clone(), tensor));
            }
        }
    }
    for ((layer, param), [q, k, v]) in parts {
        let h = cfg.hidden_size;
        // Name a missing projection the way its present siblings are spelled.
        let sibling = [&q, &k, &v]
            .into_iter()
            .flatten()
            .next()
            .map(|(n, _)| n.clone())
            .unwrap_or_default();
        let mut values = Vec::with_capacity(3 * h * if param == "weight" { h } else { 1 });
        for (i, p) in [q, k, v].into_iter().enumerate() {
            let Some((_, t)) = p else {
                let which = ["query", "key", "value"][i];
                let name = ["query", "key", "value"]
                    .iter()
                    .find_map(|p| {
                        sibling
                            .contains(&format!(".{p}."))
                            .then(|| sibling.replace(&format!(".{p}."), &format!(".{which}.")))
                    })
                    .unwrap_or_else(|| {
                        format!("encoder.layer.{layer}.attention.self.{which}.{param}")
                    });
                return Err(LoadError::MissingTensor {
                    file: file.into(),
                    name,
                    expected: if param == "weight" {
                        vec![h, h]
                    } else {
                        vec![h]
                    },
                });
            };
            values.extend(t.to_f32().unwrap_or_default());
        }
        let shape = if param == "weight" {
            vec![3 * h, h]
        } else {
            vec![3 * h]
        };
        out.insert(
            format!("layers.{layer}.qkv.{param}"),
            RawTensor::from_f32(shape, &values),
        );
    }
    for canon in required_names(cfg) {
        if !out.contains_key(&canon) && !canon.starts_with("qa.") {
            let expected = expected_shape(&canon, cfg).unwrap_or_default();
            return Err(LoadError::MissingTensor {
                file: file.into(),
                name: source_name(&canon, naming, cfg),
                expected,
            });
        }
    }
    let qa = ["qa.weight", "qa.bias"].map(|n| out.contains_key(n));
    if qa[0] != qa[1] {
        let missing = if qa[0] { "qa.bias" } else { "qa.weight" };
        return Err(LoadError::MissingTensor {
            file: file.into(),
            name: source_name(missing, naming, cfg),
            expected: expected_shape(missing, cfg).unwrap_or_default(),
        });
    }
    Ok(out)
}

fn in_range(canon: &str, cfg: &ModelConfig) -> bool {
    match canon
        .strip_prefix("layers.")
        .and_then(|r| r.split('.').next())
        .map(str::parse::<usize>)
    {
        Some(Ok(layer)) => layer < cfg.num_layers,
        Some(Err(_)) => false,
        None => true,
    }
}

/// Megatron's fused QKV rows reordered to the Q-then-K-then-V block layout.
fn reorder_qkv(t: &RawTensor, layout: QkvLayout, cfg: &ModelConfig) -> RawTensor {
    let values = t.to_f32().unwrap_or_default();
    if layout == QkvLayout::V0 {
        return RawTensor::from_f32(t.shape.clone(), &values);
    }
    let (heads, hd) = (cfg.num_heads, cfg.head_dim());
    let cols = if t.shape.len() == 2 { t.shape[1] } else { 1 };
    let mut out = vec![0f32; values.len()];
    for head in 0..heads {
        for j in 0..3 {
            for d in 0..hd {
                let src = match layout {
                    QkvLayout::V1 => head * hd * 3 + d * 3 + j,
                    _ => head * 3 * hd + j * hd + d,
                };
                let dst = j * heads * hd + head * hd + d;
                out[dst * cols..(dst + 1) * cols]
                    .copy_from_slice(&values[src * cols..(src + 1) * cols]);
            }
        }
    }
    RawTensor::from_f32(t.shape.clone(), &out)
}

/// How the file would name a canonical tensor, for messages about missing tensors.
pub fn source_name(canon: &str, naming: Naming, cfg: &ModelConfig) -> String {
    let Some((module, param)) = canon.rsplit_once('.') else {
        return canon.into();
    };
    match naming {
        Naming::Canonical => canon.into(),
        Naming::HuggingFace => {
            let name = match module {
                "embeddings" => return format!("bert.embeddings.{param}_embeddings.weight"),
                "embeddings.ln" => "bert.embeddings.LayerNorm".to_string(),
                "final_ln" => "bert.encoder.ln".to_string(),
                "qa" => "qa_outputs".to_string(),
                m => {
                    let (layer, m) = m
                        .strip_prefix("layers.")
                        .and_then(|r| r.split_once('.'))
                        .unwrap_or(("?", m));
                    let sub = match (m, cfg.pre_layer_norm) {
                        ("ln1", true) => "attention.ln",
                        ("ln2", true) => "ln",
                        ("ln1", false) => "attention.output.LayerNorm",
                        ("ln2", false) => "output.LayerNorm",
                        ("attn_out", _) => "attention.output.dense",
                        ("ffn_in", _) => "intermediate.dense",
                        ("ffn_out", _) => "output.dense",
                        (other, _) => other,
                    };
                    format!("bert.encoder.layer.{layer}.{sub}")
                }
            };
            format!("{name}.{param}")
        }
        Naming::Megatron => {
            let lm = "bert_model.language_model";
            match module {
                "embeddings" => {
                    let p = if param == "token_type" {
                        "tokentype"
                    } else {
                        param
                    };
                    format!("{lm}.embedding.{p}_embeddings.weight")
                }
                "final_ln" => format!("{lm}.encoder.final_layernorm.{param}"),
                "qa" => format!("classifier.mlp.layer0.{param}"),
                m => {
                    let (layer, m) = m
                        .strip_prefix("layers.")
                        .and_then(|r| r.split_once('.'))
                        .unwrap_or(("?", m));
                    let sub = match m {
                        "ln1" => "input_layernorm",
                        "qkv" => "self_attention.query_key_value",
                        "attn_out" => "self_attention.dense",
                        "ln2" => "post_attention_layernorm",
                        "ffn_in" => "mlp.dense_h_to_4h",
                        "ffn_out" => "mlp.dense_4h_to_h",
                        other => other,
                    };
                    format!("{lm}.encoder.layers.{layer}.{sub}.{param}")
                }
            }
        }
    }
}
