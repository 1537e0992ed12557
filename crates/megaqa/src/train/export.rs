//! A run's inputs as one safetensors file (`megaqa train --export`), so that another
//! trainer (the PyTorch recipe in tests/reference/train_squad_reference.py) takes
//! exactly megaqa's updates: the same labelled windows (negatives included), the same
//! micro-batches in the same order, the same learning rate at every update and the
//! same initial QA head.
//!
//! Tensors (windows concatenated, row `i` is `ids[offsets[i]..offsets[i+1]]`):
//! - `ids` I32 and `types` U8, `[tokens]`; `offsets` I64 `[windows + 1]`;
//! - `starts`, `ends` I32 `[windows]`: the answer's token positions, 0/0 for none;
//! - `order` I32: window indices of every micro-batch of every update, in order;
//!   `micro_batch_sizes` I32 `[updates * grad_accum]` cuts it;
//! - `lr` F64 `[updates]`;
//! - `qa.weight` F32 `[2, hidden]`, `qa.bias` F32 `[2]`: the QA head the run starts from.
//!
//! The run's settings are the metadata `megaqa.train_config` (JSON).

use std::collections::HashMap;
use std::path::Path;

use megaqa_model::checkpoint::safetensors::{Entry, le_bytes, write};
use megaqa_text::output::write_atomic;
use safetensors::Dtype;

use super::Trainer;

impl Trainer {
    /// Writes the run's windows, update order, learning rates and initial QA head to
    /// `path` (through a temporary file); trains nothing.
    pub fn export(&self, path: &Path) -> Result<(), String> {
        let (mut ids, mut types, mut offsets) = (vec![], vec![], vec![0i64]);
        for f in &self.features {
            ids.extend(f.window.input_ids.iter().map(|&x| x as i32));
            types.extend(f.window.token_types.iter().map(|&x| x as u8));
            offsets.push(ids.len() as i64);
        }
        let starts: Vec<i32> = self.features.iter().map(|f| f.start as i32).collect();
        let ends: Vec<i32> = self.features.iter().map(|f| f.end as i32).collect();
        let (mut order, mut sizes, mut lr) = (vec![], vec![], vec![]);
        let mut epochs = super::data::EpochOrder::default();
        let per_epoch = self.steps_per_epoch();
        for step in 0..self.total_steps() {
            for mb in epochs.micro_batches(&self.features, &self.config, per_epoch, step) {
                sizes.push(mb.len() as i32);
                order.extend(mb.iter().map(|&i| i as i32));
            }
            lr.push(self.lr_at(step));
        }
        let weights = self.model.to_weights()?;
        let i32s = |name: &str, v: &[i32]| -> Entry {
            (
                name.into(),
                Dtype::I32,
                vec![v.len()],
                le_bytes(v, i32::to_le_bytes),
            )
        };
        let mut tensors: Vec<Entry> = vec![
            i32s("ids", &ids),
            ("types".into(), Dtype::U8, vec![types.len()], types),
            (
                "offsets".into(),
                Dtype::I64,
                vec![offsets.len()],
                le_bytes(&offsets, i64::to_le_bytes),
            ),
            i32s("starts", &starts),
            i32s("ends", &ends),
            i32s("order", &order),
            i32s("micro_batch_sizes", &sizes),
            (
                "lr".into(),
                Dtype::F64,
                vec![lr.len()],
                le_bytes(&lr, f64::to_le_bytes),
            ),
        ];
        for name in ["qa.weight", "qa.bias"] {
            let t = weights
                .get(name)
                .ok_or_else(|| format!("the model has no {name}"))?;
            let values = t
                .to_f32()
                .ok_or_else(|| format!("{name} is not a float tensor"))?;
            tensors.push((
                name.into(),
                Dtype::F32,
                t.shape.clone(),
                le_bytes(&values, f32::to_le_bytes),
            ));
        }
        let config = serde_json::to_string(&self.config).map_err(|e| e.to_string())?;
        let meta = HashMap::from([("megaqa.train_config".to_string(), config)]);
        let bytes = write(&tensors, meta)?;
        write_atomic(path, &bytes).map_err(|e| format!("{}: {e}", path.display()))
    }
}
