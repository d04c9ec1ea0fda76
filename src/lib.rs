//! mgrpo: GRPO, MGRPO and iGRPO for Qwen2, Qwen3 and Llama models (`model::family`), written
//! with Burn and generic over its backends. See `README.md` and `docs/` for the big picture.
//!
//! Library code is generic over `B: FusedBackend` (Burn's `Backend` with the model's fused
//! operations, [`fused`]); the command line ([`cli`], which the `mgrpo` binary calls) and the
//! impls in `fused/` are the only places that name a concrete backend.
//!
//! The public modules are what a user builds on: a model directory opened and loaded
//! ([`model`]), its tokenizer and templates ([`text`]), per-token log-probs ([`score`]),
//! sampling ([`generate`]), the math verifier ([`verify`]) and the rewards ([`reward`]), the
//! pure pieces of an RL update ([`rl`]), whole runs ([`train`], [`eval`]) and their logs
//! ([`metrics`]). The RL methods, the run directory's plumbing, the statistics and the
//! kernels are crate-private (docs/ARCHITECTURE.md, "The public surface").
//!
//! ```
//! use mgrpo::model::{dir::ModelDir, Precision};
//! use mgrpo::verify::{verify, Extraction, Policy};
//!
//! type B = burn::backend::NdArray<f32>;
//! let device = Default::default();
//! // the shipped tiny model: config, tokenizer and end-of-sequence ids, then the weights
//! let dir = ModelDir::open(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("model"))?;
//! let model = dir.load::<B>(Precision::F32, &device)?;
//! let tokenizer = dir.tokenizer.as_ref().expect("the shipped model has a tokenizer");
//! let ids = tokenizer.encode("12 + 30 = 42")?;
//! // log p(x_t | x_<t) for every token after the first
//! let logprobs = mgrpo::score::score_rows(&model, &[ids.clone()], 1, &device)?;
//! assert_eq!(logprobs[0].len(), ids.len() - 1);
//! assert!(logprobs[0].iter().all(|&lp| lp <= 0.0));
//! // the verifier grades a completion's final answer against the reference
//! let verdict = verify("42", "12 + 30 = \\boxed{42}", &Policy::default(), Extraction::Anchored);
//! assert!(verdict.correct);
//! # Ok::<(), mgrpo::Error>(())
//! ```

// The library's surface: what a user builds on (load, score, generate, verify, reward,
// train, evaluate) and the command line. Everything else serves those and is crate-private.
pub mod bench;
pub mod cli;
pub mod data;
pub mod eval;
pub mod fused;
pub mod generate;
pub mod metrics;
pub mod model;
pub mod reward;
pub mod rl;
pub mod score;
pub mod text;
pub mod train;
pub mod verify;

pub(crate) mod algo;
mod error;
pub mod run;
mod sections;
pub(crate) mod stats;
pub(crate) mod table2;

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
