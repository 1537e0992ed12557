//! `megaqa train` end to end: overfitting 16 real SQuAD questions, a killed run
//! resumed to the same weights, and bad data refused before any training.

use std::path::{Path, PathBuf};

use megaqa::model::Checkpoint;
use serde_json::{Value, json};

mod common;
use common::{json_of, megaqa, root, tiny, train};

/// The first `n` answerable questions of the two-article SQuAD v2.0 dev file, as a
/// SQuAD file of their own.
fn answerable(dir: &Path, n: usize) -> PathBuf {
    let path = root().join("tests/fixtures/squad/dev-v2.0-two-articles.json");
    let data: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut paragraphs = vec![];
    let mut taken = 0;
    'outer: for article in data["data"].as_array().unwrap() {
        for p in article["paragraphs"].as_array().unwrap() {
            let qas: Vec<Value> = p["qas"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|q| !q["is_impossible"].as_bool().unwrap_or(false))
                .take(n - taken)
                .cloned()
                .collect();
            taken += qas.len();
            if !qas.is_empty() {
                paragraphs.push(json!({"context": p["context"], "qas": qas}));
            }
            if taken == n {
                break 'outer;
            }
        }
    }
    let out = dir.join(format!("answerable-{n}.json"));
    let file = json!({"version": "v2.0", "data": [{"title": "t", "paragraphs": paragraphs}]});
    std::fs::write(&out, file.to_string()).unwrap();
    out
}

