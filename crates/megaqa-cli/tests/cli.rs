//! The `megaqa` binary on the committed fixtures: every command, bad inputs, a .nemo.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

mod common;
use common::{fails_cleanly, json_of, megaqa, root};

fn fx(rel: &str) -> String {
    root()
        .join("tests/fixtures")
        .join(rel)
        .display()
        .to_string()
}

const CONTEXT: &str = "The Normans (Norman: Nourmands; French: Normands; Latin: Normanni) were the people who in the 10th and 11th centuries gave their name to Normandy, a region in France.";

fn ask_json(model: &str, extra: &[&str]) -> Value {
    json_of(
        megaqa()
            .args([
                "ask",
                "--model",
                model,
                "--device",
                "cpu",
                "--json",
                "--question",
                "In what country is Normandy located?",
                "--context",
                CONTEXT,
            ])
            .args(extra),
    )
}

#[test]
fn ask_prints_the_answer_with_its_span() {
    let j = ask_json(&fx("models/megatron-tiny"), &[]);
    let (s, e) = (
        j["start"].as_u64().unwrap() as usize,
        j["end"].as_u64().unwrap() as usize,
    );
    let slice: String = CONTEXT.chars().skip(s).take(e - s).collect();
    assert_eq!(j["answer"].as_str().unwrap(), slice);
    assert!(j["nbest"].as_array().unwrap().len() == 5);
    for k in ["probability", "null_odds", "sentence"] {
        assert!(!j[k].is_null(), "{k}");
    }
    let e0 = &j["nbest"][0];
    for k in [
        "text",
        "start",
        "end",
        "probability",
        "start_logit",
        "end_logit",
    ] {
        assert!(!e0[k].is_null(), "nbest.{k}");
    }
    // Human output marks the answer in the passage when not on a terminal.
    tiny_on_cpu("ask")
        .args(["--question", "Where?", "--context", CONTEXT])
        .assert()
        .success()
        .stdout(predicate::str::contains("[[").and(predicate::str::contains("Answer:")));
}

