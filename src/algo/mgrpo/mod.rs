//! MGRPO (multi-layer GRPO): GRPO's layer 1, then a second GRPO layer on the model's
//! corrections of its own answers (`layer2.rs`; docs/ARCHITECTURE.md, "MGRPO"). Its keys are
//! ours, in the run config's `[mgrpo]` table.

mod layer2;

use serde::{Deserialize, Serialize};

pub use layer2::{layer2, Layer2On, Layer2Params, Layer2Stats};

use super::{grpo, Collected, Second, SecondLog, Shared, StepInput};
use crate::error::{KeyError, Result};
use crate::rl::policy::Policy;
use crate::rl::rollout::Sampler;
use crate::text::template::PAPER_GUIDE_PHRASES;

/// The `[mgrpo]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Guide phrases appended after a layer-1 response; one drawn at random per query. The
    /// first is also the evaluation's turn-2 phrase unless `eval_guide` is set.
    pub guide_phrases: Vec<String>,
    /// H: corrections sampled per kept layer-2 query (at least 2).
    pub augment_h: usize,
    /// Cap on layer-2 queries per step, drawn at random (0 = every layer-1 response).
    pub layer2_max_queries_per_step: usize,
    /// Weight of the layer-2 loss in the step's loss.
    pub layer2_weight: f32,
    /// Which layer-1 responses become queries: all, wrong or right.
    pub layer2_on: Layer2On,
    /// Token budget of a correction; defaults to `max_completion_length`.
    pub layer2_max_completion_length: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            guide_phrases: PAPER_GUIDE_PHRASES.iter().map(|s| s.to_string()).collect(),
            augment_h: 4,
            layer2_max_queries_per_step: 0,
            layer2_weight: 1.0,
            layer2_on: Layer2On::All,
            layer2_max_completion_length: None,
        }
    }
}

impl Config {
    /// Why the table is unusable; `active`: MGRPO is the run's method.
    pub fn validate(&self, active: bool) -> std::result::Result<(), KeyError> {
        let bad = |key: &str, msg: &str| Err(KeyError::new(key, msg).within("mgrpo"));
        if self.guide_phrases.is_empty() {
            return bad("guide_phrases", "must hold at least one phrase");
        }
        if active && self.augment_h < 2 {
            return bad(
                "augment_h",
                "must be at least 2 (a group of one has no advantage, so layer 2 would train nothing)",
            );
        }
        if !(self.layer2_weight.is_finite() && self.layer2_weight >= 0.0) {
            return bad("layer2_weight", "must be ≥ 0");
        }
        if self.layer2_max_completion_length == Some(0) {
            return bad("layer2_max_completion_length", "must be at least 1");
        }
        Ok(())
    }

    /// The token budget of a correction.
    pub fn layer2_budget(&self, max_completion_length: usize) -> usize {
        self.layer2_max_completion_length
            .unwrap_or(max_completion_length)
    }
}

/// MGRPO's metrics: layer 2's counts (`layer2/...`) and its loss.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    #[serde(flatten)]
    pub layer2: Layer2Stats,
    /// The layer-2 loss (unweighted).
    #[serde(
        rename = "layer2/loss",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub loss: Option<f32>,
}

/// Layer 1 as GRPO's, then layer 2's selected and augmented corrections, trained with weight
/// `layer2_weight`.
pub fn collect<S: Sampler>(
    cfg: &Config,
    shared: &Shared,
    policy: &mut Policy<'_, S>,
    input: StepInput<'_>,
) -> Result<Collected> {
    let (problems, seed) = (input.problems, input.seed);
    let layer1 = grpo::first_layer(shared, policy, input)?;
    let params = Layer2Params {
        guide_phrases: cfg.guide_phrases.clone(),
        augment_h: cfg.augment_h,
        max_queries: cfg.layer2_max_queries_per_step,
        on: cfg.layer2_on,
        scale_rewards: shared.scale_rewards,
        mask_truncated: shared.mask_truncated,
        max_new_tokens: cfg.layer2_budget(shared.max_completion_length),
        context: shared.context,
    };
    let l2 = layer2(
        policy,
        problems,
        &layer1.rollout,
        &params,
        seed ^ 0x1A7E_2002,
    )?;
    let log = l2.augmented.map(|rollout| SecondLog {
        rollout,
        sources: l2.kept.iter().map(|&k| l2.queries[k].source).collect(),
        advantages: l2.advantages,
    });
    let mut got = Collected::single(layer1, shared.max_completion_length);
    got.tokens.1 = l2.stats.generated_tokens;
    got.stats = super::MethodStats::Mgrpo(Stats {
        layer2: l2.stats,
        loss: None,
    });
    got.second = Some(Second {
        experience: l2.experience,
        weight: cfg.layer2_weight,
        budget: params.max_new_tokens,
        log,
    });
    Ok(got)
}
