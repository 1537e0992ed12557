//! The sentence that holds an answer, for "full sentence" answers in chat-style use.

use unicode_segmentation::UnicodeSegmentation;

use crate::decode::char_slice;

/// The sentence(s) of `context` that contain the character span `[start, end)`,
/// trimmed. Sentence bounds follow Unicode (UAX #29).
pub fn sentence_around(context: &str, start: usize, end: usize) -> &str {
    if start >= end {
        return "";
    }
    // Byte offsets of the span.
    let answer = char_slice(context, start, end);
    let b0 = answer.as_ptr() as usize - context.as_ptr() as usize;
    let b1 = b0 + answer.len();
    let (mut s0, mut s1) = (b0, b1);
    for (pos, sentence) in context.split_sentence_bound_indices() {
        let stop = pos + sentence.len();
        if stop > b0 && pos < b1 {
            s0 = s0.min(pos);
            s1 = s1.max(stop);
        }
    }
    context[s0..s1].trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_sentence_and_spans_two() {
        let c = "The Normans came. They ruled Normandy for long. Then they left.";
        let s = c.find("Normandy").unwrap();
        assert_eq!(
            sentence_around(c, s, s + 8),
            "They ruled Normandy for long."
        );
        let a = c.find("long").unwrap();
        assert_eq!(
            sentence_around(c, a, a + 10),
            "They ruled Normandy for long. Then they left."
        );
        assert_eq!(sentence_around(c, 3, 3), "");
    }
}
