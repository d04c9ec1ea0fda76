//! mgrpo: GRPO, MGRPO and iGRPO for Qwen2 models, written with Burn and generic over its
//! backends. See `README.md` and `docs/` for the big picture.
//!
//! Library code is generic over `B: FusedBackend` (Burn's `Backend` with the model's fused
//! operations, `fused/`); the binary (`main.rs`) and the impls in `fused/` are the only places
//! that name a concrete backend.

pub(crate) mod algo;
pub mod batch;
pub mod bench;
pub mod chat_template;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod fsutil;
pub mod fused;
pub mod generate;
pub mod grade;
pub mod interrupt;
pub mod jsonl;
pub(crate) mod memory;
pub mod metrics;
pub mod model;
pub mod model_dir;
pub mod reward;
pub mod rl;
pub mod run_lock;
pub mod score;
mod sections;
pub mod stats;
pub mod table2;
pub mod template;
pub(crate) mod tensor;
pub mod tokenizer;
pub mod train;
pub(crate) mod verdicts;
pub mod verify;

pub use error::{Error, KeyError, Result};

/// The repository the unit tests read fixtures from: `$MGRPO_REPO` when set (a test binary
/// copied to another machine), else the one it was built in.
#[cfg(test)]
pub(crate) fn test_repo() -> std::path::PathBuf {
    std::env::var_os("MGRPO_REPO")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The backend of the library's unit tests (the default CPU backend).
#[cfg(all(test, feature = "ndarray"))]
pub(crate) type TestBackend = burn::backend::NdArray<f32>;
#[cfg(all(test, not(feature = "ndarray"), feature = "flex"))]
pub(crate) type TestBackend = burn::backend::Flex<f32>;
