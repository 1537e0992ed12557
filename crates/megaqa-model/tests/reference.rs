//! Logits and hidden states equal the PyTorch/transformers reference
//! (tests/reference/make_model_fixtures.py) within 1e-4 max absolute difference.

mod common;

use burn::tensor::{DType, Device};
use common::{Expected, fixture, load, max_diff};
use megaqa_model::{Checkpoint, DeviceKind, QaModel, device};

const TOL: f32 = 1e-4;

fn check_logits(model: &QaModel, dev: &Device, exp: &Expected, input: &str, key: &str) {
    let batch = exp.batch(input);
    let out = model.run(&batch, dev).unwrap();
    let ds = max_diff(&out.start, &exp.f32(&format!("{key}.start")));
    let de = max_diff(&out.end, &exp.f32(&format!("{key}.end")));
    eprintln!("{key} on {input}: max |d start| {ds:.2e}, max |d end| {de:.2e}");
    assert!(
        ds < TOL && de < TOL,
        "{key} on {input}: max |d start| {ds}, max |d end| {de}"
    );
}

fn all_models_on(kind: DeviceKind) {
    let dev = device::open(kind).unwrap();
    let exp = Expected::load();
    let meg = load("megatron-tiny", &dev);
    check_logits(&meg, &dev, &exp, "input_a", "megatron.a");
    check_logits(&meg, &dev, &exp, "input_b", "megatron.b");
    let bert = load("bert-tiny", &dev);
    check_logits(&bert, &dev, &exp, "input_a", "bert.a");
    check_logits(&bert, &dev, &exp, "input_b", "bert.b");
    for nemo in ["megatron-tiny.nemo", "megatron-tiny-v2.nemo"] {
        let m = load(nemo, &dev);
        check_logits(&m, &dev, &exp, "input_a", "megatron.a");
    }
}

#[test]
fn logits_match_reference_on_cpu() {
    all_models_on(DeviceKind::Cpu);
}

#[test]
fn logits_match_reference_on_wgpu() {
    all_models_on(DeviceKind::Wgpu);
}

#[test]
fn nemo_layouts_and_spellings_give_the_same_logits() {
    let dev = Device::flex();
    let exp = Expected::load();
    for nemo in ["micro-v0.nemo", "micro-v1.nemo"] {
        check_logits(&load(nemo, &dev), &dev, &exp, "input_micro", "micro");
    }
    // The .nemo and the HF directory of the same weights agree with each other too.
    let batch = exp.batch("input_a");
    let a = load("megatron-tiny", &dev).run(&batch, &dev).unwrap();
    let b = load("megatron-tiny.nemo", &dev).run(&batch, &dev).unwrap();
    assert!(max_diff(&a.start, &b.start) < 1e-5 && max_diff(&a.end, &b.end) < 1e-5);
}

#[test]
fn nemo_carries_config_and_vocab() {
    let ckpt = Checkpoint::open(fixture("megatron-tiny.nemo")).unwrap();
    assert_eq!(
        ckpt.config.vocab_size, 30592,
        "padded vocabulary comes from the embedding"
    );
    assert_eq!(
        (
            ckpt.config.hidden_size,
            ckpt.config.num_layers,
            ckpt.config.num_heads
        ),
        (32, 2, 4)
    );
    assert!(ckpt.config.pre_layer_norm);
    match ckpt.tokenizer {
        Some(megaqa_model::TokenizerFiles::Vocab { vocab, lowercase }) => {
            assert!(lowercase);
            assert_eq!(vocab.lines().count(), 30522);
        }
        other => panic!("expected a vocab, got {other:?}"),
    }
}

