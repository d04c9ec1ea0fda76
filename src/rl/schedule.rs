//! Learning-rate schedules, as in transformers' `get_scheduler`: a linear warmup from 0 over
//! `warmup_steps`, then `constant`, `linear` decay to 0, or `cosine` decay to 0 (half a period).
//!
//! The scheduler step is the number of optimizer updates already taken, so the first update
//! uses step 0 (learning rate 0 when there is a warmup, exactly as transformers).

use serde::{Deserialize, Serialize};

/// `lr_scheduler_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SchedulerType {
    #[default]
    Linear,
    Cosine,
    Constant,
    /// `constant_with_warmup` in transformers: warmup, then constant.
    ConstantWithWarmup,
}

/// A schedule over `total` optimizer updates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub kind: SchedulerType,
    pub peak: f64,
    pub warmup: usize,
    pub total: usize,
}

impl Schedule {
    /// Warmup steps from `warmup_steps` if non-zero, else `ceil(warmup_ratio · total)`
    /// (transformers' rule).
    pub fn new(
        kind: SchedulerType,
        peak: f64,
        total: usize,
        warmup_steps: usize,
        warmup_ratio: f64,
    ) -> Self {
        let warmup = if warmup_steps > 0 {
            warmup_steps
        } else {
            (warmup_ratio * total as f64).ceil() as usize
        };
        Self {
            kind,
            peak,
            warmup,
            total,
        }
    }

    /// The learning rate of the update taken after `step` updates.
    pub fn lr(&self, step: usize) -> f64 {
        let warmup = match self.kind {
            SchedulerType::Constant => 0,
            _ => self.warmup,
        };
        if step < warmup {
            return self.peak * step as f64 / warmup.max(1) as f64;
        }
        let decay = (self.total.saturating_sub(warmup)).max(1) as f64;
        let progress = (step - warmup) as f64 / decay;
        let factor = match self.kind {
            SchedulerType::Constant | SchedulerType::ConstantWithWarmup => 1.0,
            SchedulerType::Linear => (1.0 - progress).max(0.0),
            SchedulerType::Cosine => {
                (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0)
            }
        };
        self.peak * factor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_with_warmup_by_hand() {
        // total 10, ratio 0.03 → ceil(0.3) = 1 warmup step
        let s = Schedule::new(SchedulerType::Cosine, 1.0, 10, 0, 0.03);
        assert_eq!(s.warmup, 1);
        assert_eq!(s.lr(0), 0.0);
        assert_eq!(s.lr(1), 1.0);
        // step 4: progress (4 − 1)/9 = 1/3, 0.5·(1 + cos(π/3)) = 0.75
        assert!((s.lr(4) - 0.75).abs() < 1e-12);
        assert!(s.lr(10).abs() < 1e-12);
    }

    #[test]
    fn linear_constant_and_explicit_warmup() {
        let s = Schedule::new(SchedulerType::Linear, 2.0, 5, 0, 0.0);
        let lrs: Vec<f64> = (0..6).map(|i| s.lr(i)).collect();
        for (got, want) in lrs.iter().zip([2.0, 1.6, 1.2, 0.8, 0.4, 0.0]) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        let s = Schedule::new(SchedulerType::ConstantWithWarmup, 1.0, 100, 4, 0.5);
        assert_eq!(s.warmup, 4, "warmup_steps wins over warmup_ratio");
        assert_eq!((s.lr(0), s.lr(2), s.lr(4), s.lr(99)), (0.0, 0.5, 1.0, 1.0));
        let s = Schedule::new(SchedulerType::Constant, 1.0, 100, 4, 0.0);
        assert_eq!(s.lr(0), 1.0, "constant ignores warmup, as transformers");
    }
}
