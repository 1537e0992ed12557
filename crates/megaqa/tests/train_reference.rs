//! `megaqa train` against PyTorch/transformers: the labelled windows, the loss and
//! gradient norm of two AdamW steps, and the weights after them, on the tiny random
//! Megatron fixture (reference: tests/reference/make_train_fixtures.py).

use std::path::PathBuf;

use burn::tensor::Device;
use megaqa::model::Checkpoint;
use megaqa::text::Dataset;
use megaqa::train::{Precision, TrainConfig, Trainer, optim::AdamWConfig};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../..")
}

#[test]
fn two_adamw_steps_match_pytorch_on_cpu() {
    two_adamw_steps_match_pytorch(Device::flex());
}

/// The same on wgpu (Mesa lavapipe in CI; any Vulkan/Metal/DX12 adapter elsewhere).
#[test]
fn two_adamw_steps_match_pytorch_on_wgpu() {
    let device = megaqa::model::device::open(megaqa::model::DeviceKind::Wgpu)
        .expect("a wgpu adapter (CI installs Mesa lavapipe)");
    two_adamw_steps_match_pytorch(device);
}

fn two_adamw_steps_match_pytorch(device: Device) {
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/train/reference.json")).unwrap(),
    )
    .unwrap();
    let ids: Vec<&str> = reference["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut data =
        Dataset::open(root().join("tests/fixtures/squad/dev-v2.0-two-articles.json")).unwrap();
    data.examples = ids
        .iter()
        .map(|id| data.examples.iter().find(|e| e.id == *id).unwrap().clone())
        .collect();

    let config = TrainConfig {
        epochs: 1,
        batch_size: 4,
        grad_accum: 1,
        lr: 1e-3,
        warmup_ratio: 0.0,
        adamw: AdamWConfig::default(),
        max_grad_norm: 1.0,
        max_steps: Some(2),
        max_seq_len: 128,
        doc_stride: 32,
        precision: Precision::F32,
        dropout: 0.0,
        seed: 0,
        save_every: 100,
        log_every: 1,
        ..TrainConfig::default()
    };
    let ckpt = Checkpoint::open(root().join("tests/fixtures/models/megatron-tiny")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut trainer = Trainer::new(ckpt, device, config, &data, "test".into(), out.path()).unwrap();

    // The labelled windows are run_qa's.
    let windows = reference["windows"].as_array().unwrap();
    assert_eq!(trainer.features.len(), windows.len());
    for (i, (f, w)) in trainer.features.iter().zip(windows).enumerate() {
        let ids: Vec<u32> = serde_json::from_value(w["ids"].clone()).unwrap();
        let types: Vec<u32> = serde_json::from_value(w["types"].clone()).unwrap();
        assert_eq!(f.window.input_ids, ids, "window {i} ids");
        assert_eq!(f.window.token_types, types, "window {i} types");
        assert_eq!(
            (f.start as u64, f.end as u64),
            (w["start"].as_u64().unwrap(), w["end"].as_u64().unwrap()),
            "window {i} answer positions"
        );
    }

    export_holds_the_run(&trainer, windows);

    // Two updates on the reference's batches, in its order.
    for (k, step) in reference["steps"].as_array().unwrap().iter().enumerate() {
        let batch: Vec<usize> = (k * 4..k * 4 + 4).collect();
        let u = trainer.update_on(&[batch]).unwrap();
        let (loss, norm) = (u.loss, u.grad_norm);
        assert!(u.applied);
        let (want_loss, want_norm) = (
            step["loss"].as_f64().unwrap(),
            step["grad_norm"].as_f64().unwrap(),
        );
        eprintln!(
            "step {}: loss {loss} (torch {want_loss}), grad norm {norm} (torch {want_norm})",
            k + 1
        );
        assert!(
            (loss - want_loss).abs() < 1e-4,
            "step {} loss {loss} vs {want_loss}",
            k + 1
        );
        assert!(
            (norm - want_norm).abs() < 1e-4,
            "step {} grad norm {norm} vs {want_norm}",
            k + 1
        );
    }

    // Some gradients are zero in exact arithmetic, because softmax ignores a shift of
    // all its inputs: the span head's bias, the final LayerNorm's bias (it only feeds
    // the span head) and the key bias. Both sides compute them as rounding noise
    // (~1e-8), which Adam then scales to a full +-lr step of arbitrary sign; they are
    // checked only to stay within that step.
    let h = trainer.model.config.hidden_size;
    let noise_only = |name: &str, i: usize| {
        name == "qa.bias"
            || name == "final_ln.bias"
            || (name.ends_with(".qkv.bias") && (h..2 * h).contains(&i))
    };
    let want = Checkpoint::open(root().join("tests/fixtures/train/after-2-steps")).unwrap();
    let before = Checkpoint::open(root().join("tests/fixtures/models/megatron-tiny")).unwrap();
    let got = trainer.model.to_weights().unwrap();
    let (mut worst, mut worst_noise, mut moved) = ((0f32, String::new()), 0f32, 0f32);
    for (name, w) in &want.weights {
        let (a, b) = (got[name].to_f32().unwrap(), w.to_f32().unwrap());
        let b0 = before.weights[name].to_f32().unwrap();
        assert_eq!(a.len(), b.len(), "{name}");
        for (i, ((x, y), y0)) in a.iter().zip(&b).zip(&b0).enumerate() {
            let d = (x - y).abs();
            if noise_only(name, i) {
                worst_noise = worst_noise.max(d);
            } else {
                moved = moved.max((y - y0).abs());
                if d > worst.0 {
                    worst = (d, name.clone());
                }
            }
        }
    }
    eprintln!(
        "weights after 2 steps: max |d| {} ({}); largest reference update {moved}; zero-gradient parameters within {worst_noise}",
        worst.0, worst.1
    );
    assert!(moved > 1e-3, "the reference weights should have moved");
    assert!(worst.0 < 1e-4, "max |d| {} in {}", worst.0, worst.1);
    assert!(
        worst_noise <= 2.0 * 2.0 * 1e-3,
        "zero-gradient parameters moved {worst_noise}"
    );
}

/// `megaqa train --export` (what the PyTorch recipe in
/// tests/reference/train_squad_reference.py trains on) holds run_qa's windows and
/// labels, every window once per epoch in the run's micro-batches, the run's
/// learning-rate schedule and its initial QA head.
fn export_holds_the_run(trainer: &Trainer, windows: &[Value]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("windows.safetensors");
    trainer.export(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let ints = |name: &str| -> Vec<i64> {
        let t = file.tensor(name).unwrap();
        match t.dtype() {
            safetensors::Dtype::I32 => t
                .data()
                .chunks(4)
                .map(|b| i32::from_le_bytes(b.try_into().unwrap()) as i64)
                .collect(),
            safetensors::Dtype::I64 => t
                .data()
                .chunks(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            safetensors::Dtype::U8 => t.data().iter().map(|&b| b as i64).collect(),
            d => panic!("{name}: {d:?}"),
        }
    };
    let (ids, types, offsets) = (ints("ids"), ints("types"), ints("offsets"));
    let (starts, ends) = (ints("starts"), ints("ends"));
    assert_eq!(offsets.len(), windows.len() + 1);
    for (i, w) in windows.iter().enumerate() {
        let (lo, hi) = (offsets[i] as usize, offsets[i + 1] as usize);
        let want = |k: &str| -> Vec<i64> { serde_json::from_value(w[k].clone()).unwrap() };
        assert_eq!(ids[lo..hi], want("ids")[..], "window {i} ids");
        assert_eq!(types[lo..hi], want("types")[..], "window {i} types");
        assert_eq!(
            (starts[i], ends[i]),
            (w["start"].as_i64().unwrap(), w["end"].as_i64().unwrap())
        );
    }
    let steps = trainer.total_steps() as usize;
    let sizes = ints("micro_batch_sizes");
    assert_eq!(sizes.len(), steps * trainer.config.grad_accum);
    let mut order = ints("order");
    assert_eq!(order.len() as i64, sizes.iter().sum::<i64>());
    // max_steps 2 of batch 4 over 8 windows: one epoch, each window once.
    order.sort();
    assert_eq!(order, (0..windows.len() as i64).collect::<Vec<_>>());
    let lr: Vec<f64> = file
        .tensor("lr")
        .unwrap()
        .data()
        .chunks(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(
        lr,
        vec![1e-3, 5e-4],
        "linear decay from 1e-3 over 2 updates, no warmup"
    );
    let head = file.tensor("qa.weight").unwrap();
    let got: Vec<f32> = head
        .data()
        .chunks(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(head.shape(), [2, trainer.model.config.hidden_size]);
    assert_eq!(
        got,
        trainer.model.to_weights().unwrap()["qa.weight"]
            .to_f32()
            .unwrap()
    );
    let config: Value = serde_json::from_str(
        &safetensors::SafeTensors::read_metadata(&bytes)
            .unwrap()
            .1
            .metadata()
            .as_ref()
            .unwrap()["megaqa.train_config"],
    )
    .unwrap();
    assert_eq!(config["batch_size"], 4);
}

/// Evaluation during `train --max-seq-len 128 --doc-stride 32` reads windows at that
/// geometry: it builds its engine from the run's checkpoint, which carries the geometry
/// (before, it built one at the default 384/128).
#[test]
fn evaluation_during_training_reads_windows_at_the_runs_geometry() {
    let data =
        Dataset::open(root().join("tests/fixtures/squad/dev-v2.0-two-articles.json")).unwrap();
    let config = TrainConfig {
        max_seq_len: 128,
        doc_stride: 32,
        max_steps: Some(1),
        ..TrainConfig::default()
    };
    let ckpt = Checkpoint::open(root().join("tests/fixtures/models/megatron-tiny")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let trainer = Trainer::new(
        ckpt,
        Device::flex(),
        config,
        &data,
        "test".into(),
        out.path(),
    )
    .unwrap();
    let engine = megaqa::Engine::new(
        trainer.checkpoint().unwrap(),
        Device::flex(),
        burn::tensor::DType::F32,
    )
    .unwrap();
    let w = engine.tokenizer.window_config();
    assert_eq!((w.max_len, w.stride), (128, 32));
    // And every window the evaluation's engine cuts is at most 128 tokens.
    let long = data
        .examples
        .iter()
        .max_by_key(|e| e.context.len())
        .unwrap();
    let windows = engine
        .tokenizer
        .windows(&long.question, &long.context)
        .unwrap();
    assert!(windows.len() > 1 && windows.iter().all(|x| x.len() <= 128));
    let scores = trainer.evaluate(&data).unwrap();
    assert_eq!(scores["total"], 626);
}
