//! Training features: the same windows the model answers from, each labelled with
//! the token positions of the gold answer, as HF `run_qa`'s `prepare_train_features`
//! labels them. A window that does not hold the whole answer, and every window of an
//! unanswerable question, points at [CLS] (position 0).

use crate::squad::Example;
use crate::tokenizer::QaTokenizer;
use crate::windows::{Window, WindowError};

/// One labelled window.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainFeature {
    pub window: Window,
    /// Token positions of the answer's first and last token; (0, 0) = no answer here.
    pub start: usize,
    pub end: usize,
    /// Index of the example it came from.
    pub example: usize,
}

/// The token span of the characters `start_char..end_char` of the context, or (0, 0)
/// when the window does not hold all of them.
pub fn answer_positions(window: &Window, start_char: usize, end_char: usize) -> (usize, usize) {
    let context: Vec<(usize, (usize, usize))> = window
        .offsets
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.map(|o| (i, o)))
        .collect();
    let (Some(&(_, first)), Some(&(_, last))) = (context.first(), context.last()) else {
        return (0, 0);
    };
    if !(first.0 <= start_char && last.1 >= end_char) {
        return (0, 0);
    }
    // The last token starting at or before the answer, and the first ending at or after it.
    // (HF walks past the context into [SEP] when the answer starts in the last context
    // token; staying inside the context avoids that.)
    let start = context
        .iter()
        .rev()
        .find(|(_, o)| o.0 <= start_char)
        .map(|(i, _)| *i)
        .unwrap_or(0);
    let end = context
        .iter()
        .find(|(_, o)| o.1 >= end_char)
        .map(|(i, _)| *i)
        .unwrap_or(0);
    (start, end.max(start))
}

/// Labelled windows for every example (first gold answer, as `run_qa` trains).
/// Consecutive examples about the same context share one tokenization of it.
pub fn train_features(
    tokenizer: &QaTokenizer,
    examples: &[Example],
) -> Result<Vec<TrainFeature>, (usize, WindowError)> {
    let mut out = Vec::new();
    let mut cached: Option<(&str, crate::windows::EncodedContext)> = None;
    for (i, ex) in examples.iter().enumerate() {
        if cached.as_ref().is_none_or(|(c, _)| *c != &*ex.context) {
            let encoded = tokenizer.encode_context(&ex.context).map_err(|e| (i, e))?;
            cached = Some((&ex.context, encoded));
        }
        let (_, encoded) = cached.as_ref().expect("set above");
        let windows = tokenizer
            .windows_for(&ex.question, encoded)
            .map_err(|e| (i, e))?;
        for window in windows {
            let (start, end) = match ex.answers.first() {
                None => (0, 0),
                Some(a) => {
                    let start_char = a.start;
                    let end_char = start_char + a.text.chars().count();
                    answer_positions(&window, start_char, end_char)
                }
            };
            out.push(TrainFeature {
                window,
                start,
                end,
                example: i,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(offsets: &[Option<(usize, usize)>]) -> Window {
        Window {
            input_ids: vec![0; offsets.len()],
            token_types: vec![0; offsets.len()],
            offsets: offsets.to_vec(),
        }
    }

    #[test]
    fn answer_inside_window_maps_to_its_tokens() {
        // [CLS] q [SEP] "the"(0,3) "nor"(4,7) "##mans"(7,11) [SEP]
        let w = window(&[
            None,
            None,
            None,
            Some((0, 3)),
            Some((4, 7)),
            Some((7, 11)),
            None,
        ]);
        assert_eq!(answer_positions(&w, 4, 11), (4, 5));
        assert_eq!(answer_positions(&w, 0, 3), (3, 3));
        // Answer starting inside a token: that token.
        assert_eq!(answer_positions(&w, 8, 11), (5, 5));
        // The last context token: not the [SEP] after it.
        assert_eq!(answer_positions(&w, 7, 11), (5, 5));
    }

    #[test]
    fn answer_outside_window_points_at_cls() {
        let w = window(&[None, Some((10, 15)), Some((16, 20)), None]);
        assert_eq!(answer_positions(&w, 0, 5), (0, 0));
        assert_eq!(answer_positions(&w, 16, 25), (0, 0));
        assert_eq!(answer_positions(&window(&[None, None]), 0, 1), (0, 0));
    }
}
