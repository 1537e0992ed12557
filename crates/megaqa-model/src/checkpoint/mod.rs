//! Checkpoint readers: Hugging Face directories, NeMo `.nemo` archives and megaqa's
//! own converted files, from a path natively or from bytes in the browser.

mod error;
mod hf;
pub mod int8;
pub mod names;
mod nemo;
pub mod pickle;
pub mod safetensors;
pub mod tensor;
pub mod torchzip;

use std::collections::BTreeMap;
use std::path::Path;

pub use error::LoadError;
pub use names::{Naming, QkvLayout, Weights};
pub use tensor::{ByteSource, DType, FileSource, RawTensor};

use crate::config::ModelConfig;

/// The file in a `megaqa train` output directory that holds the model (converted
/// format), so that the directory itself opens as a checkpoint.
pub const TRAINED_FILE: &str = "megaqa.safetensors";

/// Which kind of file a checkpoint came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    HuggingFace,
    Nemo,
    /// One safetensors file written by `megaqa convert`: canonical names, config and vocab in its metadata.
    Megaqa,
}

/// The tokenizer a checkpoint carries, as raw files for the text crate.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenizerFiles {
    /// A WordPiece `vocab.txt`, with whether text is lower-cased first.
    Vocab { vocab: String, lowercase: bool },
    /// A Hugging Face `tokenizer.json`.
    Json(String),
}

/// How a model is meant to be run, as its trainer chose: the null threshold chosen on
/// held-out data and the window geometry it was trained with. Stored in the converted
/// format's metadata (`megaqa.defaults`); commands use them unless told otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunDefaults {
    /// Answer "" when the null odds exceed this (decoding's `null_threshold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_threshold: Option<f64>,
    /// Window length in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_seq_len: Option<usize>,
    /// Tokens of overlap between consecutive windows of one context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_stride: Option<usize>,
}

const DEFAULTS_KEY: &str = "megaqa.defaults";

impl RunDefaults {
    fn parse(text: &str) -> Result<Self, String> {
        let d: Self = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if d.null_threshold.is_some_and(|t| !t.is_finite()) {
            return Err("`null_threshold` is not a finite number".into());
        }
        if d.max_seq_len == Some(0) {
            return Err("`max_seq_len` must be at least 1".into());
        }
        Ok(d)
    }
}

/// A checkpoint read and checked: config, tensors by canonical name, tokenizer.
pub struct Checkpoint {
    pub origin: String,
    pub format: Format,
    pub config: ModelConfig,
    pub weights: Weights,
    pub tokenizer: Option<TokenizerFiles>,
    /// Only the converted format carries these; other formats get none.
    pub defaults: RunDefaults,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("origin", &self.origin)
            .field("format", &self.format)
            .field("config", &self.config)
            .field("tensors", &self.weights.len())
            .finish()
    }
}

impl Checkpoint {
    /// Whether the file carried a QA head (`qa_outputs` / `classifier.mlp.layer0`).
    pub fn has_qa_head(&self) -> bool {
        self.weights.contains_key("qa.weight")
    }

