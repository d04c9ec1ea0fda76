//! The built-in rewards besides `accuracy` (`math.rs`): `format` and DAPO's
//! `soft_overlong_punishment`.

use super::{Reward, RewardInput};
use crate::error::Result;
use crate::verify::has_boxed;

/// `format`: 1 when the completion puts a non-empty answer in `\boxed{}`, else 0.
pub struct Format;

impl Reward for Format {
    fn name(&self) -> &str {
        "format"
    }

    fn score(&self, rows: &[RewardInput<'_>]) -> Result<Vec<f32>> {
        Ok(rows
            .iter()
            .map(|r| if has_boxed(r.completion) { 1.0 } else { 0.0 })
            .collect())
    }
}

/// `soft_overlong_punishment`: DAPO's soft length penalty (eq. 13; TRL's
/// `get_soft_overlong_punishment`). With `L_max` the completion's token budget (the layer's
/// `max_completion_length`) and `L_cache` = `reward.soft_punish_cache`: 0 up to
/// `L_max − L_cache` tokens, then falling linearly to −1 at `L_max`, and −1 beyond. When the
/// cache is larger than the budget, `L_max − L_cache` is negative, as in TRL: the line starts
/// below 0 at the first token.
pub struct SoftOverlong {
    pub cache: usize,
}

/// The penalty of a `len`-token completion under a budget of `max` tokens.
pub fn soft_overlong(len: usize, max: usize, cache: usize) -> f32 {
    let free = max as f64 - cache as f64;
    let len_f = len as f64;
    if len_f <= free {
        0.0
    } else if len <= max {
        ((free - len_f) / cache as f64) as f32
    } else {
        -1.0
    }
}

impl Reward for SoftOverlong {
    fn name(&self) -> &str {
        "soft_overlong_punishment"
    }

    fn score(&self, rows: &[RewardInput<'_>]) -> Result<Vec<f32>> {
        Ok(rows
            .iter()
            .map(|r| soft_overlong(r.completion_tokens, r.max_completion_tokens, self.cache))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TRL's docstring example (max 100, cache 20, 90 tokens → −0.5) and the branches by hand.
    #[test]
    fn soft_overlong_by_hand() {
        assert_eq!(soft_overlong(90, 100, 20), -0.5);
        assert_eq!(soft_overlong(80, 100, 20), 0.0);
        assert_eq!(soft_overlong(81, 100, 20), -0.05);
        assert_eq!(soft_overlong(100, 100, 20), -1.0);
        assert_eq!(soft_overlong(101, 100, 20), -1.0);
        assert_eq!(soft_overlong(0, 100, 20), 0.0);
        // no cache: only a completion over the budget is punished
        assert_eq!(soft_overlong(100, 100, 0), 0.0);
        assert_eq!(soft_overlong(101, 100, 0), -1.0);
        // a cache larger than the budget: TRL's line through L_max − L_cache = −10
        assert_eq!(soft_overlong(5, 10, 20), -0.75);
        assert_eq!(soft_overlong(0, 10, 20), -0.5);
    }
}
