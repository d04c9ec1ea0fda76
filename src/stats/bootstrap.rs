//! The crossed (problems × seeds) bootstrap that computed the intervals before `anova.rs`,
//! kept to be measured against it (`coverage.rs`, `mgrpo table2 --coverage`): each replicate
//! resamples problems and seeds, with replacement and independently. Paired by construction
//! (one draw applies to both sides of a difference). Its flaws, measured there: it counts the
//! problem × seed interaction about three times (too wide when the interaction dominates), and
//! shrinks the seed variance by (S − 1)/S with normal cut-offs (too narrow with a few seeds
//! that disagree); its limits move with the resample count.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Interval;
use crate::error::{Error, Result};

/// The mean of `x[seed][problem]` and its `level` (e.g. 0.95) crossed-bootstrap interval from
/// `resamples` replicates drawn with `rng_seed`. Every seed must hold the same problems in the
/// same order.
pub fn crossed_bootstrap(
    x: &[Vec<f64>],
    resamples: usize,
    level: f64,
    rng_seed: u64,
) -> Result<Interval> {
    let k = x.len();
    let n = x.first().map_or(0, Vec::len);
    if k == 0 || n == 0 {
        return Err(Error::Invalid(
            "a bootstrap needs at least one seed and one problem".into(),
        ));
    }
    if let Some(bad) = x.iter().position(|row| row.len() != n) {
        return Err(Error::Invalid(format!(
            "seed {bad} has {} problems, seed 0 has {n}",
            x[bad].len()
        )));
    }
    if !(level > 0.0 && level < 1.0) || resamples == 0 {
        return Err(Error::Invalid(format!(
            "a bootstrap needs 0 < level < 1 and resamples > 0 (got {level}, {resamples})"
        )));
    }
    let mean = x.iter().flatten().sum::<f64>() / (k * n) as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(rng_seed);
    let mut counts = vec![0u32; n];
    let mut stats = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        counts.fill(0);
        for _ in 0..n {
            counts[rng.random_range(0..n)] += 1;
        }
        let mut total = 0.0;
        for _ in 0..k {
            let row = &x[rng.random_range(0..k)];
            total += row
                .iter()
                .zip(&counts)
                .map(|(v, &c)| v * c as f64)
                .sum::<f64>();
        }
        stats.push(total / (k * n) as f64);
    }
    stats.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    Ok(Interval {
        mean,
        lo: quantile(&stats, tail),
        hi: quantile(&stats, 1.0 - tail),
    })
}

/// The `q` quantile of sorted `xs`, interpolating linearly between order statistics.
fn quantile(xs: &[f64], q: f64) -> f64 {
    let pos = q * (xs.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    match xs.get(i + 1) {
        Some(next) => xs[i] + (next - xs[i]) * frac,
        None => xs[i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replicate count that makes the 2.5 % and 97.5 % quantiles stable to about 0.1 point on
    /// 500 problems (the coverage report draws 1,000 per interval).
    const RESAMPLES: usize = 10_000;

    #[test]
    fn constant_values_give_a_point_interval() {
        let x = vec![vec![0.25; 40]; 3];
        let ci = crossed_bootstrap(&x, 500, 0.95, 1).unwrap();
        assert_eq!((ci.mean, ci.lo, ci.hi), (0.25, 0.25, 0.25));
    }

    /// One seed, 400 fair coin flips (200 ones): the interval is the binomial one, mean ± 1.96
    /// · sqrt(0.25 / 400) = 0.5 ± 0.049, to the bootstrap's resolution.
    #[test]
    fn one_seed_matches_the_binomial_interval() {
        let x = vec![(0..400).map(|i| (i % 2) as f64).collect::<Vec<_>>()];
        let ci = crossed_bootstrap(&x, RESAMPLES, 0.95, 7).unwrap();
        assert_eq!(ci.mean, 0.5);
        assert!((ci.lo - 0.451).abs() < 0.006, "{ci:?}");
        assert!((ci.hi - 0.549).abs() < 0.006, "{ci:?}");
    }

    /// Seeds that disagree widen the interval beyond what the problems alone give (zero here:
    /// every problem of a seed has the same value). Five seeds at 0.1 … 0.5 leave the
    /// bootstrap of their mean: standard deviation 0.1414 / sqrt(5) = 0.063, so about
    /// 0.3 ± 0.12.
    #[test]
    fn seed_spread_widens_the_interval() {
        let x: Vec<Vec<f64>> = (1..=5).map(|s| vec![s as f64 / 10.0; 100]).collect();
        let ci = crossed_bootstrap(&x, RESAMPLES, 0.95, 3).unwrap();
        assert!((ci.mean - 0.3).abs() < 1e-12);
        assert!(ci.lo < 0.22 && ci.lo > 0.1, "{ci:?}");
        assert!(ci.hi > 0.38 && ci.hi < 0.5, "{ci:?}");
    }

    /// A paired difference that is +1 on 30 of 500 problems and 0 elsewhere in every seed
    /// excludes zero; the same effect with +1 and −1 cancelling does not.
    #[test]
    fn paired_differences() {
        let shift: Vec<Vec<f64>> = (0..5)
            .map(|_| (0..500).map(|p| f64::from(p < 30)).collect())
            .collect();
        let ci = crossed_bootstrap(&shift, 2000, 0.95, 0).unwrap();
        assert!(ci.lo > 0.0, "{ci:?}");
        let noise: Vec<Vec<f64>> = (0..5)
            .map(|s| {
                (0..500)
                    .map(|p| match (p + s) % 20 {
                        0 => 1.0,
                        1 => -1.0,
                        _ => 0.0,
                    })
                    .collect()
            })
            .collect();
        let ci = crossed_bootstrap(&noise, 2000, 0.95, 0).unwrap();
        assert!(ci.lo < 0.0 && ci.hi > 0.0, "{ci:?}");
    }

    #[test]
    fn ragged_or_empty_input_is_refused() {
        assert!(crossed_bootstrap(&[], 10, 0.95, 0).is_err());
        assert!(crossed_bootstrap(&[vec![1.0, 0.0], vec![1.0]], 10, 0.95, 0).is_err());
        assert!(crossed_bootstrap(&[vec![1.0]], 10, 1.0, 0).is_err());
    }
}
