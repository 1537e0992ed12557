//! The key remap tables: checkpoint tensor names (Hugging Face BERT / Megatron-BERT,
//! Megatron-LM as saved by NeMo) to megaqa's canonical names and back, with shape
//! checks that name the tensor as the file spells it.
//!
//! Canonical names are the network's own parameter paths (`params::canonical`), in
//! PyTorch layout (Linear weights `[out, in]`): `embeddings.{word,position,token_type}`,
//! `embeddings.ln.{weight,bias}` (post-LN), `layers.N.{ln1,qkv,attn_out,ln2,ffn_in,
//! ffn_out}.{weight,bias}` where `qkv` is `[3*hidden, hidden]` with the Q rows, then K,
//! then V, `final_ln.{weight,bias}` (pre-LN), `qa.{weight,bias}`. Which of them a
//! config has, and their shapes, come from the network (`params::checkpoint_shapes`);
//! each family's spelling is written once, as a table read both ways.

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

/// One line of a family's table: a canonical name and the file's spelling of it, `#`
/// standing for a layer number. Both take the same suffix (`.weight`, `.bias`; none
/// after an embedding table, whose file name ends in `.weight` already).
struct Row {
    canon: &'static str,
    file: &'static str,
    role: Role,
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Plain,
    /// HF's separate Q (0), K (1) or V (2) projection, one third of `qkv`.
    QkvPart(usize),
    /// Megatron's fused QKV, to be reordered.
    FusedQkv,
}

const fn row(canon: &'static str, file: &'static str) -> Row {
    Row {
        canon,
        file,
        role: Role::Plain,
    }
}

const fn role(canon: &'static str, file: &'static str, role: Role) -> Row {
    Row { canon, file, role }
}

/// Hugging Face `BertForQuestionAnswering` / `MegatronBertForQuestionAnswering`, after
/// the optional `bert.` prefix, with `gamma`/`beta` read as `weight`/`bias`.
#[rustfmt::skip]
const HF: &[Row] = &[
    row("embeddings.word", "embeddings.word_embeddings.weight"),
    row("embeddings.position", "embeddings.position_embeddings.weight"),
    row("embeddings.token_type", "embeddings.token_type_embeddings.weight"),
    role("layers.#.qkv", "encoder.layer.#.attention.self.query", Role::QkvPart(0)),
    role("layers.#.qkv", "encoder.layer.#.attention.self.key", Role::QkvPart(1)),
    role("layers.#.qkv", "encoder.layer.#.attention.self.value", Role::QkvPart(2)),
    row("layers.#.attn_out", "encoder.layer.#.attention.output.dense"),
    row("layers.#.ffn_in", "encoder.layer.#.intermediate.dense"),
    row("layers.#.ffn_out", "encoder.layer.#.output.dense"),
    row("qa", "qa_outputs"),
];

/// HF's LayerNorms of Megatron-BERT (pre-LN).
#[rustfmt::skip]
const HF_PRE_LN: &[Row] = &[
    row("layers.#.ln1", "encoder.layer.#.attention.ln"),
    row("layers.#.ln2", "encoder.layer.#.ln"),
    row("final_ln", "encoder.ln"),
];

/// HF's LayerNorms of BERT (post-LN).
#[rustfmt::skip]
const HF_POST_LN: &[Row] = &[
    row("embeddings.ln", "embeddings.LayerNorm"),
    row("layers.#.ln1", "encoder.layer.#.attention.output.LayerNorm"),
    row("layers.#.ln2", "encoder.layer.#.output.LayerNorm"),
];

