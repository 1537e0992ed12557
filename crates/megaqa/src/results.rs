//! The results file that `megaqa parity --against` reads: what the web app exports
//! and `megaqa parity --export` writes, so runs on different machines and backends
//! can be compared question by question, logit by logit.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::Answered;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultsFile {
    /// Always "megaqa-results".
    pub format: String,
    pub version: u32,
    pub model_sha256: String,
    /// Which backend and adapter produced the results, e.g. "wgpu (llvmpipe)".
    pub backend: String,
    pub results: Vec<QuestionResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuestionResult {
    /// The SQuAD id where the question came from a SQuAD file.
    #[serde(default)]
    pub id: Option<String>,
    pub question: String,
    pub context_sha256: String,
    /// The passage itself, where the exporter keeps it (the web app does): then
    /// `megaqa parity --against` can rerun the questions without a SQuAD file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    pub answer: String,
    pub start: usize,
    pub end: usize,
    pub probability: f64,
    pub null_odds: f64,
    /// Per window, one value per token.
    pub start_logits: Vec<Vec<f32>>,
    pub end_logits: Vec<Vec<f32>>,
}

pub fn sha256_hex(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

impl QuestionResult {
    pub fn new(id: Option<String>, question: &str, context: &str, a: &Answered) -> Self {
        let p = &a.prediction;
        let (start, end, probability) = p.answer.as_ref().map_or(
            (
                0,
                0,
                p.nbest
                    .iter()
                    .find(|e| e.text.is_empty())
                    .map_or(0.0, |e| e.probability),
            ),
            |x| (x.start, x.end, x.probability),
        );
        Self {
            id,
            question: question.into(),
            context_sha256: sha256_hex(context),
            context: None,
            answer: p.text().into(),
            start,
            end,
            probability,
            null_odds: p.null_odds,
            start_logits: a.logits.iter().map(|(s, _)| s.clone()).collect(),
            end_logits: a.logits.iter().map(|(_, e)| e.clone()).collect(),
        }
    }
}

impl ResultsFile {
    pub fn new(model_sha256: &str, backend: &str, results: Vec<QuestionResult>) -> Self {
        Self {
            format: "megaqa-results".into(),
            version: 1,
            model_sha256: model_sha256.into(),
            backend: backend.into(),
            results,
        }
    }

    pub fn parse(file: &str, text: &str) -> Result<Self, String> {
        let r: Self = serde_json::from_str(text)
            .map_err(|e| format!("{file}: not a megaqa results file: {e}"))?;
        if r.format != "megaqa-results" || r.version != 1 {
            return Err(format!(
                "{file}: format `{}` version {} is not megaqa-results version 1",
                r.format, r.version
            ));
        }
        Ok(r)
    }
}
