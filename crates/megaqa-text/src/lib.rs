//! megaqa's text pipeline: WordPiece tokenization with character offsets, SQuAD
//! windows, span decoding with SQuAD v2 "no answer" handling, SQuAD v2.0 JSON and
//! the official EM/F1 scoring. No Burn; the browser runs this very code.

pub mod decode;
pub mod negatives;
pub mod output;
pub mod scoring;
pub mod sentence;
pub mod squad;
pub mod swapped;
pub mod tokenizer;
pub mod training;
pub mod windows;

pub use decode::{
    Answer, DecodeConfig, NbestEntry, Prediction, WindowLogits, best_passage, decode,
};
pub use negatives::with_negatives;
pub use squad::{Dataset, Example, SquadError};
pub use swapped::with_swapped_questions;
pub use tokenizer::{QaTokenizer, TokenizerError};
pub use training::{TrainFeature, train_features};
pub use windows::{Window, WindowConfig};