/// Megatron-LM as NeMo saves it (whatever a file puts before `language_model.` is
/// read as `bert_model.`), in its newer spelling: older files' `transformer.`, `attention.` and
/// `classifier.layer0.` are read as `encoder.`, `self_attention.` and
/// `classifier.mlp.layer0.`.
#[rustfmt::skip]
const MEGATRON: &[Row] = &[
    row("embeddings.word", "bert_model.language_model.embedding.word_embeddings.weight"),
    row("embeddings.position", "bert_model.language_model.embedding.position_embeddings.weight"),
    row("embeddings.token_type", "bert_model.language_model.embedding.tokentype_embeddings.weight"),
    row("layers.#.ln1", "bert_model.language_model.encoder.layers.#.input_layernorm"),
    role("layers.#.qkv", "bert_model.language_model.encoder.layers.#.self_attention.query_key_value", Role::FusedQkv),
    row("layers.#.attn_out", "bert_model.language_model.encoder.layers.#.self_attention.dense"),
    row("layers.#.ln2", "bert_model.language_model.encoder.layers.#.post_attention_layernorm"),
    row("layers.#.ffn_in", "bert_model.language_model.encoder.layers.#.mlp.dense_h_to_4h"),
    row("layers.#.ffn_out", "bert_model.language_model.encoder.layers.#.mlp.dense_4h_to_h"),
    row("final_ln", "bert_model.language_model.encoder.final_layernorm"),
    row("qa", "classifier.mlp.layer0"),
];

/// `name` read against `pattern`: the layer number where the pattern has `#`, and
/// the parameter suffix that follows the pattern (`.weight`, `.bias` or nothing);
/// `None` when anything else follows.
fn read<'n>(pattern: &str, name: &'n str) -> Option<(Option<usize>, &'n str)> {
    let (layer, rest) = match pattern.split_once('#') {
        None => (None, name.strip_prefix(pattern)?),
        Some((before, after)) => {
            let n = name.strip_prefix(before)?;
            let digits = n.len() - n.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            (
                Some(n[..digits].parse().ok()?),
                n[digits..].strip_prefix(after)?,
            )
        }
    };
    matches!(rest, "" | ".weight" | ".bias").then_some((layer, rest))
}

/// `pattern` with its `#` replaced by `layer`.
fn spell(pattern: &str, layer: Option<usize>) -> String {
    match layer {
        Some(l) => pattern.replace('#', &l.to_string()),
        None => pattern.to_string(),
    }
}

/// What a tensor of the file becomes.
enum Target {
    /// A canonical tensor as is.
    Canon(String),
    /// One of HF's separate Q (0), K (1) or V (2) projections: a third of the
    /// canonical `qkv` tensor named.
    QkvPart { canon: String, part: usize },
    /// Megatron's fused QKV, to be reordered.
    FusedQkv(String),
    /// Known but unused (pooler, pre-training heads, position-id buffers).
    Ignore,
}

/// One family's table, and the prefix its files put before the table's names.
struct Table {
    naming: Naming,
    rows: Vec<&'static Row>,
    prefix: &'static str,
}

impl Table {
    fn new(naming: Naming, cfg: &ModelConfig, names: &[&String]) -> Self {
        let (rows, prefix): (Vec<&[Row]>, _) = match naming {
            Naming::Canonical => (vec![], ""),
            Naming::HuggingFace => (
                vec![
                    HF,
                    if cfg.pre_layer_norm {
                        HF_PRE_LN
                    } else {
                        HF_POST_LN
                    },
                ],
                // `BertForQuestionAnswering` writes `bert.`; a bare `BertModel` does not.
                if names.iter().any(|n| n.starts_with("bert.")) {
                    "bert."
                } else {
                    ""
                },
            ),
            Naming::Megatron => (vec![MEGATRON], ""),
        };
        Table {
            naming,
            rows: rows.into_iter().flatten().collect(),
            prefix,
        }
    }

