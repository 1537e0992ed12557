//! Hugging Face checkpoint directories: `config.json` plus `model.safetensors` or
//! `pytorch_model.bin` (either may be sharded with an `.index.json`), and the
//! tokenizer files (`vocab.txt`, `tokenizer.json`, `tokenizer_config.json`).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::names::{self, Naming, QkvLayout};
use super::tensor::RawTensor;
use super::{
    Checkpoint, Format, LoadError, TokenizerFiles, safetensors, torchzip, vocab_is_uncased,
};
use crate::config::ModelConfig;

const SMALL_FILES: [&str; 6] = [
    "config.json",
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
];

pub fn open_dir(dir: &Path) -> Result<Checkpoint, LoadError> {
    let origin = dir.display().to_string();
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|source| LoadError::Io {
            file: path.display().to_string(),
            source,
        })
    };
    if !dir.join("config.json").is_file() {
        return Err(LoadError::invalid(
            &origin,
            "directory has no config.json: expected a Hugging Face checkpoint directory",
        ));
    }
    let mut files = BTreeMap::new();
    for name in SMALL_FILES {
        if dir.join(name).is_file() {
            files.insert(name.to_string(), read(name)?);
        }
    }
    for name in weight_files(&origin, &files, |n| dir.join(n).is_file())? {
        files.insert(name.clone(), read(&name)?);
    }
    from_files(&origin, files)
}

/// The weight files a directory's index (or the single-file convention) names.
fn weight_files(
    origin: &str,
    files: &BTreeMap<String, Vec<u8>>,
    exists: impl Fn(&str) -> bool,
) -> Result<Vec<String>, LoadError> {
    for (index, single) in [
        ("model.safetensors.index.json", "model.safetensors"),
        ("pytorch_model.bin.index.json", "pytorch_model.bin"),
    ] {
        if let Some(bytes) = files.get(index) {
            let file = format!("{origin}/{index}");
            let json: Value = serde_json::from_slice(bytes)
                .map_err(|e| LoadError::invalid(&file, e.to_string()))?;
            let map = json
                .get("weight_map")
                .and_then(Value::as_object)
                .ok_or_else(|| LoadError::invalid(&file, "field `weight_map` is missing"))?;
            let mut shards: Vec<String> = map
                .values()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            shards.sort();
            shards.dedup();
            if let Some(bad) = shards
                .iter()
                .find(|s| s.contains('/') || s.contains('\\') || s.starts_with('.'))
            {
                return Err(LoadError::invalid(
                    &file,
                    format!("shard name `{bad}` is not a plain file name"),
                ));
            }
            return Ok(shards);
        }
        if exists(single) {
            return Ok(vec![single.to_string()]);
        }
    }
    Err(LoadError::invalid(
        origin,
        "no weights found: expected model.safetensors or pytorch_model.bin",
    ))
}

pub fn from_files(
    origin: &str,
    mut files: BTreeMap<String, Vec<u8>>,
) -> Result<Checkpoint, LoadError> {
    let config_file = format!("{origin}/config.json");
    let config_bytes = files
        .get("config.json")
        .ok_or_else(|| LoadError::invalid(origin, "config.json is missing"))?;
    let config_json: Value = serde_json::from_slice(config_bytes)
        .map_err(|e| LoadError::invalid(&config_file, e.to_string()))?;
    let config =
        ModelConfig::from_hf_json(&config_json).map_err(|m| LoadError::invalid(&config_file, m))?;

    let present: Vec<String> = files.keys().cloned().collect();
    let mut tensors: BTreeMap<String, RawTensor> = BTreeMap::new();
    for name in weight_files(origin, &files, |n| present.iter().any(|p| p == n))? {
        let file = format!("{origin}/{name}");
        let bytes = files
            .remove(&name)
            .ok_or_else(|| LoadError::invalid(&file, "weight file is missing"))?;
        let part = if name.ends_with(".safetensors") {
            safetensors::read(bytes).map(|f| f.tensors)
        } else {
            torchzip::read(&bytes)
        }
        .map_err(|m| LoadError::invalid(&file, m))?;
        tensors.extend(part);
    }
    let weights =
        names::canonicalize(origin, tensors, Naming::HuggingFace, QkvLayout::V0, &config)?;

    let tokenizer = if let Some(json) = files.get("tokenizer.json") {
        Some(TokenizerFiles::Json(
            String::from_utf8(json.clone()).map_err(|_| {
                LoadError::invalid(&format!("{origin}/tokenizer.json"), "not UTF-8")
            })?,
        ))
    } else if let Some(vocab) = files.get("vocab.txt") {
        let vocab = String::from_utf8(vocab.clone())
            .map_err(|_| LoadError::invalid(&format!("{origin}/vocab.txt"), "not UTF-8"))?;
        let lowercase = files
            .get("tokenizer_config.json")
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
            .and_then(|v| v.get("do_lower_case").and_then(Value::as_bool))
            .unwrap_or_else(|| vocab_is_uncased(&vocab));
        Some(TokenizerFiles::Vocab { vocab, lowercase })
    } else {
        None
    };
    Ok(Checkpoint {
        origin: origin.into(),
        format: Format::HuggingFace,
        config,
        weights,
        tokenizer,
        defaults: Default::default(),
    })
}
