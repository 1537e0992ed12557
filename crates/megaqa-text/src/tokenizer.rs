//! WordPiece tokenization through Hugging Face `tokenizers`, configured exactly
//! as `BertTokenizerFast` (BertNormalizer, BertPreTokenizer, WordPiece, BertProcessing).

use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{Encoding, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::windows::WindowConfig;

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("vocabulary: {0}")]
    Vocab(String),
    #[error("tokenizer.json: {0}")]
    Json(String),
    #[error("tokenizing: {0}")]
    Encode(String),
}

/// A tokenizer set up for question + context pairs.
#[derive(Clone)]
pub struct QaTokenizer {
    /// Encodes single sequences, no truncation, no special tokens.
    plain: Tokenizer,
    /// Adds `[CLS] q [SEP] ctx [SEP]` and cuts the context into windows.
    windowing: Tokenizer,
    pub(crate) config: WindowConfig,
}

impl std::fmt::Debug for QaTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "QaTokenizer(vocab {}, {:?})",
            self.vocab_size(),
            self.config
        )
    }
}

impl QaTokenizer {
    /// From a WordPiece `vocab.txt` (one token a line).
    pub fn from_vocab(
        vocab: &str,
        lowercase: bool,
        config: WindowConfig,
    ) -> Result<Self, TokenizerError> {
        let map = WordPiece::read_bytes(vocab.as_bytes())
            .map_err(|e| TokenizerError::Vocab(e.to_string()))?;
        let id = |t: &str| {
            map.get(t)
                .copied()
                .ok_or_else(|| TokenizerError::Vocab(format!("token {t} is missing")))
        };
        let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
        id("[UNK]")?;
        let model = WordPiece::builder()
            .vocab(map)
            .unk_token("[UNK]".into())
            .continuing_subword_prefix("##".into())
            .max_input_chars_per_word(100)
            .build()
            .map_err(|e| TokenizerError::Vocab(e.to_string()))?;
        let mut tok = Tokenizer::new(model);
        tok.with_normalizer(Some(BertNormalizer::new(true, true, None, lowercase)))
            .map_err(|e| TokenizerError::Vocab(e.to_string()))?;
        tok.with_pre_tokenizer(Some(BertPreTokenizer));
        tok.with_post_processor(Some(BertProcessing::new(
            ("[SEP]".into(), sep),
            ("[CLS]".into(), cls),
        )));
        Self::from_tokenizer(tok, config)
    }

    /// From a Hugging Face `tokenizer.json`.
    pub fn from_json(json: &str, config: WindowConfig) -> Result<Self, TokenizerError> {
        let tok = Tokenizer::from_bytes(json.as_bytes())
            .map_err(|e| TokenizerError::Json(e.to_string()))?;
        Self::from_tokenizer(tok, config)
    }

    fn from_tokenizer(mut tok: Tokenizer, config: WindowConfig) -> Result<Self, TokenizerError> {
        config.validate().map_err(TokenizerError::Encode)?;
        tok.with_padding(None);
        tok.with_truncation(None)
            .map_err(|e| TokenizerError::Encode(e.to_string()))?;
        let mut windowing = tok.clone();
        windowing
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: config.max_len,
                strategy: TruncationStrategy::OnlySecond,
                stride: config.stride,
            }))
            .map_err(|e| TokenizerError::Encode(e.to_string()))?;
        Ok(Self {
            plain: tok,
            windowing,
            config,
        })
    }

    /// The geometry of the windows this tokenizer makes.
    pub fn window_config(&self) -> &WindowConfig {
        &self.config
    }

    pub fn vocab_size(&self) -> usize {
        self.plain.get_vocab_size(true)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.plain.token_to_id(token)
    }

    /// One sequence without special tokens; offsets are character offsets.
    pub fn encode(&self, text: &str) -> Result<Encoding, TokenizerError> {
        self.plain
            .encode_char_offsets(text, false)
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    /// `[CLS] question [SEP] context [SEP]` with the context cut into overlapping
    /// windows: the first encoding, then its overflowing windows in order.
    pub(crate) fn encode_pair(
        &self,
        question: Encoding,
        context: Encoding,
    ) -> Result<Vec<Encoding>, TokenizerError> {
        let mut first = self
            .windowing
            .post_process(question, Some(context), true)
            .map_err(|e| TokenizerError::Encode(e.to_string()))?;
        let overflow = first.take_overflowing();
        let mut out = vec![first];
        out.extend(overflow);
        Ok(out)
    }
}