#[test]
fn real_minilm_hidden_states_match_transformers() {
    // The real pretrained all-MiniLM-L6-v2 lives in ../shared (not committed: 88 MB).
    let dir = common::root().join("../shared/models/all-minilm-l6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "missing {}: the shared models must be present",
        dir.display()
    );
    let ckpt = Checkpoint::open(&dir).unwrap();
    assert!(
        !ckpt.has_qa_head(),
        "MiniLM is a BertModel without a QA head"
    );
    assert!(!ckpt.config.pre_layer_norm);
    let dev = Device::flex();
    let model = QaModel::from_weights(&ckpt.config, ckpt.weights, &dev, DType::F32).unwrap();
    let exp = Expected::load();
    let hidden = model.hidden_states(&exp.batch("minilm"), &dev).unwrap();
    let d = max_diff(&hidden, &exp.f32("minilm.hidden"));
    eprintln!("MiniLM last hidden state: max |d| = {d:.2e}");
    assert!(d < TOL, "MiniLM last hidden state: max |d| = {d}");
}

#[test]
fn converted_file_round_trips() {
    let dev = Device::flex();
    let exp = Expected::load();
    let ckpt = Checkpoint::open(fixture("megatron-tiny.nemo")).unwrap();
    let bytes = ckpt.to_converted_bytes(false).unwrap();
    let back = Checkpoint::from_bytes("converted", "model.safetensors", bytes).unwrap();
    assert_eq!(back.config, ckpt.config);
    assert_eq!(back.tokenizer, ckpt.tokenizer);
    let model = QaModel::from_weights(&back.config, back.weights, &dev, DType::F32).unwrap();
    check_logits(&model, &dev, &exp, "input_a", "megatron.a");
}

#[test]
fn f16_runs_where_the_device_supports_it() {
    let exp = Expected::load();
    for kind in [DeviceKind::Cpu, DeviceKind::Wgpu] {
        let dev = device::open(kind).unwrap();
        if !device::supports_f16(&dev) {
            eprintln!("{kind}: no f16, skipped");
            continue;
        }
        let ckpt = Checkpoint::open(fixture("megatron-tiny")).unwrap();
        let model = QaModel::from_weights(&ckpt.config, ckpt.weights, &dev, DType::F16).unwrap();
        let out = model.run(&exp.batch("input_a"), &dev).unwrap();
        let d = max_diff(&out.start, &exp.f32("megatron.a.start"))
            .max(max_diff(&out.end, &exp.f32("megatron.a.end")));
        eprintln!("{kind} f16: max |d logit| vs f32 reference = {d}");
        // f16 keeps ~3 significant digits; logits here are of order 1-10.
        assert!(d < 1e-2, "{kind} f16: max |d| {d}");
    }
}

/// An f16 network (WebGPU with `shader-f16`) built from an f16 file takes the file's
/// tensors as they are, and equals one built from the same values stored in f32 and
/// narrowed on load (f16 -> f32 -> f16 is exact): the same weights, the same logits.
#[test]
fn an_f16_network_from_an_f16_file_equals_one_narrowed_from_f32() {
    let dev = Device::flex();
    if !device::supports_f16(&dev) {
        eprintln!("cpu: no f16, skipped");
        return;
    }
    let exp = Expected::load();
    let f16_bytes = Checkpoint::open(fixture("megatron-tiny"))
        .unwrap()
        .to_converted_bytes(true)
        .unwrap();
    let read = |bytes: Vec<u8>| Checkpoint::from_bytes("tiny", "model.safetensors", bytes).unwrap();
    let f32_bytes = read(f16_bytes.clone()).to_converted_bytes(false).unwrap();
    let (a, b) = (read(f16_bytes), read(f32_bytes));
    assert_eq!(
        a.weights["layers.0.qkv.weight"].dtype,
        megaqa_model::checkpoint::DType::F16
    );
    let direct = QaModel::from_weights(&a.config, a.weights, &dev, DType::F16).unwrap();
    let narrowed = QaModel::from_weights(&b.config, b.weights, &dev, DType::F16).unwrap();
    let data = |t: burn::tensor::Tensor<2>| t.into_data();
    for (x, y) in [
        (
            direct.layers[0].qkv.weight.val(),
            narrowed.layers[0].qkv.weight.val(),
        ),
        (
            direct.embeddings.word.weight.val(),
            narrowed.embeddings.word.weight.val(),
        ),
    ] {
        assert_eq!(x.dtype(), DType::F16);
        assert_eq!(data(x), data(y));
    }
    for input in ["input_a", "input_b"] {
        let batch = exp.batch(input);
        let (x, y) = (
            direct.run(&batch, &dev).unwrap(),
            narrowed.run(&batch, &dev).unwrap(),
        );
        assert_eq!((x.start, x.end), (y.start, y.end), "{input}");
    }
}

