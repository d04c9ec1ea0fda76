//! Reinforcement learning: the stages of a GRPO step as separate functions over explicit data.
//!
//! `rollout` (prompts → G completions → verifier rewards) → `advantage` (group-relative) →
//! `logprobs` (policy, old and reference log-probs of the completion tokens) → `loss` (the
//! clipped objective, a pure tensor function) → `optim` (AdamW, global-norm clipping) under a
//! `schedule`. `grpo` strings them into one step; `mgrpo` adds the self-correction layer
//! (layer-2 queries, selection, augmentation) and `igrpo` the refinement of the best draft,
//! both as rollouts whose experience `grpo::update` trains on, cut into micro-batches by
//! `batching`. `parallel`, `shards`, `threads`, `reduce` and `nodes` spread a step over devices
//! and machines. `ppo`, `gae` and `ppo_loss` are the one-round PPO baseline's own pieces
//! (per-token KL-penalised rewards, GAE, whitening; the clipped policy and value losses), with
//! `model::value` (the critic); `train::ppo_step` runs them.

pub mod advantage;
pub mod batching;
pub mod bench;
pub mod experience;
pub mod gae;
pub mod grpo;
pub mod igrpo;
pub mod logprobs;
pub mod loss;
pub mod mgrpo;
pub mod nodes;
pub mod optim;
pub mod parallel;
pub mod policy;
pub mod ppo;
pub mod ppo_loss;
pub mod reduce;
pub mod reference;
pub mod rollout;
pub mod schedule;
#[cfg(test)]
pub mod scripted;
pub mod sft;
pub mod shards;
pub mod threads;
