//! Shared helpers: fixture paths, the reference outputs, running a model on a device.
#![allow(dead_code)]

use std::path::PathBuf;

use burn::tensor::{DType, Device};
use megaqa_model::checkpoint::safetensors;
use megaqa_model::{Batch, Checkpoint, QaModel};

pub fn root() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../..")
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/models").join(name)
}

pub struct Expected(safetensors::SafetensorsFile);

impl Expected {
    pub fn load() -> Self {
        let bytes = std::fs::read(fixture("expected.safetensors")).expect("expected.safetensors");
        Self(safetensors::read(bytes).expect("valid safetensors"))
    }

    pub fn f32(&self, name: &str) -> Vec<f32> {
        self.0
            .tensors
            .get(name)
            .unwrap_or_else(|| panic!("{name}"))
            .to_f32()
            .unwrap()
    }

    pub fn shape(&self, name: &str) -> Vec<usize> {
        self.0.tensors[name].shape.clone()
    }

    pub fn i64(&self, name: &str) -> Vec<i64> {
        let t = &self.0.tensors[name];
        t.bytes()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    pub fn batch(&self, prefix: &str) -> Batch {
        let shape = self.shape(&format!("{prefix}.ids"));
        Batch {
            batch: shape[0],
            seq: shape[1],
            input_ids: self.i64(&format!("{prefix}.ids")),
            token_types: self.i64(&format!("{prefix}.types")),
            mask: self.i64(&format!("{prefix}.mask")),
        }
    }
}

pub fn load(path: &str, device: &Device) -> QaModel {
    let ckpt = Checkpoint::open(fixture(path)).unwrap_or_else(|e| panic!("{e}"));
    QaModel::from_weights(&ckpt.config, ckpt.weights, device, DType::F32).unwrap()
}

/// Largest absolute difference over all positions (padding included).
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
