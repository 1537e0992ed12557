//! Host-side batches in, host-side logits out: the boundary that the engine and
//! the browser use, so neither needs to touch tensors.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::network::{QaModel, SpanLogits};

/// A batch of windows, row-major `[batch, seq]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub batch: usize,
    pub seq: usize,
    pub input_ids: Vec<i64>,
    pub token_types: Vec<i64>,
    pub mask: Vec<i64>,
}

/// Start and end logits, row-major `[batch, seq]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Logits {
    pub batch: usize,
    pub seq: usize,
    pub start: Vec<f32>,
    pub end: Vec<f32>,
}

impl Batch {
    /// `batch` full windows of `seq` tokens with varied ids below `vocab` (at least
    /// 2000): the first eighth of each window is type 0 (the "question"), the rest
    /// type 1. For benchmarks and shape tests.
    pub fn synthetic(batch: usize, seq: usize, vocab: usize) -> Self {
        let span = vocab.saturating_sub(1000).max(1) as i64;
        Self {
            batch,
            seq,
            input_ids: (0..(batch * seq) as i64)
                .map(|i| 1000 + (i * 7919) % span)
                .collect(),
            token_types: (0..batch * seq)
                .map(|i| i64::from(i % seq >= seq / 8))
                .collect(),
            mask: vec![1; batch * seq],
        }
    }

    /// Checks the lengths and that every id fits the model.
    pub fn validate(&self, model: &QaModel) -> Result<(), String> {
        let n = self.batch * self.seq;
        if self.input_ids.len() != n || self.token_types.len() != n || self.mask.len() != n {
            return Err(format!(
                "batch of {}x{} needs {n} ids, token types and mask values",
                self.batch, self.seq
            ));
        }
        let cfg = &model.config;
        if self.seq > cfg.max_position_embeddings {
            return Err(format!(
                "sequence of {} tokens is longer than the model's {} positions",
                self.seq, cfg.max_position_embeddings
            ));
        }
        let vocab = model.embeddings.vocab_rows() as i64;
        if let Some(bad) = self.input_ids.iter().find(|&&id| id < 0 || id >= vocab) {
            return Err(format!(
                "token id {bad} is outside the model's vocabulary of {vocab}"
            ));
        }
        if let Some(bad) = self
            .token_types
            .iter()
            .find(|&&t| t < 0 || t >= cfg.type_vocab_size as i64)
        {
            return Err(format!(
                "token type {bad} is outside the model's {} types",
                cfg.type_vocab_size
            ));
        }
        Ok(())
    }

    fn logits(&self, start: Vec<f32>, end: Vec<f32>) -> Logits {
        Logits {
            batch: self.batch,
            seq: self.seq,
            start,
            end,
        }
    }

    /// The ids, token types and mask as tensors on `device`.
    pub fn tensors(&self, device: &Device) -> [Tensor<2, Int>; 3] {
        let t = |v: &Vec<i64>| {
            Tensor::<2, Int>::from_data(TensorData::new(v.clone(), [self.batch, self.seq]), device)
        };
        [t(&self.input_ids), t(&self.token_types), t(&self.mask)]
    }
}

fn to_f32(data: TensorData) -> Result<Vec<f32>, String> {
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| format!("reading logits: {e:?}"))
}

impl QaModel {
    /// The span logits of a checked batch on `device`, not yet read back.
    fn logits(&self, batch: &Batch, device: &Device) -> Result<SpanLogits, String> {
        batch.validate(self)?;
        let [ids, types, mask] = batch.tensors(device);
        Ok(self.forward(ids, types, mask))
    }

    /// Runs a batch on `device` and reads the logits back (native: synchronous read).
    pub fn run(&self, batch: &Batch, device: &Device) -> Result<Logits, String> {
        let out = self.logits(batch, device)?;
        let read = |t: Tensor<2>| to_f32(t.try_into_data().map_err(|e| format!("{e:?}"))?);
        Ok(batch.logits(read(out.start)?, read(out.end)?))
    }

    /// Same as [`QaModel::run`] with asynchronous reads, as WebGPU requires.
    pub async fn run_async(&self, batch: &Batch, device: &Device) -> Result<Logits, String> {
        let out = self.logits(batch, device)?;
        let read =
            async |t: Tensor<2>| to_f32(t.into_data_async().await.map_err(|e| format!("{e:?}"))?);
        Ok(batch.logits(read(out.start).await?, read(out.end).await?))
    }

    /// Final hidden states `[batch, seq, hidden]`, row-major (for encoder parity tests).
    pub fn hidden_states(&self, batch: &Batch, device: &Device) -> Result<Vec<f32>, String> {
        batch.validate(self)?;
        let [ids, types, mask] = batch.tensors(device);
        to_f32(
            self.encode(ids, types, mask)
                .try_into_data()
                .map_err(|e| format!("{e:?}"))?,
        )
    }
}
