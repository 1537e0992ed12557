//! Bad input gets a clear error naming the file and the tensor, never a panic.

mod common;

use std::collections::BTreeMap;

use common::fixture;
use megaqa_model::{Checkpoint, LoadError};
use safetensors::tensor::TensorView;

/// A safetensors file's tensors by name: dtype, shape, bytes.
type Tensors = BTreeMap<String, (safetensors::Dtype, Vec<usize>, Vec<u8>)>;

/// The safetensors file `bytes` with its tensors edited by `edit` (metadata kept).
fn edited(bytes: &[u8], edit: impl FnOnce(&mut Tensors)) -> Vec<u8> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let mut tensors: Tensors = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, (v.dtype(), v.shape().to_vec(), v.data().to_vec())))
        .collect();
    edit(&mut tensors);
    let views: Vec<_> = tensors
        .iter()
        .map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, meta.metadata().clone()).unwrap()
}

/// The files of the megatron-tiny HF directory, with model.safetensors edited by `edit`.
fn hf_files_with(edit: impl FnOnce(&mut Tensors)) -> BTreeMap<String, Vec<u8>> {
    let dir = fixture("megatron-tiny");
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let mut files = BTreeMap::new();
    files.insert("model.safetensors".to_string(), edited(&bytes, edit));
    files.insert(
        "config.json".to_string(),
        std::fs::read(dir.join("config.json")).unwrap(),
    );
    files
}

fn err(files: BTreeMap<String, Vec<u8>>) -> LoadError {
    Checkpoint::from_hf_files("megatron-tiny", files).expect_err("must fail")
}