fn metrics(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn overfits_sixteen_questions_and_the_directory_is_a_model() {
    let tmp = tempfile::tempdir().unwrap();
    let data = answerable(tmp.path(), 16);
    let out = tmp.path().join("run");
    let data_s = data.display().to_string();
    let out_s = out.display().to_string();
    megaqa()
        .args([
            "train",
            "--model",
            &tiny(),
            "--train",
            &data_s,
            "--out",
            &out_s,
        ])
        .args(["--eval", &data_s, "--device", "cpu", "--epochs", "100"])
        .args([
            "--batch-size",
            "16",
            "--lr",
            "3e-3",
            "--warmup-ratio",
            "0.1",
        ])
        .args(["--log-every", "1", "--save-every", "1000", "--dropout", "0"])
        .assert()
        .success();

    let m = metrics(&out);
    let steps: Vec<&Value> = m.iter().filter(|v| v.get("loss").is_some()).collect();
    assert_eq!(steps.len(), 100);
    for key in ["step", "loss", "lr", "windows_per_s"] {
        assert!(steps[0].get(key).is_some(), "{key} in {}", steps[0]);
    }
    let first = steps[0]["loss"].as_f64().unwrap();
    let last = steps[99]["loss"].as_f64().unwrap();
    eprintln!("loss {first} -> {last}");
    assert!(last < first / 3.0, "loss {first} -> {last}");
    // One evaluation per epoch, with the official keys.
    let evals: Vec<&Value> = m.iter().filter(|v| v.get("exact").is_some()).collect();
    assert_eq!(evals.len(), 100);
    for key in ["epoch", "exact", "f1", "total", "HasAns_exact", "best_f1"] {
        assert!(evals[0].get(key).is_some(), "{key} in {}", evals[0]);
    }
    // The null threshold that would have scored best does at least as well as 0.
    for e in &evals {
        let f1 = e["f1"].as_f64().unwrap();
        let best = e["f1_at_best_null_threshold"].as_f64().unwrap();
        assert!(best >= f1 - 1e-9, "{e}");
        assert!(e["best_null_threshold"].is_f64(), "{e}");
    }
    let svg = std::fs::read_to_string(out.join("loss.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<polyline"));

    // The directory is a model for every other command.
    let pred = tmp.path().join("pred");
    megaqa()
        .args([
            "predict", "--model", &out_s, "--data", &data_s, "--device", "cpu",
        ])
        .args(["--out", &pred.display().to_string()])
        .assert()
        .success();
    let scores = megaqa()
        .args(["evaluate", "--data", &data_s, "--json", "--predictions"])
        .arg(pred.join("predictions.json"))
        .output()
        .unwrap();
    let scores: Value = serde_json::from_slice(&scores.stdout).unwrap();
    let right = scores["exact"].as_f64().unwrap() / 100.0 * 16.0;
    eprintln!("exact {} -> {right:.0}/16", scores["exact"]);
    assert!(right.round() >= 15.0, "{scores}");
}

fn weights(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let c = Checkpoint::open(dir).unwrap();
    c.weights
        .iter()
        .map(|(k, v)| (k.clone(), v.to_f32().unwrap()))
        .collect()
}

/// The largest difference of any weight between two trained directories.
fn max_weight_diff(a: &Path, b: &Path) -> f32 {
    let (a, b) = (weights(a), weights(b));
    assert_eq!(a.len(), b.len());
    let mut worst = 0f32;
    for ((na, va), (nb, vb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        for (x, y) in va.iter().zip(vb) {
            worst = worst.max((x - y).abs());
        }
    }
    worst
}

/// Runs a `megaqa train` command, killed right after update `abort` (the test hook)
/// or resuming the run in its --out.
fn finish(mut c: assert_cmd::Command, abort: Option<&str>, resume: bool) -> std::process::Output {
    if let Some(step) = abort {
        c.env("MEGAQA_TEST_ABORT_AFTER_STEP", step);
    }
    if resume {
        c.arg("--resume");
    }
    c.output().unwrap()
}

/// Mixed precision skips updates whose f16 gradients overflow; a resumed run must
/// keep counting AdamW's updates (not the steps) for its bias correction.
#[test]
fn a_killed_mixed_precision_run_with_skipped_updates_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = answerable(tmp.path(), 16).display().to_string();
    let run = |out: &Path, abort: Option<&str>, resume: bool| {
        let mut c = train(&data, out);
        c.args([
            "--precision",
            "mixed",
            "--max-steps",
            "14",
            "--save-every",
            "10",
        ])
        .args(["--batch-size", "16", "--lr", "3e-3", "--log-every", "1"]);
        finish(c, abort, resume)
    };
    let whole = tmp.path().join("whole");
    assert!(run(&whole, None, false).status.success());
    let m = metrics(&whole);
    let scale_at_10 = m
        .iter()
        .find(|v| v["step"] == 10 && v.get("loss").is_some())
        .unwrap()["loss_scale"]
        .as_f64()
        .unwrap();
    assert!(
        scale_at_10 < 65536.0,
        "an update before the checkpoint should have been skipped"
    );

    let killed = tmp.path().join("killed");
    assert!(!run(&killed, Some("12"), false).status.success());
    let out = run(&killed, None, true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let worst = max_weight_diff(&whole, &killed);
    eprintln!("mixed precision, resumed vs uninterrupted: max |d| {worst}");
    assert!(worst <= 1e-6, "max |d| {worst}");
}

#[test]
fn a_killed_run_resumes_to_the_same_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let data = answerable(tmp.path(), 16).display().to_string();
    let run = |out: &Path, abort: Option<&str>, resume: bool| {
        let mut c = train(&data, out);
        c.args(["--max-steps", "8", "--save-every", "4", "--batch-size", "4"])
            .args([
                "--grad-accum",
                "2",
                "--lr",
                "1e-3",
                "--warmup-ratio",
                "0.25",
            ])
            .args(["--log-every", "1"]);
        finish(c, abort, resume)
    };
    let whole = tmp.path().join("whole");
    assert!(run(&whole, None, false).status.success());

    let killed = tmp.path().join("killed");
    let out = run(&killed, Some("6"), false);
    assert!(!out.status.success(), "the run should have died at step 6");
    // Killed after step 6: the checkpoint on disk is step 4's.
    assert!(killed.join("optimizer-4.safetensors").is_file());
    let out = run(&killed, None, true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("resuming"));

    let worst = max_weight_diff(&whole, &killed);
    eprintln!("resumed vs uninterrupted: max |d| {worst}");
    assert!(worst <= 1e-6, "max |d| {worst}");
    // The metrics of the redone steps are not doubled.
    let steps: Vec<u64> = metrics(&killed)
        .iter()
        .filter_map(|v| v.get("loss").and(v["step"].as_u64()))
        .collect();
    assert_eq!(steps, (1..=8).collect::<Vec<u64>>());
    // Only the last optimizer state is kept.
    assert!(killed.join("optimizer-8.safetensors").is_file());
    assert!(!killed.join("optimizer-4.safetensors").exists());

    // A finished run refuses to be overwritten without --resume.
    let out = run(&whole, None, false);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume"));
}

fn fails_before_training(data: &str, needle: &str) {
    fails_before_training_with(data, &[], needle)
}

fn fails_before_training_with(data: &str, args: &[&str], needle: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("train.json");
    std::fs::write(&path, data).unwrap();
    let out_dir = tmp.path().join("out");
    let out = megaqa()
        .args(["train", "--model", &tiny(), "--device", "cpu", "--train"])
        .arg(&path)
        .arg("--out")
        .arg(&out_dir)
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("megaqa:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(needle),
        "{err}"
    );
    assert!(!out_dir.exists(), "nothing is written for bad data");
}

#[test]
fn bad_training_data_is_refused_with_one_line() {
    fails_before_training("", "");
    fails_before_training("{\"data\": [", "");
    fails_before_training("{\"version\": \"v2.0\", \"data\": []}", "no questions");
    let mismatch = json!({"data": [{"title": "t", "paragraphs": [{"context": "The Normans gave their name to Normandy.",
        "qas": [{"id": "q1", "question": "Who?", "answers": [{"text": "Normans", "answer_start": 0}]}]}]}]});
    fails_before_training(&mismatch.to_string(), "does not match the context");
    let unanswerable = json!({"data": [{"title": "t", "paragraphs": [{"context": "The Normans gave their name to Normandy.",
        "qas": [{"id": "q1", "question": "Who?", "answers": [], "is_impossible": true}]}]}]});
    fails_before_training(
        &unanswerable.to_string(),
        "none of its 1 questions has an answer",
    );
    let good = json!({"data": [{"title": "t", "paragraphs": [{"context": "The Normans gave their name to Normandy.",
        "qas": [{"id": "q1", "question": "Who?", "answers": [{"text": "Normans", "answer_start": 4}]}]}]}]})
    .to_string();
    fails_before_training_with(
        &good,
        &["--negatives", "-1"],
        "--negatives must be a number of at least 0",
    );
    fails_before_training_with(
        &good,
        &["--swap-negatives", "1.5"],
        "--swap-negatives must be a number from 0 to 1, not 1.5",
    );
    fails_before_training_with(
        &good,
        &["--holdout-articles", "1"],
        "leaves none of its 1 articles",
    );
}

/// Negatives and held-out articles: the null threshold chosen on the held-out
/// articles and the window geometry of the run are stored in the model, survive
/// `convert`, and are what `predict` decodes with unless told otherwise.
#[test]
fn the_threshold_chosen_on_held_out_articles_and_the_geometry_travel_with_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    let data = root().join("tests/fixtures/squad/dev-v2.0-two-articles.json");
    let data_s = data.display().to_string();
    let out = tmp.path().join("run");
    let err = train(&data_s, &out)
        .args([
            "--holdout-articles",
            "1",
            "--negatives",
            "1",
            "--group-by-length",
        ])
        .args([
            "--max-seq-len",
            "128",
            "--doc-stride",
            "48",
            "--max-steps",
            "2",
        ])
        .args(["--batch-size", "8", "--log-every", "1", "--eval", &data_s])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(err.status.success(), "{stderr}");
    assert!(
        stderr.contains("chosen on the held-out articles"),
        "{stderr}"
    );
    let m = metrics(&out);
    let held: Vec<&Value> = m.iter().filter(|v| v["set"] == "holdout").collect();
    assert_eq!(held.len(), 1, "{m:?}");
    // The held-out article (Computational_complexity_theory, 418 questions, 221 of them
    // unanswerable) with one negative for each answerable question that has a paragraph
    // without its answer.
    let total = held[0]["total"].as_u64().unwrap();
    assert!((418 + 150..=418 + 197).contains(&total), "{}", held[0]);
    let chosen = held[0]["best_null_threshold"].as_f64().unwrap();
    let d = Checkpoint::open(&out).unwrap().defaults;
    assert_eq!(d.null_threshold, Some(chosen));
    assert_eq!((d.max_seq_len, d.doc_stride), (Some(128), Some(48)));

    let f16 = tmp.path().join("m.safetensors");
    megaqa()
        .args(["convert", "--dtype", "f16", "--model"])
        .arg(&out)
        .arg("--out")
        .arg(&f16)
        .assert()
        .success();
    assert_eq!(Checkpoint::open(&f16).unwrap().defaults, d);

    // predict decodes with the stored threshold: an answer is "" exactly when its
    // null odds exceed it, and an explicit --null-threshold still wins.
    let predict = |extra: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        megaqa()
            .args(["predict", "--device", "cpu", "--data", &data_s, "--model"])
            .arg(&f16)
            .arg("--out")
            .arg(dir.path())
            .args(extra)
            .assert()
            .success();
        let read = |f: &str| -> Value {
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(f)).unwrap()).unwrap()
        };
        (read("predictions.json"), read("null_odds.json"))
    };
    let (preds, odds) = predict(&[]);
    let preds = preds.as_object().unwrap();
    for (id, text) in preds {
        let o = odds[id].as_f64().unwrap();
        assert_eq!(
            text == "",
            o > chosen,
            "{id}: null odds {o}, threshold {chosen}"
        );
    }
    let (forced, _) = predict(&["--null-threshold", "1e9"]);
    assert!(forced.as_object().unwrap().values().all(|t| t != ""));

    // The evaluation during the run scored the network as it was, at the run's
    // geometry (128/48: most paragraphs take two windows) and threshold: what `predict` then `evaluate` give for the saved
    // f32 model.
    let dir = tempfile::tempdir().unwrap();
    megaqa()
        .args(["predict", "--device", "cpu", "--data", &data_s, "--model"])
        .arg(&out)
        .arg("--out")
        .arg(dir.path())
        .assert()
        .success();
    let native = json_of(
        megaqa()
            .args(["evaluate", "--json", "--data", &data_s, "--predictions"])
            .arg(dir.path().join("predictions.json"))
            .arg("--na-prob-file")
            .arg(dir.path().join("null_odds.json")),
    );
    let during = m.iter().find(|v| v["set"] == "eval").expect("an eval line");
    for key in [
        "total",
        "exact",
        "f1",
        "HasAns_f1",
        "NoAns_f1",
        "best_f1_thresh",
    ] {
        let (a, b) = (during[key].as_f64(), native[key].as_f64());
        assert!(
            a.is_some() && (a.unwrap() - b.unwrap_or(f64::NAN)).abs() < 1e-9,
            "{key}: {a:?} during training, {b:?} from predict + evaluate"
        );
    }
    // Two updates leave the tiny network saying "no answer" everywhere, so the scores
    // alone would not see another geometry; the threshold the run reports is then
    // "below every question's null odds" (the lowest - 1), which does.
    let lowest = read_odds(&dir.path().join("null_odds.json"))
        .into_iter()
        .fold(f64::INFINITY, f64::min);
    let reported = during["best_null_threshold"].as_f64().unwrap();
    assert!(
        (reported - (lowest - 1.0)).abs() < 1e-6,
        "threshold {reported} during training; the saved model's lowest null odds {lowest}"
    );
}

