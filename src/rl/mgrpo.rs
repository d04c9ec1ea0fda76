//! MGRPO's second layer (docs/ARCHITECTURE.md, "MGRPO"): the model learns to correct its own answers.
//!
//! 1. Every layer-1 response `o_i` (or only the wrong or only the right ones, `layer2_on`)
//!    becomes a query `q'_i`: the layer-1 prompt, the response and a guide phrase drawn from
//!    `guide_phrases`, all **inside the same assistant turn** (the template's `layer2` string).
//!    At most `layer2_max_queries_per_step` of them, drawn at random.
//! 2. Selection: one correction per query; the verifier keeps the queries whose correction
//!    is right (G' of them); the others are discarded ("if errors cannot be corrected, the data
//!    is discarded").
//! 3. Augmentation: H (`augment_h`) more corrections per kept query, scored; advantages within
//!    each group of H. A group whose H rewards are all equal carries no signal: it is counted
//!    and left out of the loss (not trained on, not counted in its normalisation).
//!
//! A correction is graded on its own final answer (`reward.turn2_graded_on = "continuation"`,
//! the default): one that gives no answer is wrong, so the model cannot keep a right first
//! answer by never concluding. `"turn"` grades the whole assistant turn (first answer + guide +
//! correction) instead: a continuation that confirms without restating keeps the first answer.

use rand::seq::{IndexedRandom, SliceRandom};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::advantage::{group_advantages, ScaleRewards};
use super::experience::Experience;
use super::policy::Policy;
use super::rollout::{Draw, Rollout, Sampler};
use crate::data::Problem;
use crate::error::Result;
use crate::metrics::Layer2Stats;

/// The paper's seven guide phrases (the default `guide_phrases`).
pub const PAPER_GUIDE_PHRASES: [&str; 7] = [
    "Where might I have gone wrong this time? Let me double-check carefully.",
    "Wait, let me double-check that.",
    "Wait a minute, let me make sure I didn't make a mistake.",
    "Hmm, let me think if there's another way to approach this problem.",
    "Wait, maybe I can think about it like this:",
    "Another thought: maybe I can",
    "But wait, let me just make sure I didn't miss anything in the original problem.",
];

/// Which layer-1 responses become layer-2 queries (`layer2_on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Layer2On {
    /// Every response: right ones teach the model not to break them.
    #[default]
    All,
    /// Only wrong responses.
    Wrong,
    /// Only right responses.
    Right,
}

/// Layer-2 settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer2Params {
    pub guide_phrases: Vec<String>,
    /// H: corrections sampled per kept query.
    pub augment_h: usize,
    /// Cap on queries per step (0 = no cap).
    pub max_queries: usize,
    pub on: Layer2On,
    pub scale_rewards: ScaleRewards,
    pub mask_truncated: bool,
    /// Queries whose tokens plus this budget exceed it are dropped (and counted).
    pub max_new_tokens: usize,
    pub context: usize,
}

/// A layer-2 query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Index of the layer-1 completion it continues.
    pub source: usize,
    pub text: String,
    pub ids: Vec<u32>,
    /// What is graded before a correction: the response and the guide phrase.
    pub graded_prefix: String,
}

/// Layer 2's output: what to train on, and what happened.
#[derive(Debug, Clone)]
pub struct Layer2 {
    pub experience: Experience,
    pub stats: Layer2Stats,
    pub queries: Vec<Query>,
    /// The augmentation rollout (prompts = kept queries), for logs.
    pub augmented: Option<Rollout>,
    /// Index into `queries` of each augmentation prompt.
    pub kept: Vec<usize>,
    pub advantages: Vec<f32>,
}

