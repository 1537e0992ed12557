//! NeMo `.nemo` archives: a tar (often gzipped) of `model_config.yaml`,
//! `model_weights.ckpt` (a torch zip state dict with Megatron-LM names),
//! `*_encoder_config.json`, the vocabulary, and sometimes
//! `megatron_checkpoint_version.json`.
//!
//! Archives are read in memory and never unpacked to disk. Even so, any entry with
//! an absolute or `..` path, and any link, makes the whole archive suspect: refused.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Component;

use serde_json::Value;

use super::names::{self, Naming, QkvLayout};
use super::{Checkpoint, Format, LoadError, TokenizerFiles, torchzip, vocab_is_uncased};
use crate::config::ModelConfig;

/// Gzip bombs stop here; the largest real Megatron `.nemo` (345M in f32) is ~1.4 GB.
const MAX_UNPACKED: u64 = 16 << 30;

pub fn read(origin: &str, bytes: Vec<u8>) -> Result<Checkpoint, LoadError> {
    let entries = if bytes.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::read::MultiGzDecoder::new(bytes.as_slice()).take(MAX_UNPACKED);
        read_tar(origin, gz)?
    } else {
        read_tar(origin, bytes.as_slice())?
    };
    drop(bytes);
    from_entries(origin, entries)
}

/// Whether a member is one we need; everything else is skipped unread.
fn wanted(base: &str) -> bool {
    base == "model_config.yaml"
        || base == "model_weights.ckpt"
        || base == "megatron_checkpoint_version.json"
        || base.ends_with("encoder_config.json")
        || base.ends_with("vocab.txt")
}

fn read_tar(origin: &str, reader: impl Read) -> Result<BTreeMap<String, Vec<u8>>, LoadError> {
    let bad =
        |m: String| LoadError::invalid(origin, format!("not a readable .nemo (tar) archive: {m}"));
    let mut archive = tar::Archive::new(reader);
    let mut out = BTreeMap::new();
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let path = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let shown = path.display().to_string();
        for c in path.components() {
            match c {
                Component::RootDir | Component::Prefix(_) => {
                    return Err(LoadError::UnsafeEntry {
                        file: origin.into(),
                        entry: shown,
                        reason: "an absolute path".into(),
                    });
                }
                Component::ParentDir => {
                    return Err(LoadError::UnsafeEntry {
                        file: origin.into(),
                        entry: shown,
                        reason: "a path with `..`".into(),
                    });
                }
                _ => {}
            }
        }
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            return Err(LoadError::UnsafeEntry {
                file: origin.into(),
                entry: shown,
                reason: "a link".into(),
            });
        }
        if !kind.is_file() {
            continue;
        }
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !wanted(&base) {
            continue;
        }
        // No pre-allocation from the header's size: a lying header only costs what the data holds.
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| bad(format!("entry `{shown}`: {e}")))?;
        out.insert(base, data);
    }
    Ok(out)
}

fn from_entries(
    origin: &str,
    mut entries: BTreeMap<String, Vec<u8>>,
) -> Result<Checkpoint, LoadError> {
    let weights_bytes = entries
        .remove("model_weights.ckpt")
        .ok_or_else(|| LoadError::invalid(origin, "archive has no model_weights.ckpt"))?;
    let ckpt_name = format!("{origin}:model_weights.ckpt");
    let tensors = torchzip::read(&weights_bytes).map_err(|m| LoadError::invalid(&ckpt_name, m))?;
    drop(weights_bytes);

    let yaml: Option<Value> = match entries.get("model_config.yaml") {
        Some(b) => Some(
            serde_yaml::from_slice::<serde_yaml::Value>(b)
                .map_err(|e| e.to_string())
                .and_then(|y| serde_json::to_value(y).map_err(|e| e.to_string()))
                .map_err(|m| LoadError::invalid(&format!("{origin}:model_config.yaml"), m))?,
        ),
        None => None,
    };
    let (enc_name, enc_json) = match entries
        .iter()
        .find(|(k, _)| k.ends_with("encoder_config.json"))
    {
        Some((k, b)) => {
            let name = format!("{origin}:{k}");
            let v: Value =
                serde_json::from_slice(b).map_err(|e| LoadError::invalid(&name, e.to_string()))?;
            (name, v)
        }
        None => {
            let y = yaml.as_ref().ok_or_else(|| {
                LoadError::invalid(
                    origin,
                    "archive has neither an *_encoder_config.json nor a model_config.yaml",
                )
            })?;
            let lm = y.get("language_model").cloned().unwrap_or(Value::Null);
            let cfg = [lm.get("config").cloned(), Some(lm), Some(y.clone())]
                .into_iter()
                .flatten()
                .find(|v| v.get("hidden_size").is_some() || v.get("hidden-size").is_some())
                .ok_or_else(|| {
                    LoadError::invalid(
                        &format!("{origin}:model_config.yaml"),
                        "no encoder config (hidden_size) found",
                    )
                })?;
            (format!("{origin}:model_config.yaml"), cfg)
        }
    };

    let word = tensors
        .iter()
        .find(|(k, _)| k.ends_with("embedding.word_embeddings.weight"))
        .map(|(_, t)| t.shape.clone())
        .ok_or_else(|| LoadError::MissingTensor {
            file: ckpt_name.clone(),
            name: "bert_model.language_model.embedding.word_embeddings.weight".into(),
            expected: vec![0, 0],
        })?;
    let vocab_rows = word.first().copied().unwrap_or(0);
    let config = ModelConfig::from_nemo_json(&enc_json, vocab_rows)
        .map_err(|m| LoadError::invalid(&enc_name, m))?;

    let version = match entries.get("megatron_checkpoint_version.json") {
        Some(b) => {
            let name = format!("{origin}:megatron_checkpoint_version.json");
            let v: Value =
                serde_json::from_slice(b).map_err(|e| LoadError::invalid(&name, e.to_string()))?;
            v.get("checkpoint_version")
                .and_then(|x| {
                    x.as_f64()
                        .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
                })
                .ok_or_else(|| {
                    LoadError::invalid(
                        &name,
                        "field `checkpoint_version` is missing or not a number",
                    )
                })?
        }
        None => 0.0,
    };
    let weights = names::canonicalize(
        &ckpt_name,
        tensors,
        Naming::Megatron,
        QkvLayout::from_version(version),
        &config,
    )?;

    let tokenizer = match entries.iter().find(|(k, _)| k.ends_with("vocab.txt")) {
        Some((k, b)) => {
            let vocab = String::from_utf8(b.clone())
                .map_err(|_| LoadError::invalid(&format!("{origin}:{k}"), "not UTF-8"))?;
            let lowercase = yaml
                .as_ref()
                .and_then(|y| y.get("tokenizer"))
                .and_then(|t| t.get("do_lower_case"))
                .and_then(Value::as_bool)
                .unwrap_or_else(|| vocab_is_uncased(&vocab));
            let words = vocab.lines().count();
            if words > config.vocab_size {
                return Err(LoadError::invalid(
                    &format!("{origin}:{k}"),
                    format!(
                        "vocabulary has {words} tokens but the embedding has only {} rows",
                        config.vocab_size
                    ),
                ));
            }
            Some(TokenizerFiles::Vocab { vocab, lowercase })
        }
        None => None,
    };
    Ok(Checkpoint {
        origin: origin.into(),
        format: Format::Nemo,
        config,
        weights,
        tokenizer,
        defaults: Default::default(),
    })
}
