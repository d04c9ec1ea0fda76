//! iGRPO (docs/ARCHITECTURE.md, "iGRPO"): refine the best of several drafts.
//!
//! Stage 1: N drafts per question (`[igrpo] num_drafts`), scored by the verifier; the best by
//! total reward is kept, ties broken by `draft_tie` (`first`: the earliest sampled;
//! `shortest`: the fewest tokens, then the earliest). Drafts get no gradient.
//! Stage 2: the prompt becomes the question, the best draft and a refinement instruction
//! (`refine_instruction`), continuing the same assistant turn (the template's `layer2`
//! string); G refinements are sampled and trained with the GRPO objective, advantages within
//! each question's group. A refinement is graded like an MGRPO correction (`reward.turn2_graded_on`).
//! Rollout budget: N + G completions per question, against GRPO's G.

use serde::{Deserialize, Serialize};

use crate::data::Problem;
use crate::error::Result;
use crate::rl::advantage::nanmean;
use crate::rl::policy::Policy;
use crate::rl::rollout::{Draw, Rollout, Sampler};

/// How ties between equally rewarded drafts are broken (`draft_tie`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DraftTie {
    /// The earliest sampled draft.
    #[default]
    First,
    /// The draft with the fewest tokens (then the earliest).
    Shortest,
}

/// The index (within its group) of the best draft of each group of `n`: highest reward, ties
/// broken by `tie`.
pub fn best_drafts(rewards: &[f32], lengths: &[usize], n: usize, tie: DraftTie) -> Vec<usize> {
    rewards
        .chunks(n)
        .zip(lengths.chunks(n))
        .map(|(r, len)| {
            // a draft no reward scored (NaN) ranks below every scored one
            let key = |x: f32| if x.is_nan() { f32::NEG_INFINITY } else { x };
            let mut best = 0;
            for i in 1..r.len() {
                let (a, b) = (key(r[i]), key(r[best]));
                let better = a > b || (a == b && tie == DraftTie::Shortest && len[i] < len[best]);
                if better {
                    best = i;
                }
            }
            best
        })
        .collect()
}

/// Stage 1 and the stage-2 rollout of one step.
#[derive(Debug, Clone)]
pub struct Refinement {
    /// N drafts per question.
    pub drafts: Rollout,
    /// Index within each question's drafts of the one refined.
    pub best: Vec<usize>,
    /// G refinements per question (prompts = question + best draft + instruction).
    pub refinements: Rollout,
}

impl Refinement {
    /// Mean reward of the chosen drafts that a reward scored (NaN when none was).
    pub fn best_draft_reward(&self) -> f32 {
        let n = self.drafts.group_size();
        let best: Vec<f32> = self
            .best
            .iter()
            .enumerate()
            .map(|(q, &b)| self.drafts.rewards[q * n + b].total)
            .collect();
        nanmean(&best)
    }
}

/// iGRPO's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RefineParams {
    /// N: drafts per question.
    pub num_drafts: usize,
    pub draft_tokens: usize,
    /// G: refinements per question.
    pub refinements: usize,
    pub refine_tokens: usize,
    pub instruction: String,
    pub tie: DraftTie,
}

