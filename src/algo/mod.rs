//! The RL methods, one folder each (docs/ARCHITECTURE.md, "Add a method"): its config section
//! with its own `validate`, how it collects a step's experience (the parts it trains on, each
//! with its weight and token budget) and its metrics. This file is the registry: the
//! `algorithm` key, the one match from a method to its collect stage, and what every method
//! hands the update stage ([`Collected`]).
//!
//! - `grpo`: G completions per question, group advantages.
//! - `mgrpo`: GRPO's layer 1 plus a self-correction layer (`[mgrpo]`).
//! - `igrpo`: N drafts per question, the best refined G times (`[igrpo]`).
//! - `ppo`: GRPO's rollout, trained by PPO with a critic (TRL's `PPOConfig` keys).
//! - `rloo`: G completions, leave-one-out baselines, KL in the reward (TRL's `RLOOConfig`).
//!
//! Methods see the run config only through [`Shared`] and their own section; `rl/` below them
//! knows no method.

use serde::{Deserialize, Serialize};

use crate::data::Problem;
use crate::error::{KeyError, Result};
use crate::rl::advantage::ScaleRewards;
use crate::rl::experience::Experience;
use crate::rl::grpo::Part;
use crate::rl::loss::LossParams;
use crate::rl::policy::Policy;
use crate::rl::rollout::{Rollout, Sampler};
use crate::sections::{take_flat, take_table};

mod group;
pub mod grpo;
pub mod igrpo;
pub mod mgrpo;
pub mod ppo;
pub mod rloo;

pub use group::Group;

/// Which method a run trains with (`algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// One layer of GRPO.
    #[default]
    Grpo,
    /// GRPO plus the self-correction layer.
    Mgrpo,
    /// GRPO on refinements of the best of several drafts.
    Igrpo,
    /// One-round PPO with a value model (TRL's `PPOTrainer`): the baseline of the paper's
    /// Table 2 that GRPO is defined against.
    Ppo,
    /// REINFORCE with leave-one-out baselines (TRL's `RLOOTrainer`).
    Rloo,
}

impl Algorithm {
    /// Every method, in the laptop table's order (after its baselines).
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Ppo,
        Algorithm::Grpo,
        Algorithm::Mgrpo,
        Algorithm::Igrpo,
        Algorithm::Rloo,
    ];

    /// The `algorithm` key's value (and the laptop table's row directory).
    pub fn key(self) -> &'static str {
        match self {
            Algorithm::Grpo => "grpo",
            Algorithm::Mgrpo => "mgrpo",
            Algorithm::Igrpo => "igrpo",
            Algorithm::Ppo => "ppo",
            Algorithm::Rloo => "rloo",
        }
    }

    /// The method whose `algorithm` key is `key`.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.key() == key)
    }

    /// Shared keys whose default in the method's TRL config differs from `GRPOConfig`'s, for a
    /// config file that does not set them.
    pub fn shared_defaults(self) -> &'static [(&'static str, toml::Value)] {
        match self {
            Algorithm::Rloo => &rloo::TRL_DEFAULTS,
            _ => &[],
        }
    }

    /// The row label of the laptop table (`mgrpo table2`).
    pub fn row_label(self) -> &'static str {
        match self {
            Algorithm::Grpo => "GRPO (one round)",
            Algorithm::Mgrpo => "MGRPO",
            Algorithm::Igrpo => "iGRPO",
            Algorithm::Ppo => "PPO (one round)",
            Algorithm::Rloo => "RLOO (one round)",
        }
    }

    /// The name as printed in tables.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Grpo => "GRPO",
            Algorithm::Mgrpo => "MGRPO",
            Algorithm::Igrpo => "iGRPO",
            Algorithm::Ppo => "PPO",
            Algorithm::Rloo => "RLOO",
        }
    }

    /// It trains a critic next to the policy (and updates both in its own update stage).
    pub fn has_critic(self) -> bool {
        self == Algorithm::Ppo
    }

    /// The smallest `num_generations` it can learn from: a group needs two completions for an
    /// advantage, PPO's critic gives one to a single completion.
    pub fn min_generations(self) -> usize {
        match self {
            Algorithm::Ppo => 1,
            _ => 2,
        }
    }
}

/// Every method's section of the run config: `[mgrpo]` and `[igrpo]` tables for our own
/// methods; PPO's and RLOO's keys at the top level under TRL's names.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Sections {
    pub mgrpo: mgrpo::Config,
    pub igrpo: igrpo::Config,
    #[serde(flatten)]
    pub ppo: ppo::Config,
    #[serde(flatten)]
    pub rloo: rloo::Config,
}

