//! iGRPO: N drafts per question, the best refined G times; the refinements are the trained
//! group, the drafts get no gradient (`refine.rs`; docs/ARCHITECTURE.md, "iGRPO"). Its keys
//! are ours, in the run config's `[igrpo]` table.

mod refine;

use serde::{Deserialize, Serialize};

pub use refine::{refine, DraftTie, RefineParams};

use super::{Collected, Group, MethodStats, Shared, StepInput};
use crate::error::{KeyError, Result};
use crate::rl::advantage::nanmean;
use crate::rl::policy::Policy;
use crate::rl::rollout::Sampler;

/// The default refinement instruction.
pub const DEFAULT_REFINE_INSTRUCTION: &str =
    "Let me review this draft, fix any mistake in it, and write the final solution.";

/// The `[igrpo]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// N: drafts per question in stage 1.
    pub num_drafts: usize,
    /// Text appended after the best draft to ask for a refinement.
    pub refine_instruction: String,
    /// Tie rule between equally rewarded drafts: first or shortest.
    pub draft_tie: DraftTie,
    /// Token budget of a refinement; defaults to `max_completion_length` (a draft's).
    pub refine_max_completion_length: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            num_drafts: 4,
            refine_instruction: DEFAULT_REFINE_INSTRUCTION.into(),
            draft_tie: DraftTie::First,
            refine_max_completion_length: None,
        }
    }
}

impl Config {
    /// Why the table is unusable.
    pub fn validate(&self) -> std::result::Result<(), KeyError> {
        let bad = |key: &str, msg: &str| Err(KeyError::new(key, msg).within("igrpo"));
        if self.num_drafts == 0 {
            return bad("num_drafts", "must be at least 1");
        }
        if self.refine_max_completion_length == Some(0) {
            return bad("refine_max_completion_length", "must be at least 1");
        }
        Ok(())
    }

    /// The token budget of a refinement.
    pub fn refine_budget(&self, max_completion_length: usize) -> usize {
        self.refine_max_completion_length
            .unwrap_or(max_completion_length)
    }
}

/// What iGRPO's stage 1 measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Mean reward of all drafts (those a reward scored).
    #[serde(
        rename = "igrpo/draft_reward",
        deserialize_with = "crate::run::jsonl::nan_from_null"
    )]
    pub draft_reward: f32,
    /// Mean reward of the drafts chosen for refinement (those a reward scored).
    #[serde(
        rename = "igrpo/best_draft_reward",
        deserialize_with = "crate::run::jsonl::nan_from_null"
    )]
    pub best_draft_reward: f32,
}

/// N drafts, the best refined G times: the refinements are the trained group, with the
/// refinement budget.
pub fn collect<S: Sampler>(
    cfg: &Config,
    shared: &Shared,
    policy: &mut Policy<'_, S>,
    input: StepInput<'_>,
) -> Result<Collected> {
    let g = shared.num_generations;
    let params = RefineParams {
        num_drafts: cfg.num_drafts,
        draft_tokens: shared.max_completion_length,
        refinements: g,
        refine_tokens: cfg.refine_budget(shared.max_completion_length),
        instruction: cfg.refine_instruction.clone(),
        tie: cfg.draft_tie,
    };
    let r = refine(policy, input.problems, input.prompts, &params, input.seed)?;
    let stats = Stats {
        draft_reward: nanmean(&r.drafts.totals()),
        best_draft_reward: r.best_draft_reward(),
    };
    let draft_tokens = r.drafts.generated_tokens();
    let refinements = Group::new(
        r.refinements,
        g,
        shared.scale_rewards,
        shared.mask_truncated,
    );
    let mut got = Collected::single(refinements, params.refine_tokens);
    got.tokens = (draft_tokens, got.tokens.0);
    got.main_layer = "refine";
    got.stats = MethodStats::Igrpo(stats);
    Ok(got)
}