/// Draft N answers per problem, keep the best, and sample G refinements of it.
pub fn refine<S: Sampler>(
    policy: &mut Policy<'_, S>,
    problems: &[&Problem],
    prompts: Vec<Vec<u32>>,
    params: &RefineParams,
    seed: u64,
) -> Result<Refinement> {
    let num_drafts = params.num_drafts;
    let instruction = params.instruction.as_str();
    let draw = Draw {
        n: num_drafts,
        max_new_tokens: params.draft_tokens,
        seed,
    };
    let drafts = policy.rollout(problems, prompts, None, draw)?;
    let lengths: Vec<usize> = drafts.completions.iter().map(|c| c.ids.len()).collect();
    let best = best_drafts(&drafts.totals(), &lengths, num_drafts, params.tie);
    let mut ids = Vec::with_capacity(problems.len());
    let mut prefixes = Vec::with_capacity(problems.len());
    for (q, (&b, p)) in best.iter().zip(problems).enumerate() {
        let draft = drafts.text(q * num_drafts + b);
        let turn = policy.turn2(p.ask(), draft, instruction)?;
        ids.push(turn.ids);
        prefixes.push(turn.graded_prefix);
    }
    let refinements = policy.rollout(
        problems,
        ids,
        Some(&prefixes),
        Draw {
            n: params.refinements,
            max_new_tokens: params.refine_tokens,
            seed: seed ^ 0x12EF_17E5,
        },
    )?;
    Ok(Refinement {
        drafts,
        best,
        refinements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::igrpo::DEFAULT_REFINE_INSTRUCTION;
    use crate::reward::{RewardConfig, Turn2Grading};
    use crate::rl::scripted::{problem, test_tokenizer, Scripted};
    use crate::text::template::PromptTemplate;

    #[test]
    fn best_draft_and_tie_rules() {
        // group 0: one clear winner; group 1: a tie between samples 1 and 3 (3 shorter);
        // then a group all equal, its sample 2 the shortest
        let rewards = [0.0, 1.0, 0.0, 0.5, 0.0, 1.0, 0.0, 1.0];
        let lengths = [5, 9, 2, 7, 3, 4, 3, 3];
        assert_eq!(best_drafts(&rewards, &lengths, 4, DraftTie::First), [1, 1]);
        assert_eq!(
            best_drafts(&rewards, &lengths, 4, DraftTie::Shortest),
            [1, 3]
        );
        let (flat, lens) = ([0.2, 0.2, 0.2], [3, 3, 1]);
        assert_eq!(best_drafts(&flat, &lens, 3, DraftTie::First), [0]);
        assert_eq!(best_drafts(&flat, &lens, 3, DraftTie::Shortest), [2]);
        // equal lengths under `shortest`: the first
        assert_eq!(
            best_drafts(&[1.0, 1.0], &[3, 3], 2, DraftTie::Shortest),
            [0]
        );
    }

    #[test]
    fn refines_the_best_draft_on_a_scripted_policy() {
        let tok = test_tokenizer();
        let problems = [problem("p0", "2+3?", "5"), problem("p1", "3+4?", "7")];
        let refs: Vec<&Problem> = problems.iter().collect();
        let t = PromptTemplate::builtin("plain").unwrap();
        let prompts: Vec<Vec<u32>> = refs
            .iter()
            .map(|p| tok.encode(&t.render(&p.question)).unwrap())
            .collect();
        // drafts: p0's right ones are samples 1 ("long") and 2 (short); p1 has none right
        let script = |call: usize, prompt: &str, s: usize| -> String {
            match call {
                0 if prompt.starts_with("2+3?") => {
                    [r"\boxed{4}", r"so it must be \boxed{5}", r"\boxed{5}"][s].into()
                }
                0 => [r"\boxed{1}", r"\boxed{2}", r"\boxed{8}"][s].into(),
                1 => format!("refined {s}"),
                _ => panic!("unexpected call {call}"),
            }
        };
        let cases = [
            (DraftTie::First, 1, Turn2Grading::Turn),
            (DraftTie::Shortest, 2, Turn2Grading::Turn),
            (DraftTie::First, 1, Turn2Grading::Continuation),
        ];
        for (tie, p0_best, turn2_graded_on) in cases {
            let reward = RewardConfig {
                turn2_graded_on,
                ..RewardConfig::default()
            };
            let mut policy =
                Policy::new(Scripted::new(&tok, Box::new(script)), &t, &tok, &reward).unwrap();
            let params = RefineParams {
                num_drafts: 3,
                draft_tokens: 8,
                refinements: 4,
                refine_tokens: 8,
                instruction: DEFAULT_REFINE_INSTRUCTION.into(),
                tie,
            };
            let r = refine(&mut policy, &refs, prompts.clone(), &params, 3).unwrap();
            assert_eq!(r.best, vec![p0_best, 0]);
            assert_eq!(r.drafts.completions.len(), 6);
            assert_eq!(r.refinements.completions.len(), 8);
            assert_eq!(policy.sampler.calls[1].1.n, 4);
            let draft = r.drafts.text(p0_best);
            assert_eq!(
                policy.sampler.calls[1].0[0],
                format!("2+3?\n{draft}\n\n{DEFAULT_REFINE_INSTRUCTION}")
            );
            assert_eq!(
                policy.sampler.calls[1].0[1],
                format!("3+4?\n\\boxed{{1}}\n\n{DEFAULT_REFINE_INSTRUCTION}")
            );
            // graded as the whole turn, p0's refinements keep the draft's right answer; graded
            // on their own, "refined s" states no answer
            let whole_turn = turn2_graded_on == Turn2Grading::Turn;
            assert!(r.refinements.rewards[..4]
                .iter()
                .all(|x| x.correct == whole_turn));
            assert!(r.refinements.rewards[4..].iter().all(|x| !x.correct));
            assert!((r.best_draft_reward() - 0.5).abs() < 1e-6);
        }
    }
}