impl Sections {
    /// Take every method's keys out of a config file's top-level table (the rest is the run
    /// config's). The error names the key.
    pub(crate) fn take(table: &mut toml::Table) -> std::result::Result<Self, String> {
        let d = Self::default();
        Ok(Self {
            mgrpo: take_table(table, "mgrpo")?,
            igrpo: take_table(table, "igrpo")?,
            ppo: take_flat(table, &d.ppo)?,
            rloo: take_flat(table, &d.rloo)?,
        })
    }

    /// Why the section of the method `algorithm` (or a key another method shares) is unusable.
    pub fn validate(
        &self,
        algorithm: Algorithm,
        s: &SharedKeys,
    ) -> std::result::Result<(), KeyError> {
        self.mgrpo.validate(algorithm == Algorithm::Mgrpo)?;
        self.igrpo.validate()?;
        match algorithm {
            Algorithm::Ppo => self.ppo.validate(s),
            Algorithm::Rloo => self.rloo.validate(s),
            _ => Ok(()),
        }
    }

    /// The token budget of the second sampling stage: MGRPO's corrections, iGRPO's
    /// refinements (the larger of the two when a config sets both; the evaluation's default
    /// budget of a turn).
    pub fn second_budget(&self, max_completion_length: usize) -> usize {
        self.mgrpo
            .layer2_budget(max_completion_length)
            .max(self.igrpo.refine_budget(max_completion_length))
    }

    /// What `algorithm` appends after a first answer to continue it, and the continuation's
    /// budget: MGRPO's guide phrases, iGRPO's instruction; none for single-turn methods.
    pub fn second_turn(
        &self,
        algorithm: Algorithm,
        max_completion_length: usize,
    ) -> Option<(Vec<&str>, usize)> {
        match algorithm {
            Algorithm::Mgrpo => Some((
                self.mgrpo
                    .guide_phrases
                    .iter()
                    .map(String::as_str)
                    .collect(),
                self.mgrpo.layer2_budget(max_completion_length),
            )),
            Algorithm::Igrpo => Some((
                vec![self.igrpo.refine_instruction.as_str()],
                self.igrpo.refine_budget(max_completion_length),
            )),
            _ => None,
        }
    }
}

/// The run config's keys that a method's validation reads (a copy: methods never see the
/// run config itself).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SharedKeys {
    pub beta: f32,
    pub num_iterations: usize,
    pub num_generations: usize,
    pub num_devices: usize,
    pub num_nodes: usize,
    /// Completions per rollout, over all devices.
    pub completions_per_step: usize,
    /// The first of GRPO's loss keys (`loss_type`, `importance_sampling_level`, `delta`,
    /// `top_entropy_quantile`) set away from its default, for methods whose loss is fixed.
    pub changed_loss_key: Option<&'static str>,
}

/// The run config's keys that every method's collect stage reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shared {
    /// G: completions per question.
    pub num_generations: usize,
    /// The first sampling stage's token budget.
    pub max_completion_length: usize,
    pub scale_rewards: ScaleRewards,
    pub mask_truncated: bool,
    /// The KL coefficient (`beta`).
    pub beta: f32,
    /// The model's context length (continuations that leave no room are dropped).
    pub context: usize,
}

/// One step's questions for a method's collect stage: the problems, their tokenized prompts
/// (moved into the rollout) and the step's sampling seed.
pub struct StepInput<'a> {
    pub problems: &'a [&'a Problem],
    pub prompts: Vec<Vec<u32>>,
    pub seed: u64,
}

/// A part trained with its own weight next to the main group (MGRPO's layer 2).
#[derive(Debug, Clone)]
pub struct Second {
    pub experience: Experience,
    pub weight: f32,
    /// The token budget its completions were sampled with.
    pub budget: usize,
    /// What `completions.jsonl` shows of it.
    pub log: Option<SecondLog>,
}

/// The completions of a second part, for `completions.jsonl`.
#[derive(Debug, Clone)]
pub struct SecondLog {
    pub rollout: Rollout,
    /// The main group's completion that each of its prompts continues.
    pub sources: Vec<usize>,
    pub advantages: Vec<f32>,
}

/// Work a method leaves for after the scoring stage, once the old and reference log-probs are
/// in the experience (RLOO: the KL penalty in the reward, then the advantages).
pub type AfterScore = Box<dyn FnOnce(&mut Collected)>;

