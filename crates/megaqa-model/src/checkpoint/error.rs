use thiserror::Error;

/// Why a checkpoint could not be loaded. Every variant names the file and, where a
/// tensor is at fault, the tensor as the file names it.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("{file}: missing tensor `{name}` (expected shape {expected:?})")]
    MissingTensor {
        file: String,
        name: String,
        expected: Vec<usize>,
    },
    #[error("{file}: unexpected tensor `{name}` with shape {shape:?}")]
    UnexpectedTensor {
        file: String,
        name: String,
        shape: Vec<usize>,
    },
    #[error("{file}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        file: String,
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    /// A tensor left in its file (read lazily) whose bytes could not be read when
    /// needed; `message` names the file.
    #[error("{message} (tensor `{tensor}`)")]
    Unreadable { tensor: String, message: String },
    #[error(
        "{file}: this is a Riva model, encrypted with NVIDIA's proprietary scheme, which megaqa cannot read; download the .nemo release of the same model from NVIDIA's NGC catalogue and pass that instead"
    )]
    Riva { file: String },
    #[error("{file}: archive entry `{entry}` is {reason}; refusing to read this archive")]
    UnsafeEntry {
        file: String,
        entry: String,
        reason: String,
    },
}

impl LoadError {
    pub fn invalid(file: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            file: file.to_owned(),
            message: message.into(),
        }
    }
}
