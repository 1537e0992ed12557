//! The megaqa engine: question + passage -> windows (text crate) -> batched
//! network (model crate) -> decoded answer. The CLI and the browser app both run
//! this code; nothing here touches files or the terminal.

mod engine;
mod results;

pub use engine::{Answered, Engine, EngineError, Timings};
pub use megaqa_model as model;
pub use megaqa_text as text;
pub use results::{QuestionResult, ResultsFile};
