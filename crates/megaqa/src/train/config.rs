//! The settings of a run: what `megaqa train` takes, what every checkpoint saves and
//! what `--resume` reuses.

use burn::tensor::{DType, Device};
use megaqa_model::device::supports_f16;
use megaqa_text::WindowConfig;
use serde::{Deserialize, Serialize};

use super::optim::AdamWConfig;

/// Numeric precision of training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 everywhere.
    F32,
    /// f16 compute and f16 weights (updates rounded to f16), with loss scaling.
    F16,
    /// f16 compute, f32 master weights and optimizer state, with loss scaling.
    Mixed,
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(Self::F32),
            "f16" => Ok(Self::F16),
            "mixed" => Ok(Self::Mixed),
            other => Err(format!(
                "unknown precision `{other}` (expected f32, f16 or mixed)"
            )),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Mixed => "mixed",
        })
    }
}

impl Precision {
    pub(super) fn compute_dtype(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::F16 | Self::Mixed => DType::F16,
        }
    }
}

/// The settings of a run (saved with every checkpoint; `--resume` reuses them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: u64,
    pub batch_size: usize,
    pub grad_accum: usize,
    pub lr: f64,
    pub warmup_ratio: f64,
    pub adamw: AdamWConfig,
    pub max_grad_norm: f64,
    pub max_steps: Option<u64>,
    pub max_seq_len: usize,
    pub doc_stride: usize,
    pub precision: Precision,
    pub dropout: f64,
    pub seed: u64,
    /// Save a checkpoint every this many updates (and always at the end).
    pub save_every: u64,
    /// Report the loss every this many updates.
    pub log_every: u64,
    /// About this many unanswerable examples per answerable question, made from other
    /// paragraphs of the same article (`megaqa_text::negatives`).
    #[serde(default)]
    pub negatives: f64,
    /// About this many (at most 1) unanswerable examples per answerable question made by
    /// swapping a name or number in the question (`megaqa_text::swapped`).
    #[serde(default)]
    pub swap_negatives: f64,
    /// The last this many articles of the training file are not trained on: after each
    /// epoch the null threshold is chosen on them (the official best-threshold search)
    /// and stored in the model as its default.
    #[serde(default)]
    pub holdout_articles: usize,
    /// Batches of windows of similar length (less padding): the seeded order is cut
    /// into chunks of 64 updates, each sorted by window length.
    #[serde(default)]
    pub group_by_length: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TrainConfig {
    /// The settings of NVIDIA's SQuAD v2.0 fine-tuning of Megatron-BERT 345M
    /// (2 epochs, batch 12, lr 3e-5) with HF's defaults for the rest; the CLI's defaults.
    pub const DEFAULT: Self = Self {
        epochs: 2,
        batch_size: 12,
        grad_accum: 1,
        lr: 3e-5,
        warmup_ratio: 0.0,
        adamw: AdamWConfig::DEFAULT,
        max_grad_norm: 1.0,
        max_steps: None,
        max_seq_len: 384,
        doc_stride: 128,
        precision: Precision::F32,
        dropout: 0.1,
        seed: 42,
        save_every: 500,
        log_every: 10,
        negatives: 0.0,
        swap_negatives: 0.0,
        holdout_articles: 0,
        group_by_length: false,
    };
}

impl TrainConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        let bad = |m: &str| Err(format!("training settings: {m}"));
        if self.batch_size == 0 || self.grad_accum == 0 {
            return bad("--batch-size and --grad-accum must be at least 1");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("--lr must be a positive number");
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return bad("--warmup-ratio must be in [0, 1)");
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("--dropout must be in [0, 1)");
        }
        if self.epochs == 0 && self.max_steps.is_none() {
            return bad("--epochs must be at least 1");
        }
        if self.save_every == 0 || self.log_every == 0 {
            return bad("--save-every and --log-every must be at least 1");
        }
        if !(self.negatives >= 0.0 && self.negatives.is_finite()) {
            return bad(&format!(
                "--negatives must be a number of at least 0, not {}",
                self.negatives
            ));
        }
        if !(0.0..=1.0).contains(&self.swap_negatives) {
            return bad(&format!(
                "--swap-negatives must be a number from 0 to 1, not {}",
                self.swap_negatives
            ));
        }
        self.windows()
            .validate()
            .map_err(|m| format!("training settings: {m}"))
    }

    pub(super) fn windows(&self) -> WindowConfig {
        WindowConfig {
            max_len: self.max_seq_len,
            stride: self.doc_stride,
            ..WindowConfig::default()
        }
    }
}

impl Precision {
    /// Refuses 16-bit training on a device without f16.
    pub(super) fn check(self, device: &Device) -> Result<(), String> {
        if self != Precision::F32 && !supports_f16(device) {
            return Err(format!(
                "--precision {self}: this device has no f16 support; use --precision f32"
            ));
        }
        Ok(())
    }
}
