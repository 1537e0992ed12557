//! Span decoding from start/end logits, as HF `postprocess_qa_predictions` with
//! `version_2_with_negative=True` (the NeMo defaults): top-20 starts x top-20 ends
//! per window, spans inside the context, end >= start, at most 30 tokens; the null
//! score is the minimum over windows of start[0] + end[0]; the 20 best (plus null)
//! are kept and softmaxed; null_odds = null score - best non-null score, and the
//! answer is "" when null_odds > threshold.

use serde::{Deserialize, Serialize};

use crate::sentence::sentence_around;
use crate::windows::Window;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DecodeConfig {
    pub n_best: usize,
    pub max_answer_len: usize,
    pub null_threshold: f64,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        Self {
            n_best: 20,
            max_answer_len: 30,
            null_threshold: 0.0,
        }
    }
}

/// The logits of one window, one value per token of the window (padding cut off).
#[derive(Debug, Clone, Copy)]
pub struct WindowLogits<'a> {
    pub window: &'a Window,
    pub start: &'a [f32],
    pub end: &'a [f32],
}

/// One candidate answer. The null answer has empty text and span (0, 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NbestEntry {
    pub text: String,
    /// Character offsets into the context.
    pub start: usize,
    pub end: usize,
    pub probability: f64,
    pub start_logit: f32,
    pub end_logit: f32,
}

/// The chosen answer, with its character span and the sentence that holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub text: String,
    pub start: usize,
    pub end: usize,
    pub probability: f64,
    pub sentence: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// `None` when the model says the context holds no answer.
    pub answer: Option<Answer>,
    /// The best non-null candidate even when the null answer wins.
    pub best_span: Answer,
    pub null_score: f64,
    pub null_odds: f64,
    pub nbest: Vec<NbestEntry>,
}

impl Prediction {
    /// The text the SQuAD files record: "" for no answer.
    pub fn text(&self) -> &str {
        self.answer.as_ref().map_or("", |a| a.text.as_str())
    }
}

struct Candidate {
    span: Option<(usize, usize)>,
    score: f64,
    start_logit: f32,
    end_logit: f32,
}

/// Indices of the `n` largest values, largest first (ties: lower index first).
fn top_indices(values: &[f32], n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    idx.truncate(n);
    idx
}

/// Slices `context` by character offsets.
pub fn char_slice(context: &str, start: usize, end: usize) -> &str {
    let mut it = context
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(context.len()));
    let b0 = it.by_ref().nth(start).unwrap_or(context.len());
    let b1 = if end > start {
        it.nth(end - start - 1).unwrap_or(context.len())
    } else {
        b0
    };
    &context[b0..b1]
}

/// Decodes one question's windows. Returns `None` only when there are no windows.
pub fn decode(
    context: &str,
    windows: &[WindowLogits<'_>],
    cfg: &DecodeConfig,
) -> Option<Prediction> {
    let mut prelim = Vec::new();
    let mut null: Option<Candidate> = None;
    for w in windows {
        let n = w.window.len().min(w.start.len()).min(w.end.len());
        if n == 0 {
            continue;
        }
        let (start, end) = (&w.start[..n], &w.end[..n]);
        let null_score = f64::from(start[0]) + f64::from(end[0]);
        if null.as_ref().is_none_or(|c| c.score > null_score) {
            null = Some(Candidate {
                span: None,
                score: null_score,
                start_logit: start[0],
                end_logit: end[0],
            });
        }
        let offsets = &w.window.offsets;
        for &s in &top_indices(start, cfg.n_best) {
            for &e in &top_indices(end, cfg.n_best) {
                let (Some(so), Some(eo)) = (offsets[s], offsets[e]) else {
                    continue;
                };
                if e < s || e - s + 1 > cfg.max_answer_len {
                    continue;
                }
                prelim.push(Candidate {
                    span: Some((so.0, eo.1)),
                    score: f64::from(start[s]) + f64::from(end[e]),
                    start_logit: start[s],
                    end_logit: end[e],
                });
            }
        }
    }
    let null = null?;
    let null_score = null.score;
    prelim.push(Candidate { ..null });
    // Stable sort: equal scores keep the order they were found in, as Python's sorted does.
    prelim.sort_by(|a, b| b.score.total_cmp(&a.score));
    prelim.truncate(cfg.n_best);
    if !prelim.iter().any(|c| c.span.is_none()) {
        prelim.push(Candidate {
            span: None,
            score: null_score,
            start_logit: null.start_logit,
            end_logit: null.end_logit,
        });
    }
    let text_of = |c: &Candidate| {
        c.span
            .map_or(String::new(), |(s, e)| char_slice(context, s, e).to_owned())
    };
    let mut texts: Vec<String> = prelim.iter().map(text_of).collect();
    if prelim.len() == 1 && texts[0].is_empty() {
        // As the reference: a lone empty candidate gets an "empty" placeholder in front.
        prelim.insert(
            0,
            Candidate {
                span: None,
                score: 0.0,
                start_logit: 0.0,
                end_logit: 0.0,
            },
        );
        texts.insert(0, "empty".into());
    }
    let max = prelim
        .iter()
        .map(|c| c.score)
        .fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = prelim.iter().map(|c| (c.score - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    let nbest: Vec<NbestEntry> = prelim
        .iter()
        .zip(texts)
        .zip(&exp)
        .map(|((c, text), e)| {
            let (start, end) = c.span.unwrap_or((0, 0));
            NbestEntry {
                text,
                start,
                end,
                probability: e / sum,
                start_logit: c.start_logit,
                end_logit: c.end_logit,
            }
        })
        .collect();
    let best = nbest
        .iter()
        .find(|e| !e.text.is_empty())
        .unwrap_or(&nbest[0]);
    let null_odds = null_score - f64::from(best.start_logit) - f64::from(best.end_logit);
    let best_span = Answer {
        text: best.text.clone(),
        start: best.start,
        end: best.end,
        probability: best.probability,
        sentence: sentence_around(context, best.start, best.end).to_owned(),
    };
    let answer = (null_odds <= cfg.null_threshold).then(|| best_span.clone());
    Some(Prediction {
        answer,
        best_span,
        null_score,
        null_odds,
        nbest,
    })
}

/// Which of several passages answers a question: the one whose best span beats its own
/// null score by the most (lowest null odds; ties: the earlier passage). Its answer is
/// `None` only when no passage's span beats its null score: SQuAD 2.0's rule for one
/// passage, across many. `None` when there are no passages.
pub fn best_passage<'a>(predictions: impl IntoIterator<Item = &'a Prediction>) -> Option<usize> {
    predictions
        .into_iter()
        .enumerate()
        .min_by(|(i, a), (j, b)| a.null_odds.total_cmp(&b.null_odds).then(i.cmp(j)))
        .map(|(i, _)| i)
}
