//! Ids, token types and context offsets equal HF's for every question of the
//! CS224N half of the SQuAD v2.0 dev set, for long contexts and for Unicode cases.

#[path = "common.rs"]
mod common;

use megaqa_text::{Dataset, Window};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn digest(ws: &[Window]) -> String {
    let lines: Vec<String> = ws
        .iter()
        .map(|w| {
            let j = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
            let offs: Vec<String> = w
                .offsets
                .iter()
                .map(|o| o.map_or("n".to_string(), |(s, e)| format!("{s}-{e}")))
                .collect();
            format!(
                "{};{};{}",
                j(&w.input_ids),
                j(&w.token_types),
                offs.join(",")
            )
        })
        .collect();
    format!("{:x}", Sha256::digest(lines.join("\n").as_bytes()))
}

fn expected_windows(v: &Value) -> Vec<Window> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let u = |k: &str| {
                w[k].as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap() as u32)
                    .collect()
            };
            Window {
                input_ids: u("ids"),
                token_types: u("types"),
                offsets: w["offsets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| {
                        o.as_array().map(|a| {
                            (
                                a[0].as_u64().unwrap() as usize,
                                a[1].as_u64().unwrap() as usize,
                            )
                        })
                    })
                    .collect(),
            }
        })
        .collect()
}

#[test]
fn every_cs224n_question_matches_hf() {
    let tok = common::tokenizer();
    let data = Dataset::open(common::shared("data/squad/dev-v2.0-cs224n-half.json")).unwrap();
    assert_eq!(data.examples.len(), 6078);
    let fx = common::gz_json("windows.json.gz");
    let digests = fx["digests"].as_object().unwrap();
    let samples: std::collections::HashMap<&str, &Value> = fx["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), &s["windows"]))
        .collect();
    let mut bad = Vec::new();
    // The digests check the cached-context path (windows_many); the samples the plain one.
    let items: Vec<(&str, &str)> = data
        .examples
        .iter()
        .map(|e| (e.question.as_str(), &*e.context))
        .collect();
    let all = tok.windows_many(&items).unwrap();
    for (ex, ws) in data.examples.iter().zip(&all) {
        if let Some(s) = samples.get(ex.id.as_str()) {
            assert_eq!(
                tok.windows(&ex.question, &ex.context).unwrap(),
                expected_windows(s),
                "question {}",
                ex.id
            );
        }
        if digests[&ex.id].as_str().unwrap() != digest(ws) {
            bad.push(ex.id.clone());
        }
    }
    assert!(
        bad.is_empty(),
        "{} of 6078 questions differ from HF, first: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
}

#[test]
fn unicode_and_long_contexts_match_hf() {
    let tok = common::tokenizer();
    let fx = common::gz_json("windows.json.gz");
    for case in fx["unicode"]
        .as_array()
        .unwrap()
        .iter()
        .chain(fx["long"].as_array().unwrap())
    {
        let (q, c) = (
            case["question"].as_str().unwrap(),
            case["context"].as_str().unwrap(),
        );
        let ours = tok.windows(q, c).unwrap();
        let theirs = expected_windows(&case["windows"]);
        if q.split_whitespace().count() > 60 {
            // Past 64 question tokens we cut the question (HF would cut the context instead).
            assert!(
                ours[0].offsets.iter().take_while(|o| o.is_none()).count() == 64 + 2,
                "question cut to 64 tokens"
            );
            continue;
        }
        assert_eq!(ours, theirs, "case {q:?}");
    }
}

#[test]
fn offsets_point_at_the_token_text() {
    let tok = common::tokenizer();
    let context = "Les Misérables 東京 👍🏽 naïve\r\nfaçade";
    let ws = tok.windows("what?", context).unwrap();
    let chars: Vec<char> = context.chars().collect();
    for (id, off) in ws[0].input_ids.iter().zip(&ws[0].offsets) {
        if let Some((s, e)) = off {
            assert!(s < e && *e <= chars.len(), "offset {s}..{e} of token {id}");
        }
    }
    // "東" is its own token at character 15.
    assert!(ws[0].offsets.contains(&Some((15, 16))));
}

#[test]
fn empty_inputs_are_errors() {
    let tok = common::tokenizer();
    assert!(
        tok.windows("   ", "some context")
            .unwrap_err()
            .to_string()
            .contains("question")
    );
    assert!(
        tok.windows("what?", " \n ")
            .unwrap_err()
            .to_string()
            .contains("context")
    );
}
