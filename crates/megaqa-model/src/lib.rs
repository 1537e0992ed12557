//! megaqa's network crate: Megatron-BERT (pre-LN) and BERT (post-LN) question
//! answering in Burn, with checkpoint readers for Hugging Face directories, NeMo
//! `.nemo` archives and megaqa's converted files.

pub mod checkpoint;
pub mod config;
#[cfg(feature = "network")]
pub mod device;
#[cfg(all(feature = "network", not(target_arch = "wasm32")))]
pub mod fused;
#[cfg(feature = "network")]
pub mod network;
#[cfg(feature = "network")]
pub mod params;
#[cfg(feature = "network")]
pub mod profile;
#[cfg(feature = "network")]
pub mod runner;

pub use checkpoint::{Checkpoint, LoadError, RunDefaults, TokenizerFiles};
pub use config::{Activation, ModelConfig};
#[cfg(feature = "network")]
pub use device::DeviceKind;
#[cfg(feature = "network")]
pub use network::{QaModel, SpanLogits};
#[cfg(feature = "network")]
pub use runner::{Batch, Logits};
