//! `completions.jsonl` (`log_completions`): every trained completion of a step, one line each,
//! with its problem, rewards and advantage; a second part's rows (MGRPO's corrections) with the
//! first answer they continue.

use crate::algo::Collected;
use crate::data::Problem;
use crate::error::Result;
use crate::metrics::JsonlLog;
use crate::rl::rollout::Rollout;

/// Append every trained completion of `got` as a line of `log`. `reward_names` are the reward
/// set's, in order (each row's `rewards` by name).
pub(super) fn log_completions(
    got: &Collected,
    log: &JsonlLog,
    step: usize,
    problems: &[&Problem],
    reward_names: &[String],
) -> Result<()> {
    let rows = LogRows {
        log,
        step,
        problems,
        reward_names,
    };
    let main = &got.main;
    rows.write(got.main_layer, &main.rollout, None, &main.adv.values)?;
    if let Some(log) = got.second.as_ref().and_then(|s| s.log.as_ref()) {
        rows.write(
            "2",
            &log.rollout,
            Some((&log.sources, &main.rollout)),
            &log.advantages,
        )?;
    }
    Ok(())
}

/// Where [`log_completions`] writes.
struct LogRows<'a> {
    log: &'a JsonlLog,
    step: usize,
    problems: &'a [&'a Problem],
    reward_names: &'a [String],
}

impl LogRows<'_> {
    /// Lines of `completions.jsonl` for one rollout. For layer 2, `sources` maps each prompt
    /// to the layer-1 completion it corrects.
    fn write(
        &self,
        layer: &str,
        roll: &Rollout,
        sources: Option<(&[usize], &Rollout)>,
        advantages: &[f32],
    ) -> Result<()> {
        for ((c, r), a) in roll.completions.iter().zip(&roll.rewards).zip(advantages) {
            let (problem, first) = match sources {
                Some((src, l1)) => {
                    let s = src[c.prompt_index];
                    (
                        self.problems[l1.completions[s].prompt_index],
                        Some(l1.text(s)),
                    )
                }
                None => (self.problems[c.prompt_index], None),
            };
            let mut row = serde_json::json!({
                "step": self.step,
                "layer": layer,
                "problem": problem.id,
                "sample": c.sample_index,
                "completion": c.text,
                "reward": r.total,
                "rewards": self.reward_names.iter().zip(&r.scores).collect::<std::collections::BTreeMap<_, _>>(),
                "correct": r.correct,
                "advantage": a,
                "finish_reason": c.finish_reason,
            });
            if let Some(first) = first {
                row["first_answer"] = serde_json::Value::String(first.to_string());
            }
            self.log.append(&row)?;
        }
        Ok(())
    }
}
