//! Features for one question and one context: the question (left-stripped, at most
//! 64 tokens) and overlapping windows of the context, as HF `run_qa` makes them with
//! `truncation="only_second", max_length=384, stride=128, return_overflowing_tokens=True`.

use serde::{Deserialize, Serialize};

use crate::tokenizer::{QaTokenizer, TokenizerError};

/// Window geometry (defaults: the SQuAD / NeMo settings).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowConfig {
    /// Tokens per window, special tokens included.
    pub max_len: usize,
    /// Context tokens shared by consecutive windows.
    pub stride: usize,
    /// Question tokens kept (the rest is cut).
    pub max_query: usize,
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self {
            max_len: 384,
            stride: 128,
            max_query: 64,
        }
    }
}

impl WindowConfig {
    /// Context tokens a window holds when the question is as long as allowed.
    pub fn validate(&self) -> Result<(), String> {
        let room = self.max_len.saturating_sub(self.max_query + 3);
        if room <= self.stride {
            return Err(format!(
                "windows of {} tokens with questions of up to {} tokens leave {room} context tokens, which must exceed the stride of {}",
                self.max_len, self.max_query, self.stride
            ));
        }
        Ok(())
    }
}

/// One window: ids, token types, and for each token its character span in the
/// context (`None` for question and special tokens).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub input_ids: Vec<u32>,
    pub token_types: Vec<u32>,
    pub offsets: Vec<Option<(usize, usize)>>,
}

impl Window {
    pub fn len(&self) -> usize {
        self.input_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }

    /// Ids, token types and attention mask padded with zeros to `len`.
    pub fn padded(&self, len: usize) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
        let pad = |v: &[u32]| {
            let mut out: Vec<i64> = v.iter().map(|&x| i64::from(x)).collect();
            out.resize(len.max(v.len()), 0);
            out
        };
        let mut mask = vec![1i64; self.len()];
        mask.resize(len.max(self.len()), 0);
        (pad(&self.input_ids), pad(&self.token_types), mask)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error("the question is empty")]
    EmptyQuestion,
    #[error("the context is empty")]
    EmptyContext,
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
}

/// A context tokenized once, to be paired with many questions (SQuAD asks about a
/// dozen questions per paragraph; the context is most of the tokenizing work).
#[derive(Debug, Clone)]
pub struct EncodedContext(tokenizers::Encoding);

impl QaTokenizer {
    /// Tokenizes a context for [`QaTokenizer::windows_for`].
    pub fn encode_context(&self, context: &str) -> Result<EncodedContext, WindowError> {
        let mut c = self.encode(context)?;
        if c.is_empty() {
            return Err(WindowError::EmptyContext);
        }
        // As `encode((q, c))` does for the second sequence: its tokens are type 1, and
        // the overflowing windows copy these ids.
        c.set_type_ids(vec![1; c.len()]);
        Ok(EncodedContext(c))
    }

    /// The windows for one question over one context.
    pub fn windows(&self, question: &str, context: &str) -> Result<Vec<Window>, WindowError> {
        let question = self.encode_question(question)?;
        self.pair_windows(question, self.encode_context(context)?)
    }

    /// The windows for many (question, context) pairs. Consecutive pairs about the
    /// same passage (as in SQuAD files) share one tokenization of it.
    pub fn windows_many(&self, items: &[(&str, &str)]) -> Result<Vec<Vec<Window>>, WindowError> {
        let mut out = Vec::with_capacity(items.len());
        let mut cached: Option<(&str, EncodedContext)> = None;
        for &(question, context) in items {
            let reuse = cached
                .as_ref()
                .is_some_and(|(prev, _)| std::ptr::eq(*prev, context) || *prev == context);
            if !reuse {
                cached = Some((context, self.encode_context(context)?));
            }
            let (_, encoded) = cached.as_ref().expect("set above");
            out.push(self.windows_for(question, encoded)?);
        }
        Ok(out)
    }

    /// The windows for one question over an already tokenized context.
    pub fn windows_for(
        &self,
        question: &str,
        context: &EncodedContext,
    ) -> Result<Vec<Window>, WindowError> {
        let question = self.encode_question(question)?;
        self.pair_windows(question, context.clone())
    }

    fn encode_question(&self, question: &str) -> Result<tokenizers::Encoding, WindowError> {
        let mut q = self.encode(question.trim_start())?;
        if q.is_empty() {
            return Err(WindowError::EmptyQuestion);
        }
        q.truncate(
            self.config.max_query,
            0,
            tokenizers::TruncationDirection::Right,
        );
        q.take_overflowing();
        Ok(q)
    }

    fn pair_windows(
        &self,
        q: tokenizers::Encoding,
        c: EncodedContext,
    ) -> Result<Vec<Window>, WindowError> {
        let encodings = self.encode_pair(q, c.0)?;
        Ok(encodings
            .into_iter()
            .map(|e| {
                let offsets = e
                    .get_sequence_ids()
                    .into_iter()
                    .zip(e.get_offsets())
                    .map(|(seq, &off)| (seq == Some(1)).then_some(off))
                    .collect();
                Window {
                    input_ids: e.get_ids().to_vec(),
                    token_types: e.get_type_ids().to_vec(),
                    offsets,
                }
            })
            .collect())
    }
}
