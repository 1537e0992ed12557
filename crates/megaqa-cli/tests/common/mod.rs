//! What the CLI test files share: paths and the `megaqa` command.
#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

/// The repository, found when the test runs: a path compiled in (`env!`) would point
/// into whichever checkout first built this test binary in the shared target dir.
pub fn root() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `megaqa` with a runtime dir for wgpu.
pub fn megaqa() -> Command {
    let mut c = Command::cargo_bin("megaqa").unwrap();
    c.env(
        "XDG_RUNTIME_DIR",
        std::env::var("XDG_RUNTIME_DIR").unwrap_or("/tmp".into()),
    );
    c
}

/// The tiny random Megatron fixture (HF directory).
pub fn tiny() -> String {
    root()
        .join("tests/fixtures/models/megatron-tiny")
        .display()
        .to_string()
}

/// `megaqa train` on the tiny model and `data`, on the CPU, into `out`.
pub fn train(data: &str, out: &Path) -> Command {
    let mut c = megaqa();
    c.args([
        "train",
        "--model",
        &tiny(),
        "--train",
        data,
        "--device",
        "cpu",
    ])
    .arg("--out")
    .arg(out);
    c
}

/// Runs a command that must succeed and print one JSON value.
pub fn json_of(cmd: &mut Command) -> Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A user error: non-zero exit, one line on stderr starting with `error:` (notes and
/// warnings aside) that contains `needle`, no panic.
pub fn fails_cleanly(cmd: &mut Command, needle: &str) {
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("megaqa:")).collect();
    assert_eq!(lines.len(), 1, "one line expected: {err}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(needle),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{err}"
    );
}
