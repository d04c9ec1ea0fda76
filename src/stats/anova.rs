//! The estimator behind every interval, p-value and power figure: a two-way random-effects
//! analysis of variance (problems × seeds, with their interaction), samples nested in each
//! (seed, problem) cell, and Student's t with Satterthwaite's degrees of freedom.
//!
//! The model of one value (an indicator such as "right at turn 2", or the paired difference of
//! two) is `y[s,p,r] = μ + a[p] + b[s] + c[s,p] + e[s,p,r]`: a problem effect (variance σ²p),
//! a seed effect (σ²s: another training run, another sampling seed), their interaction (σ²i:
//! how much a problem's difficulty differs between runs) and the sample's own noise (σ²w). The
//! quantity reported is μ, the mean over the population of problems and seeds the test split
//! and the seeds were drawn from. With S seeds, P problems and R samples per cell, the grand
//! mean has variance `σ²p/P + σ²s/S + σ²i/(SP) + σ²w/(SPR)`, which the mean squares of the cell
//! means estimate without bias: `V = (MS_seeds + MS_problems − MS_interaction)/(SP)`, each
//! component counted once (`combine` says which estimate is cut at zero, and why). The
//! interval is `mean ± t(df) · √V`, with df from Satterthwaite's approximation for that
//! combination, never below S − 1: S − 1 when the seeds dominate (5 seeds: t = 2.78, not
//! 1.96), more when the problems or the interaction do. The seeds' mean square enters as
//! estimated, even below the interaction's: that keeps the coverage at 95 % whether the seed
//! effect is nil or large (`coverage.rs`), at the price that seeds which agree by chance give
//! a narrower interval (as three agreeing values give a narrow t interval).
//!
//! Why not the crossed bootstrap this replaced (`bootstrap.rs`): resampling problems and seeds
//! independently counts the interaction about three times (once in each margin and once in the
//! cells) and shrinks the seed variance by (S − 1)/S with normal cut-offs, so its intervals are
//! too wide where the interaction dominates and too narrow where a few seeds do; and its limits
//! move with the resample count. This one is analytic: the same data give the same interval.
//! `coverage.rs` measures both on simulated verdicts with known effects.

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal, StudentsT};

use super::panel::Panel;
use super::Interval;
use crate::error::{Error, Result};

/// The numbers of seeds, problems and samples per (seed, problem).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Design {
    pub seeds: usize,
    pub problems: usize,
    pub samples: usize,
}

/// Estimated variance components (each ≥ 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Components {
    /// σ²p: between problems.
    pub problem: f64,
    /// σ²s: between seeds.
    pub seed: f64,
    /// σ²i: the problem × seed interaction (with one sample per cell it also holds the
    /// sampling noise, which one sample cannot tell apart).
    pub interaction: f64,
    /// σ²w: between samples of one (seed, problem); `None` with one sample.
    pub within: Option<f64>,
}

/// A mean with its standard error, degrees of freedom and variance components.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub mean: f64,
    pub se: f64,
    pub df: f64,
    pub design: Design,
    pub components: Components,
}

/// The `p` quantile of Student's t with `df` degrees of freedom (the normal one when df is
/// beyond what changes a figure).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    if !df.is_finite() || df > 1e6 {
        return Normal::standard().inverse_cdf(p);
    }
    // df > 0 here (checked by the callers' constructions); a bad df falls back to normal
    match StudentsT::new(0.0, 1.0, df) {
        Ok(t) => t.inverse_cdf(p),
        Err(_) => Normal::standard().inverse_cdf(p),
    }
}

/// The CDF of Student's t with `df` degrees of freedom at `x`.
pub fn t_cdf(x: f64, df: f64) -> f64 {
    if !df.is_finite() || df > 1e6 {
        return Normal::standard().cdf(x);
    }
    match StudentsT::new(0.0, 1.0, df) {
        Ok(t) => t.cdf(x),
        Err(_) => Normal::standard().cdf(x),
    }
}

/// The `p` quantile of χ² with `df` degrees of freedom (0 where undefined).
fn chi2_quantile(p: f64, df: f64) -> f64 {
    ChiSquared::new(df).map_or(0.0, |c| c.inverse_cdf(p))
}

/// One mean square with its degrees of freedom, as it enters the variance of the mean.
#[derive(Debug, Clone, Copy)]
struct Term {
    value: f64,
    df: f64,
}

/// Satterthwaite's degrees of freedom of `Σ value` (values may be negative).
/// `Σ value` has variance ≈ `Σ 2·value²/df`; matching a scaled χ² gives `(Σ value)² / Σ
/// (value²/df)`.
fn satterthwaite(terms: &[Term]) -> f64 {
    let total: f64 = terms.iter().map(|t| t.value).sum();
    let denom: f64 = terms.iter().map(|t| t.value * t.value / t.df).sum();
    if denom > 0.0 {
        total * total / denom
    } else {
        f64::INFINITY
    }
}

