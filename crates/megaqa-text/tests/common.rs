//! Shared by the text tests: fixture paths and the tokenizer under test.
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;

use megaqa_text::{QaTokenizer, WindowConfig};

pub fn root() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../..")
}

pub fn tokenizer() -> QaTokenizer {
    let vocab = std::fs::read_to_string(root().join("assets/vocab-uncased.txt")).unwrap();
    QaTokenizer::from_vocab(&vocab, true, WindowConfig::default()).unwrap()
}

pub fn gz_json(name: &str) -> serde_json::Value {
    let f = std::fs::File::open(root().join("tests/fixtures/text").join(name)).unwrap();
    let mut s = String::new();
    flate2::read::GzDecoder::new(f)
        .read_to_string(&mut s)
        .unwrap();
    serde_json::from_str(&s).unwrap()
}

/// A large file from ../shared: fail loudly (not skip) when it is missing.
pub fn shared(rel: &str) -> PathBuf {
    let p = root().join("../shared").join(rel);
    assert!(
        p.is_file(),
        "missing {}: tests need the shared data beside the repository",
        p.display()
    );
    p
}
