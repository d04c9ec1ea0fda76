//! Statistics of evaluation results: a mean over seeds, problems and samples with an interval
//! that covers what it claims (`anova`), p-values with a Holm correction over a family of
//! claims (`family`), power (`anova::Estimate::minimal_detectable`, `seeds_needed`,
//! `samples_needed`), and the measurement of all that on simulated verdicts (`coverage`,
//! against the crossed bootstrap it replaced, `bootstrap`).

pub mod anova;
pub mod bootstrap;
pub mod coverage;
pub mod family;
pub mod panel;

pub use anova::{estimate, Design, Estimate};
pub use panel::Panel;

/// A mean and its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    /// The interval cut to `[lo, hi]`, the values the quantity can take.
    pub fn clipped(self, (lo, hi): (f64, f64)) -> Self {
        Self {
            mean: self.mean,
            lo: self.lo.max(lo),
            hi: self.hi.min(hi),
        }
    }

    /// The interval scaled (for percentages).
    pub fn scaled(self, k: f64) -> Self {
        Self {
            mean: self.mean * k,
            lo: self.lo * k,
            hi: self.hi * k,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_clipped_to_what_the_quantity_can_take() {
        let ci = Interval {
            mean: 0.003,
            lo: -0.002,
            hi: 0.008,
        };
        assert_eq!(ci.clipped((0.0, 1.0)).lo, 0.0);
        assert_eq!(ci.clipped((0.0, 1.0)).hi, 0.008);
        assert_eq!(ci.clipped((-1.0, 1.0)), ci);
    }
}
