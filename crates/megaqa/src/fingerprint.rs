//! A model's fingerprint ([`crate::Engine::model_sha256`]): sha256 of its config, then
//! of every tensor by name, its values as little-endian f32 (so a checkpoint's formats
//! and dtypes that hold the same values agree). Results files carry it, and `parity
//! --against` refuses a file made with another model.
//!
//! In the browser it is off the way to the first answer: a 23M-parameter model's 91 MB
//! of f32 values take ~0.25 s to hash in wasm, a 345M one's several seconds. So it can
//! be computed a slice at a time ([`Fingerprint::step`]) while the page is idle.

use megaqa_model::checkpoint::RawTensor;
use megaqa_model::checkpoint::safetensors::le_bytes;
use megaqa_model::{Checkpoint, LoadError};
use sha2::{Digest, Sha256};

/// Values hashed per update: one update per value would cost ~0.1 s more of a 23M model's
/// load in wasm, and a whole tensor's f32 copy would sit beside the checkpoint (a 345M
/// model's word embeddings are 125 MB in f32). A tensor still in its file is read a piece
/// at a time too.
const PIECE: usize = 1 << 16;

/// A fingerprint being computed: the tensors (sharing the checkpoint's bytes, or
/// reading them from its file) and how far the digest has come.
pub struct Fingerprint {
    hasher: Sha256,
    tensors: Vec<(String, RawTensor)>,
    /// The tensor being hashed, and its next value (its name is hashed at value 0).
    tensor: usize,
    at: usize,
    digest: Option<String>,
}

impl Fingerprint {
    /// Starts the fingerprint of `ckpt` (its config hashed; no values yet).
    pub fn start(ckpt: &Checkpoint) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(serde_json::to_vec(&ckpt.config).unwrap_or_default());
        let tensors = ckpt
            .weights
            .iter()
            .map(|(name, t)| (name.clone(), t.clone()))
            .collect();
        Self {
            hasher,
            tensors,
            tensor: 0,
            at: 0,
            digest: None,
        }
    }

    /// Hashes about `values` more values (whole pieces of [`PIECE`]); the hex digest
    /// once every tensor is hashed, `None` while some are left.
    pub fn step(&mut self, values: usize) -> Result<Option<&str>, LoadError> {
        let mut budget = values;
        while self.digest.is_none() {
            let Some((name, t)) = self.tensors.get(self.tensor) else {
                let hasher = std::mem::take(&mut self.hasher);
                self.digest = Some(format!("{:x}", hasher.finalize()));
                // The tensors may hold the checkpoint's bytes or its file: let them go.
                self.tensors = Vec::new();
                break;
            };
            let n = t.numel();
            if self.at == 0 {
                // Not a name hashed twice when the budget ends at a tensor's start.
                if budget == 0 {
                    return Ok(None);
                }
                self.hasher.update(name.as_bytes());
            }
            while self.at < n {
                if budget == 0 {
                    return Ok(None);
                }
                let end = n.min(self.at + PIECE);
                let chunk =
                    t.read_f32_range(self.at..end)
                        .map_err(|message| LoadError::Unreadable {
                            tensor: name.clone(),
                            message,
                        })?;
                self.hasher
                    .update(le_bytes(&chunk.unwrap_or_default(), f32::to_le_bytes));
                budget = budget.saturating_sub(end - self.at);
                self.at = end;
            }
            self.tensor += 1;
            self.at = 0;
        }
        Ok(self.digest.as_deref())
    }

    /// The hex digest, hashing whatever is left.
    pub fn finish(mut self) -> Result<String, LoadError> {
        self.step(usize::MAX)?;
        Ok(self.digest.take().expect("every tensor hashed"))
    }
}
