//! Retrieval before reading: a user's documents cut into passages (`passages`), an
//! inverted index with Okapi BM25 ranking over the reader's own word normalisation
//! (`index`), saved to and loaded from one file (`file`). Hand-written rather than
//! tantivy: tantivy does not build for wasm32-unknown-unknown, and one index for native
//! and browser alike is a few hundred lines at the collection sizes a reader can serve.

pub mod documents;
mod file;
pub mod index;
pub mod passages;
pub mod words;

pub use documents::{Document, Kind};
pub use index::{Bm25, Collection, Hit, Library, Source};
pub use passages::{Passage, PassageConfig};

#[derive(Debug, thiserror::Error)]
pub enum RetrieveError {
    #[error("{0}: not a document megaqa reads (.txt, .md or SQuAD .json)")]
    UnknownKind(String),
    #[error("{file}: not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 { file: String, offset: usize },
    #[error("{0}: binary file (NUL bytes), not text")]
    Binary(String),
    #[error("{file}: not a SQuAD file ({message})")]
    Squad { file: String, message: String },
    #[error("the collection has no text to search (no passages in {0} file(s))")]
    Empty(usize),
    #[error("the question has no words to search for (only stop words or punctuation): {0:?}")]
    NoTerms(String),
    #[error("{file}: {message}")]
    IndexFile { file: String, message: String },
    #[error(
        "{index}: stale index: {source_name} changed since it was indexed (sha256 {was}, now {now}); run `megaqa index` again"
    )]
    Stale {
        index: String,
        source_name: String,
        was: String,
        now: String,
    },
    #[error("{index}: indexed file {source_name}: {message}")]
    Missing {
        index: String,
        source_name: String,
        message: String,
    },
}

impl RetrieveError {
    /// An error about one file's content (not text, not SQuAD, an unknown kind): a
    /// collection skips that file and says so, rather than failing.
    pub fn is_about_one_file(&self) -> bool {
        matches!(
            self,
            Self::UnknownKind(_) | Self::NotUtf8 { .. } | Self::Binary(_) | Self::Squad { .. }
        )
    }
}
