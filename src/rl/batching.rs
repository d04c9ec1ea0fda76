//! How an update's experience is cut into micro-batches, and which device runs each.
//!
//! A micro-batch is left-padded to its longest `prompt + completion`, so every row computes
//! that many positions. GRPO completions differ a lot in length (and MGRPO's layer-2 prompts
//! carry a whole first answer), so micro-batches of samples in rollout order compute mostly
//! padding. With `group_by_length` (the default; `group_by_length` of HF's `Trainer`), each
//! part's samples are sorted by length before they are cut, so a micro-batch holds samples of
//! similar lengths; the micro-batches then go to the devices longest first, each to the device
//! with the least work so far (every rank computes the same plan). Without it, micro-batch `j`
//! holds samples `j·mb ..` in rollout order and goes to device `j mod world`.
//!
//! The loss is normalised by the counts of the whole part, so the split changes the gradient
//! only for `loss_type = "bnpo"` and `top_entropy_quantile < 1` (both are defined per
//! micro-batch, as in TRL).

use super::experience::Experience;

/// One micro-batch: samples of one part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicroBatch {
    /// Index of the part (`grpo::Part`) the samples belong to.
    pub part: usize,
    /// Indices into that part's `Experience::samples`, shortest first when grouped.
    pub samples: Vec<usize>,
    /// The device (rank) that runs it.
    pub device: usize,
}

/// Positions a set of micro-batches computes in the token-wise layers (embedding, projections,
/// norms, MLP) against the ones that hold a token. With `padding_free` those layers see the
/// tokens only (attention still runs on each micro-batch's left-padded layout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Padding {
    /// Σ rows × longest `prompt + completion` over the micro-batches (Σ lengths when
    /// `padding_free`).
    pub computed: usize,
    /// Σ `prompt + completion` lengths.
    pub tokens: usize,
}

impl Padding {
    pub fn add(&mut self, other: Padding) {
        self.computed += other.computed;
        self.tokens += other.tokens;
    }

    /// The share of computed positions that are padding (0 when nothing was computed).
    pub fn fraction(&self) -> f32 {
        if self.computed == 0 {
            0.0
        } else {
            1.0 - self.tokens as f32 / self.computed as f32
        }
    }
}

/// `prompt + completion` length of sample `i`.
fn length(exp: &Experience, i: usize) -> usize {
    let s = &exp.samples[i];
    exp.prompts[s.prompt].len() + s.completion.len()
}