/// A tensor sent to the device in pieces of rows (how the browser uploads big ones to
/// WebGPU) equals the same tensor sent whole, in f32 and in f16, with a short last
/// piece, a piece smaller than a row, and in three dimensions.
#[test]
fn a_tensor_uploaded_in_pieces_equals_one_uploaded_whole() {
    use burn::tensor::{Tensor, TensorData};
    use megaqa_model::network::upload_in_pieces;
    for kind in [DeviceKind::Cpu, DeviceKind::Wgpu] {
        let dev = device::open(kind).unwrap();
        let values: Vec<f32> = (0..37 * 53).map(|i| (i as f32 * 0.37).sin()).collect();
        for dtype in [DType::F32, DType::F16] {
            if dtype == DType::F16 && !device::supports_f16(&dev) {
                continue;
            }
            let whole: Tensor<2> =
                Tensor::from_data(TensorData::new(values.clone(), [37, 53]), (&dev, dtype));
            for piece in [3 * 53 * 4, 10, 36 * 53 * 4] {
                let data = TensorData::new(values.clone(), [37, 53]);
                let pieces: Tensor<2> = upload_in_pieces(data, &dev, dtype, piece);
                assert_eq!(pieces.dtype(), dtype);
                assert_eq!(
                    pieces.into_data(),
                    whole.clone().into_data(),
                    "{kind} {dtype:?} pieces of {piece} bytes"
                );
            }
            let cube: Tensor<3> = upload_in_pieces(
                TensorData::new(values.clone(), [37, 1, 53]),
                &dev,
                dtype,
                500,
            );
            assert_eq!(
                cube.reshape([37, 53]).into_data(),
                whole.into_data(),
                "{kind} 3-d"
            );
        }
    }
}

/// A 16-bit file's big matrices kept in 16 bits under f32 compute (how the browser's CPU
/// fallback holds a big model) give the logits of the same file widened to f32 when
/// loaded: widening 16 bits is exact, so only the memory changes.
#[test]
fn sixteen_bit_weights_kept_under_f32_compute_give_the_f32_logits() {
    let dev = Device::flex();
    let exp = Expected::load();
    for name in ["megatron-tiny", "bert-tiny"] {
        let bytes = Checkpoint::open(fixture(name))
            .unwrap()
            .to_converted_bytes(true)
            .unwrap();
        let read = || Checkpoint::from_bytes(name, "model.safetensors", bytes.clone()).unwrap();
        let (a, b) = (read(), read());
        let widened = QaModel::from_weights(&a.config, a.weights, &dev, DType::F32).unwrap();
        let kept = QaModel::from_weights_16bit(&b.config, b.weights, &dev).unwrap();
        let dtype = |t: burn::tensor::Tensor<2>| t.dtype();
        assert_eq!(dtype(kept.layers[0].qkv.weight.val()), DType::F16);
        assert_eq!(dtype(kept.layers[0].ffn_out.weight.val()), DType::F16);
        assert_eq!(dtype(kept.embeddings.word.weight.val()), DType::F16);
        assert_eq!(dtype(kept.embeddings.position.weight.val()), DType::F32);
        assert_eq!(dtype(kept.qa.weight.val()), DType::F32);
        for input in ["input_a", "input_b"] {
            let batch = exp.batch(input);
            let (x, y) = (
                widened.run(&batch, &dev).unwrap(),
                kept.run(&batch, &dev).unwrap(),
            );
            let d = max_diff(&x.start, &y.start).max(max_diff(&x.end, &y.end));
            eprintln!("{name} on {input}: 16-bit kept vs widened, max |d logit| {d:.1e}");
            assert!(d < 1e-6, "{name} on {input}: max |d logit| {d}");
        }
    }
}
