//! Reinforcement learning: the stages of a GRPO step as separate functions over explicit data.
//!
//! `rollout` (prompts → G completions → verifier rewards) → `advantage` (group-relative) →
//! `logprobs` (policy, old and reference log-probs of the completion tokens) → `loss` (the
//! clipped objective, a pure tensor function) → `optim` (AdamW, global-norm clipping) under a
//! `schedule`. `grpo` strings them into one step; `mgrpo` adds the self-correction layer
//! (layer-2 queries, selection, augmentation) and `igrpo` the refinement of the best draft,
//! both as rollouts whose experience `grpo::update` trains on. `parallel`, `shards`, `reduce`
//! and `nodes` spread a step over devices and machines. `gae` and `ppo_loss` are PPO's own
//! pieces (per-token KL-penalised rewards, GAE, whitening; the clipped policy and value losses), with
//! `model::value` (the critic), the first of the one-round PPO baseline, whose loop is not built
//! yet.

pub mod advantage;
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
