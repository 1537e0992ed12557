//! SQuAD files: both formats load; bad fields are named by path; nothing panics.

#[path = "common.rs"]
mod common;

use megaqa_text::Dataset;

fn err(json: &str) -> String {
    Dataset::from_bytes("bad.json", json.as_bytes())
        .unwrap_err()
        .to_string()
}

#[test]
fn official_files_load() {
    let d = Dataset::open(common::root().join("tests/fixtures/squad/dev-v2.0-two-articles.json"))
        .unwrap();
    assert_eq!(d.examples.len(), 626);
    assert_eq!(d.examples.iter().filter(|e| e.is_impossible()).count(), 333);
    d.check_answer_spans().unwrap();
    let big = Dataset::open(common::shared("data/squad/dev-v2.0-cs224n-half.json")).unwrap();
    assert_eq!(big.examples.len(), 6078);
    assert_eq!(
        big.examples.iter().filter(|e| !e.is_impossible()).count(),
        2910
    );
}

#[test]
fn flat_formats_load() {
    let rec = r#"{"id": "q1", "title": "T", "context": "Paris is in France.", "question": "Where is Paris?", "answers": {"text": ["France"], "answer_start": [12]}}"#;
    let rec2 = r#"{"id": "q2", "context": "Paris is in France.", "question": "Who?", "answers": {"text": [], "answer_start": []}}"#;
    for text in [
        format!("[{rec}, {rec2}]"),
        format!("{{\"data\": [{rec}, {rec2}]}}"),
        format!("{rec}\n{rec2}\n"),
    ] {
        let d = Dataset::from_bytes("flat.json", text.as_bytes()).unwrap();
        assert_eq!(d.examples.len(), 2, "{text}");
        assert_eq!(d.examples[0].answers[0].text, "France");
        assert!(d.examples[1].is_impossible());
    }
}

#[test]
fn answer_past_the_context_names_the_field() {
    let json = r#"{"data": [{"title": "a", "paragraphs": [{"context": "short", "qas": [
        {"id": "x", "question": "q", "answers": [{"text": "s", "answer_start": 0}]},
        {"id": "y", "question": "q", "answers": [{"text": "s", "answer_start": 912}]}]}]}]}"#;
    let e = err(json);
    assert_eq!(
        e,
        "bad.json: data[0].paragraphs[0].qas[1].answers[0].answer_start: 912 is past the end of the context (5 chars)"
    );
}

#[test]
fn type_and_missing_field_errors_name_the_path() {
    assert!(
        err(r#"{"data": [{"paragraphs": [{"qas": []}]}]}"#)
            .contains("data[0].paragraphs[0].context: is missing")
    );
    assert!(
        err(r#"{"data": [{"paragraphs": [{"context": 5, "qas": []}]}]}"#)
            .contains("data[0].paragraphs[0].context: expected a string, found a number")
    );
    assert!(err(r#"{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "a", "question": "q", "answers": [{"text": "c", "answer_start": -1}]}]}]}]}"#)
        .contains("answer_start: expected a non-negative integer"));
    assert!(err(r#"{"data": 3}"#).contains("data: expected an array"));
    assert!(err("{\"data\": [").contains("malformed JSON"));
    assert!(err("").contains("empty"));
    assert!(err(r#"{"data": []}"#).contains("no questions"));
    assert!(err("42").contains("expected a SQuAD object"));
}

#[test]
fn duplicate_ids_are_reported_with_both_places() {
    let json = r#"{"data": [{"paragraphs": [{"context": "c", "qas": [
        {"id": "dup", "question": "q", "answers": []}, {"id": "dup", "question": "r", "answers": []}]}]}]}"#;
    let e = err(json);
    assert!(
        e.contains("duplicate question id `dup`") && e.contains("qas[1]") && e.contains("qas[0]"),
        "{e}"
    );
}

#[test]
fn mismatched_answer_text_is_caught_for_training() {
    let json = r#"{"data": [{"paragraphs": [{"context": "Paris is in France.", "qas": [
        {"id": "a", "question": "q", "answers": [{"text": "Spain", "answer_start": 12}]}]}]}]}"#;
    let d = Dataset::from_bytes("t.json", json.as_bytes()).unwrap();
    let e = d.check_answer_spans().unwrap_err().to_string();
    assert!(
        e.contains("data[0].paragraphs[0].qas[0].answers[0]") && e.contains("Spain"),
        "{e}"
    );
}
