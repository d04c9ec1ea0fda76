//! A panel of evaluation values: one number per (seed, problem, sample), balanced (every seed
//! holds the same problems, every problem the same number of samples).

use crate::error::{Error, Result};

/// `values[(s * problems + p) * samples + r]`: seed `s`, problem `p`, sample `r`.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub seeds: usize,
    pub problems: usize,
    pub samples: usize,
    values: Vec<f64>,
}

impl Panel {
    /// A panel from its values in seed, problem, sample order.
    pub fn new(seeds: usize, problems: usize, samples: usize, values: Vec<f64>) -> Result<Self> {
        if seeds == 0 || problems == 0 || samples == 0 {
            return Err(Error::Invalid(format!(
                "a panel needs at least one seed, problem and sample (got {seeds} × \
                 {problems} × {samples})"
            )));
        }
        if values.len() != seeds * problems * samples {
            return Err(Error::Invalid(format!(
                "{} values for {seeds} seeds × {problems} problems × {samples} samples",
                values.len()
            )));
        }
        if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::Invalid(format!("value {bad} is not finite")));
        }
        Ok(Self {
            seeds,
            problems,
            samples,
            values,
        })
    }

    /// The panel whose value at (seed, problem, sample) is `f(s, p, r)`.
    pub fn from_fn(
        seeds: usize,
        problems: usize,
        samples: usize,
        mut f: impl FnMut(usize, usize, usize) -> f64,
    ) -> Result<Self> {
        let mut values = Vec::with_capacity(seeds * problems * samples);
        for s in 0..seeds {
            for p in 0..problems {
                for r in 0..samples {
                    values.push(f(s, p, r));
                }
            }
        }
        Self::new(seeds, problems, samples, values)
    }

    /// The samples of (seed `s`, problem `p`).
    pub fn cell(&self, s: usize, p: usize) -> &[f64] {
        let start = (s * self.problems + p) * self.samples;
        &self.values[start..start + self.samples]
    }

    /// The mean over the samples of (seed `s`, problem `p`): the per-problem value.
    pub fn cell_mean(&self, s: usize, p: usize) -> f64 {
        self.cell(s, p).iter().sum::<f64>() / self.samples as f64
    }

    /// The seeds × problems matrix of cell means.
    pub fn cell_means(&self) -> Vec<Vec<f64>> {
        (0..self.seeds)
            .map(|s| (0..self.problems).map(|p| self.cell_mean(s, p)).collect())
            .collect()
    }

    /// The grand mean (balanced: the mean of the per-problem means).
    pub fn mean(&self) -> f64 {
        self.values.iter().sum::<f64>() / self.values.len() as f64
    }

    /// The paired difference `self − other`: problem by problem and seed by seed. With the same
    /// number of samples on both sides the samples are differenced in order (they are
    /// independent draws, so any pairing leaves the cell means and the within-cell variance
    /// of the difference right); otherwise the difference of the cell means (one sample).
    pub fn minus(&self, other: &Panel) -> Result<Panel> {
        if (self.seeds, self.problems) != (other.seeds, other.problems) {
            return Err(Error::Invalid(format!(
                "a paired difference needs the same seeds and problems (got {} × {} and {} × {})",
                self.seeds, self.problems, other.seeds, other.problems
            )));
        }
        if self.samples == other.samples {
            let values = self
                .values
                .iter()
                .zip(&other.values)
                .map(|(a, b)| a - b)
                .collect();
            return Panel::new(self.seeds, self.problems, self.samples, values);
        }
        Panel::from_fn(self.seeds, self.problems, 1, |s, p, _| {
            self.cell_mean(s, p) - other.cell_mean(s, p)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_means_and_differences() {
        // 2 seeds × 2 problems × 2 samples
        let a = Panel::new(2, 2, 2, vec![1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0]).unwrap();
        assert_eq!(a.cell(1, 0), &[0.0, 0.0]);
        assert_eq!(a.cell_means(), vec![vec![0.5, 1.0], vec![0.0, 0.5]]);
        assert_eq!(a.mean(), 0.5);
        let b = Panel::from_fn(2, 2, 1, |s, p, _| (s + p) as f64).unwrap();
        // different sample counts: the cell means are differenced
        let d = a.minus(&b).unwrap();
        assert_eq!(d.samples, 1);
        assert_eq!(d.cell_means(), vec![vec![0.5, 0.0], vec![-1.0, -1.5]]);
        assert!(a
            .minus(&Panel::from_fn(1, 2, 2, |_, _, _| 0.0).unwrap())
            .is_err());
        assert!(Panel::new(1, 1, 2, vec![1.0]).is_err());
        assert!(Panel::new(1, 1, 1, vec![f64::NAN]).is_err());
        assert!(Panel::new(0, 1, 1, vec![]).is_err());
    }
}