    /// The file's name in the table's spelling; `None` for what the network does
    /// not use.
    fn spelling(&self, name: &str) -> Option<String> {
        match self.naming {
            Naming::Canonical => Some(name.to_string()),
            Naming::HuggingFace => {
                let n = name.strip_prefix("bert.").unwrap_or(name);
                if n.starts_with("pooler.") || n.starts_with("cls.") || n.ends_with("position_ids")
                {
                    return None;
                }
                let n = match n.rsplit_once('.') {
                    Some((m, "gamma")) => format!("{m}.weight"),
                    Some((m, "beta")) => format!("{m}.bias"),
                    _ => n.to_string(),
                };
                Some(n)
            }
            Naming::Megatron => {
                let n = match name.split_once("language_model.") {
                    Some((_, rest)) => format!("bert_model.language_model.{rest}"),
                    None => name.to_string(),
                };
                if ["pooler.", "lm_head.", "binary_head."]
                    .iter()
                    .any(|p| n.contains(p))
                    || n.ends_with("position_ids")
                {
                    return None;
                }
                Some(
                    n.replacen("classifier.layer0.", "classifier.mlp.layer0.", 1)
                        .replacen(
                            ".language_model.transformer.",
                            ".language_model.encoder.",
                            1,
                        )
                        .replacen(".attention.", ".self_attention.", 1),
                )
            }
        }
    }

    /// What the file's tensor `name` becomes; `None` if the table does not know it.
    fn target(&self, name: &str) -> Option<Target> {
        let Some(n) = self.spelling(name) else {
            return Some(Target::Ignore);
        };
        if self.naming == Naming::Canonical {
            return Some(Target::Canon(n));
        }
        self.rows.iter().find_map(|r| {
            let (layer, rest) = read(r.file, &n)?;
            let canon = spell(r.canon, layer) + rest;
            Some(match r.role {
                Role::Plain => Target::Canon(canon),
                Role::FusedQkv => Target::FusedQkv(canon),
                Role::QkvPart(part) => Target::QkvPart { canon, part },
            })
        })
    }

    /// How the file names a canonical tensor (HF's `qkv` parts by `part`), for
    /// messages about missing tensors.
    fn file_name(&self, canon: &str, part: usize) -> String {
        self.rows
            .iter()
            .filter(|r| !matches!(r.role, Role::QkvPart(p) if p != part))
            .find_map(|r| {
                let (layer, rest) = read(r.canon, canon)?;
                Some(format!("{}{}{rest}", self.prefix, spell(r.file, layer)))
            })
            .unwrap_or_else(|| canon.to_string())
    }
}

