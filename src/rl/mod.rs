//! Reinforcement learning: the stages of a GRPO step as separate functions over explicit data.
//!
//! `rollout` (prompts → G completions → verifier rewards) → `advantage` (group-relative) →
//! `logprobs` (policy, old and reference log-probs of the completion tokens) → `loss` (the
//! clipped objective, a pure tensor function) → `optim` (AdamW, global-norm clipping) under a
//! `schedule`. `grpo` strings them into one update, cut into micro-batches by `batching`.
//! `parallel`, `shards`, `threads`, `reduce` and `nodes` spread a step over devices and
//! machines. The methods built from these stages (GRPO, MGRPO, iGRPO, PPO, RLOO) are in
//! `algo/`; nothing here knows which method runs.

pub mod advantage;
pub(crate) mod batching;
pub mod experience;
pub mod grpo;
pub mod logprobs;
pub mod loss;
pub(crate) mod mesh;
pub(crate) mod nodes;
pub mod optim;
pub(crate) mod parallel;
pub(crate) mod policy;
pub(crate) mod reduce;
pub(crate) mod reference;
pub(crate) mod rendezvous;
pub(crate) mod rollout;
pub(crate) mod schedule;
#[cfg(test)]
pub(crate) mod scripted;
pub(crate) mod sft;
pub(crate) mod shards;
pub(crate) mod threads;
pub(crate) mod wire;
