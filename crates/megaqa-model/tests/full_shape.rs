//! A network of the full Megatron-BERT 345M shape (random weights made here)
//! builds and runs one 384-token window on the CPU.

use burn::tensor::{DType, Device};
use megaqa_model::{Batch, ModelConfig, QaModel};

#[test]
fn megatron_345m_shape_runs_a_384_token_window_on_cpu() {
    let cfg = ModelConfig::megatron_345m();
    let dev = Device::flex();
    let model = QaModel::random(&cfg, &dev, DType::F32, 7);
    let seq = 384;
    let batch = Batch::synthetic(1, seq, 30522);
    let out = model.run(&batch, &dev).unwrap();
    assert_eq!((out.start.len(), out.end.len()), (seq, seq));
    assert!(out.start.iter().chain(&out.end).all(|v| v.is_finite()));
    // Random weights still give different logits per position.
    let spread = out.start.iter().cloned().fold(f32::MIN, f32::max)
        - out.start.iter().cloned().fold(f32::MAX, f32::min);
    assert!(spread > 1e-3, "logits are constant: {spread}");
}

#[test]
fn ids_outside_the_vocabulary_are_an_error_not_a_panic() {
    let cfg = ModelConfig {
        num_layers: 1,
        ..ModelConfig::megatron_345m()
    };
    let dev = Device::flex();
    let model = QaModel::random(
        &ModelConfig {
            hidden_size: 64,
            num_heads: 4,
            intermediate_size: 128,
            ..cfg
        },
        &dev,
        DType::F32,
        1,
    );
    let batch = Batch {
        batch: 1,
        seq: 2,
        input_ids: vec![1, 99999],
        token_types: vec![0, 0],
        mask: vec![1, 1],
    };
    let e = model.run(&batch, &dev).unwrap_err();
    assert!(e.contains("99999"), "{e}");
}