    /// Opens a Hugging Face directory, a `.nemo` archive or a converted file, by what the path holds.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        if path.is_dir() {
            // A `megaqa train` output directory: its checkpoint is one converted file.
            let trained = path.join(TRAINED_FILE);
            if trained.is_file() && !path.join("config.json").is_file() {
                return Self::open(trained);
            }
            return hf::open_dir(path);
        }
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("riva"))
        {
            return Err(LoadError::Riva { file });
        }
        let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
            file: file.clone(),
            source,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::from_bytes(&file, &name, bytes)
    }

    /// Reads a single-file checkpoint from memory (`.nemo` or converted); `name` is the
    /// file name used to recognise the kind, `origin` what messages call it.
    pub fn from_bytes(origin: &str, name: &str, bytes: Vec<u8>) -> Result<Self, LoadError> {
        if name.to_ascii_lowercase().ends_with(".riva") {
            return Err(LoadError::Riva {
                file: origin.into(),
            });
        }
        match sniff(&bytes) {
            Sniff::Tar | Sniff::Gzip => nemo::read(origin, bytes),
            Sniff::Safetensors => read_converted(origin, bytes),
            Sniff::Zip => Err(LoadError::invalid(
                origin,
                "a bare PyTorch state dict has no config: pass the Hugging Face directory that holds it with config.json",
            )),
            Sniff::Unknown if name.ends_with(".nemo") => nemo::read(origin, bytes),
            Sniff::Unknown => Err(LoadError::invalid(
                origin,
                "not a recognised checkpoint (expected a Hugging Face directory, a .nemo archive, or a file made by `megaqa convert`)",
            )),
        }
    }

    /// A converted file of `len` bytes in `source`, read lazily: its header now, each
    /// tensor when the network takes it ([`RawTensor::load`]), so that the file is
    /// never held whole (a browser's big model, kept in a file of its own).
    pub fn from_source(
        origin: &str,
        source: std::sync::Arc<dyn ByteSource>,
        len: u64,
    ) -> Result<Self, LoadError> {
        let file =
            safetensors::read_from(source, len).map_err(|m| LoadError::invalid(origin, m))?;
        converted(origin, file)
    }

    /// A Hugging Face directory given as its files (name -> bytes), as the browser has them.
    pub fn from_hf_files(
        origin: &str,
        files: BTreeMap<String, Vec<u8>>,
    ) -> Result<Self, LoadError> {
        hf::from_files(origin, files)
    }

    /// Writes the checkpoint as one self-contained safetensors file (the converted format).
    pub fn to_converted_bytes(&self, f16: bool) -> Result<Vec<u8>, LoadError> {
        self.to_converted_bytes_with(f16, &[])
    }

    /// [`Checkpoint::to_converted_bytes`] with more `key = value` strings in the
    /// metadata (readers ignore keys they do not know).
    pub fn to_converted_bytes_with(
        &self,
        f16: bool,
        extra: &[(&str, String)],
    ) -> Result<Vec<u8>, LoadError> {
        let storage = if f16 { Storage::F16 } else { Storage::F32 };
        self.to_converted_bytes_as(storage, extra)
    }

    /// The converted format with the weights stored as `storage` says.
    pub fn to_converted_bytes_as(
        &self,
        storage: Storage,
        extra: &[(&str, String)],
    ) -> Result<Vec<u8>, LoadError> {
        let mut metadata: std::collections::HashMap<String, String> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        metadata.insert("megaqa.format".to_string(), "1".to_string());
        if self.defaults != RunDefaults::default() {
            let d = serde_json::to_string(&self.defaults)
                .map_err(|e| LoadError::invalid(&self.origin, e.to_string()))?;
            metadata.insert(DEFAULTS_KEY.to_string(), d);
        }
        let config = serde_json::to_string(&self.config)
            .map_err(|e| LoadError::invalid(&self.origin, e.to_string()))?;
        metadata.insert("megaqa.config".to_string(), config);
        if let Some(tok) = &self.tokenizer {
            let tok = match tok {
                TokenizerFiles::Vocab { vocab, lowercase } => {
                    serde_json::json!({"kind": "vocab", "vocab": vocab, "lowercase": lowercase})
                }
                TokenizerFiles::Json(json) => {
                    serde_json::json!({"kind": "json", "tokenizer": json})
                }
            };
            metadata.insert("megaqa.tokenizer".to_string(), tok.to_string());
        }
        let mut data: Vec<safetensors::Entry> = Vec::new();
        for (name, t) in &self.weights {
            let values = t.to_f32().unwrap_or_default();
            if storage == Storage::Int8 && int8::is_int8(name, &t.shape) {
                let (rows, cols) = (t.shape[0], t.shape[1]);
                let (q, scales) = int8::quantize(&values, rows, cols).map_err(|r| {
                    LoadError::invalid(
                        &self.origin,
                        format!(
                            "tensor `{name}` row {r} is not finite: it cannot be stored in int8"
                        ),
                    )
                })?;
                let q: Vec<u8> = q.into_iter().map(|v| v as u8).collect();
                data.push((name.clone(), ::safetensors::Dtype::I8, t.shape.clone(), q));
                data.push((
                    format!("{name}.scale"),
                    ::safetensors::Dtype::F32,
                    vec![rows],
                    safetensors::le_bytes(&scales, f32::to_le_bytes),
                ));
                continue;
            }
            let (dtype, bytes) = if storage == Storage::F32 {
                (
                    ::safetensors::Dtype::F32,
                    safetensors::le_bytes(&values, f32::to_le_bytes),
                )
            } else {
                let halves: Vec<half::f16> =
                    values.iter().map(|&v| half::f16::from_f32(v)).collect();
                (
                    ::safetensors::Dtype::F16,
                    safetensors::le_bytes(&halves, half::f16::to_le_bytes),
                )
            };
            data.push((name.clone(), dtype, t.shape.clone(), bytes));
        }
        safetensors::write(&data, metadata).map_err(|e| LoadError::invalid(&self.origin, e))
    }
}