/// `--swap-negatives` reaches the run: the two-article file's export (the windows a
/// run trains on) grows with the share of questions that get a swapped twin.
#[test]
fn swapped_question_negatives_join_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = root().join("tests/fixtures/squad/dev-v2.0-two-articles.json");
    let data = data.display().to_string();
    let windows = |share: &str| -> usize {
        let out = train(&data, &tmp.path().join(format!("run-{share}")))
            .args(["--max-seq-len", "128", "--doc-stride", "48"])
            .args(["--swap-negatives", share, "--export"])
            .arg(tmp.path().join(format!("windows-{share}.safetensors")))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        let wrote = err
            .split("wrote ")
            .nth(1)
            .unwrap_or_else(|| panic!("{err}"));
        wrote.split(' ').next().unwrap().parse().unwrap()
    };
    let (none, half, all) = (windows("0"), windows("0.5"), windows("1"));
    assert!(none < half && half < all, "{none} {half} {all}");
}

fn read_odds(path: &Path) -> Vec<f64> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v.as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_f64)
        .collect()
}

/// `--max-steps 0` (a model trained elsewhere on the run's data, e.g. by the PyTorch
/// recipe): no update, the weights saved as they came, with the null threshold chosen
/// on the held-out articles and the run's geometry.
#[test]
fn max_steps_zero_only_calibrates_the_null_threshold() {
    let tmp = tempfile::tempdir().unwrap();
    let data = root().join("tests/fixtures/squad/dev-v2.0-two-articles.json");
    let out = tmp.path().join("calibrated");
    let run = train(&data.display().to_string(), &out)
        .args(["--holdout-articles", "1", "--negatives", "0.5"])
        .args([
            "--max-seq-len",
            "256",
            "--doc-stride",
            "64",
            "--max-steps",
            "0",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let m = metrics(&out);
    let held: Vec<&Value> = m.iter().filter(|v| v["set"] == "holdout").collect();
    assert_eq!(held.len(), 1, "{m:?}");
    assert!(
        m.iter().all(|v| v.get("loss").is_none()),
        "no update: {m:?}"
    );
    let got = Checkpoint::open(&out).unwrap();
    assert_eq!(
        got.defaults.null_threshold,
        held[0]["best_null_threshold"].as_f64()
    );
    assert_eq!(
        (got.defaults.max_seq_len, got.defaults.doc_stride),
        (Some(256), Some(64))
    );
    let before = Checkpoint::open(tiny()).unwrap();
    for (name, w) in &before.weights {
        assert_eq!(got.weights[name].to_f32(), w.to_f32(), "{name} changed");
    }
}

#[test]
fn mixed_precision_trains_with_loss_scaling() {
    let tmp = tempfile::tempdir().unwrap();
    let data = answerable(tmp.path(), 16).display().to_string();
    let out = tmp.path().join("mixed");
    train(&data, &out)
        .args(["--precision", "mixed"])
        .args([
            "--max-steps",
            "12",
            "--batch-size",
            "16",
            "--lr",
            "3e-3",
            "--log-every",
            "1",
        ])
        .assert()
        .success();
    let steps: Vec<Value> = metrics(&out)
        .into_iter()
        .filter(|v| v.get("loss").is_some())
        .collect();
    assert_eq!(steps.len(), 12);
    let (first, last) = (
        steps[0]["loss"].as_f64().unwrap(),
        steps[11]["loss"].as_f64().unwrap(),
    );
    eprintln!(
        "mixed precision: loss {first} -> {last}, scale {}",
        steps[11]["loss_scale"]
    );
    assert!(
        last.is_finite() && last < first * 0.8,
        "loss {first} -> {last}"
    );
    assert!(steps[0]["loss_scale"].as_f64().unwrap() >= 1.0);
    // The master weights stay f32: the saved model is f32.
    let c = Checkpoint::open(&out).unwrap();
    assert_eq!(
        c.weights["qa.weight"].dtype,
        megaqa::model::checkpoint::DType::F32
    );
}