/// Build, select and augment the layer-2 queries of a layer-1 rollout. `problems[p]` is the
/// problem of layer-1 prompt `p`.
pub fn layer2<S: Sampler>(
    policy: &mut Policy<'_, S>,
    problems: &[&Problem],
    layer1: &Rollout,
    params: &Layer2Params,
    seed: u64,
) -> Result<Layer2> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sources: Vec<usize> = (0..layer1.completions.len())
        .filter(|&i| match params.on {
            Layer2On::All => true,
            Layer2On::Wrong => !layer1.rewards[i].correct,
            Layer2On::Right => layer1.rewards[i].correct,
        })
        .collect();
    if params.max_queries > 0 && sources.len() > params.max_queries {
        sources.shuffle(&mut rng);
        sources.truncate(params.max_queries);
        sources.sort_unstable();
    }
    let mut stats = Layer2Stats::default();
    let mut queries = Vec::with_capacity(sources.len());
    for i in sources {
        let c = &layer1.completions[i];
        let problem = problems[c.prompt_index];
        let guide = params
            .guide_phrases
            .choose(&mut rng)
            .map(String::as_str)
            .unwrap_or("");
        let response = layer1.text(i);
        let turn = policy.turn2(&problem.question, response, guide)?;
        stats.queries += 1;
        if turn.ids.len() + params.max_new_tokens > params.context {
            stats.too_long += 1;
            continue;
        }
        queries.push(Query {
            source: i,
            text: turn.text,
            ids: turn.ids,
            graded_prefix: turn.graded_prefix,
        });
    }
    let query_problems: Vec<&Problem> = queries
        .iter()
        .map(|q| problems[layer1.completions[q.source].prompt_index])
        .collect();
    let prefixes: Vec<String> = queries.iter().map(|q| q.graded_prefix.clone()).collect();

    // selection: one correction each, keep the queries it corrects
    let ids: Vec<Vec<u32>> = queries.iter().map(|q| q.ids.clone()).collect();
    let selection = policy.rollout(
        &query_problems,
        ids,
        Some(&prefixes),
        Draw {
            n: 1,
            max_new_tokens: params.max_new_tokens,
            seed: seed ^ 0x5E1E_C710,
        },
    )?;
    stats.generated_tokens += selection.generated_tokens();
    let mut kept = Vec::new();
    for (qi, r) in selection.rewards.iter().enumerate() {
        let first_right = layer1.rewards[queries[qi].source].correct;
        match (first_right, r.correct) {
            (false, true) => stats.wrong_to_right += 1,
            (true, false) => stats.right_to_wrong += 1,
            _ => {}
        }
        if r.correct {
            kept.push(qi);
        }
    }
    stats.kept = kept.len();
    let h = params.augment_h;
    if kept.is_empty() {
        return Ok(Layer2 {
            experience: Experience::default(),
            stats,
            queries,
            augmented: None,
            kept,
            advantages: Vec::new(),
        });
    }

    // augmentation: H corrections per kept query, advantages within each group of H
    let kept_problems: Vec<&Problem> = kept.iter().map(|&k| query_problems[k]).collect();
    let kept_prefixes: Vec<String> = kept.iter().map(|&k| prefixes[k].clone()).collect();
    let kept_ids: Vec<Vec<u32>> = kept.iter().map(|&k| queries[k].ids.clone()).collect();
    let aug = policy.rollout(
        &kept_problems,
        kept_ids,
        Some(&kept_prefixes),
        Draw {
            n: h,
            max_new_tokens: params.max_new_tokens,
            seed: seed ^ 0xA06_0E27,
        },
    )?;
    stats.generated_tokens += aug.generated_tokens();
    let adv = group_advantages(&aug.totals(), h, params.scale_rewards);
    stats.reward_mean = adv.reward_mean;
    stats.groups_zero_std = adv.zero_std_groups;
    stats.groups_with_signal = kept.len() - adv.zero_std_groups;
    // groups without signal are left out: all their advantages are exactly 0
    let mut experience = Experience::from_rollout(&aug, &adv.values, params.mask_truncated);
    let with_signal: Vec<bool> = adv
        .values
        .chunks(h)
        .map(|g| g.iter().any(|&a| a != 0.0))
        .collect();
    experience.samples.retain(|s| with_signal[s.prompt]);
    Ok(Layer2 {
        experience,
        stats,
        queries,
        augmented: Some(aug),
        kept,
        advantages: adv.values,
    })
}

#[cfg(test)]
#[path = "mgrpo_tests.rs"]
mod tests;