#[test]
fn nemo_hf_and_converted_give_the_same_answer() {
    let hf = ask_json(&fx("models/megatron-tiny"), &[]);
    let nemo = ask_json(&fx("models/megatron-tiny.nemo"), &[]);
    assert_eq!(hf["answer"], nemo["answer"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny.megaqa");
    let conv = megaqa()
        .args([
            "convert",
            "--model",
            &fx("models/megatron-tiny.nemo"),
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(conv.status.success());
    let line = String::from_utf8_lossy(&conv.stdout);
    assert_eq!(
        line.split_whitespace().next().unwrap().len(),
        64,
        "sha256 printed: {line}"
    );
    let c = ask_json(&out.display().to_string(), &[]);
    assert_eq!(c["answer"], hf["answer"]);
    assert!((c["null_odds"].as_f64().unwrap() - hf["null_odds"].as_f64().unwrap()).abs() < 1e-4);
    // f16 halves the file.
    let out16 = dir.path().join("tiny16.megaqa");
    megaqa()
        .args([
            "convert",
            "--model",
            &fx("models/megatron-tiny.nemo"),
            "--dtype",
            "f16",
            "--out",
        ])
        .arg(&out16)
        .assert()
        .success();
    let (a, b) = (
        std::fs::metadata(&out).unwrap().len(),
        std::fs::metadata(&out16).unwrap().len(),
    );
    assert!(b * 10 < a * 6, "f16 {b} vs f32 {a}");
    ask_json(&out16.display().to_string(), &[]);
}

#[test]
fn null_threshold_turns_answers_off() {
    let j = ask_json(&fx("models/megatron-tiny"), &["--null-threshold", "-1000"]);
    assert_eq!(j["answer"], "");
    assert!(j["start"].is_null());
    tiny_on_cpu("ask")
        .args([
            "--null-threshold",
            "-1000",
            "--question",
            "Where?",
            "--context",
            CONTEXT,
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("No answer in this passage"));
}

#[test]
fn very_long_passages_and_questions_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.txt");
    let mut text = String::new();
    while text.len() < 1_000_000 {
        text.push_str(CONTEXT);
        text.push(' ');
    }
    std::fs::write(&path, &text).unwrap();
    let question = "what ".repeat(200);
    let j = json_of(
        tiny_on_cpu("ask")
            .args(["--json", "--question", &question, "--context-file"])
            .arg(&path),
    );
    assert!(j["null_odds"].is_number());
}

/// `megaqa ask` on the CPU with a one-word question and passage, and `model`.
fn ask_with(model: &Path) -> Command {
    ask_on(model, "cpu", "q", "c")
}

/// `megaqa <command>` with the tiny Megatron fixture on the CPU.
fn tiny_on_cpu(command: &str) -> Command {
    let mut c = megaqa();
    c.args([
        command,
        "--model",
        &fx("models/megatron-tiny"),
        "--device",
        "cpu",
    ]);
    c
}

/// `megaqa ask` with `model` on `device`, for one question over one passage.
fn ask_on(model: impl AsRef<Path>, device: &str, question: &str, context: &str) -> Command {
    let mut c = megaqa();
    c.args(["ask", "--model"]).arg(model.as_ref()).args([
        "--device",
        device,
        "--question",
        question,
        "--context",
        context,
    ]);
    c
}

#[test]
fn bad_inputs_fail_with_one_clear_line() {
    let m = fx("models/megatron-tiny");
    fails_cleanly(
        megaqa().args([
            "ask",
            "--model",
            "/nope/model",
            "--question",
            "q",
            "--context",
            "c",
        ]),
        "/nope/model",
    );
    fails_cleanly(&mut ask_on(&m, "cpu", "q", "  "), "passage is empty");
    fails_cleanly(&mut ask_on(&m, "cpu", " ", "c"), "question is empty");
    fails_cleanly(&mut ask_on(&m, "tpu", "q", "c"), "unknown device");
    fails_cleanly(
        &mut ask_with(Path::new(&fx("models/hostile/model.riva"))),
        ".nemo",
    );
    fails_cleanly(
        &mut ask_with(Path::new(&fx("models/hostile/evil-pickle"))),
        "refuses",
    );
    fails_cleanly(
        megaqa().args([
            "ask",
            "--model",
            &m,
            "--device",
            "cpu",
            "--question",
            "q",
            "--context-file",
            "/nope.txt",
        ]),
        "/nope.txt",
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"data\": [").unwrap();
    fails_cleanly(
        megaqa()
            .args(["predict", "--model", &m, "--device", "cpu", "--out"])
            .arg(dir.path().join("o"))
            .arg("--data")
            .arg(&bad),
        "malformed JSON",
    );
    fails_cleanly(
        megaqa()
            .args([
                "evaluate",
                "--data",
                &fx("squad/dev-v2.0-two-articles.json"),
                "--predictions",
            ])
            .arg(&bad),
        "malformed JSON",
    );
    fails_cleanly(
        megaqa()
            .args(["predict", "--model", &m, "--batch-size", "0", "--out"])
            .arg(dir.path().join("o"))
            .arg("--data")
            .arg(fx("squad/dev-v2.0-two-articles.json")),
        "--batch-size",
    );
    let cut = dir.path().join("cut.nemo");
    let nemo = std::fs::read(fx("models/megatron-tiny.nemo")).unwrap();
    std::fs::write(&cut, &nemo[..nemo.len() / 2]).unwrap();
    fails_cleanly(&mut ask_with(&cut), "cut.nemo");
    // A converted file whose stored defaults are not what they must be.
    let ckpt = megaqa::model::Checkpoint::open(&m).unwrap();
    for (defaults, needle) in [
        (r#"{"null_threshold": "high"}"#, "megaqa.defaults"),
        (r#"{"null_threshold": 1e999}"#, "megaqa.defaults"),
        (r#"{"max_seq_len": 0}"#, "max_seq_len"),
    ] {
        let file = dir.path().join("bad-defaults.safetensors");
        let bytes = ckpt
            .to_converted_bytes_with(false, &[("megaqa.defaults", defaults.to_string())])
            .unwrap();
        std::fs::write(&file, bytes).unwrap();
        fails_cleanly(&mut ask_with(&file), needle);
    }
}

/// A file of random bytes named .nemo: the error quotes what it read, escaped, on one
/// line, so a crafted file cannot write escape sequences to the terminal.
#[test]
fn hostile_file_content_reaches_the_terminal_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("random.nemo");
    // A deterministic "random" file: every byte value, control characters included.
    let bytes: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&file, &bytes).unwrap();
    let out = ask_with(&file).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("random.nemo"), "{line}");
    assert!(
        !err.chars().any(|c| c.is_control() && c != '\n'),
        "control characters reached the terminal: {err:?}"
    );
    assert!(
        line.chars().count() <= 620,
        "{} characters",
        line.chars().count()
    );
}

/// `--max-seq-len` and `--doc-stride` override the model's window geometry; impossible
/// ones are refused in one line.
#[test]
fn window_geometry_flags_override_the_model_and_are_checked() {
    let m = fx("models/megatron-tiny");
    let long = root().join("assets/demo/long-passage.txt");
    let ask_long = |extra: &[&str]| {
        json_of(
            megaqa()
                .args(["ask", "--model", &m, "--device", "cpu", "--json"])
                .args(["--question", "When was the Duchy of Normandy founded?"])
                .arg("--context-file")
                .arg(&long)
                .args(extra),
        )
    };
    // 4160 characters: several 384-token windows, more 96-token ones, which score the
    // null answer differently.
    let base = ask_long(&[]);
    let small = ask_long(&["--max-seq-len", "96", "--doc-stride", "16"]);
    assert!(base["null_odds"].is_number() && small["null_odds"].is_number());
    assert_ne!(
        base["null_odds"], small["null_odds"],
        "96-token windows read differently"
    );
    let geometry = |extra: &[&str], needle: &str| {
        let mut c = ask_with(Path::new(&m));
        c.args(extra);
        fails_cleanly(&mut c, needle);
    };
    geometry(&["--max-seq-len", "100000"], "position embeddings");
    geometry(
        &["--max-seq-len", "64", "--doc-stride", "60"],
        "must exceed the stride",
    );
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn predict_writes_the_three_files_and_matches_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    tiny_on_cpu("predict")
        .args([
            "--batch-size",
            "16",
            "--data",
            &fx("squad/dev-v2.0-two-articles.json"),
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let preds = read_json(&out.join("predictions.json"));
    let odds = read_json(&out.join("null_odds.json"));
    let nbest = read_json(&out.join("nbest.json"));
    let ref_preds = read_json(&root().join("tests/fixtures/predict/predictions.json"));
    let ref_odds = read_json(&root().join("tests/fixtures/predict/null_odds.json"));
    assert_eq!(preds.as_object().unwrap().len(), 626);
    let mut same = 0;
    for (id, p) in ref_preds.as_object().unwrap() {
        let near_tie = ref_odds[id].as_f64().unwrap().abs() < 1e-3;
        if !near_tie && preds[id] == *p {
            same += 1;
        }
        assert!(
            (odds[id].as_f64().unwrap() - ref_odds[id].as_f64().unwrap()).abs() < 2e-4,
            "{id}"
        );
        let e = &nbest[id][0];
        assert!(
            e["start_logit"].is_number()
                && e["end_logit"].is_number()
                && e["probability"].is_number()
        );
    }
    // The engine test checks near-ties precisely; here nearly all must agree.
    assert!(
        same >= 620,
        "only {same} of 626 predictions equal the reference"
    );
    // And the files score.
    let j = evaluate_two_articles(&out.join("predictions.json"), &out.join("null_odds.json"));
    assert_eq!(j["total"], 626);
    assert!(j["best_f1_thresh"].is_number());
}

/// `megaqa evaluate --json` of `predictions` and `na_probs` on the two-article file.
fn evaluate_two_articles(predictions: &Path, na_probs: &Path) -> Value {
    json_of(
        megaqa()
            .args([
                "evaluate",
                "--json",
                "--data",
                &fx("squad/dev-v2.0-two-articles.json"),
            ])
            .arg("--predictions")
            .arg(predictions)
            .arg("--na-prob-file")
            .arg(na_probs),
    )
}

#[test]
fn evaluate_prints_the_official_keys() {
    let cases = read_json(&root().join("tests/fixtures/text/scoring.json"));
    let case = cases
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "with-na-probs")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (p, n) = (dir.path().join("p.json"), dir.path().join("n.json"));
    std::fs::write(&p, case["preds"].to_string()).unwrap();
    std::fs::write(&n, case["na_probs"].to_string()).unwrap();
    let ours = evaluate_two_articles(&p, &n);
    let theirs = case["expected"].as_object().unwrap();
    assert_eq!(
        ours.as_object().unwrap().keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    for (k, v) in theirs {
        assert!(
            (ours[k].as_f64().unwrap() - v.as_f64().unwrap()).abs() < 1e-9,
            "{k}"
        );
    }
}

/// A small SQuAD file: the first paragraph of the two-article file.
fn mini_squad(dir: &Path) -> PathBuf {
    let full = read_json(&root().join("tests/fixtures/squad/dev-v2.0-two-articles.json"));
    let para = &full["data"][0]["paragraphs"][0];
    let mini = serde_json::json!({"version": "v2.0", "data": [{"title": "Normans", "paragraphs": [para]}]});
    let path = dir.join("mini.json");
    std::fs::write(&path, mini.to_string()).unwrap();
    path
}

#[test]
fn parity_cpu_vs_wgpu_passes_and_a_doctored_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let data = mini_squad(dir.path());
    let export = dir.path().join("wgpu-results.json");
    let m = fx("models/megatron-tiny");
    megaqa()
        .args([
            "parity",
            "--model",
            &m,
            "--device-a",
            "wgpu",
            "--device-b",
            "cpu",
            "--tolerance",
            "1e-4",
            "--data",
        ])
        .arg(&data)
        .arg("--export")
        .arg(&export)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("parity: ok")
                .and(predicate::str::contains("identical answers"))
                // The Vulkan adapter (lavapipe here) runs SPIR-V kernels, the path to
                // tensor cores on a GPU (vendor/README.md: it crashed lavapipe before).
                .and(predicate::str::contains(", SPIR-V)   B: cpu")),
        );
    // A fresh CPU run against a results file.
    let against = |file: &Path| {
        let mut c = megaqa();
        c.args(["parity", "--model", &m, "--device-a", "cpu"])
            .args(["--tolerance", "1e-4", "--data"])
            .arg(&data)
            .arg("--against")
            .arg(file);
        c
    };
    // The exported file passes...
    against(&export).assert().success();
    // ...and fails once one logit is doctored.
    let mut doctored = read_json(&export);
    let v = doctored["results"][3]["start_logits"][0][20]
        .as_f64()
        .unwrap();
    doctored["results"][3]["start_logits"][0][20] = Value::from(v + 0.5);
    let bad = dir.path().join("doctored.json");
    std::fs::write(&bad, doctored.to_string()).unwrap();
    against(&bad)
        .assert()
        .failure()
        .stderr(predicate::str::contains("parity failed"));
    // A results file of another model is refused.
    fails_cleanly(
        megaqa()
            .args([
                "parity",
                "--model",
                &fx("models/bert-tiny"),
                "--device-a",
                "cpu",
                "--data",
            ])
            .arg(&data)
            .arg("--against")
            .arg(&export),
        "another model",
    );
}

/// A web session's export has no question ids and may ask one question over several
/// passages, or twice over one: each result is compared with the native run over its
/// own passage.
#[test]
fn parity_against_a_session_that_asks_one_question_over_two_passages() {
    let dir = tempfile::tempdir().unwrap();
    let full = read_json(&root().join("tests/fixtures/squad/dev-v2.0-two-articles.json"));
    let paragraphs = &full["data"][0]["paragraphs"];
    let question = "In what country is Normandy located?";
    let asked = |p: &Value, id: &str| {
        let mut p = p.clone();
        p["qas"] = serde_json::json!([{"id": id, "question": question, "answers": [], "is_impossible": true}]);
        p
    };
    let data = serde_json::json!({"version": "v2.0", "data": [{"title": "Normans", "paragraphs": [
        asked(&paragraphs[0], "a"), asked(&paragraphs[1], "b"), asked(&paragraphs[0], "c"),
    ]}]});
    let data_file = dir.path().join("asked.json");
    std::fs::write(&data_file, data.to_string()).unwrap();
    let export = dir.path().join("session.json");
    let m = fx("models/megatron-tiny");
    megaqa()
        .args([
            "parity",
            "--model",
            &m,
            "--device-a",
            "cpu",
            "--device-b",
            "cpu",
        ])
        .arg("--data")
        .arg(&data_file)
        .arg("--export")
        .arg(&export)
        .assert()
        .success();
    // As the web app writes it: no ids, each result with its passage.
    let mut session = read_json(&export);
    for (r, p) in session["results"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .zip([0, 1, 0])
    {
        r["id"] = Value::Null;
        r["context"] = paragraphs[p]["context"].clone();
    }
    std::fs::write(&export, session.to_string()).unwrap();
    megaqa()
        .args(["parity", "--model", &m, "--device-a", "cpu", "--against"])
        .arg(&export)
        .assert()
        .success()
        .stdout(predicate::str::contains("identical answers: 3/3"));
    // A passage changed in the file (its hash no longer matches): named by its question.
    session["results"][1]["context_sha256"] = Value::from("0".repeat(64));
    std::fs::write(&export, session.to_string()).unwrap();
    fails_cleanly(
        megaqa()
            .args(["parity", "--model", &m, "--device-a", "cpu", "--against"])
            .arg(&export),
        "question `In what country is Normandy located?`: the two runs saw different passages",
    );
}

/// `--precision f16|bf16` runs the network in 16 bits: on the two-article dev file its
/// answers agree with f32's (`parity` between precisions on one device reports how
/// many and the largest logit difference); a device without the dtype says so in one line.
/// GPU runs keep autotune's choices on disk: the first run writes the cache where
/// MEGAQA_TUNE_CACHE says, and a damaged cache is set aside with one line and rebuilt,
/// never a panic and never a silent re-tune on every run.
#[test]
fn the_gpu_tuning_cache_persists_and_a_damaged_one_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("default.db");
    let ask = || {
        megaqa()
            .env("MEGAQA_TUNE_CACHE", dir.path())
            .args([
                "ask",
                "--device",
                "wgpu",
                "--model",
                &fx("models/megatron-tiny"),
            ])
            .args([
                "--question",
                "In what country is Normandy located?",
                "--context",
                CONTEXT,
            ])
            .assert()
            .success()
    };
    ask().stderr(predicate::str::contains("tuning cache").not());
    let head = std::fs::read(&db).expect("the first GPU run writes the tuning cache");
    assert!(
        head.starts_with(b"SQLite format 3\0"),
        "{} is not SQLite",
        db.display()
    );

    std::fs::write(&db, b"\x1b[31mnot a database at all").unwrap();
    let out = ask().get_output().clone();
    let err = String::from_utf8_lossy(&out.stderr);
    let notice: Vec<&str> = err.lines().filter(|l| l.contains("tuning cache")).collect();
    assert_eq!(notice.len(), 1, "one line about the cache: {err}");
    assert!(notice[0].contains("not a database") && notice[0].contains("default.db.corrupt"));
    assert!(dir.path().join("default.db.corrupt").exists());
    assert!(
        std::fs::read(&db)
            .unwrap()
            .starts_with(b"SQLite format 3\0"),
        "a fresh cache"
    );
    ask().stderr(predicate::str::contains("tuning cache").not());
}

#[test]
fn sixteen_bit_precisions_agree_with_f32() {
    let data = root().join("tests/fixtures/squad/dev-v2.0-two-articles.json");
    let agree = |model: &str, precision: &str, device: &str| -> (usize, usize, f64) {
        let out = megaqa()
            .args(["parity", "--model", &fx(model), "--device-a", device])
            .args([
                "--precision",
                precision,
                "--device-b",
                device,
                "--precision-b",
                "f32",
            ])
            .args(["--tolerance", "1", "--batch-size", "32", "--data"])
            .arg(&data)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(&format!(", {precision}   B: ")), "{stdout}");
        let field = |key: &str| -> String {
            let line = stdout.lines().find(|l| l.starts_with(key)).unwrap();
            line[key.len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string()
        };
        let (same, n) = field("identical answers: ")
            .split_once('/')
            .map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap()))
            .unwrap();
        (same, n, field("max |d logit|: ").parse().unwrap())
    };
    // f16 on both model families, on the CPU: measured 622 and 624 of 626 (max |d| 2e-3).
    for model in ["models/megatron-tiny", "models/bert-tiny"] {
        let (same, n, d) = agree(model, "f16", "cpu");
        assert_eq!(n, 626);
        assert!(same * 100 >= n * 99, "{model}: f16 agrees on {same}/{n}");
        assert!(d > 0.0 && d < 1e-2, "{model}: f16 max |d logit| {d}");
    }
    // bf16 keeps 8 bits of mantissa: these random tiny models' logits are near-ties, so
    // fewer answers agree (measured 595 and 612 of 626); the floor says it still reads.
    let (same, n, d) = agree("models/bert-tiny", "bf16", "cpu");
    assert!(same * 100 >= n * 95, "bf16 agrees on {same}/{n}");
    assert!(d < 5e-2, "bf16 max |d logit| {d}");
    // Mesa lavapipe computes in f16 (as the CPU did above) but not in bf16.
    let (same, _, _) = agree("models/megatron-tiny", "f16", "wgpu");
    assert!(same * 100 >= n * 99, "wgpu f16 agrees on {same}/{n}");
    fails_cleanly(
        megaqa()
            .args([
                "ask",
                "--model",
                &fx("models/megatron-tiny"),
                "--device",
                "wgpu",
            ])
            .args([
                "--precision",
                "bf16",
                "--question",
                "Who?",
                "--context",
                "The Normans.",
            ]),
        "does not compute in bf16",
    );
    fails_cleanly(
        megaqa().args(["bench", "--random", "megatron-345m", "--precision", "mixed"]),
        "--precision mixed is for --train",
    );
    fails_cleanly(
        megaqa().args([
            "ask",
            "--model",
            &fx("models/megatron-tiny"),
            "--device",
            "wgpu",
            "--precision",
            "int8",
            "--question",
            "Who?",
            "--context",
            "The Normans.",
        ]),
        "--precision int8: runs on the CPU only",
    );
    fails_cleanly(
        megaqa().args([
            "bench",
            "--random",
            "megatron-345m",
            "--precision",
            "int8",
            "--train",
        ]),
        "--precision int8 is for inference",
    );
    fails_cleanly(
        megaqa().args([
            "ask",
            "--model",
            &fx("models/megatron-tiny"),
            "--precision",
            "f8",
        ]),
        "f8",
    );
}

#[test]
fn bench_reports_the_keys_scripts_read() {
    let j = json_of(tiny_on_cpu("bench").args([
        "--seq-len",
        "128",
        "--batch-size",
        "2",
        "--runs",
        "2",
        "--profile",
        "--json",
    ]));
    for k in ["load_s", "windows_per_s", "tokens_per_s", "peak_rss_mb"] {
        assert!(j[k].as_f64().unwrap() > 0.0, "{k}");
    }
    // --profile: every kind of step of a pre-LN network, with its calls per pass.
    let layers = 2;
    let calls = |op: &str| {
        j["profile"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["op"] == op)
            .unwrap_or_else(|| panic!("no {op} in {}", j["profile"]))["calls"]
            .as_u64()
            .unwrap()
    };
    for (op, n) in [
        ("embeddings", 1),
        ("layer_norm", 2 * layers + 1),
        ("qkv_projection", layers),
        ("attention", layers),
        ("attention_output", layers),
        ("ffn_in", layers),
        ("activation", layers),
        ("ffn_out", layers),
        ("residual_add", 2 * layers),
        ("span_head", 1),
    ] {
        assert_eq!(calls(op), n, "{op}");
    }
    let shares: f64 = j["profile"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["share"].as_f64().unwrap())
        .sum();
    assert!(shares > 0.0 && shares <= 1.0 + 1e-9, "{shares}");
}

/// Measured by scripts/score-squad-model.sh on the two-article file (2026-11-29, the
/// stage-5 model): F1 58.74 at the stored threshold, HasAns F1 76.52 with answers forced.
const FLOOR_F1: f64 = 57.7;
const FLOOR_FORCED_HASANS_F1: f64 = 75.5;

/// The shipped model (assets/models; the README's model card) on the 626 questions of
/// the two-article dev file, which it was never trained or tuned on. The floors sit a
/// point under what scripts/score-squad-model.sh measured (the CPU run is
/// deterministic), so that a broken model, loader or pipeline fails here.
#[test]
fn the_shipped_model_answers_squad_questions_it_never_saw() {
    let model = root()
        .join("assets/models/minilm-l6-squad.megaqa.safetensors")
        .display()
        .to_string();
    // The README's first command, at the model's stored threshold.
    let j = json_of(
        megaqa()
            .args(["ask", "--device", "cpu", "--json", "--model", &model])
            .args([
                "--context-file",
                &root()
                    .join("assets/demo/unseen-passage.txt")
                    .display()
                    .to_string(),
            ])
            .args(["--question", "Who designed the Larkspur Bridge?"]),
    );
    assert_eq!(j["answer"], "Margaret Hale", "{j}");
    // Its stored threshold abstains on most questions (README); at 0 it answers more.
    let j = ask_json(&model, &["--null-threshold", "0"]);
    assert_eq!(j["answer"], "France", "{j}");

    let data = fx("squad/dev-v2.0-two-articles.json");
    let dir = tempfile::tempdir().unwrap();
    // Without --batch-size: the CPU's measured default.
    megaqa()
        .args(["predict", "--device", "cpu", "--model", &model])
        .args(["--data", &data, "--out"])
        .arg(dir.path())
        .assert()
        .success()
        .stderr(predicate::str::contains("batches of 8) on cpu"));
    let preds = read_json(&dir.path().join("predictions.json"));
    let odds = read_json(&dir.path().join("null_odds.json"));
    let nbest = read_json(&dir.path().join("nbest.json"));
    let dataset = megaqa::text::Dataset::open(&data).unwrap();
    let entries = |v: &Value| v.as_object().unwrap().clone().into_iter();
    let texts: Vec<(String, String)> = entries(&preds)
        .map(|(k, v)| (k, v.as_str().unwrap().to_string()))
        .collect();
    let na: Vec<(String, f64)> = entries(&odds)
        .map(|(k, v)| (k, v.as_f64().unwrap()))
        .collect();
    // Forced answers: every question's best non-empty span.
    let forced: Vec<(String, String)> = entries(&nbest)
        .map(|(k, v)| {
            let list = v.as_array().unwrap();
            let best = list
                .iter()
                .filter_map(|e| e["text"].as_str())
                .find(|t| !t.is_empty());
            (k, best.unwrap_or_default().to_string())
        })
        .collect();
    // The official --na-prob-thresh (1.0) would blank forced answers with higher odds.
    let score = |p: &[(String, String)], na_thresh: f64| {
        megaqa::text::scoring::evaluate(&dataset, p, Some(&na), na_thresh).unwrap()
    };
    let at_threshold = score(&texts, 1.0);
    let forced = score(&forced, f64::INFINITY);
    let f = |m: &serde_json::Map<String, Value>, k: &str| m[k].as_f64().unwrap();
    eprintln!(
        "shipped model, two-article file: F1 {:.2} (HasAns {:.2}, NoAns {:.2}); forced HasAns F1 {:.2}",
        f(&at_threshold, "f1"),
        f(&at_threshold, "HasAns_f1"),
        f(&at_threshold, "NoAns_f1"),
        f(&forced, "HasAns_f1")
    );
    assert!(f(&at_threshold, "f1") >= FLOOR_F1, "{at_threshold:?}");
    assert!(
        f(&forced, "HasAns_f1") >= FLOOR_FORCED_HASANS_F1,
        "{forced:?}"
    );

    // --precision int8 (int8 matmul weights and word embeddings, 12-bit per-token
    // activations): 621 of the 626 answers equal f32's (2026-11-29; 617 with 8-bit
    // activations, 621 with exact ones; the changes are no-answer decisions near the
    // threshold). The int8 issue's target is 99% (620); the floor leaves two answers for
    // the f32 parts rounding differently on another CPU (AVX2 rather than AVX-512
    // matmuls), and 8-bit activations or a broken kernel fall below it.
    let int8 = tempfile::tempdir().unwrap();
    megaqa()
        .args(["predict", "--device", "cpu", "--precision", "int8"])
        .args([
            "--batch-size",
            "32",
            "--model",
            &model,
            "--data",
            &data,
            "--out",
        ])
        .arg(int8.path())
        .assert()
        .success();
    let preds8 = read_json(&int8.path().join("predictions.json"));
    let same = texts
        .iter()
        .filter(|(k, v)| preds8[k.as_str()].as_str() == Some(v.as_str()))
        .count();
    assert!(
        same >= 618,
        "int8 gave the f32 answer for {same} of {}",
        texts.len()
    );
    let texts8: Vec<(String, String)> = entries(&preds8)
        .map(|(k, v)| (k, v.as_str().unwrap().to_string()))
        .collect();
    let na8: Vec<(String, f64)> = entries(&read_json(&int8.path().join("null_odds.json")))
        .map(|(k, v)| (k, v.as_f64().unwrap()))
        .collect();
    let f1_8 = megaqa::text::scoring::evaluate(&dataset, &texts8, Some(&na8), 1.0).unwrap();
    assert!(
        (f(&f1_8, "f1") - f(&at_threshold, "f1")).abs() <= 1.0,
        "int8 F1 {} against f32 {}",
        f(&f1_8, "f1"),
        f(&at_threshold, "f1")
    );
}
