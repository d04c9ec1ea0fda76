//! The rewards of a run (`[reward] funcs` + `weights`, TRL's `reward_funcs` + `reward_weights`):
//! several named functions, each scoring a batch of completions, summed with weights into the
//! reward GRPO's advantages are built from. The set also decides what counts as **correct**
//! (Acc@t1/t2, MGRPO's layer-2 selection and `layer2_on`, STaR's filter): the `accuracy`
//! reward's verdict when the set has one, otherwise (or when `correct_threshold` is set) a
//! weighted total at or above `correct_threshold`.

use std::collections::BTreeMap;

use super::builtin::{Coin, Format, SoftOverlong};
use super::command::CommandReward;
use super::math::MathReward;
use super::{Reward, RewardConfig, RewardInput, RewardParts};
use crate::error::{Error, KeyError, Result};
use crate::verify::has_boxed;

/// The longest a reward program may take for one batch (`timeout_s`): a week.
pub const MAX_TIMEOUT_S: f64 = 604_800.0;

/// The built-in rewards, by the name `funcs` gives them.
pub const BUILTIN_REWARDS: &[&str] = &["accuracy", "format", "soft_overlong_punishment", "coin"];

/// How a graded completion is judged correct.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Judge {
    /// The verdict of the `accuracy` reward (the reward at this index).
    Accuracy(usize),
    /// The weighted total at or above this value.
    Threshold(f32),
}

/// A completion's reward from its functions' `scores` (NaN: the function's None) and their
/// `weights`: TRL's `nansum` of the weighted scores, and NaN when no function scored it (a
/// completion with no reward: no advantage, left out of the statistics).
pub fn weighted_total(scores: &[f32], weights: &[f32]) -> f32 {
    if !scores.is_empty() && scores.iter().all(|s| s.is_nan()) {
        return f32::NAN;
    }
    scores
        .iter()
        .zip(weights)
        .filter(|(s, _)| !s.is_nan())
        .map(|(s, w)| w * s)
        .sum()
}

/// The largest |score × weight| a reward may give: totals, means and the squares of a
/// standard deviation then stay finite in f32 (a larger one used to overflow to a `null` in
/// `metrics.jsonl` that no `--resume` could read back).
pub const MAX_WEIGHTED_SCORE: f32 = 1e15;

/// The named rewards of a run with their weights.
pub struct RewardSet {
    funcs: Vec<Box<dyn Reward>>,
    weights: Vec<f32>,
    judge: Judge,
}

impl RewardConfig {
    /// Check the reward keys (names relative to the `[reward]` table).
    pub fn validate(&self) -> std::result::Result<(), KeyError> {
        let bad = |k: &str, m: String| Err(KeyError::new(k, m));
        if self.funcs.is_empty() {
            return bad("funcs", "needs at least one reward".into());
        }
        for (i, name) in self.funcs.iter().enumerate() {
            if self.funcs[..i].contains(name) {
                return bad("funcs", format!("`{name}` is listed twice"));
            }
            if !BUILTIN_REWARDS.contains(&name.as_str()) && !self.commands.contains_key(name) {
                return bad(
                    "funcs",
                    format!(
                        "unknown reward `{name}`: a built-in ({}) or a table [reward.commands.{name}]",
                        BUILTIN_REWARDS.join(", ")
                    ),
                );
            }
        }
        if let Some(w) = &self.weights {
            if w.len() != self.funcs.len() {
                return bad(
                    "weights",
                    format!("has {} values for {} funcs", w.len(), self.funcs.len()),
                );
            }
            if let Some(x) = w.iter().find(|x| !x.is_finite()) {
                return bad("weights", format!("{x} is not a finite number"));
            }
        }
        for (name, spec) in &self.commands {
            let key = format!("commands.{name}");
            if BUILTIN_REWARDS.contains(&name.as_str()) {
                return bad(&key, format!("`{name}` is a built-in reward's name"));
            }
            if !self.funcs.contains(name) {
                return bad(&key, format!("is defined but `{name}` is not in `funcs`"));
            }
            if spec.command.first().is_none_or(|p| p.trim().is_empty()) {
                return bad(&format!("{key}.command"), "names no program".into());
            }
            // a Duration of it must exist (1e20 s does not); a week is longer than any step
            if !(spec.timeout_s > 0.0 && spec.timeout_s <= MAX_TIMEOUT_S) {
                return bad(
                    &format!("{key}.timeout_s"),
                    format!(
                        "must be above 0 and at most {MAX_TIMEOUT_S} (a week), got {}",
                        spec.timeout_s
                    ),
                );
            }
        }
        match self.correct_threshold {
            Some(t) if !t.is_finite() => return bad("correct_threshold", "must be finite".into()),
            None if !self.funcs.iter().any(|f| f == "accuracy") => {
                return bad(
                    "correct_threshold",
                    "is needed when `funcs` has no `accuracy` (the total reward at which a \
                     completion counts as correct)"
                        .into(),
                )
            }
            _ => {}
        }
        if self.soft_punish_cache.is_none()
            && self.funcs.iter().any(|f| f == "soft_overlong_punishment")
        {
            return bad(
                "soft_punish_cache",
                "is needed by `soft_overlong_punishment` (DAPO's L_cache, in tokens)".into(),
            );
        }
        let coin = self.funcs.iter().any(|f| f == "coin");
        match self.coin_p {
            None if coin => {
                return bad(
                    "coin_p",
                    "is needed by `coin` (the probability of a 1: the true reward's mean, for a \
                     random-reward control)"
                        .into(),
                )
            }
            Some(p) if !(0.0..=1.0).contains(&p) => {
                return bad("coin_p", format!("{p} is not a probability in [0, 1]"))
            }
            Some(_) if !coin => return bad("coin_p", "is set but `coin` is not in `funcs`".into()),
            _ => {}
        }
        Ok(())
    }

