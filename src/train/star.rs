//! The STaR baselines' data (the MGRPO paper's Table 2): sample with the starting model, keep
//! what the verifier accepts, fine-tune on it (`mgrpo sft` with a `[star]` table).
//!
//! - `source = "solutions"` (STaR): `samples_per_question` answers per problem; the verified
//!   ones (distinct texts) become prompt/completion pairs.
//! - `source = "revisions"` (STaR with external prompts): each answer is continued after the
//!   guide phrase, as in the two-turn evaluation; the successfully revised ones (wrong first
//!   answer, right after the revision) become pairs of the turn-2 prompt and the revision.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::{Dataset, Problem};
use crate::error::{Error, KeyError, Result};
use crate::rl::policy::Policy;
use crate::rl::rollout::{Draw, Sampler};
use crate::text::template::PAPER_GUIDE_PHRASES;

/// Which samples STaR keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StarSource {
    /// Verified first answers (STaR).
    #[default]
    Solutions,
    /// Successfully revised second answers (STaR with external prompts).
    Revisions,
}

/// The `[star]` table of an SFT config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StarConfig {
    /// Problems to sample on (JSONL, any format `mgrpo verify` reads).
    pub problems: PathBuf,
    pub dataset_format: Option<String>,
    pub source: StarSource,
    pub samples_per_question: usize,
    pub temperature: f32,
    pub max_new_tokens: usize,
    /// The revision's guide phrase (`revisions`).
    pub guide: String,
    pub seed: u64,
}

impl Default for StarConfig {
    fn default() -> Self {
        Self {
            problems: PathBuf::new(),
            dataset_format: None,
            source: StarSource::Solutions,
            samples_per_question: 4,
            temperature: 0.7,
            max_new_tokens: 256,
            guide: PAPER_GUIDE_PHRASES[0].into(),
            seed: 0,
        }
    }
}

impl StarConfig {
    pub fn validate(&self) -> std::result::Result<(), KeyError> {
        let bad = |k: &str, m: &str| Err(KeyError::new(k, m).within("star"));
        if self.problems.as_os_str().is_empty() {
            return bad("problems", "missing: give the problems to sample on");
        }
        if self.samples_per_question == 0 {
            return bad("samples_per_question", "must be at least 1");
        }
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return bad("temperature", "must be ≥ 0 (0 = greedy)");
        }
        if self.max_new_tokens == 0 {
            return bad("max_new_tokens", "must be at least 1");
        }
        Ok(())
    }

    pub fn load_problems(&self) -> Result<Vec<Problem>> {
        let format = self.dataset_format.as_deref().map(str::parse).transpose()?;
        let d = Dataset::load(&self.problems, format)?;
        if d.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: no problems (key `star.problems`)",
                self.problems.display()
            )));
        }
        Ok(d.problems)
    }
}

/// One kept pair, as a line of `star.jsonl` (the SFT data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StarPair {
    pub problem: String,
    pub prompt: String,
    pub completion: String,
}

