//! megaqa's network crate: Megatron-BERT (pre-LN) and BERT (post-LN) question
//! answering in Burn, with checkpoint readers for Hugging Face directories, NeMo
//! `.nemo` archives and megaqa's converted files.

pub mod checkpoint;
pub mod config;
pub mod device;
pub mod network;
pub mod runner;

pub use checkpoint::{Checkpoint, LoadError, TokenizerFiles};
pub use config::{Activation, ModelConfig};
pub use device::DeviceKind;
pub use network::{QaModel, SpanLogits};
pub use runner::{Batch, Logits};
