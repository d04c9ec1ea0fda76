//! The Qwen2 model, written generically over Burn backends, with HF checkpoints in and out.

pub mod attention;
pub mod block;
pub mod cache;
pub mod checkpoint;
pub mod config;
pub mod mlp;
pub mod norm;
pub mod qwen2;
pub mod rope;
pub mod save;

pub use cache::KvCache;
pub use checkpoint::load_model;
pub use config::Qwen2Config;
pub use qwen2::{ModelInput, Qwen2ForCausalLM};
pub use save::{save_model, SaveDtype, SaveOptions};
