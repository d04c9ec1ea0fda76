//! Tests of `grpo.rs`: accumulation, weighted parts and per-part normalisation.

use super::*;
use crate::model::{named_tensors, ModelConfig};
use crate::rl::loss::LossType;
use crate::rl::optim::{adamw, AdamParams};
use burn::backend::Autodiff;

type AB = Autodiff<crate::TestBackend>;

fn experience(with_old: bool) -> Experience {
    let prompts = vec![vec![1, 2, 3], vec![4, 5], vec![6, 7, 8, 9]];
    let completions: [&[u32]; 8] = [
        &[10, 11],
        &[12, 13, 14, 15],
        &[16],
        &[17, 18, 19],
        &[20, 21, 22, 23, 24],
        &[25, 26],
        &[27],
        &[28, 29, 30],
    ];
    let samples = completions
        .iter()
        .enumerate()
        .map(|(i, c)| Sample {
            prompt: i % 3,
            completion: c.to_vec(),
            advantage: [1.0, -0.5, 0.25, -1.0][i % 4],
            keep: i != 5,
            old_logps: with_old.then(|| c.iter().map(|&x| -(x as f32) / 10.0).collect()),
            ref_logps: None,
        })
        .collect();
    Experience { prompts, samples }
}

/// One step; returns the updated weights and the gradient norm.
fn step(
    model: CausalLm<AB>,
    exp: &Experience,
    mb: usize,
    lt: LossType,
    group_by_length: bool,
    padding_free: bool,
) -> (Vec<(String, f32)>, f32) {
    let mut optim = adamw::<AB, _>(&AdamParams {
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-3,
        weight_decay: 0.01,
    });
    let cfg = UpdateConfig {
        loss: LossParams {
            epsilon_low: 0.2,
            epsilon_high: 0.28,
            beta: 0.0,
            loss_type: lt,
            ..LossParams::default()
        },
        micro_batch: mb,
        max_grad_norm: 0.5,
        temperature: 1.0,
        top_entropy_quantile: 1.0,
        group_by_length,
        padding_free,
    };
    let parts = [Part {
        experience: exp,
        weight: 1.0,
        max_completion_length: 5,
        tokens_per_step: None,
    }];
    let (model, stats) =
        update(model, &mut optim, &parts, &cfg, 1e-3, &Default::default()).unwrap();
    assert!(stats.applied && stats.grad_norm > 0.0);
    let weights = named_tensors(&model)
        .unwrap()
        .into_iter()
        .flat_map(|(k, (v, _))| v.into_iter().map(move |x| (k.clone(), x)))
        .collect::<Vec<_>>();
    (weights, stats.grad_norm)
}

/// In f32 two batchings round differently (~1e-7 of each gradient entry). Adam's first step
/// is `lr·g/(|g| + ε)`: with ε = 1e-8 an entry that happens to be ~1e-8 turns that rounding
/// into an lr-sized difference (seen: one `v_proj` entry off by 0.6·lr). ε = 1e-3 keeps the
/// step smooth in g, so the comparison measures accumulation, not Adam's sign-like start.
#[test]
fn accumulation_equals_one_big_batch() {
    let config = ModelConfig::new(32, 16, 32, 2, 4, 2, true);
    <AB as Backend>::seed(&Default::default(), 11);
    let model = CausalLm::<AB>::random(&config, &Default::default());
    let before: Vec<f32> = named_tensors(&model)
        .unwrap()
        .into_values()
        .flat_map(|(v, _)| v)
        .collect();
    for (lt, with_old) in [
        (LossType::Dapo, false),
        (LossType::Dapo, true),
        (LossType::Grpo, false),
        (LossType::Grpo, true),
        (LossType::DrGrpo, true),
    ] {
        let exp = experience(with_old);
        // one left-padded batch of 8 against: packed, four micro-batches of 2 (packed), the
        // same cut by length instead, and the four left-padded
        let (one, norm_one) = step(model.clone(), &exp, 8, lt, false, false);
        let (packed, norm_packed) = step(model.clone(), &exp, 8, lt, false, true);
        let (four, norm_four) = step(model.clone(), &exp, 2, lt, false, true);
        let (grouped, norm_grouped) = step(model.clone(), &exp, 2, lt, true, true);
        let (padded, norm_padded) = step(model.clone(), &exp, 2, lt, true, false);
        let others = [
            ("1×8 packed", &packed, norm_packed),
            ("4×2", &four, norm_four),
            ("4×2 grouped", &grouped, norm_grouped),
            ("4×2 grouped, padded", &padded, norm_padded),
        ];
        for (what, _, norm) in others {
            assert!(
                (norm_one - norm).abs() < 1e-4 * norm_one,
                "{lt:?}: gradient norms 1×8 {norm_one} vs {what} {norm}"
            );
        }
        let moved = one
            .iter()
            .zip(&before)
            .map(|(a, b)| (a.1 - b).abs())
            .fold(0.0, f32::max);
        assert!(
            moved > 1e-4,
            "{lt:?}: the step must change the weights ({moved})"
        );
        for (what, other, _) in others {
            let diff = one
                .iter()
                .zip(other)
                .map(|(a, b)| (a.1 - b.1).abs())
                .fold(0.0, f32::max);
            assert!(diff < 1e-5, "{lt:?}: 1×8 vs {what} differ by {diff}");
        }
    }
}

