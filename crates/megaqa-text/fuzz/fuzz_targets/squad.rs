//! Arbitrary bytes as a SQuAD file: an error or a dataset, never a panic; and
//! every dataset read this way scores against itself without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use megaqa_text::Dataset;
use megaqa_text::scoring::evaluate;

fuzz_target!(|data: &[u8]| {
    if let Ok(ds) = Dataset::from_bytes("fuzz.json", data) {
        let preds: Vec<(String, String)> =
            ds.examples.iter().map(|e| (e.id.clone(), e.answers.first().map(|a| a.text.clone()).unwrap_or_default())).collect();
        let _ = evaluate(&ds, &preds, None, 1.0);
        let _ = ds.check_answer_spans();
    }
});
