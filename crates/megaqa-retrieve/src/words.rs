//! Words as the reader sees them: BERT's normaliser (lower case, accents stripped, control
//! characters dropped) and pre-tokeniser (split at white space, each punctuation mark a
//! word of its own), from the same `tokenizers` crate the reader's WordPiece uses, with
//! each word's character span in the original text.

use std::collections::HashSet;
use std::sync::OnceLock;

use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::{Normalizer, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

/// One word of a text: its normalised form and its characters `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// The words of `text`, in order.
pub fn words(text: &str) -> Vec<Word> {
    let normalizer = BertNormalizer::new(true, true, None, true);
    let mut pre = PreTokenizedString::from(text);
    // Neither step can fail on a Rust string: BERT's normaliser and pre-tokeniser only
    // map, filter and split characters.
    let ok = pre
        .normalize(|s| normalizer.normalize(s))
        .and_then(|_| BertPreTokenizer.pre_tokenize(&mut pre));
    debug_assert!(ok.is_ok());
    pre.get_splits(OffsetReferential::Original, OffsetType::Char)
        .into_iter()
        .filter(|(w, _, _)| !w.is_empty())
        .map(|(w, (start, end), _)| Word {
            text: w.to_owned(),
            start,
            end,
        })
        .collect()
}

/// English stop words (NLTK's list), normalised as words are.
fn stop_words() -> &'static HashSet<String> {
    static SET: OnceLock<HashSet<String>> = OnceLock::new();
    SET.get_or_init(|| {
        stop_words::get("en")
            .iter()
            .flat_map(|w| words(w))
            .map(|w| w.text)
            .collect()
    })
}

/// The words that count for ranking: no stop words, no punctuation.
pub fn terms(text: &str) -> Vec<String> {
    words(text)
        .into_iter()
        .map(|w| w.text)
        .filter(|t| is_term(t))
        .collect()
}

pub(crate) fn is_term(t: &str) -> bool {
    t.chars().any(char::is_alphanumeric) && !stop_words().contains(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lower_cased_without_accents_with_char_spans() {
        let w = words("Café  Zürich, 1990!");
        let t: Vec<_> = w.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(t, ["cafe", "zurich", ",", "1990", "!"]);
        assert_eq!((w[1].start, w[1].end), (6, 12));
        assert_eq!((w[3].start, w[3].end), (14, 18));
    }

    #[test]
    fn terms_drop_stop_words_and_punctuation() {
        assert_eq!(terms("Who was the Duke of Normandy?"), ["duke", "normandy"]);
        assert!(terms("What is it that they were?").is_empty());
    }
}