/// Remaps `tensors` to canonical names, checking each shape against the network
/// `cfg` describes. Reports missing tensors (the QA head excepted: see `has_qa_head`).
pub fn canonicalize(
    file: &str,
    tensors: BTreeMap<String, RawTensor>,
    naming: Naming,
    qkv: QkvLayout,
    cfg: &ModelConfig,
) -> Result<Weights, LoadError> {
    let shapes = crate::params::checkpoint_shapes(cfg);
    let table = Table::new(naming, cfg, &tensors.keys().collect::<Vec<_>>());
    let mut out = Weights::new();
    // HF's separate projections, gathered per canonical `qkv` tensor as [q, k, v].
    let mut parts: BTreeMap<String, [Option<NamedTensor>; 3]> = BTreeMap::new();
    for (name, tensor) in tensors {
        let unexpected = || LoadError::UnexpectedTensor {
            file: file.into(),
            name: name.clone(),
            shape: tensor.shape.clone(),
        };
        let Some(target) = table.target(&name) else {
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
        let expected = |canon: &str| shapes.get(canon).cloned().ok_or_else(unexpected);
        match target {
            Target::Ignore => {}
            Target::Canon(canon) => {
                check(&canon, expected(&canon)?)?;
                out.insert(canon, tensor);
            }
            Target::FusedQkv(canon) => {
                check(&canon, expected(&canon)?)?;
                out.insert(canon, reorder_qkv(&tensor, qkv, cfg));
            }
            Target::QkvPart { canon, part } => {
                // A third of the fused projection's rows.
                let mut third = expected(&canon)?;
                third[0] /= 3;
                check("", third)?;
                parts.entry(canon).or_default()[part] = Some((name.clone(), tensor));
            }
        }
    }
    for (canon, [q, k, v]) in parts {
        let mut shape = shapes[&canon].clone();
        let mut values = Vec::with_capacity(shape.iter().product());
        for (part, p) in [q, k, v].into_iter().enumerate() {
            let Some((_, t)) = p else {
                shape[0] /= 3;
                return Err(LoadError::MissingTensor {
                    file: file.into(),
                    name: table.file_name(&canon, part),
                    expected: shape,
                });
            };
            values.extend(t.to_f32().unwrap_or_default());
        }
        out.insert(canon, RawTensor::from_f32(shape, &values));
    }
    for (canon, expected) in shapes {
        if out.contains_key(&canon) {
            continue;
        }
        // The QA head may be missing as a whole (a pretrained encoder), not in part.
        let half_a_head = canon.starts_with("qa.") && out.keys().any(|k| k.starts_with("qa."));
        if !canon.starts_with("qa.") || half_a_head {
            return Err(LoadError::MissingTensor {
                file: file.into(),
                name: table.file_name(&canon, 0),
                expected,
            });
        }
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pre_layer_norm: bool) -> ModelConfig {
        ModelConfig {
            num_layers: 3,
            pre_layer_norm,
            ..ModelConfig::megatron_345m()
        }
    }

    /// Every parameter of the network has a spelling in each family's table, and the
    /// table reads that spelling back as the same parameter: the two directions are
    /// one table, and no parameter is left to a guess.
    #[test]
    fn each_table_reads_back_what_it_writes_for_every_parameter() {
        let cases = [
            (Naming::HuggingFace, true, "bert."),
            (Naming::HuggingFace, false, "bert."),
            (Naming::HuggingFace, false, ""),
            (Naming::Megatron, true, ""),
        ];
        for (naming, pre_ln, prefix) in cases {
            let cfg = config(pre_ln);
            let seen = format!("{prefix}embeddings.word_embeddings.weight");
            let table = Table::new(naming, &cfg, &[&seen]);
            let shapes = crate::params::checkpoint_shapes(&cfg);
            // Three embedding tables, one LayerNorm (on the embeddings or at the end),
            // twelve tensors a layer, the span head.
            assert_eq!(shapes.len(), 3 + 2 + 12 * 3 + 2);
            for canon in shapes.keys() {
                let file = table.file_name(canon, 0);
                assert!(
                    file.starts_with(prefix) && file != *canon,
                    "{naming:?}: {canon} -> {file}"
                );
                let back = match table.target(&file) {
                    Some(Target::Canon(c) | Target::FusedQkv(c)) => c,
                    Some(Target::QkvPart { canon: c, part: 0 }) => c,
                    _ => panic!("{naming:?}: {file} is not read back"),
                };
                assert_eq!(&back, canon, "{naming:?}: {file}");
            }
        }
    }

    #[test]
    fn older_megatron_spellings_and_hf_gamma_beta_read_as_the_current_ones() {
        let cfg = config(true);
        let megatron = Table::new(Naming::Megatron, &cfg, &[]);
        let canon = |t: Option<Target>| match t {
            Some(Target::Canon(c) | Target::FusedQkv(c)) => c,
            _ => String::new(),
        };
        assert_eq!(
            canon(
                megatron.target("model.language_model.transformer.layers.2.attention.dense.bias")
            ),
            "layers.2.attn_out.bias"
        );
        assert_eq!(
            canon(megatron.target("classifier.layer0.weight")),
            "qa.weight"
        );
        assert!(matches!(
            megatron.target("bert_model.lm_head.dense.weight"),
            Some(Target::Ignore)
        ));
        let hf = Table::new(Naming::HuggingFace, &config(false), &[]);
        assert_eq!(
            canon(hf.target("bert.encoder.layer.1.output.LayerNorm.gamma")),
            "layers.1.ln2.weight"
        );
        assert!(
            hf.target("bert.encoder.layer.1.output.mystery.weight")
                .is_none()
        );
        // A pre-LN name is not a post-LN network's.
        assert!(hf.target("bert.encoder.ln.weight").is_none());
    }
}