/// dr_grpo divides each part by its own sequences × budget. On a first iteration (no old
/// log-probs) the ratio is 1, so each token's loss is −A whatever the model: over
/// `experience(false)` (lengths 2 4 1 3 5 2 1 3, advantages 1 −½ ¼ −1 repeating, sequence 5
/// masked) Σ −A·len = −2 + 2 − ¼ + 3 − 5 − ¼ + 3 = ½. With 8 sequences, budget 5 gives
/// ½ / 40 = 0.0125 and budget 20 gives ½ / 160 = 0.003125.
#[test]
fn dr_grpo_divides_each_part_by_its_own_budget() {
    let config = ModelConfig::new(32, 16, 32, 2, 4, 2, true);
    <AB as Backend>::seed(&Default::default(), 3);
    let model = CausalLm::<AB>::random(&config, &Default::default());
    let exp = experience(false);
    let cfg = UpdateConfig {
        loss: LossParams {
            epsilon_low: 0.2,
            epsilon_high: 0.28,
            beta: 0.0,
            loss_type: LossType::DrGrpo,
            ..LossParams::default()
        },
        micro_batch: 3,
        max_grad_norm: 0.0,
        temperature: 1.0,
        top_entropy_quantile: 1.0,
        group_by_length: true,
        padding_free: true,
    };
    let part = |weight, max_completion_length| Part {
        experience: &exp,
        weight,
        max_completion_length,
        tokens_per_step: None,
    };
    let mut optim = adamw::<AB, _>(&AdamParams {
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-8,
        weight_decay: 0.0,
    });
    let parts = [part(1.0, 5), part(0.5, 20)];
    let (_, stats) = update(model, &mut optim, &parts, &cfg, 1e-3, &Default::default()).unwrap();
    let [l1, l2] = stats.part_losses[..] else {
        panic!("{:?}", stats.part_losses)
    };
    assert!((l1 - 0.0125).abs() < 1e-7, "layer 1: {l1}");
    assert!((l2 - 0.003125).abs() < 1e-7, "layer 2: {l2}");
    assert!((stats.loss - (0.0125 + 0.5 * 0.003125)).abs() < 1e-7);
}

/// MGRPO's step: the loss is `L1 + w·L2`, each part normalised by its own counts, so
/// adding layer 2 never rescales layer 1.
#[test]
fn weighted_parts_add_up() {
    let config = ModelConfig::new(32, 16, 32, 2, 4, 2, true);
    <AB as Backend>::seed(&Default::default(), 5);
    let model = CausalLm::<AB>::random(&config, &Default::default());
    let l1 = experience(true);
    let mut l2 = experience(true);
    l2.samples.truncate(5);
    for s in &mut l2.samples {
        s.advantage = -2.0 * s.advantage + 0.3;
    }
    let cfg = UpdateConfig {
        loss: LossParams {
            epsilon_low: 0.2,
            epsilon_high: 0.28,
            beta: 0.0,
            loss_type: LossType::Dapo,
            ..LossParams::default()
        },
        micro_batch: 3,
        max_grad_norm: 0.0,
        temperature: 1.0,
        top_entropy_quantile: 1.0,
        group_by_length: true,
        padding_free: true,
    };
    let run = |parts: &[Part<'_>]| {
        let mut optim = adamw::<AB, _>(&AdamParams {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        });
        update(
            model.clone(),
            &mut optim,
            parts,
            &cfg,
            1e-3,
            &Default::default(),
        )
        .unwrap()
        .1
    };
    let part = |e, w| Part {
        experience: e,
        weight: w,
        max_completion_length: 5,
        tokens_per_step: None,
    };
    let a = run(&[part(&l1, 1.0)]);
    let b = run(&[part(&l2, 1.0)]);
    let both = run(&[part(&l1, 1.0), part(&l2, 0.5)]);
    assert!(a.loss.abs() > 1e-3 && b.loss.abs() > 1e-3);
    assert_eq!(both.part_losses.len(), 2);
    assert!((both.part_losses[0] - a.loss).abs() < 1e-6);
    assert!((both.part_losses[1] - b.loss).abs() < 1e-6);
    assert!((both.loss - (a.loss + 0.5 * b.loss)).abs() < 1e-5);
    // an empty layer 2 changes nothing
    let empty = Experience::default();
    let alone = run(&[part(&l1, 1.0), part(&empty, 1.0)]);
    assert!((alone.loss - a.loss).abs() < 1e-7);
    assert!((alone.grad_norm - a.grad_norm).abs() < 1e-6 * a.grad_norm);
}