/// How a converted file stores the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    F32,
    F16,
    /// The encoder's matmul weights in int8 with a scale per output row, the rest f16.
    Int8,
}

enum Sniff {
    Tar,
    Gzip,
    Zip,
    Safetensors,
    Unknown,
}

fn sniff(bytes: &[u8]) -> Sniff {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        Sniff::Gzip
    } else if bytes.starts_with(b"PK\x03\x04") {
        Sniff::Zip
    } else if bytes.len() >= 262 && &bytes[257..262] == b"ustar" {
        Sniff::Tar
    } else if bytes.len() >= 9 && bytes[8] == b'{' {
        Sniff::Safetensors
    } else {
        Sniff::Unknown
    }
}

fn read_converted(origin: &str, bytes: Vec<u8>) -> Result<Checkpoint, LoadError> {
    let file = safetensors::read(bytes).map_err(|m| LoadError::invalid(origin, m))?;
    converted(origin, file)
}

/// A converted file's checkpoint from its tensors and metadata, however they were read.
fn converted(
    origin: &str,
    mut file: safetensors::SafetensorsFile,
) -> Result<Checkpoint, LoadError> {
    int8::attach_scales(origin, &mut file.tensors)?;
    let config_json = file.metadata.get("megaqa.config").ok_or_else(|| {
        LoadError::invalid(
            origin,
            "safetensors file has no megaqa config in its metadata: a Hugging Face model.safetensors must be opened as its directory (with config.json)",
        )
    })?;
    let config: ModelConfig = serde_json::from_str(config_json)
        .map_err(|e| LoadError::invalid(origin, format!("metadata `megaqa.config`: {e}")))?;
    config
        .validate()
        .map_err(|m| LoadError::invalid(origin, format!("metadata `megaqa.config`: {m}")))?;
    let tokenizer = match file.metadata.get("megaqa.tokenizer") {
        None => None,
        Some(t) => Some(parse_tokenizer_meta(t).map_err(|m| {
            LoadError::invalid(origin, format!("metadata `megaqa.tokenizer`: {m}"))
        })?),
    };
    let defaults = match file.metadata.get(DEFAULTS_KEY) {
        None => RunDefaults::default(),
        Some(t) => RunDefaults::parse(t)
            .map_err(|m| LoadError::invalid(origin, format!("metadata `{DEFAULTS_KEY}`: {m}")))?,
    };
    let weights = names::canonicalize(
        origin,
        file.tensors,
        Naming::Canonical,
        QkvLayout::V0,
        &config,
    )?;
    Ok(Checkpoint {
        origin: origin.into(),
        format: Format::Megaqa,
        config,
        weights,
        tokenizer,
        defaults,
    })
}

fn parse_tokenizer_meta(text: &str) -> Result<TokenizerFiles, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let s = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .map(str::to_owned)
            .ok_or(format!("field `{k}` is missing"))
    };
    match v.get("kind").and_then(|k| k.as_str()) {
        Some("vocab") => Ok(TokenizerFiles::Vocab {
            vocab: s("vocab")?,
            lowercase: v.get("lowercase").and_then(|x| x.as_bool()).unwrap_or(true),
        }),
        Some("json") => Ok(TokenizerFiles::Json(s("tokenizer")?)),
        _ => Err("field `kind` must be `vocab` or `json`".into()),
    }
}

/// Whether a WordPiece vocabulary is uncased: a cased one holds many capitalised words.
pub fn vocab_is_uncased(vocab: &str) -> bool {
    let words: Vec<&str> = vocab
        .lines()
        .filter(|w| !w.starts_with('[') && !w.starts_with("##"))
        .collect();
    let upper = words
        .iter()
        .filter(|w| w.chars().next().is_some_and(char::is_uppercase))
        .count();
    upper * 100 < words.len().max(1)
}