/// The micro-batches of one experience, `micro_batch` samples each (the last may be short);
/// sorted by length when `group_by_length`. Devices are not assigned (all 0).
pub fn cut(exp: &Experience, micro_batch: usize, group_by_length: bool) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..exp.samples.len()).collect();
    if group_by_length {
        // stable: equal lengths keep rollout order; ties broken by the completion's length
        order.sort_by_key(|&i| (length(exp, i), exp.samples[i].completion.len()));
    }
    order
        .chunks(micro_batch.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

/// The micro-batches of every part, each assigned to one of `world` devices.
pub fn plan(
    parts: &[&Experience],
    micro_batch: usize,
    group_by_length: bool,
    padding_free: bool,
    world: usize,
) -> Vec<MicroBatch> {
    let world = world.max(1);
    let mut batches: Vec<MicroBatch> = parts
        .iter()
        .enumerate()
        .flat_map(|(part, exp)| {
            cut(exp, micro_batch, group_by_length)
                .into_iter()
                .map(move |samples| MicroBatch {
                    part,
                    samples,
                    device: 0,
                })
        })
        .collect();
    if !group_by_length {
        for (j, b) in batches.iter_mut().enumerate() {
            b.device = j % world;
        }
        return batches;
    }
    // longest processing time first: the costliest micro-batch to the least loaded device
    let cost = |b: &MicroBatch| padding(parts[b.part], &b.samples, padding_free).computed;
    let mut by_cost: Vec<usize> = (0..batches.len()).collect();
    by_cost.sort_by_key(|&j| std::cmp::Reverse(cost(&batches[j])));
    let mut load = vec![0usize; world];
    for j in by_cost {
        let device = (0..world).min_by_key(|&d| (load[d], d)).unwrap_or(0);
        load[device] += cost(&batches[j]);
        batches[j].device = device;
    }
    batches
}

/// The positions one micro-batch (`samples` of `exp`) computes and the tokens among them.
pub fn padding(exp: &Experience, samples: &[usize], padding_free: bool) -> Padding {
    let longest = samples.iter().map(|&i| length(exp, i)).max().unwrap_or(0);
    let tokens = samples.iter().map(|&i| length(exp, i)).sum();
    Padding {
        computed: if padding_free {
            tokens
        } else {
            samples.len() * longest
        },
        tokens,
    }
}

/// The padding of a whole plan.
pub fn plan_padding(parts: &[&Experience], plan: &[MicroBatch], padding_free: bool) -> Padding {
    let mut total = Padding::default();
    for b in plan {
        total.add(padding(parts[b.part], &b.samples, padding_free));
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rl::experience::Sample;

    fn sample(prompt: usize, len: usize) -> Sample {
        Sample {
            prompt,
            completion: vec![1; len],
            advantage: 0.0,
            keep: true,
            old_logps: None,
            ref_logps: None,
        }
    }

    /// Prompts of 2 and 10 tokens; completions of the given lengths on alternating prompts.
    fn experience(lens: &[usize]) -> Experience {
        Experience {
            prompts: vec![vec![0; 2], vec![0; 10]],
            samples: lens
                .iter()
                .enumerate()
                .map(|(i, &l)| sample(i % 2, l))
                .collect(),
        }
    }

    #[test]
    fn rollout_order_when_not_grouped() {
        let exp = experience(&[5, 1, 7, 3, 2]);
        assert_eq!(cut(&exp, 2, false), vec![vec![0, 1], vec![2, 3], vec![4]]);
        let plan = plan(&[&exp, &exp], 2, false, false, 2);
        let devices: Vec<usize> = plan.iter().map(|b| b.device).collect();
        assert_eq!(devices, vec![0, 1, 0, 1, 0, 1]);
        assert_eq!(plan[3].part, 1);
        // lengths 7, 11, 9, 13, 4: [11·2] + [13·2] + [4·1] computed, 44 tokens
        let p = plan_padding(&[&exp], &plan[..3], false);
        assert_eq!(
            p,
            Padding {
                computed: 52,
                tokens: 44
            }
        );
        assert!((p.fraction() - 8.0 / 52.0).abs() < 1e-6);
    }

    #[test]
    fn grouped_by_total_length_then_completion() {
        // totals: 7, 11, 9, 13, 4, 11 (the last: prompt 10 + 1; sample 1 is 10 + 1 too)
        let exp = experience(&[5, 1, 7, 3, 2, 1]);
        assert_eq!(cut(&exp, 2, true), vec![vec![4, 0], vec![2, 1], vec![5, 3]]);
        let grouped = plan_padding(&[&exp], &plan(&[&exp], 2, true, false, 1), false);
        let rollout = plan_padding(&[&exp], &plan(&[&exp], 2, false, false, 1), false);
        assert_eq!(grouped.tokens, rollout.tokens);
        // [7·2] + [11·2] + [13·2] = 62 against [11·2] + [13·2] + [11·2] = 70
        assert_eq!((grouped.computed, rollout.computed), (62, 70));
    }

    #[test]
    fn longest_first_to_the_least_loaded_device() {
        // one sample per micro-batch; costs 7, 11, 9, 13, 4 → 13 → d0, 11 → d1, 9 → d1,
        // 7 → d0, 4 → d0 (loads 24 and 20)
        let exp = experience(&[5, 1, 7, 3, 2]);
        let plan = plan(&[&exp], 1, true, false, 2);
        let device_of = |s: usize| plan.iter().find(|b| b.samples == [s]).map(|b| b.device);
        assert_eq!(device_of(3), Some(0));
        assert_eq!(device_of(1), Some(1));
        assert_eq!(device_of(2), Some(1));
        assert_eq!(device_of(0), Some(0));
        assert_eq!(device_of(4), Some(0));
        // every sample exactly once
        let mut all: Vec<usize> = plan.iter().flat_map(|b| b.samples.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn empty_experience_has_no_micro_batches() {
        let exp = experience(&[]);
        assert!(plan(&[&exp], 4, true, true, 2).is_empty());
        assert_eq!(plan_padding(&[&exp], &[], true).fraction(), 0.0);
    }
}