#[test]
fn missing_tensor_is_named_with_its_shape() {
    let files = hf_files_with(|t| {
        t.remove("bert.encoder.layer.1.intermediate.dense.weight");
    });
    let e = err(files);
    assert!(matches!(e, LoadError::MissingTensor { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("bert.encoder.layer.1.intermediate.dense.weight") && msg.contains("[64, 32]"),
        "{msg}"
    );
}

#[test]
fn missing_half_of_a_qkv_triple_is_named() {
    let e = err(hf_files_with(|t| {
        t.remove("bert.encoder.layer.0.attention.self.key.bias");
    }));
    assert!(
        e.to_string()
            .contains("bert.encoder.layer.0.attention.self.key.bias"),
        "{e}"
    );
}

#[test]
fn unexpected_tensor_is_named_with_its_shape() {
    let e = err(hf_files_with(|t| {
        t.insert(
            "bert.encoder.layer.0.mystery.weight".into(),
            (safetensors::Dtype::F32, vec![2, 2], vec![0; 16]),
        );
    }));
    let msg = e.to_string();
    assert!(
        matches!(e, LoadError::UnexpectedTensor { .. })
            && msg.contains("mystery")
            && msg.contains("[2, 2]"),
        "{msg}"
    );
    // A layer the config does not have is unexpected too.
    let e = err(hf_files_with(|t| {
        t.insert(
            "bert.encoder.layer.7.output.dense.bias".into(),
            (safetensors::Dtype::F32, vec![32], vec![0; 128]),
        );
    }));
    assert!(
        e.to_string()
            .contains("bert.encoder.layer.7.output.dense.bias"),
        "{e}"
    );
}

#[test]
fn misshaped_tensor_names_both_shapes() {
    let e = err(hf_files_with(|t| {
        t.insert(
            "qa_outputs.weight".into(),
            (safetensors::Dtype::F32, vec![3, 32], vec![0; 3 * 32 * 4]),
        );
    }));
    let msg = e.to_string();
    assert!(
        msg.contains("qa_outputs.weight") && msg.contains("[3, 32]") && msg.contains("[2, 32]"),
        "{msg}"
    );
}

#[test]
fn integer_weights_are_refused() {
    let e = err(hf_files_with(|t| {
        let shape = t["qa_outputs.bias"].1.clone();
        t.insert(
            "qa_outputs.bias".into(),
            (safetensors::Dtype::I32, shape, vec![0; 8]),
        );
    }));
    assert!(e.to_string().contains("qa_outputs.bias"), "{e}");
}

#[test]
fn truncated_and_corrupt_files_say_which_file() {
    let dir = fixture("megatron-tiny");
    let full = std::fs::read(dir.join("model.safetensors")).unwrap();
    for (what, bytes) in [
        ("truncated", full[..full.len() / 2].to_vec()),
        ("corrupt", vec![0xAB; 4096]),
        ("empty", Vec::new()),
    ] {
        let mut files = BTreeMap::new();
        files.insert("model.safetensors".to_string(), bytes);
        files.insert(
            "config.json".to_string(),
            std::fs::read(dir.join("config.json")).unwrap(),
        );
        let msg = err(files).to_string();
        assert!(msg.contains("model.safetensors"), "{what}: {msg}");
    }
    // Truncated .nemo (gzip) and torch zip.
    let nemo = std::fs::read(fixture("megatron-tiny.nemo")).unwrap();
    let e = Checkpoint::from_bytes("cut.nemo", "cut.nemo", nemo[..nemo.len() / 3].to_vec())
        .unwrap_err();
    assert!(e.to_string().starts_with("cut.nemo"), "{e}");
    let bin = std::fs::read(fixture("bert-tiny/pytorch_model.bin")).unwrap();
    let mut files = BTreeMap::new();
    files.insert(
        "pytorch_model.bin".to_string(),
        bin[..bin.len() - 1000].to_vec(),
    );
    files.insert(
        "config.json".to_string(),
        std::fs::read(fixture("bert-tiny/config.json")).unwrap(),
    );
    let e = Checkpoint::from_hf_files("bert-tiny", files).unwrap_err();
    assert!(e.to_string().contains("pytorch_model.bin"), "{e}");
}

#[test]
fn bad_config_is_reported_with_the_field() {
    let mut files = hf_files_with(|_| {});
    files.insert("config.json".into(), br#"{"model_type": "megatron-bert", "vocab_size": 30592, "hidden_size": 30, "num_hidden_layers": 2, "num_attention_heads": 4}"#.to_vec());
    let msg = err(files).to_string();
    assert!(
        msg.contains("config.json") && msg.contains("not divisible"),
        "{msg}"
    );
    let mut files = hf_files_with(|_| {});
    files.insert("config.json".into(), b"{not json".to_vec());
    assert!(err(files).to_string().contains("config.json"));
    let mut files = hf_files_with(|_| {});
    files.insert("config.json".into(), br#"{"model_type": "gpt2"}"#.to_vec());
    assert!(err(files).to_string().contains("gpt2"));
}

#[test]
fn riva_files_explain_the_encryption() {
    let e = Checkpoint::open(fixture("hostile/model.riva")).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, LoadError::Riva { .. }) && msg.contains("encrypted") && msg.contains(".nemo"),
        "{msg}"
    );
}

#[test]
fn pickles_that_call_functions_are_refused() {
    let e = Checkpoint::open(fixture("hostile/evil-pickle")).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("pytorch_model.bin") && msg.contains("system") && msg.contains("refuses"),
        "{msg}"
    );
}

#[test]
fn archives_with_escaping_entries_or_links_are_refused() {
    for (name, needle) in [
        ("parent", ".."),
        ("absolute", "absolute"),
        ("symlink", "link"),
    ] {
        let e = Checkpoint::open(fixture(&format!("hostile/{name}.nemo"))).unwrap_err();
        assert!(matches!(e, LoadError::UnsafeEntry { .. }), "{name}: {e}");
        assert!(e.to_string().contains(needle), "{name}: {e}");
    }
    assert!(!std::path::Path::new("/tmp/escape.txt").exists());
}

#[test]
fn lying_sizes_do_not_allocate() {
    // A safetensors header that claims 2^60 bytes of header.
    let mut bytes = (1u64 << 60).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    assert!(Checkpoint::from_bytes("huge", "huge.safetensors", bytes).is_err());
    // A pickle string that claims 4 GiB.
    let pkl = [0x80, 0x02, b'X', 0xff, 0xff, 0xff, 0xff, b'a'];
    assert!(megaqa_model::checkpoint::pickle::interpret(&pkl).is_err());
}

#[test]
fn missing_paths_and_unknown_files_are_clear() {
    let e = Checkpoint::open("/nonexistent/model.nemo").unwrap_err();
    assert!(e.to_string().contains("/nonexistent/model.nemo"), "{e}");
    let e = Checkpoint::from_bytes("notes.txt", "notes.txt", b"hello".to_vec()).unwrap_err();
    assert!(e.to_string().contains("not a recognised checkpoint"), "{e}");
    let e = Checkpoint::open(common::root().join("tests/fixtures")).unwrap_err();
    assert!(e.to_string().contains("config.json"), "{e}");
}

/// `convert --dtype int8` files: they read back (to within a scale step per value), and a
/// file whose int8 tensor lost its scales, has scales of the wrong shape, or NaN scales
/// is refused in one line naming the tensor.
#[test]
fn int8_files_round_trip_and_bad_scales_are_named() {
    use megaqa_model::checkpoint::Storage;
    let ckpt = Checkpoint::open(fixture("megatron-tiny")).unwrap();
    let bytes = ckpt.to_converted_bytes_as(Storage::Int8, &[]).unwrap();
    let back = Checkpoint::from_bytes("tiny.int8", "tiny.int8.safetensors", bytes.clone()).unwrap();
    let name = "layers.0.ffn_in.weight";
    let (a, b) = (
        ckpt.weights[name].to_f32().unwrap(),
        back.weights[name].to_f32().unwrap(),
    );
    let cols = ckpt.weights[name].shape[1];
    for (ra, rb) in a.chunks(cols).zip(b.chunks(cols)) {
        let step = ra.iter().fold(0.0f32, |m, x| m.max(x.abs())) / 127.0;
        for (x, y) in ra.iter().zip(rb) {
            assert!((x - y).abs() <= step * 0.5 + 1e-7, "{x} vs {y}");
        }
    }
    // Edit the stored file: drop, reshape or poison the scales.
    let edit = |f: &dyn Fn(&mut Tensors)| {
        Checkpoint::from_bytes("tiny.int8", "tiny.int8.safetensors", edited(&bytes, f))
            .expect_err("must fail")
            .to_string()
    };
    let scale = format!("{name}.scale");
    let missing = edit(&|t| {
        t.remove(&scale);
    });
    assert!(
        missing.contains(name) && missing.contains("without its scales"),
        "{missing}"
    );
    let misshaped = edit(&|t| {
        t.insert(
            scale.clone(),
            (safetensors::Dtype::F32, vec![2], vec![0; 8]),
        );
    });
    assert!(
        misshaped.contains(&scale) && misshaped.contains("[2]"),
        "{misshaped}"
    );
    let nan = edit(&|t| {
        let s = t.get_mut(&scale).unwrap();
        s.2[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    assert!(nan.contains(&scale) && nan.contains("NaN"), "{nan}");
    for msg in [missing, misshaped, nan] {
        assert!(!msg.contains('\n'), "one line: {msg}");
    }
}
