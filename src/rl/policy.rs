//! The policy as the RL stages see it: what every rollout needs, travelling together — a
//! [`Sampler`] (the model behind the KV-cache engine, or a scripted mock in tests), the prompt
//! template, the tokenizer and the reward. GRPO's rollouts, MGRPO's corrections, iGRPO's
//! refinements, the two-turn evaluation and STaR's samples all go through [`Policy::rollout`],
//! and every second-turn prompt through [`Policy::turn2`].

use super::rollout::{Draw, Rollout, Sampler};
use crate::data::Problem;
use crate::error::{Error, Result};
use crate::reward::{RewardConfig, RewardInput, RewardSet, Turn2Grading};
use crate::text::template::{Ask, PromptTemplate, Turn2};
use crate::text::tokenizer::Tokenizer;
use crate::verify::Extraction;

/// A sampler with the template, tokenizer and reward its rollouts are built and graded with.
pub struct Policy<'a, S> {
    pub sampler: S,
    pub template: &'a PromptTemplate,
    pub tokenizer: &'a Tokenizer,
    pub reward: RewardSet,
    /// What a second-turn text is graded on (`reward.turn2_graded_on`).
    pub turn2_graded_on: Turn2Grading,
    /// The verifier's extraction policy (`reward.policy.extraction`; unset: each dataset's).
    pub extraction: Option<Extraction>,
}

impl<'a, S: Sampler> Policy<'a, S> {
    /// `sampler` rolling out with `template`, graded by the rewards `reward` describes.
    pub fn new(
        sampler: S,
        template: &'a PromptTemplate,
        tokenizer: &'a Tokenizer,
        reward: &RewardConfig,
    ) -> Result<Self> {
        Ok(Self {
            sampler,
            template,
            tokenizer,
            reward: reward.reward_set()?,
            turn2_graded_on: reward.turn2_graded_on,
            extraction: reward.policy.extraction,
        })
    }

    /// The second-turn prompt for `question`, a first `response` and a `guide` phrase (or an
    /// instruction), tokenized: MGRPO's queries, iGRPO's refinement prompts, the evaluation's
    /// turn 2 and STaR's revisions.
    pub fn turn2(&self, ask: Ask<'_>, response: &str, guide: &str) -> Result<Turn2> {
        self.template.turn2(self.tokenizer, ask, response, guide)
    }

    /// The second turn as a new user message after the first `response`, asking with
    /// `instruction` (the intrinsic self-correction baseline), tokenized. The continuation is
    /// a new assistant turn, graded on its own.
    pub fn new_user_turn(&self, ask: Ask<'_>, response: &str, instruction: &str) -> Result<Turn2> {
        let text = self.template.render_new_turn(ask, response, instruction)?;
        let ids = self.tokenizer.encode(&text)?;
        Ok(Turn2 {
            text,
            ids,
            graded_prefix: String::new(),
        })
    }

    /// The text a second-turn `continuation` is graded on, after `turn_so_far`.
    pub fn graded_text<'t>(
        &self,
        turn_so_far: &str,
        continuation: &'t str,
    ) -> std::borrow::Cow<'t, str> {
        self.turn2_graded_on.text(turn_so_far, continuation)
    }

    /// Sample `draw.n` completions for each prompt and grade each against `problems[i]`.
    /// `graded_prefix` marks second-turn prompts (a layer-2 correction, a refinement):
    /// `graded_prefix[i]` is the turn so far (first answer + guide), and `turn2_graded_on`
    /// says whether the continuation is graded alone or after it.
    pub fn rollout(
        &mut self,
        problems: &[&Problem],
        prompts: Vec<Vec<u32>>,
        graded_prefix: Option<&[String]>,
        draw: Draw,
    ) -> Result<Rollout> {
        let out = self.sampler.sample(&prompts, draw)?;
        if out.completions.len() != prompts.len() * draw.n {
            return Err(Error::Invalid(format!(
                "the sampler returned {} completions for {} prompts × {}",
                out.completions.len(),
                prompts.len(),
                draw.n
            )));
        }
        let prompt_texts = prompts
            .iter()
            .map(|p| self.tokenizer.decode(p, false))
            .collect::<Result<Vec<_>>>()?;
        let graded = out
            .completions
            .iter()
            .map(|c| {
                let text = c.text.as_deref().ok_or_else(|| {
                    Error::Invalid("rollout completions must be decoded (no tokenizer?)".into())
                })?;
                Ok(match graded_prefix {
                    Some(prefix) => self.graded_text(&prefix[c.prompt_index], text),
                    None => std::borrow::Cow::Borrowed(text),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let rows: Vec<RewardInput<'_>> = out
            .completions
            .iter()
            .zip(&graded)
            .map(|(c, text)| RewardInput {
                problem: problems[c.prompt_index],
                prompt: &prompt_texts[c.prompt_index],
                completion: text,
                completion_ids: &c.ids,
                completion_tokens: c.ids.len(),
                max_completion_tokens: draw.max_new_tokens,
            })
            .collect();
        let rewards = self.reward.grade(&rows)?;
        Ok(Rollout {
            prompts,
            completions: out.completions,
            rewards,
            stats: out.stats,
        })
    }
}
