//! Fixed logits through our decoder give the reference post-processing's answers,
//! null_odds and n-best lists (tests/reference/make_text_fixtures.py).

#[path = "common.rs"]
mod common;

use megaqa_text::{DecodeConfig, WindowLogits, decode};

#[test]
fn decoding_matches_the_reference_post_processing() {
    let tok = common::tokenizer();
    let cases = common::gz_json("decode.json.gz");
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 90);
    let mut no_answer = 0;
    for case in cases {
        let (q, c) = (
            case["question"].as_str().unwrap(),
            case["context"].as_str().unwrap(),
        );
        let ws = tok.windows(q, c).unwrap();
        let floats = |v: &serde_json::Value| -> Vec<Vec<f32>> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|w| {
                    w.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_f64().unwrap() as f32)
                        .collect()
                })
                .collect()
        };
        let (start, end) = (floats(&case["start"]), floats(&case["end"]));
        assert_eq!(ws.len(), start.len());
        let logits: Vec<WindowLogits> = ws
            .iter()
            .zip(&start)
            .zip(&end)
            .map(|((w, s), e)| WindowLogits {
                window: w,
                start: s,
                end: e,
            })
            .collect();
        let p = decode(c, &logits, &DecodeConfig::default()).unwrap();
        let exp = &case["expected"];
        let id = case["id"].as_str().unwrap();
        assert_eq!(p.text(), exp["text"].as_str().unwrap(), "{id}");
        no_answer += usize::from(p.answer.is_none());
        let odds = exp["null_odds"].as_f64().unwrap();
        assert!(
            (p.null_odds - odds).abs() < 1e-4,
            "{id}: null_odds {} vs {odds}",
            p.null_odds
        );
        let nbest = exp["nbest"].as_array().unwrap();
        assert_eq!(p.nbest.len(), nbest.len(), "{id}");
        for (ours, theirs) in p.nbest.iter().zip(nbest) {
            assert_eq!(ours.text, theirs["text"].as_str().unwrap(), "{id}");
            assert!(
                (ours.probability - theirs["probability"].as_f64().unwrap()).abs() < 1e-5,
                "{id}"
            );
            assert!(
                (f64::from(ours.start_logit) - theirs["start_logit"].as_f64().unwrap()).abs()
                    < 1e-6
            );
            assert!(
                (f64::from(ours.end_logit) - theirs["end_logit"].as_f64().unwrap()).abs() < 1e-6
            );
            if !ours.text.is_empty() && ours.text != "empty" {
                assert_eq!(
                    (ours.start, ours.end),
                    (
                        theirs["start"].as_u64().unwrap() as usize,
                        theirs["end"].as_u64().unwrap() as usize
                    )
                );
            }
        }
    }
    assert!(
        no_answer > 10 && no_answer < cases.len() - 10,
        "both outcomes are covered: {no_answer}"
    );
}
