//! Learning-rate schedules, as in transformers' `get_scheduler`: a linear warmup from 0 over
//! `warmup_steps`, then `constant`, `linear` decay to 0, `cosine` decay to 0 (`num_cycles`
//! waves, half a period by default), `cosine_with_min_lr` (the same down to `min_lr`),
//! `cosine_with_restarts` (`num_cycles` hard restarts) or `polynomial` decay to `lr_end` with
//! `power`. The shape's arguments are `lr_scheduler_kwargs` ([`Shape`]).
//!
//! The scheduler step is the number of optimizer updates already taken, so the first update
//! uses step 0 (learning rate 0 when there is a warmup, exactly as transformers).

use std::f64::consts::PI;

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
    /// Cosine down to `min_lr` (or `min_lr_rate` × the peak) instead of 0.
    CosineWithMinLr,
    /// Cosine with `num_cycles` hard restarts.
    CosineWithRestarts,
    /// `(peak − lr_end) · (1 − progress)^power + lr_end`.
    Polynomial,
}

impl SchedulerType {
    /// The `lr_scheduler_kwargs` transformers' scheduler of this type takes.
    pub fn kwargs(self) -> &'static [&'static str] {
        match self {
            Self::Cosine => &["num_cycles"],
            Self::CosineWithMinLr => &["num_cycles", "min_lr", "min_lr_rate"],
            Self::CosineWithRestarts => &["num_cycles"],
            Self::Polynomial => &["lr_end", "power"],
            Self::Linear | Self::Constant | Self::ConstantWithWarmup => &[],
        }
    }
}

/// The arguments of a schedule's shape (`lr_scheduler_kwargs`), with transformers' defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    /// Cosine waves (`cosine`, `cosine_with_min_lr`: 0.5, half a period) or hard restarts
    /// (`cosine_with_restarts`: 1).
    pub num_cycles: f64,
    /// The floor of `cosine_with_min_lr` as a fraction of the peak.
    pub min_lr_rate: f64,
    /// `polynomial`'s final learning rate (1e-7) and exponent (1).
    pub lr_end: f64,
    pub power: f64,
}

impl Shape {
    /// transformers' defaults for `kind`.
    pub fn default_for(kind: SchedulerType) -> Self {
        Self {
            num_cycles: match kind {
                SchedulerType::CosineWithRestarts => 1.0,
                _ => 0.5,
            },
            min_lr_rate: 0.0,
            lr_end: 1e-7,
            power: 1.0,
        }
    }
}

/// A schedule over `total` optimizer updates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub kind: SchedulerType,
    pub peak: f64,
    pub warmup: usize,
    pub total: usize,
    pub shape: Shape,
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
            shape: Shape::default_for(kind),
        }
    }

    /// This schedule with the arguments `shape`.
    pub fn with_shape(self, shape: Shape) -> Self {
        Self { shape, ..self }
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
        let Shape {
            num_cycles,
            min_lr_rate,
            lr_end,
            power,
        } = self.shape;
        let cosine = 0.5 * (1.0 + (PI * num_cycles * 2.0 * progress).cos());
        let factor = match self.kind {
            SchedulerType::Constant | SchedulerType::ConstantWithWarmup => 1.0,
            SchedulerType::Linear => (1.0 - progress).max(0.0),
            SchedulerType::Cosine => cosine.max(0.0),
            SchedulerType::CosineWithMinLr => (cosine * (1.0 - min_lr_rate) + min_lr_rate).max(0.0),
            SchedulerType::CosineWithRestarts if progress >= 1.0 => 0.0,
            SchedulerType::CosineWithRestarts => {
                (0.5 * (1.0 + (PI * ((num_cycles * progress) % 1.0)).cos())).max(0.0)
            }
            SchedulerType::Polynomial if step > self.total => lr_end / self.peak,
            SchedulerType::Polynomial => {
                let span = self.total.saturating_sub(warmup).max(1);
                let remaining = 1.0 - (step - warmup) as f64 / span as f64;
                ((self.peak - lr_end) * remaining.powf(power) + lr_end) / self.peak
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
