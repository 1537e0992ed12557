//! The official SQuAD v2.0 evaluation (`evaluate-v2.0.py`): answer normalisation,
//! exact match and token F1 against the best gold answer, the na-prob threshold,
//! and the best-threshold search. Output keys and their order are the official ones.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use crate::squad::Dataset;

/// ASCII punctuation, Python's `string.punctuation`.
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

static ARTICLES: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(a|an|the)\b").expect("valid regex"));

/// Lower-case, drop punctuation, drop a/an/the, collapse whitespace.
pub fn normalize_answer(s: &str) -> String {
    let lower = s.to_lowercase();
    let no_punc: String = lower
        .chars()
        .filter(|c| !PUNCTUATION.contains(*c))
        .collect();
    let no_articles = ARTICLES.replace_all(&no_punc, " ");
    no_articles.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn tokens(s: &str) -> Vec<String> {
    normalize_answer(s)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

pub fn compute_exact(gold: &str, pred: &str) -> f64 {
    f64::from(u8::from(normalize_answer(gold) == normalize_answer(pred)))
}

pub fn compute_f1(gold: &str, pred: &str) -> f64 {
    let (g, p) = (tokens(gold), tokens(pred));
    if g.is_empty() || p.is_empty() {
        return f64::from(u8::from(g == p));
    }
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for t in &g {
        *counts.entry(t).or_default() += 1;
    }
    let mut same = 0i64;
    for t in &p {
        if let Some(c) = counts.get_mut(t.as_str()).filter(|c| **c > 0) {
            *c -= 1;
            same += 1;
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = same as f64 / p.len() as f64;
    let recall = same as f64 / g.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("predictions are missing for {count} of {total} questions (first: `{first}`)")]
    MissingPredictions {
        count: usize,
        total: usize,
        first: String,
    },
    #[error("na-probs are missing for {count} questions (first: `{first}`)")]
    MissingNaProbs { count: usize, first: String },
}

/// Scores `preds` (id -> answer text, "" for no answer) against `data`. With
/// `na_probs` (id -> probability of no answer, in file order), also reports the
/// best thresholds. `na_prob_thresh` is the official `--na-prob-thresh` (1.0).
pub fn evaluate(
    data: &Dataset,
    preds: &[(String, String)],
    na_probs: Option<&[(String, f64)]>,
    na_prob_thresh: f64,
) -> Result<Map<String, Value>, ScoreError> {
    let pred: HashMap<&str, &str> = preds
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let default_na: Vec<(String, f64)>;
    let na_list = match na_probs {
        Some(n) => n,
        None => {
            default_na = preds.iter().map(|(k, _)| (k.clone(), 0.0)).collect();
            &default_na
        }
    };
    let na: HashMap<&str, f64> = na_list.iter().map(|(k, v)| (k.as_str(), *v)).collect();

    // The ids of the data that `has` lacks, in file order.
    let lacking = |has: &dyn Fn(&str) -> bool| -> Vec<&str> {
        data.examples
            .iter()
            .map(|e| e.id.as_str())
            .filter(|id| !has(id))
            .collect()
    };
    let missing = lacking(&|id| pred.contains_key(id));
    if let Some(first) = missing.first() {
        return Err(ScoreError::MissingPredictions {
            count: missing.len(),
            total: data.examples.len(),
            first: (*first).into(),
        });
    }
    let missing_na = lacking(&|id| na.contains_key(id));
    if let Some(first) = missing_na.first() {
        return Err(ScoreError::MissingNaProbs {
            count: missing_na.len(),
            first: (*first).into(),
        });
    }

    // Raw scores, in dataset order.
    let mut has_ans: HashMap<&str, bool> = HashMap::new();
    let mut exact_raw: HashMap<&str, f64> = HashMap::new();
    let mut f1_raw: HashMap<&str, f64> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for ex in &data.examples {
        let id = ex.id.as_str();
        has_ans.insert(id, !ex.answers.is_empty());
        let mut gold: Vec<&str> = ex
            .answers
            .iter()
            .map(|a| a.text.as_str())
            .filter(|t| !normalize_answer(t).is_empty())
            .collect();
        if gold.is_empty() {
            gold.push("");
        }
        let p = pred[id];
        exact_raw.insert(
            id,
            gold.iter()
                .map(|g| compute_exact(g, p))
                .fold(f64::MIN, f64::max),
        );
        f1_raw.insert(
            id,
            gold.iter()
                .map(|g| compute_f1(g, p))
                .fold(f64::MIN, f64::max),
        );
        order.push(id);
    }
    let exact = apply_threshold(&exact_raw, &na, &has_ans, na_prob_thresh);
    let f1 = apply_threshold(&f1_raw, &na, &has_ans, na_prob_thresh);

    let mut out = Map::new();
    let eval_dict = |ids: &[&str], out: &mut Map<String, Value>, prefix: &str| {
        let n = ids.len();
        let e: f64 = ids.iter().map(|id| exact[id]).sum();
        let f: f64 = ids.iter().map(|id| f1[id]).sum();
        out.insert(format!("{prefix}exact"), Value::from(100.0 * e / n as f64));
        out.insert(format!("{prefix}f1"), Value::from(100.0 * f / n as f64));
        out.insert(format!("{prefix}total"), Value::from(n));
    };
    eval_dict(&order, &mut out, "");
    let has: Vec<&str> = order.iter().copied().filter(|id| has_ans[id]).collect();
    let no: Vec<&str> = order.iter().copied().filter(|id| !has_ans[id]).collect();
    if !has.is_empty() {
        eval_dict(&has, &mut out, "HasAns_");
    }
    if !no.is_empty() {
        eval_dict(&no, &mut out, "NoAns_");
    }
    if na_probs.is_some() {
        for (name, raw) in [("exact", &exact_raw), ("f1", &f1_raw)] {
            let (best, thresh) = best_threshold(&pred, raw, na_list, &has_ans);
            out.insert(format!("best_{name}"), Value::from(best));
            out.insert(format!("best_{name}_thresh"), Value::from(thresh));
        }
    }
    Ok(out)
}

/// The official `apply_no_ans_threshold`: above the threshold the answer counts as "".
fn apply_threshold<'a>(
    raw: &HashMap<&'a str, f64>,
    na: &HashMap<&str, f64>,
    has_ans: &HashMap<&str, bool>,
    thresh: f64,
) -> HashMap<&'a str, f64> {
    raw.iter()
        .map(|(&id, &s)| {
            (
                id,
                if na[id] > thresh {
                    f64::from(u8::from(!has_ans[id]))
                } else {
                    s
                },
            )
        })
        .collect()
}

/// The official `find_best_thresh`: sweep questions by increasing na-prob and keep
/// the threshold where answering "" for everything above it scores best.
fn best_threshold(
    pred: &HashMap<&str, &str>,
    scores: &HashMap<&str, f64>,
    na_list: &[(String, f64)],
    has_ans: &HashMap<&str, bool>,
) -> (f64, f64) {
    let num_no_ans = has_ans.values().filter(|h| !**h).count() as f64;
    let mut cur = num_no_ans;
    let mut best = cur;
    let mut best_thresh = 0.0;
    let mut sorted: Vec<&(String, f64)> = na_list.iter().collect();
    // Python's sorted is stable: ties keep file order.
    sorted.sort_by(|a, b| a.1.total_cmp(&b.1));
    for (id, p) in sorted {
        let Some(&score) = scores.get(id.as_str()) else {
            continue;
        };
        let diff = if has_ans[id.as_str()] {
            score
        } else if pred.get(id.as_str()).is_some_and(|t| !t.is_empty()) {
            -1.0
        } else {
            0.0
        };
        cur += diff;
        if cur > best {
            best = cur;
            best_thresh = *p;
        }
    }
    (100.0 * best / scores.len() as f64, best_thresh)
}
