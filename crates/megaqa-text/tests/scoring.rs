//! Our scores equal the official SQuAD v2.0 evaluation on every key to 1e-9.

#[path = "common.rs"]
mod common;

use megaqa_text::Dataset;
use megaqa_text::scoring::{compute_exact, compute_f1, evaluate, normalize_answer};

#[test]
fn scores_match_the_official_evaluation() {
    let data =
        Dataset::open(common::root().join("tests/fixtures/squad/dev-v2.0-two-articles.json"))
            .unwrap();
    let text =
        std::fs::read_to_string(common::root().join("tests/fixtures/text/scoring.json")).unwrap();
    let cases: serde_json::Value = serde_json::from_str(&text).unwrap();
    for case in cases.as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let preds: Vec<(String, String)> = case["preds"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let na: Option<Vec<(String, f64)>> = case["na_probs"].as_object().map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
                .collect()
        });
        let ours = evaluate(
            &data,
            &preds,
            na.as_deref(),
            case["na_prob_thresh"].as_f64().unwrap(),
        )
        .unwrap();
        let theirs = case["expected"].as_object().unwrap();
        let ok: Vec<&String> = ours.keys().collect();
        let tk: Vec<&String> = theirs.keys().collect();
        assert_eq!(ok, tk, "{name}: keys and their order");
        for (k, v) in theirs {
            let (a, b) = (ours[k].as_f64().unwrap(), v.as_f64().unwrap());
            assert!((a - b).abs() < 1e-9, "{name}.{k}: {a} vs {b}");
            assert_eq!(ours[k].is_u64(), v.is_u64(), "{name}.{k}: integer-ness");
        }
    }
}

#[test]
fn normalisation_and_f1_match_on_tricky_strings() {
    let text =
        std::fs::read_to_string(common::root().join("tests/fixtures/text/normalize.json")).unwrap();
    let cases: serde_json::Value = serde_json::from_str(&text).unwrap();
    for c in cases.as_array().unwrap() {
        let (g, p) = (c["gold"].as_str().unwrap(), c["pred"].as_str().unwrap());
        assert_eq!(
            normalize_answer(g),
            c["norm_gold"].as_str().unwrap(),
            "{g:?}"
        );
        assert_eq!(
            normalize_answer(p),
            c["norm_pred"].as_str().unwrap(),
            "{p:?}"
        );
        assert_eq!(
            compute_exact(g, p),
            c["exact"].as_f64().unwrap(),
            "{g:?} {p:?}"
        );
        assert!(
            (compute_f1(g, p) - c["f1"].as_f64().unwrap()).abs() < 1e-12,
            "{g:?} {p:?}"
        );
    }
}

#[test]
fn missing_predictions_are_reported() {
    let data =
        Dataset::open(common::root().join("tests/fixtures/squad/dev-v2.0-two-articles.json"))
            .unwrap();
    let preds: Vec<(String, String)> = data
        .examples
        .iter()
        .skip(1)
        .map(|e| (e.id.clone(), String::new()))
        .collect();
    let e = evaluate(&data, &preds, None, 1.0).unwrap_err().to_string();
    assert!(
        e.contains("1 of 626") && e.contains(&data.examples[0].id),
        "{e}"
    );
}
