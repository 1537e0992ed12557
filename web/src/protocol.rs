//! What the page (the main thread) and the engine's Web Worker say to each other. The
//! page only renders and posts [`Request`]s; the worker loads, compiles, answers and
//! stores, and posts [`Event`]s back. Each message is `[json, files]`: the JSON of one
//! of these, and the `File`s a request hands over (read in the worker, not copied here).

use serde::{Deserialize, Serialize};

/// Passages the engine reads per question over the documents (as `megaqa ask --docs`
/// by default).
pub const PASSAGES: usize = 10;

/// Page -> worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// The first message: open the backend (`force_cpu`: the page's `?backend=cpu`;
    /// `bucket`: its `?bucket=N`), load `model`, and bring back the kept documents.
    Start {
        force_cpu: bool,
        bucket: Option<usize>,
        /// The page's `?precision=f16|f32`; None: f16 where the adapter has
        /// `shader-f16`, else f32.
        f16: Option<bool>,
        model: Load,
        /// The model to load again from browser storage if `model` fails: the one a
        /// replaced worker had ([`Event::Restart`]).
        #[serde(default)]
        fallback: Option<Cached>,
        /// The page's `?new_worker_mb=N`: the wasm memory over which a model is loaded
        /// in a new worker ([`Event::Restart`]); None: 512 MiB.
        #[serde(default)]
        new_worker_over: Option<u64>,
        /// The page's `?stream_mb=N`: the size over which a model file goes to browser
        /// storage as it arrives and is read from there a tensor at a time; None:
        /// 256 MiB.
        #[serde(default)]
        stream_over: Option<u64>,
    },
    /// Load a model (and make it the engine, once it has loaded).
    Load(Load),
    /// Index the documents posted with this message, and keep them.
    Documents,
    ForgetDocuments,
    /// Delete the stored model with this cache key.
    Delete(String),
    /// Answer `question` from `passage`, or from the indexed documents.
    Ask {
        question: String,
        passage: String,
        documents: bool,
    },
    /// The session's questions as a megaqa results file ([`Event::Export`]).
    Export,
}

/// Which model to load, and the question and passage to compile GPU kernels on (the
/// boxes' contents: their length decides the padded shapes compiled).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Load {
    pub from: LoadFrom,
    pub question: String,
    pub passage: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LoadFrom {
    /// A URL (from browser storage when kept there).
    Url(String),
    /// A model kept in browser storage.
    Stored(Cached),
    /// The model files posted with this message: one file, or a Hugging Face set.
    Files,
}

/// Worker -> page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// The worker listens (its first message; requests posted before it wait).
    Started,
    /// The backend opened: its label, whether the adapter has f16, and any note
    /// (why WebGPU is not used).
    Backend {
        label: String,
        f16: bool,
        note: Option<String>,
    },
    /// Something the page says beside the backend (storage is full, …).
    Note(String),
    Status(String),
    /// Bytes received of the total, while a model downloads or is read.
    Progress(Option<(u64, Option<u64>)>),
    Busy(bool),
    Model(ModelInfo),
    /// None while the GPU compiles the model's kernels, then what the page says.
    Ready(Option<String>),
    /// The error to show, or None to clear it.
    Error(Option<String>),
    Stored(Vec<Cached>),
    /// What the indexed documents are ("3 file(s), …"), or None once forgotten.
    Documents(Option<String>),
    Answer {
        shown: Shown,
        /// Questions answered in this session (what the export holds).
        session: usize,
    },
    /// The session as a megaqa results file (JSON), for the page to save.
    Export(String),
    /// Load `load` in a new worker, and end this one: this one holds more memory than
    /// a new one would (wasm memory never shrinks), and `load` passed the checks made
    /// before its bytes (the server answered; its header fits). `fallback`: this
    /// worker's model in browser storage, loaded again if `load` then fails.
    Restart {
        load: Load,
        fallback: Option<Cached>,
    },
}

/// A model kept in browser storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cached {
    /// The cache key (a same-origin URL path).
    pub key: String,
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// What the page shows about the loaded model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Where it came from: a URL, or a file name.
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
    /// The engine's fingerprint (what results files carry).
    pub model_sha256: String,
    /// "6 layers × 384 hidden, 12 heads, post-LN (BERT)".
    pub shape: String,
    /// "f16" or "f32": what the network computes in.
    pub compute: String,
    /// Why it does not run as the page asked (too large for the GPU, no f16), if so.
    pub note: Option<String>,
}

/// One span the page can highlight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub text: String,
    pub start: usize,
    pub end: usize,
    pub probability: f64,
    /// Start + end logit: what the null score is compared with.
    pub score: f64,
}

/// What the page shows about one answered question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shown {
    pub passage: String,
    /// The answer, or None for "no answer in this passage".
    pub answer: Option<Span>,
    pub sentence: String,
    pub null_score: f64,
    pub null_odds: f64,
    /// Alternatives (non-empty spans) from the n-best list.
    pub nbest: Vec<Span>,
    pub windows: usize,
    pub tokenize_ms: f64,
    pub network_ms: f64,
    pub decode_ms: f64,
    /// Where the passage came from, when the question searched the documents.
    pub source: Option<Source>,
}

/// The document and passage an answer was read from, and the others read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub document: String,
    /// Characters of the passage in its document.
    pub start: usize,
    pub end: usize,
    pub rank: usize,
    pub score: f32,
    /// Every passage read: (document, retrieval score, its answer or "").
    pub read: Vec<(String, f32, String)>,
}