/// Var(mean) · S·P as a combination of mean squares, and its degrees of freedom. A margin with
/// one level (one seed, or one problem) has no mean square and contributes none. Otherwise the
/// margin with fewer levels (the seeds, in every table here) enters whole, its mean square
/// never replaced by the interaction's: with 3 to 10 seeds its estimate is the noisy part of
/// the variance, and cutting it at zero when it comes out below the interaction's (the usual
/// "negative component = 0" rule) makes the interval too wide when the seed effect is nil and
/// too narrow when it is not (the df jumps to the problems' hundreds exactly when the seeds
/// happened to agree). The other margin's component (σ²p, estimated on hundreds of degrees of
/// freedom) is cut at zero. The df is Satterthwaite's, never below the whole margin's own: a
/// sum that contains a mean square on k − 1 df is no better known than it.
fn combine(seeds: (f64, f64), problems: (f64, f64), inter: (f64, f64)) -> (f64, f64) {
    let (ms_i, df_i) = inter;
    let term = |(value, df): (f64, f64)| Term { value, df };
    match (seeds.1 > 0.0, problems.1 > 0.0) {
        (false, false) => (0.0, f64::INFINITY),
        (false, true) => (problems.0.max(0.0), problems.1),
        (true, false) => (seeds.0.max(0.0), seeds.1),
        (true, true) => {
            let (few, many) = if seeds.1 <= problems.1 {
                (seeds, problems)
            } else {
                (problems, seeds)
            };
            // a whole margin's mean square below its 2.5 % quantile under no effect at all (a
            // scaled χ² on its df) is taken at that quantile: seeds that agree by chance
            // shrink the interval, seeds identical to the last digit do not erase it
            let few = (few.0.max(ms_i * chi2_quantile(0.025, few.1) / few.1), few.1);
            let terms = if many.0 > ms_i {
                vec![term(few), term(many), term((-ms_i, df_i))]
            } else {
                vec![term(few)]
            };
            let total = terms.iter().map(|t| t.value).sum::<f64>().max(0.0);
            (total, satterthwaite(&terms).max(few.1))
        }
    }
}

/// Estimate the mean of `panel` and its uncertainty.
pub fn estimate(panel: &Panel) -> Result<Estimate> {
    let (k, n, r) = (panel.seeds, panel.problems, panel.samples);
    let design = Design {
        seeds: k,
        problems: n,
        samples: r,
    };
    let cells = panel.cell_means();
    let mean = panel.mean();
    let seed_means: Vec<f64> = cells
        .iter()
        .map(|row| row.iter().sum::<f64>() / n as f64)
        .collect();
    let problem_means: Vec<f64> = (0..n)
        .map(|p| cells.iter().map(|row| row[p]).sum::<f64>() / k as f64)
        .collect();
    let ss_s = n as f64 * seed_means.iter().map(|m| (m - mean).powi(2)).sum::<f64>();
    let ss_p = k as f64
        * problem_means
            .iter()
            .map(|m| (m - mean).powi(2))
            .sum::<f64>();
    let mut ss_i = 0.0;
    for (s, row) in cells.iter().enumerate() {
        for (p, z) in row.iter().enumerate() {
            ss_i += (z - seed_means[s] - problem_means[p] + mean).powi(2);
        }
    }
    let (df_s, df_p) = ((k - 1) as f64, (n - 1) as f64);
    let df_i = df_s * df_p;
    let ms = |ss: f64, df: f64| if df > 0.0 { ss / df } else { 0.0 };
    let (ms_s, ms_p, ms_i) = (ms(ss_s, df_s), ms(ss_p, df_p), ms(ss_i, df_i));
    // the sample level: the pooled variance within cells
    let within = (r > 1).then(|| {
        let mut ss_w = 0.0;
        for (s, row) in cells.iter().enumerate() {
            for (p, m) in row.iter().enumerate() {
                ss_w += panel
                    .cell(s, p)
                    .iter()
                    .map(|y| (y - m).powi(2))
                    .sum::<f64>();
            }
        }
        ss_w / (k * n * (r - 1)) as f64
    });
    let (var_sp, df) = if df_s == 0.0 && df_p == 0.0 {
        // one seed and one problem: only the samples vary
        match within {
            Some(w) => (w / r as f64, (r - 1) as f64),
            None => {
                return Err(Error::Invalid(
                    "an interval needs more than one value (one seed, problem and sample)".into(),
                ))
            }
        }
    } else {
        combine((ms_s, df_s), (ms_p, df_p), (ms_i, df_i))
    };
    let var = var_sp / (k * n) as f64;
    // E[MS_interaction] = σ²i + σ²w/R; with one seed or one problem it is not observed, and
    // what the one margin shows is all called interaction-free (conservative for projections:
    // it does not shrink with the other margin)
    let cell_noise = if df_i > 0.0 { ms_i } else { 0.0 };
    let components = Components {
        problem: if df_p > 0.0 {
            ((ms_p - cell_noise) / k as f64).max(0.0)
        } else {
            0.0
        },
        seed: if df_s > 0.0 {
            ((ms_s - cell_noise) / n as f64).max(0.0)
        } else {
            0.0
        },
        interaction: (cell_noise - within.unwrap_or(0.0) / r as f64).max(0.0),
        within,
    };
    Ok(Estimate {
        mean,
        se: var.sqrt(),
        df,
        design,
        components,
    })
}

