//! Tokenizing and windowing every question of the CS224N half of the SQuAD v2.0
//! dev set (6078 questions, 384-token windows, stride 128), best of 5 runs.
//! `scripts/bench-text.sh` runs the HF `tokenizers` Python pipeline beside it.

use std::time::Instant;

use megaqa_text::{Dataset, QaTokenizer, WindowConfig};

fn main() {
    let root = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../..");
    let data = Dataset::open(root.join("../shared/data/squad/dev-v2.0-cs224n-half.json"))
        .expect("shared data");
    let vocab = std::fs::read_to_string(root.join("assets/vocab-uncased.txt")).unwrap();
    let tok = QaTokenizer::from_vocab(&vocab, true, WindowConfig::default()).unwrap();
    let mut best = f64::MAX;
    let mut windows = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let items: Vec<(&str, &str)> = data
            .examples
            .iter()
            .map(|e| (e.question.as_str(), &*e.context))
            .collect();
        windows = tok.windows_many(&items).unwrap().iter().map(Vec::len).sum();
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{{\"impl\": \"megaqa-text\", \"questions\": {}, \"windows\": {windows}, \"seconds\": {best:.3}, \"questions_per_s\": {:.0}}}",
        data.examples.len(),
        data.examples.len() as f64 / best
    );
}
