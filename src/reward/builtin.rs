//! The built-in rewards besides `accuracy` (`math.rs`): `format`, DAPO's
//! `soft_overlong_punishment`, and `coin`, the random reward of a negative control.

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

/// `coin`: 1 with probability `p`, else 0, independent of what the completion says — the
/// reward of a **random-reward control** (the same run with the reward replaced by a coin of
/// the same mean tells what a method does without a signal). The coin is a hash of the row
/// (prompt, completion, token ids, place in the batch) and `salt`, not a stream: the same rows
/// get the same coins, so a resumed run flips what the uninterrupted one flipped.
pub struct Coin {
    pub p: f64,
    pub salt: u64,
}

impl Coin {
    /// The coin of one row: a uniform draw in [0, 1) from the row's 64-bit hash.
    fn flip(&self, index: usize, row: &RewardInput<'_>) -> f32 {
        let mut h = Fnv::new(self.salt);
        h.write(&(index as u64).to_le_bytes());
        h.write(row.problem.id.as_bytes());
        h.write(&[0xff]);
        h.write(row.prompt.as_bytes());
        h.write(&[0xff]);
        h.write(row.completion.as_bytes());
        for id in row.completion_ids {
            h.write(&id.to_le_bytes());
        }
        // the top 53 bits of a finalised hash: uniform in [0, 1)
        let u = (splitmix(h.0) >> 11) as f64 / (1u64 << 53) as f64;
        if u < self.p {
            1.0
        } else {
            0.0
        }
    }
}

/// FNV-1a (64-bit), seeded: stable across platforms and Rust versions, unlike `std`'s hasher.
struct Fnv(u64);

impl Fnv {
    fn new(salt: u64) -> Self {
        let mut h = Self(0xcbf2_9ce4_8422_2325);
        h.write(&salt.to_le_bytes());
        h
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// SplitMix64's finaliser: spreads FNV's weak low bits over the whole word.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Reward for Coin {
    fn name(&self) -> &str {
        "coin"
    }

    fn score(&self, rows: &[RewardInput<'_>]) -> Result<Vec<f32>> {
        Ok(rows
            .iter()
            .enumerate()
            .map(|(i, r)| self.flip(i, r))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rl::scripted::problem;

    /// The coin's mean is `p` (4,000 rows: within 4.5 standard errors), it ignores whether the
    /// answer is right, and the same rows flip the same way; another salt flips otherwise.
    #[test]
    fn coin_has_its_mean_ignores_the_answer_and_repeats() {
        let p = problem("q-1", "What is 2+3?", "5");
        let texts: Vec<String> = (0..4000).map(|i| format!("\\boxed{{{}}}", i % 7)).collect();
        let rows: Vec<_> = texts.iter().map(|t| RewardInput::text(&p, t)).collect();
        let coin = Coin { p: 0.25, salt: 0 };
        let a = coin.score(&rows).unwrap();
        let mean = a.iter().sum::<f32>() as f64 / a.len() as f64;
        let se = (0.25f64 * 0.75 / 4000.0).sqrt();
        assert!((mean - 0.25).abs() < 4.5 * se, "mean {mean}");
        assert!(a.iter().all(|&x| x == 0.0 || x == 1.0));
        // right (`5`) and wrong answers alike: the mean among right ones is the coin's too
        let right: Vec<f32> = a.iter().copied().skip(5).step_by(7).collect();
        let m = right.iter().sum::<f32>() as f64 / right.len() as f64;
        assert!((m - 0.25).abs() < 4.5 * (0.25f64 * 0.75 / right.len() as f64).sqrt());
        assert_eq!(a, coin.score(&rows).unwrap());
        let other = Coin { p: 0.25, salt: 1 }.score(&rows).unwrap();
        assert_ne!(a, other);
        // identical completions of one group still flip independently (their place differs)
        let same = vec![RewardInput::text(&p, "\\boxed{5}"); 64];
        let s = coin.score(&same).unwrap();
        assert!(s.contains(&0.0) && s.contains(&1.0));
        // the extremes
        assert!(Coin { p: 0.0, salt: 0 }
            .score(&rows)
            .unwrap()
            .iter()
            .all(|&x| x == 0.0));
        assert!(Coin { p: 1.0, salt: 0 }
            .score(&rows)
            .unwrap()
            .iter()
            .all(|&x| x == 1.0));
    }

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