impl Estimate {
    /// The two-sided `level` interval `mean ± t · se`.
    pub fn interval(&self, level: f64) -> Interval {
        let half = if self.se > 0.0 {
            t_quantile(0.5 + level / 2.0, self.df) * self.se
        } else {
            0.0
        };
        Interval {
            mean: self.mean,
            lo: self.mean - half,
            hi: self.mean + half,
        }
    }

    /// The two-sided p-value of "the mean equals `threshold`".
    pub fn p_value(&self, threshold: f64) -> f64 {
        let gap = self.mean - threshold;
        if self.se == 0.0 {
            return if gap == 0.0 { 1.0 } else { 0.0 };
        }
        let t = gap.abs() / self.se;
        (2.0 * (1.0 - t_cdf(t, self.df))).clamp(0.0, 1.0)
    }

    /// The standard error and degrees of freedom the same components give at `design` (the
    /// expected mean squares there, combined as `estimate` combines the observed ones). With
    /// one sample per cell in the data the sampling noise cannot be told from the interaction,
    /// so more samples are assumed not to help (`None` is returned for a design with more
    /// samples than the data have, unless the data have at least two).
    pub fn projected(&self, design: Design) -> Option<(f64, f64)> {
        let c = self.components;
        let cell_noise = match c.within {
            Some(w) => c.interaction + w / design.samples as f64,
            None if design.samples == self.design.samples => c.interaction,
            None => return None,
        };
        let (k, n) = (design.seeds as f64, design.problems as f64);
        let (df_s, df_p) = (k - 1.0, n - 1.0);
        let (var_sp, df) = combine(
            (cell_noise + n * c.seed, df_s),
            (cell_noise + k * c.problem, df_p),
            (cell_noise, df_s * df_p),
        );
        Some(((var_sp / (k * n)).sqrt(), df))
    }

    /// The smallest distance from the null detected with probability `power` by a two-sided
    /// test at level `alpha`, given a standard error and df: (t(1 − α/2) + t(power)) · se.
    pub fn detectable(se: f64, df: f64, alpha: f64, power: f64) -> f64 {
        (t_quantile(1.0 - alpha / 2.0, df) + t_quantile(power, df)) * se
    }

    /// The estimate with one sample per cell's residual split by an assumed share of sampling
    /// noise (`share` of it σ²w, the rest σ²i), as measured on a multi-sample evaluation of a
    /// similar row; unchanged when the data have several samples (their own split is used).
    pub fn with_within_share(mut self, share: f64) -> Self {
        if self.components.within.is_none() && self.design.samples == 1 {
            let residual = self.components.interaction;
            self.components.within = Some(share * residual);
            self.components.interaction = (1.0 - share) * residual;
        }
        self
    }

    /// The share of the residual (interaction + sampling noise of one sample) that is
    /// sampling noise; `None` with one sample.
    pub fn within_share(&self) -> Option<f64> {
        let w = self.components.within?;
        let total = self.components.interaction + w;
        (total > 0.0).then(|| w / total)
    }

    /// [`Estimate::detectable`] at this estimate's own design.
    pub fn minimal_detectable(&self, alpha: f64, power: f64) -> f64 {
        Self::detectable(self.se, self.df, alpha, power)
    }

    /// The fewest seeds (up to `max`), the other numbers kept, that detect `effect` with
    /// `power` at `alpha`.
    pub fn seeds_needed(&self, effect: f64, alpha: f64, power: f64, max: usize) -> Option<usize> {
        (2..=max).find(|&seeds| {
            self.projected(Design {
                seeds,
                ..self.design
            })
            .is_some_and(|(se, df)| Self::detectable(se, df, alpha, power) <= effect)
        })
    }

    /// The fewest samples per problem (up to `max`), the other numbers kept, that detect
    /// `effect`; `None` when no number up to `max` does or the data cannot tell (one sample).
    pub fn samples_needed(&self, effect: f64, alpha: f64, power: f64, max: usize) -> Option<usize> {
        self.components.within?;
        (1..=max).find(|&samples| {
            self.projected(Design {
                samples,
                ..self.design
            })
            .is_some_and(|(se, df)| Self::detectable(se, df, alpha, power) <= effect)
        })
    }
}

#[cfg(test)]
#[path = "anova_tests.rs"]
mod tests;
