//! The engine over every question of the two-article SQuAD v2.0 dev file equals
//! transformers + the reference post-processing (tests/reference/make_predict_fixtures.py):
//! logits within 1e-4, identical answers for every question without a near-tie,
//! with tight batches and with the browser's bucketed lengths.

use std::io::Read;
use std::path::PathBuf;

use burn::tensor::{DType, Device};
use megaqa::model::Checkpoint;
use megaqa::text::Dataset;
use megaqa::{Engine, Shapes};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../..")
}

fn gz(name: &str) -> Value {
    let mut s = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(root().join("tests/fixtures/predict").join(name)).unwrap(),
    )
    .read_to_string(&mut s)
    .unwrap();
    serde_json::from_str(&s).unwrap()
}

#[test]
fn engine_matches_transformers_on_the_two_article_dev_file() {
    matches_transformers(Shapes::Tight);
}

/// The browser's setting: batches padded to a multiple of 64 tokens; padding must
/// change neither logits nor answers.
#[test]
fn bucketed_shapes_match_transformers_too() {
    matches_transformers(Shapes::Buckets { step: 64 });
}

fn matches_transformers(shapes: Shapes) {
    let ckpt = Checkpoint::open(root().join("tests/fixtures/models/megatron-tiny")).unwrap();
    let mut engine = Engine::new(ckpt, Device::flex(), DType::F32).unwrap();
    engine.shapes = shapes;
    let data =
        Dataset::open(root().join("tests/fixtures/squad/dev-v2.0-two-articles.json")).unwrap();
    let items: Vec<(&str, &str)> = data
        .examples
        .iter()
        .map(|e| (e.question.as_str(), &*e.context))
        .collect();
    let answered = engine.answer_many(&items, 16).unwrap();
    let preds: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/predict/predictions.json")).unwrap(),
    )
    .unwrap();
    let odds: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/predict/null_odds.json")).unwrap(),
    )
    .unwrap();
    let nbest = gz("nbest.json.gz");
    let logits = gz("logits.json.gz");
    let (mut max_d, mut checked, mut ties) = (0f64, 0, 0);
    for (ex, a) in data.examples.iter().zip(&answered) {
        let id = ex.id.as_str();
        if let Some(l) = logits.get(id) {
            for (k, which) in [("start", 0), ("end", 1)] {
                for (w, window) in l[k].as_array().unwrap().iter().enumerate() {
                    let ours = if which == 0 {
                        &a.logits[w].0
                    } else {
                        &a.logits[w].1
                    };
                    let theirs = window.as_array().unwrap();
                    assert_eq!(ours.len(), theirs.len(), "{id}: window {w} length");
                    for (x, y) in ours.iter().zip(theirs) {
                        max_d = max_d.max((f64::from(*x) - y.as_f64().unwrap()).abs());
                    }
                }
            }
        }
        let nb = nbest[id].as_array().unwrap();
        let score =
            |e: &Value| e["start_logit"].as_f64().unwrap() + e["end_logit"].as_f64().unwrap();
        let null_odds = odds[id].as_f64().unwrap();
        let near_tie = (nb.len() > 1 && (score(&nb[0]) - score(&nb[1])).abs() < 1e-3)
            || null_odds.abs() < 1e-3;
        if near_tie {
            ties += 1;
            continue;
        }
        assert_eq!(a.prediction.text(), preds[id].as_str().unwrap(), "{id}");
        assert!(
            (a.prediction.null_odds - null_odds).abs() < 2e-4,
            "{id}: null odds {} vs {null_odds}",
            a.prediction.null_odds
        );
        checked += 1;
    }
    assert!(max_d < 1e-4, "max |d logit| = {max_d}");
    assert!(
        checked > 600,
        "only {checked} questions without near-ties ({ties} ties)"
    );
    eprintln!(
        "engine ({shapes:?}) vs transformers: {checked} answers identical, {ties} near-ties skipped, max |d logit| {max_d:.2e}"
    );
}
