//! A converted model read lazily (`Checkpoint::from_source`: its header first, each
//! tensor when the network takes it), as the browser reads a big model kept in a file,
//! answers exactly as the same file read whole, and a file that turns out short or
//! unreadable is an error that names the tensor and the file, never a panic.

use std::path::PathBuf;
use std::sync::Arc;

use burn::tensor::{DType, Device};
use megaqa::Engine;
use megaqa::model::Checkpoint;
use megaqa::model::checkpoint::{ByteSource, FileSource};

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../assets/models/minilm-l6-squad.megaqa.safetensors")
}

fn lazily(path: &std::path::Path) -> Checkpoint {
    let (source, len) = FileSource::open(path).unwrap();
    Checkpoint::from_source("lazy", Arc::new(source), len).unwrap()
}

const QUESTIONS: [&str; 3] = [
    "Who designed the Larkspur Bridge?",
    "How long is the bridge?",
    "When was it listed as a protected monument?",
];

#[test]
fn a_model_read_tensor_by_tensor_answers_as_the_file_read_whole() {
    let passage = include_str!("../../../assets/demo/unseen-passage.txt");
    let lazy = lazily(&shipped());
    assert!(
        lazy.weights.values().all(|t| !t.is_held()),
        "no tensor is read before the network takes it"
    );
    let whole = Checkpoint::open(shipped()).unwrap();
    for (name, t) in &whole.weights {
        assert_eq!(lazy.weights[name].to_f32(), t.to_f32(), "{name}");
    }
    type Build = fn(Checkpoint) -> Engine;
    let builds: [(&str, Build); 2] = [
        ("f32", |c| {
            Engine::new(c, Device::flex(), DType::F32).unwrap()
        }),
        ("16-bit kept", |c| {
            Engine::new_16bit(c, Device::flex()).unwrap()
        }),
    ];
    let designer = QUESTIONS[0];
    for (how, build) in builds {
        let (a, b) = (
            build(lazily(&shipped())),
            build(Checkpoint::open(shipped()).unwrap()),
        );
        assert_eq!(a.model_sha256, b.model_sha256, "{how}");
        for q in QUESTIONS {
            let (x, y) = (a.ask(q, passage, 8).unwrap(), b.ask(q, passage, 8).unwrap());
            assert_eq!(x.prediction.text(), y.prediction.text(), "{how}: {q}");
            assert_eq!(x.logits, y.logits, "{how}: {q}");
        }
        let answer = a.ask(designer, passage, 8).unwrap();
        assert_eq!(answer.prediction.text(), "Margaret Hale", "{how}");
    }
}

#[test]
fn a_short_file_is_refused_when_its_header_is_read() {
    let bytes = std::fs::read(shipped()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.safetensors");
    std::fs::write(&short, &bytes[..bytes.len() - 1000]).unwrap();
    let (source, len) = FileSource::open(&short).unwrap();
    let e = Checkpoint::from_source("short.safetensors", Arc::new(source), len).unwrap_err();
    let e = e.to_string();
    assert!(
        e.starts_with("short.safetensors: not a valid safetensors file: its tensors take"),
        "{e}"
    );
}

/// The file, failing every read past `after` bytes (as a file removed or cut while the
/// network is built would).
struct FailsAfter {
    bytes: Vec<u8>,
    after: u64,
}

impl ByteSource for FailsAfter {
    fn read_at(&self, offset: u64, out: &mut [u8]) -> Result<(), String> {
        if offset + out.len() as u64 > self.after {
            return Err(format!("model.safetensors: cannot read at {offset}"));
        }
        out.copy_from_slice(&self.bytes[offset as usize..offset as usize + out.len()]);
        Ok(())
    }
}

#[test]
fn a_tensor_that_cannot_be_read_fails_the_build_naming_it() {
    let bytes = std::fs::read(shipped()).unwrap();
    let len = bytes.len() as u64;
    let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap());
    let source = Arc::new(FailsAfter {
        bytes,
        after: header + 4096,
    });
    let ckpt = Checkpoint::from_source("model.safetensors", source, len).unwrap();
    let e = match Engine::new(ckpt, Device::flex(), DType::F32) {
        Ok(_) => panic!("a build over unreadable tensors must fail"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.starts_with("model.safetensors: cannot read at ") && e.contains("(tensor `"),
        "{e}"
    );
}
