//! Documents cut into passages the reader can take in one window or two: whole paragraphs
//! where they fit, a short paragraph (a heading, a one-line note) joined to the next one,
//! and a long paragraph cut into overlapping pieces at word boundaries.

use serde::{Deserialize, Serialize};

use std::ops::Range;

use crate::words::{Word, words};

/// How documents are cut. Sizes are in words as the reader's pre-tokeniser counts them
/// (a punctuation mark is a word); WordPiece makes about 1.2 tokens of each, so the
/// default 192 words fill most of a 256-token window beside the question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassageConfig {
    pub max_words: usize,
    /// Words two pieces of a long paragraph share, so an answer at a cut is whole in one.
    pub overlap: usize,
    /// A paragraph shorter than this is joined to the next one (if both fit).
    pub min_words: usize,
}

impl Default for PassageConfig {
    fn default() -> Self {
        Self {
            max_words: 192,
            overlap: 48,
            min_words: 24,
        }
    }
}

/// A passage: characters `[start, end)` of document `doc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passage {
    pub doc: u32,
    pub start: u32,
    pub end: u32,
}

/// The character spans of the paragraphs of `text`: runs of lines between blank lines.
fn paragraphs(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut open: Option<(usize, usize)> = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let n = line.chars().count();
        if line.trim().is_empty() {
            out.extend(open.take());
        } else {
            let end = pos + line.trim_end().chars().count();
            open = Some((open.map_or(pos, |o| o.0), end));
        }
        pos += n;
    }
    out.extend(open);
    out
}

/// The passages of one document's text, as character spans, in order.
pub fn split(text: &str, cfg: &PassageConfig) -> Vec<(usize, usize)> {
    let all = words(text);
    pieces(text, &all, cfg)
        .into_iter()
        .map(|r| (all[r.start].start, all[r.end - 1].end))
        .collect()
}

/// The passages of `text` as ranges of its words `all` (never empty), in order.
pub(crate) fn pieces(text: &str, all: &[Word], cfg: &PassageConfig) -> Vec<Range<usize>> {
    // Each group is a range of `all`: one paragraph, or a short one and what follows.
    let mut groups: Vec<Range<usize>> = Vec::new();
    let mut next = 0;
    for (_, end) in paragraphs(text) {
        let n = all[next..].iter().take_while(|w| w.start < end).count();
        let para = next..next + n;
        next += n;
        if para.is_empty() {
            continue;
        }
        match groups.last_mut() {
            Some(last) if last.len() < cfg.min_words && last.len() + n <= cfg.max_words => {
                last.end = para.end;
            }
            _ => groups.push(para),
        }
    }
    let step = cfg.max_words.saturating_sub(cfg.overlap).max(1);
    let mut out = Vec::new();
    for g in groups {
        let mut i = g.start;
        loop {
            let j = (i + cfg.max_words.max(1)).min(g.end);
            out.push(i..j);
            if j == g.end {
                break;
            }
            i += step;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max_words: usize, overlap: usize, min_words: usize) -> PassageConfig {
        PassageConfig {
            max_words,
            overlap,
            min_words,
        }
    }

    fn texts(text: &str, spans: &[(usize, usize)]) -> Vec<String> {
        spans
            .iter()
            .map(|&(s, e)| text.chars().skip(s).take(e - s).collect())
            .collect()
    }

    #[test]
    fn paragraphs_are_passages_and_a_heading_joins_its_paragraph() {
        let text = "# Bridges\n\nThe Larkspur Bridge opened in 1931. It spans the river.\n  \nÉcole notes: nothing here at all today.\n";
        let p = split(text, &cfg(50, 10, 3));
        assert_eq!(
            texts(text, &p),
            [
                "# Bridges\n\nThe Larkspur Bridge opened in 1931. It spans the river.",
                "École notes: nothing here at all today."
            ]
        );
    }

    #[test]
    fn long_paragraphs_are_cut_with_overlap() {
        let text = "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9";
        let p = split(text, &cfg(4, 1, 0));
        assert_eq!(
            texts(text, &p),
            ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9"]
        );
    }

    #[test]
    fn empty_and_blank_documents_have_no_passages() {
        assert!(split("", &PassageConfig::default()).is_empty());
        assert!(split(" \n\n \t\n", &PassageConfig::default()).is_empty());
    }
}
