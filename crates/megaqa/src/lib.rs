//! The megaqa engine: question + passage -> windows (text crate) -> batched
//! network (model crate) -> decoded answer. The CLI and the browser app both run
//! this code. Nothing here touches the terminal; only `train` writes files (its
//! checkpoints).

mod engine;
mod fingerprint;
mod results;

#[cfg(feature = "train")]
pub mod train;

pub use engine::{Answered, Engine, EngineError, Shapes, Timings};
pub use fingerprint::Fingerprint;
pub use megaqa_model as model;
pub use megaqa_text as text;
pub use results::{QuestionResult, ResultsFile};