/// What a step's collect stage produced, whatever the method.
pub struct Collected {
    /// The group trained with weight 1: GRPO's, RLOO's and PPO's completions, MGRPO's layer
    /// 1, iGRPO's refinements.
    pub main: Group,
    /// The token budget its completions were sampled with (dr_grpo's constant).
    pub main_budget: usize,
    /// `completions.jsonl`'s name for its layer.
    pub main_layer: &'static str,
    pub second: Option<Second>,
    /// Tokens generated by the first sampling stage (GRPO/MGRPO layer 1, iGRPO's drafts) and
    /// by the second (MGRPO's corrections, iGRPO's refinements).
    pub tokens: (usize, usize),
    /// The method's own metrics.
    pub stats: MethodStats,
    /// The mean KL per token that a penalty in the reward used (RLOO's `kl`).
    pub reward_kl: Option<f32>,
    /// Work left for after scoring; its presence asks the score stage for old log-probs even
    /// with one update per rollout (RLOO's KL in the reward).
    pub after_score: Option<AfterScore>,
}

impl Collected {
    /// A single group, trained with weight 1 on the `budget` it was sampled with.
    pub fn single(main: Group, budget: usize) -> Self {
        let tokens = (main.rollout.generated_tokens(), 0);
        Self {
            main,
            main_budget: budget,
            main_layer: "1",
            second: None,
            tokens,
            stats: MethodStats::Plain {},
            reward_kl: None,
            after_score: None,
        }
    }

    /// The experiences trained on (the main group's, then the second part's).
    pub fn experiences_mut(&mut self) -> Vec<&mut Experience> {
        let mut out = vec![&mut self.main.experience];
        if let Some(s) = &mut self.second {
            out.push(&mut s.experience);
        }
        out
    }

    /// Run what the method left for after scoring.
    pub fn finish_scoring(&mut self) {
        if let Some(f) = self.after_score.take() {
            f(self);
        }
    }

    /// The update's loss terms, each with the token budget its completions were sampled with.
    pub fn parts(&self) -> Vec<Part<'_>> {
        let mut parts = vec![Part {
            experience: &self.main.experience,
            weight: 1.0,
            max_completion_length: self.main_budget,
            tokens_per_step: None,
        }];
        if let Some(s) = &self.second {
            parts.push(Part {
                experience: &s.experience,
                weight: s.weight,
                max_completion_length: s.budget,
                tokens_per_step: None,
            });
        }
        parts
    }

    /// Record what the update measured per part (the second part's loss).
    pub fn record_update(&mut self, part_losses: &[f32], ppo: Option<ppo::PpoStats>) {
        match (&mut self.stats, ppo) {
            (MethodStats::Mgrpo(s), _) => s.loss = part_losses.get(1).copied(),
            (stats, Some(p)) => *stats = MethodStats::Ppo(p),
            _ => {}
        }
    }
}

/// A method's own metrics, flattened into its step's line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MethodStats {
    Mgrpo(mgrpo::Stats),
    Igrpo(igrpo::Stats),
    Ppo(ppo::PpoStats),
    /// Nothing beyond the shared keys (GRPO, RLOO).
    Plain {},
}

impl Default for MethodStats {
    fn default() -> Self {
        MethodStats::Plain {}
    }
}

/// The objective `algorithm` trains with, from the run config's loss keys: GRPO's for the
/// GRPO family, RLOO's own (its KL is in the reward).
pub fn loss_params(algorithm: Algorithm, base: LossParams) -> LossParams {
    match algorithm {
        Algorithm::Rloo => rloo::loss_params(base),
        _ => base,
    }
}

/// Sample and grade one step's completions with `policy` and build the experience: the one
/// place a method is chosen.
pub fn collect<S: Sampler>(
    algorithm: Algorithm,
    sections: &Sections,
    shared: &Shared,
    policy: &mut Policy<'_, S>,
    input: StepInput<'_>,
) -> Result<Collected> {
    match algorithm {
        Algorithm::Grpo | Algorithm::Ppo => grpo::collect(shared, policy, input),
        Algorithm::Mgrpo => mgrpo::collect(&sections.mgrpo, shared, policy, input),
        Algorithm::Igrpo => igrpo::collect(&sections.igrpo, shared, policy, input),
        Algorithm::Rloo => rloo::collect(&sections.rloo, shared, policy, input),
    }
}

#[cfg(test)]
mod tests;