    /// The rewards these settings name, in `funcs` order.
    pub fn reward_set(&self) -> Result<RewardSet> {
        self.validate().map_err(|e| e.within("reward"))?;
        let funcs = self
            .funcs
            .iter()
            .map(|name| -> Box<dyn Reward> {
                match name.as_str() {
                    "accuracy" => Box::new(MathReward {
                        policy: self.policy.clone(),
                    }),
                    "format" => Box::new(Format),
                    "coin" => Box::new(Coin {
                        p: self.coin_p.unwrap_or(0.0),
                        salt: self.coin_salt,
                    }),
                    "soft_overlong_punishment" => Box::new(SoftOverlong {
                        cache: self.soft_punish_cache.unwrap_or(0),
                    }),
                    _ => Box::new(CommandReward::new(name, &self.commands[name])),
                }
            })
            .collect();
        let weights = self
            .weights
            .clone()
            .unwrap_or_else(|| vec![1.0; self.funcs.len()]);
        let judge = match (
            self.correct_threshold,
            self.funcs.iter().position(|f| f == "accuracy"),
        ) {
            (Some(t), _) => Judge::Threshold(t),
            (None, Some(i)) => Judge::Accuracy(i),
            (None, None) => unreachable!("validate() requires a threshold without accuracy"),
        };
        Ok(RewardSet {
            funcs,
            weights,
            judge,
        })
    }
}

impl RewardSet {
    /// The rewards' names, in order (the `rewards/<name>/…` metrics).
    pub fn names(&self) -> Vec<String> {
        self.funcs.iter().map(|f| f.name().to_string()).collect()
    }

    /// Grade a batch: every reward scores every row, the weighted sum is the total.
    pub fn grade(&self, rows: &[RewardInput<'_>]) -> Result<Vec<RewardParts>> {
        let mut out: Vec<RewardParts> = rows
            .iter()
            .map(|r| RewardParts {
                correct: false,
                formatted: has_boxed(r.completion),
                total: 0.0,
                scores: Vec::with_capacity(self.funcs.len()),
            })
            .collect();
        for (k, f) in self.funcs.iter().enumerate() {
            let scores = f.score(rows)?;
            if scores.len() != rows.len() {
                return Err(Error::Reward {
                    reward: f.name().into(),
                    msg: format!("{} scores for {} completions", scores.len(), rows.len()),
                });
            }
            for (i, (parts, s)) in out.iter_mut().zip(scores).enumerate() {
                // NaN is a reward's None (no opinion), which only a command can give
                if s.is_infinite() || (s.is_nan() && !f.may_abstain()) {
                    return Err(Error::Reward {
                        reward: f.name().into(),
                        msg: format!(
                            "row {} (problem `{}`): {s} is not finite",
                            i + 1,
                            rows[i].problem.id
                        ),
                    });
                }
                let w = self.weights[k];
                if !s.is_nan() && (s * w).abs() > MAX_WEIGHTED_SCORE {
                    return Err(Error::Reward {
                        reward: f.name().into(),
                        msg: format!(
                            "row {} (problem `{}`): {s} × weight {w} is beyond ±{MAX_WEIGHTED_SCORE:e} \
                             (rewards are summed, averaged and normalised in f32)",
                            i + 1,
                            rows[i].problem.id
                        ),
                    });
                }
                parts.scores.push(s);
            }
        }
        for p in &mut out {
            p.total = weighted_total(&p.scores, &self.weights);
            p.correct = match self.judge {
                Judge::Accuracy(i) => p.scores[i] >= 0.5,
                Judge::Threshold(t) => p.total >= t,
            };
        }
        Ok(out)
    }

    /// Mean and standard deviation (unbiased, as TRL's `nanstd`; 0 for one value) of each
    /// reward over the rows it scored, by name: the `rewards/<name>/mean` and
    /// `rewards/<name>/std` metrics. A reward that scored no row has neither (TRL logs None).
    pub fn stats(&self, parts: &[RewardParts]) -> BTreeMap<String, f32> {
        let scores: Vec<&[f32]> = parts.iter().map(|p| &p.scores[..]).collect();
        Self::stats_of(&self.names(), &scores)
    }

    /// [`Self::stats`] of the rewards `names` from each row's scores (in `names` order).
    pub fn stats_of<S: AsRef<[f32]>>(names: &[String], rows: &[S]) -> BTreeMap<String, f32> {
        let mut out = BTreeMap::new();
        for (i, name) in names.iter().enumerate() {
            let xs: Vec<f32> = rows
                .iter()
                .filter_map(|r| r.as_ref().get(i).copied())
                .filter(|s| !s.is_nan())
                .collect();
            if xs.is_empty() && !rows.is_empty() {
                continue;
            }
            let n = xs.len() as f32;
            let mean = xs.iter().sum::<f32>() / n.max(1.0);
            let std = if xs.len() < 2 {
                0.0
            } else {
                (xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / (n - 1.0)).sqrt()
            };
            out.insert(format!("rewards/{name}/mean"), mean);
            out.insert(format!("rewards/{name}/std"), std);
        }
        out
    }
}

#[cfg(test)]
#[path = "set_tests.rs"]
mod tests;
