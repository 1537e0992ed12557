//! `megaqa index` and `ask --docs` / `--index`: a question over documents, with the shipped
//! model, and what a user gets for bad collections and stale or broken index files.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

mod common;
use common::{fails_cleanly, json_of, megaqa, root};

const QUESTION: &str = "Who designed the Larkspur Bridge?";

fn model() -> String {
    root()
        .join("assets/models/minilm-l6-squad.megaqa.safetensors")
        .display()
        .to_string()
}

/// A folder of notes: the unseen passage beside two other documents and a binary file.
fn notes(dir: &Path) {
    std::fs::copy(
        root().join("assets/demo/unseen-passage.txt"),
        dir.join("bridge.txt"),
    )
    .unwrap();
    std::fs::create_dir(dir.join("more")).unwrap();
    std::fs::write(
        dir.join("more/tea.md"),
        "# Tea\n\nTea was first grown in the valley in 1850 by the Orrin family, who sold it at the Wexmoor market.\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("more/ferries.txt"),
        "Before any bridge crossed the Aldern, ferries carried carts across the river at Wexmoor for two centuries.\n",
    )
    .unwrap();
    std::fs::write(dir.join("more/photo.txt"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
}

fn ask(args: &[&str]) -> Command {
    ask_about(QUESTION, args)
}

fn ask_about(question: &str, args: &[&str]) -> Command {
    let mut c = megaqa();
    c.args([
        "ask",
        "--device",
        "cpu",
        "--model",
        &model(),
        "--question",
        question,
    ])
    .args(args);
    c
}

/// Checks the answer of `ask --json` over the notes: the right text, its span in the
/// document, and the ranked passages with their text.
fn check_answer(j: &Value) {
    assert_eq!(j["answer"], "Margaret Hale", "{j}");
    let doc = j["document"].as_str().unwrap();
    assert!(doc.ends_with("bridge.txt"), "{doc}");
    let text = std::fs::read_to_string(doc).unwrap();
    let (s, e) = (
        j["start"].as_u64().unwrap() as usize,
        j["end"].as_u64().unwrap() as usize,
    );
    let span: String = text.chars().skip(s).take(e - s).collect();
    assert_eq!(span, "Margaret Hale");
    let passages = j["passages"].as_array().unwrap();
    assert!(passages.len() >= 2, "the ferry note shares words too: {j}");
    let scores: Vec<f64> = passages
        .iter()
        .map(|p| p["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    for p in passages {
        let text = std::fs::read_to_string(p["document"].as_str().unwrap()).unwrap();
        let (s, e) = (
            p["start"].as_u64().unwrap() as usize,
            p["end"].as_u64().unwrap() as usize,
        );
        let slice: String = text.chars().skip(s).take(e - s).collect();
        assert_eq!(p["text"], slice.as_str());
    }
    assert_eq!(j["passage"], 0, "the bridge passage ranks first: {j}");
}

#[test]
fn a_question_over_documents_is_answered_from_the_right_one() {
    let dir = tempfile::tempdir().unwrap();
    notes(dir.path());
    let docs = dir.path().display().to_string();
    let out = ask(&["--docs", &docs, "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: skipped") && err.contains("photo.txt"),
        "{err}"
    );
    check_answer(&serde_json::from_slice(&out.stdout).unwrap());

    // The same from an index made once.
    let index = dir.path().join("notes.idx");
    megaqa()
        .args(["index", "--docs", &docs, "--out"])
        .arg(&index)
        .assert()
        .success();
    let j = json_of(&mut ask(&[
        "--index",
        &index.display().to_string(),
        "--json",
    ]));
    check_answer(&j);

    // A question no document shares a word with: no answer, nothing read.
    let j = json_of(&mut ask_about(
        "Zeppelins over Xanadu?",
        &["--docs", &docs, "--json"],
    ));
    assert_eq!(
        (j["answer"].as_str(), j["passages"].as_array().map(Vec::len)),
        (Some(""), Some(0)),
        "{j}"
    );

    // The plain report names the document and lists the passages read.
    let out = ask(&["--index", &index.display().to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("Answer: Margaret Hale\nDocument: "),
        "{text}"
    );
    assert!(
        text.contains("bridge.txt, characters ") && text.contains("Passages read"),
        "{text}"
    );
}

#[test]
fn bad_collections_and_index_files_fail_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    notes(dir.path());
    let docs = dir.path().display().to_string();
    let index = dir.path().join("notes.idx");
    let idx = index.display().to_string();

    fails_cleanly(
        &mut ask_about("What was it?", &["--docs", &docs]),
        "only stop words",
    );
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("blob.txt"), b"\xff\xfe\x00").unwrap();
    fails_cleanly(
        &mut ask(&["--docs", &empty.path().display().to_string()]),
        "no documents to read",
    );
    // Nothing half-written where the index cannot go.
    fails_cleanly(
        megaqa().args(["index", "--docs", &docs, "--out", "/nonexistent/dir/x.idx"]),
        "/nonexistent/dir/x.idx: cannot write",
    );
    assert!(!Path::new("/nonexistent/dir/x.idx").exists());

    megaqa()
        .args(["index", "--docs", &docs, "--out", &idx])
        .assert()
        .success();
    // A document edited after indexing.
    std::fs::write(dir.path().join("more/tea.md"), "# Tea\n\nCoffee, now.\n").unwrap();
    fails_cleanly(&mut ask(&["--index", &idx]), "stale index: ");
    // A broken index file, and a model given as an index.
    let mut bytes = std::fs::read(&index).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 0x55;
    std::fs::write(&index, &bytes).unwrap();
    fails_cleanly(&mut ask(&["--index", &idx]), "corrupted");
    fails_cleanly(&mut ask(&["--index", &model()]), "not a megaqa index");
}
