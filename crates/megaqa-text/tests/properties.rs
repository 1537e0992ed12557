//! Properties over random text and logits: windows cover every context token,
//! and every decoded span lies inside the context with its text equal to the slice.

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use megaqa_text::decode::char_slice;
use megaqa_text::{DecodeConfig, QaTokenizer, WindowConfig, WindowLogits, decode};
use proptest::prelude::*;

fn small_tokenizer() -> &'static QaTokenizer {
    static TOK: OnceLock<QaTokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        let vocab =
            std::fs::read_to_string(common::root().join("assets/vocab-uncased.txt")).unwrap();
        // Small windows so that short random contexts need several.
        QaTokenizer::from_vocab(
            &vocab,
            true,
            WindowConfig {
                max_len: 40,
                stride: 8,
                max_query: 10,
            },
        )
        .unwrap()
    })
}

fn text() -> impl Strategy<Value = String> {
    let word = prop::sample::select(vec![
        "the",
        "Normans",
        "came",
        "to",
        "Normandy",
        "in",
        "911",
        "café",
        "naïve",
        "東京",
        "👍🏽",
        "don't",
        "U.S.A.",
        "\r\n",
        "\u{a0}",
        "e\u{301}",
        "Ångström",
        "—",
        "(",
        ")",
        ",",
        ".",
        "?",
        "x",
    ]);
    prop::collection::vec(word, 1..120).prop_map(|w| w.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn windows_cover_every_context_token(question in text(), context in text()) {
        let tok = small_tokenizer();
        let Ok(windows) = tok.windows(&question, &context) else { return Ok(()) };
        let all = tok.encode(&context).unwrap();
        let mut covered = vec![false; all.len()];
        for w in &windows {
            prop_assert!(w.len() <= 40);
            for off in w.offsets.iter().flatten() {
                let i = all.get_offsets().iter().position(|o| o == off);
                prop_assert!(i.is_some(), "window offset {:?} is not a context token", off);
                covered[i.unwrap()] = true;
            }
        }
        prop_assert!(covered.iter().all(|c| *c), "some context tokens are in no window");
    }

    #[test]
    fn decoded_spans_are_slices_of_the_context(context in text(), seed in any::<u64>()) {
        let tok = small_tokenizer();
        let Ok(windows) = tok.windows("where?", &context) else { return Ok(()) };
        let mut state = seed | 1;
        let mut next = || { state ^= state << 13; state ^= state >> 7; state ^= state << 17; (state % 2000) as f32 / 100.0 - 10.0 };
        let logits: Vec<(Vec<f32>, Vec<f32>)> =
            windows.iter().map(|w| ((0..w.len()).map(|_| next()).collect(), (0..w.len()).map(|_| next()).collect())).collect();
        let wl: Vec<WindowLogits> = windows.iter().zip(&logits).map(|(w, (s, e))| WindowLogits { window: w, start: s, end: e }).collect();
        let p = decode(&context, &wl, &DecodeConfig::default()).unwrap();
        let chars = context.chars().count();
        let total: f64 = p.nbest.iter().map(|e| e.probability).sum();
        prop_assert!((total - 1.0).abs() < 1e-9);
        for e in &p.nbest {
            prop_assert!(e.start <= e.end && e.end <= chars);
            if e.text != "empty" {
                prop_assert_eq!(&e.text, char_slice(&context, e.start, e.end));
            }
        }
        if let Some(a) = &p.answer {
            prop_assert_eq!(&a.text, char_slice(&context, a.start, a.end));
            prop_assert!(a.sentence.contains(a.text.trim()));
        }
    }
}