/// Sample and filter: the pairs STaR fine-tunes on, and how many samples were drawn.
/// `prompts` are the problems' layer-1 prompts, tokenized.
pub fn star_pairs<S: Sampler>(
    policy: &mut Policy<'_, S>,
    cfg: &StarConfig,
    problems: &[Problem],
    prompts: Vec<Vec<u32>>,
) -> Result<(Vec<StarPair>, usize)> {
    let refs: Vec<&Problem> = problems.iter().collect();
    let k = cfg.samples_per_question;
    let draw = |n, seed| Draw {
        n,
        max_new_tokens: cfg.max_new_tokens,
        seed,
    };
    let first = policy.rollout(&refs, prompts, None, draw(k, cfg.seed))?;
    let mut seen = HashSet::new();
    let mut pairs = Vec::new();
    match cfg.source {
        StarSource::Solutions => {
            for (i, c) in first.completions.iter().enumerate() {
                let p = refs[c.prompt_index];
                let text = first.text(i);
                if first.rewards[i].correct && seen.insert((c.prompt_index, text.to_string())) {
                    pairs.push(StarPair {
                        problem: p.id.clone(),
                        prompt: policy.template.render_ask(p.ask())?,
                        completion: text.to_string(),
                    });
                }
            }
            Ok((pairs, first.completions.len()))
        }
        StarSource::Revisions => {
            let mut ids = Vec::new();
            let mut texts = Vec::new();
            let mut prefixes = Vec::new();
            let mut owners = Vec::new();
            for (i, c) in first.completions.iter().enumerate() {
                let p = refs[c.prompt_index];
                let turn = policy.turn2(p.ask(), first.text(i), &cfg.guide)?;
                ids.push(turn.ids);
                texts.push(turn.text);
                prefixes.push(turn.graded_prefix);
                owners.push(p);
            }
            let second =
                policy.rollout(&owners, ids, Some(&prefixes), draw(1, cfg.seed ^ 0x57A2))?;
            for (i, text) in texts.into_iter().enumerate() {
                let revised = !first.rewards[i].correct && second.rewards[i].correct;
                let revision = second.text(i);
                if revised && seen.insert((i, revision.to_string())) {
                    pairs.push(StarPair {
                        problem: owners[i].id.clone(),
                        prompt: text,
                        completion: revision.to_string(),
                    });
                }
            }
            Ok((pairs, first.completions.len() + second.completions.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reward::RewardConfig;
    use crate::rl::scripted::{problem, test_tokenizer, Scripted};
    use crate::text::template::PromptTemplate;

    #[test]
    fn keeps_verified_solutions_and_successful_revisions() {
        let tok = test_tokenizer();
        let problems = vec![problem("a", "1+1?", "2"), problem("b", "2+2?", "4")];
        let t = PromptTemplate::builtin("plain").unwrap();
        let prompts: Vec<Vec<u32>> = problems
            .iter()
            .map(|p| tok.encode(&t.render(&p.question)).unwrap())
            .collect();
        let script = |call: usize, prompt: &str, s: usize| -> String {
            match (call, &prompt[..4]) {
                (0, "1+1?") => [r"\boxed{2}", r"\boxed{3}", r"\boxed{2}"][s].into(),
                (0, _) => [r"\boxed{5}", r"\boxed{4}", r"\boxed{1}"][s].into(),
                // revisions: "3" is fixed, "5" is fixed, "1" stays wrong, right ones confirmed
                (1, _) if prompt.contains(r"\boxed{3}") => r"\boxed{2}".into(),
                (1, _) if prompt.contains(r"\boxed{5}") => r"so \boxed{4}".into(),
                (1, _) => "Looks right.".into(),
                _ => panic!("a third call"),
            }
        };
        let cfg = StarConfig {
            problems: "x".into(),
            samples_per_question: 3,
            guide: "Check:".into(),
            ..StarConfig::default()
        };
        let reward = RewardConfig::default();
        let mut policy =
            Policy::new(Scripted::new(&tok, Box::new(script)), &t, &tok, &reward).unwrap();
        let (pairs, drawn) = star_pairs(&mut policy, &cfg, &problems, prompts.clone()).unwrap();
        assert_eq!(drawn, 6);
        // the duplicate right answer of "a" is kept once
        let got: Vec<(&str, &str)> = pairs
            .iter()
            .map(|p| (p.problem.as_str(), p.completion.as_str()))
            .collect();
        assert_eq!(got, [("a", r"\boxed{2}"), ("b", r"\boxed{4}")]);
        assert_eq!(pairs[0].prompt, "1+1?\n");

        let cfg = StarConfig {
            source: StarSource::Revisions,
            ..cfg
        };
        let reward = RewardConfig::default();
        let mut policy =
            Policy::new(Scripted::new(&tok, Box::new(script)), &t, &tok, &reward).unwrap();
        let (pairs, drawn) = star_pairs(&mut policy, &cfg, &problems, prompts.clone()).unwrap();
        assert_eq!(drawn, 12);
        let got: Vec<(&str, &str, &str)> = pairs
            .iter()
            .map(|p| (p.problem.as_str(), p.prompt.as_str(), p.completion.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", "1+1?\n\\boxed{3}\n\nCheck:", r"\boxed{2}"),
                ("b", "2+2?\n\\boxed{5}\n\nCheck:", r"so \boxed{4}"),
            ]
        );
    }
}