/// `top_entropy_quantile` reaches the loss through the update: on a first iteration each
/// token's loss is −A, so keeping only some tokens changes the step's loss; q = 1 keeps all.
#[test]
fn top_entropy_quantile_masks_tokens_in_the_update() {
    let config = ModelConfig::new(32, 16, 32, 2, 4, 2, true);
    <AB as Backend>::seed(&Default::default(), 9);
    let model = CausalLm::<AB>::random(&config, &Default::default());
    let exp = experience(false);
    let run = |q: f32| {
        let cfg = UpdateConfig {
            loss: LossParams::default(),
            micro_batch: 8,
            max_grad_norm: 0.0,
            temperature: 1.0,
            top_entropy_quantile: q,
            group_by_length: true,
            padding_free: true,
        };
        let mut optim = adamw::<AB, _>(&AdamParams {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        });
        let parts = [Part {
            experience: &exp,
            weight: 1.0,
            max_completion_length: 5,
            tokens_per_step: None,
        }];
        update(
            model.clone(),
            &mut optim,
            &parts,
            &cfg,
            1e-3,
            &Default::default(),
        )
        .unwrap()
        .1
    };
    let (all, some) = (run(1.0), run(0.3));
    // Σ −A·len over the kept sequences is ½ (see the dr_grpo test), over 19 counted tokens
    assert!((all.loss - 0.5 / 19.0).abs() < 1e-7, "{}", all.loss);
    assert!(
        some.applied && (some.loss - all.loss).abs() > 1e-4,
        "{}",
        some.loss
    );
}

/// The hand case: one rollout of two completions, 10 and 30 tokens, feeding two
/// optimizer steps. TRL divides each step's `dapo` sum by the rollout's 40 tokens over 2 steps,
/// 20, not by the slice's own 10 and 30: the first step's loss is half of what its own count
/// gives.
#[test]
fn slices_of_a_rollout_share_its_token_count() {
    let exp = Experience {
        prompts: vec![vec![1, 2]],
        samples: [10, 30]
            .iter()
            .enumerate()
            .map(|(i, &n)| Sample {
                prompt: 0,
                completion: (0..n).map(|t| 3 + ((t + i) % 20) as u32).collect(),
                advantage: [1.0, -0.5][i],
                keep: true,
                old_logps: None,
                ref_logps: None,
            })
            .collect(),
    };
    let parts = [Part {
        experience: &exp,
        weight: 1.0,
        max_completion_length: 30,
        tokens_per_step: None,
    }];
    let slices = rollout_slices(&parts, 2);
    let per_step: Vec<Vec<Part<'_>>> = slices.iter().map(|s| slice_parts(&parts, s, 2)).collect();
    assert_eq!(per_step[0][0].experience.active_tokens(), 10);
    assert_eq!(per_step[1][0].experience.active_tokens(), 30);
    for p in &per_step {
        assert_eq!(p[0].tokens_per_step, Some(20.0));
    }
    let config = ModelConfig::new(32, 16, 32, 1, 2, 1, true);
    let model = CausalLm::<AB>::random(&config, &Default::default());
    let cfg = UpdateConfig {
        loss: LossParams {
            loss_type: LossType::Dapo,
            ..LossParams::default()
        },
        micro_batch: 4,
        max_grad_norm: 0.0,
        temperature: 1.0,
        top_entropy_quantile: 1.0,
        group_by_length: false,
        padding_free: false,
    };
    let loss = |parts: &[Part<'_>]| {
        let mut optim = adamw::<AB, _>(&AdamParams {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        });
        let (_, s) = update(
            model.clone(),
            &mut optim,
            parts,
            &cfg,
            1e-3,
            &Default::default(),
        )
        .unwrap();
        s.loss
    };
    let own = [Part {
        tokens_per_step: None,
        ..per_step[0][0]
    }];
    let (trl, ours_before) = (loss(&per_step[0]), loss(&own));
    assert!(ours_before.abs() > 1e-3);
    assert!(
        (trl - ours_before / 2.0).abs() < 1e-6,
        "{trl} vs {ours_before}"
    );
}
