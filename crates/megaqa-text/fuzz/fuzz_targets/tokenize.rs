//! Arbitrary text as question + context: windows whose offsets stay inside the
//! context and cover it in order; decoding any logits gives spans inside it.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use megaqa_text::{DecodeConfig, QaTokenizer, WindowConfig, WindowLogits, decode};

static TOK: OnceLock<QaTokenizer> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let tok = TOK.get_or_init(|| {
        let vocab = include_str!("../../../../assets/vocab-uncased.txt");
        QaTokenizer::from_vocab(vocab, true, WindowConfig { max_len: 64, stride: 16, max_query: 16 }).unwrap()
    });
    let (question, context) = text.split_once('\u{1}').unwrap_or(("what?", text));
    let Ok(windows) = tok.windows(question, context) else { return };
    let chars = context.chars().count();
    for w in &windows {
        assert!(w.len() <= 64);
        let mut last = 0;
        for (s, e) in w.offsets.iter().flatten() {
            assert!(s <= e && *e <= chars, "offset {s}..{e} outside {chars} chars");
            assert!(*s >= last, "offsets go backwards");
            last = *s;
        }
    }
    // Logits derived from the bytes, so spans vary.
    let logits: Vec<(Vec<f32>, Vec<f32>)> = windows
        .iter()
        .map(|w| {
            let f = |k: usize| (0..w.len()).map(|i| f32::from(data[(i * 7 + k) % data.len()]) / 16.0).collect();
            (f(1), f(3))
        })
        .collect();
    let wl: Vec<WindowLogits> =
        windows.iter().zip(&logits).map(|(w, (s, e))| WindowLogits { window: w, start: s, end: e }).collect();
    let p = decode(context, &wl, &DecodeConfig::default()).unwrap();
    for e in &p.nbest {
        assert!(e.start <= e.end && e.end <= chars);
        if e.text != "empty" {
            assert_eq!(e.text, megaqa_text::decode::char_slice(context, e.start, e.end));
        }
    }
});
