//! RLOO's advantages, KL penalty and loss, worked out by hand.

use super::*;
use crate::rl::experience::{Experience, Sample};
use crate::rl::loss::{grpo_loss, LossInputs, StepCounts};
use burn::backend::Autodiff;
use burn::prelude::*;

type B = crate::TestBackend;
type AB = Autodiff<B>;

fn close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
    }
}

/// Groups [1, 0, 0, 1] and [0.5, 0.5] (G = 4, then a second prompt of G = 2 is not allowed:
/// two prompts of G = 3 instead): [1, 0, 0] → baselines [0, 0.5, 0.5] → A = [1, −0.5, −0.5];
/// [0.5, 0.5, 0.5] → A = 0 (a zero-std group).
#[test]
fn leave_one_out_by_hand() {
    let r = [1.0, 0.0, 0.0, 0.5, 0.5, 0.5];
    let a = loo_advantages(&r, &r, 3, false);
    close(&a.values, &[1.0, -0.5, -0.5, 0.0, 0.0, 0.0]);
    assert_eq!(a.zero_std_groups, 1);
    assert_eq!(a.frac_zero_std, 0.5);
    assert!((a.reward_mean - 2.5 / 6.0).abs() < 1e-6);
    // the whole rollout's unbiased std (TRL's `reward_std`), not the groups' mean std
    let m = 2.5f32 / 6.0;
    let var = r.iter().map(|x| (x - m) * (x - m)).sum::<f32>() / 5.0;
    assert!((a.reward_std - var.sqrt()).abs() < 1e-6);
    // G = 4: [1, 0, 0, 1] → baselines [1/3, 2/3, 2/3, 1/3] → A = ±2/3
    let a = loo_advantages(&[1.0, 0.0, 0.0, 1.0], &[1.0, 0.0, 0.0, 1.0], 4, false);
    let t = 2.0 / 3.0;
    close(&a.values, &[t, -t, -t, t]);
    // whitened: mean 0, unbiased std sqrt(4 · (4/9) / 3) = 0.769800
    let n = loo_advantages(&[1.0, 0.0, 0.0, 1.0], &[1.0, 0.0, 0.0, 1.0], 4, true);
    let w = t / (0.769_800_4 + 1e-4);
    close(&n.values, &[w, -w, -w, w]);
}

#[test]
fn rewards_are_clipped_before_the_baseline() {
    assert_eq!(
        clipped(&[2.0, -1.0, 0.3], Some([0.0, 1.0])),
        [1.0, 0.0, 0.3]
    );
    assert_eq!(clipped(&[2.0], None), [2.0]);
}

fn sample(advantage: f32, old: &[f32], reference: &[f32], keep: bool) -> Sample {
    Sample {
        prompt: 0,
        completion: vec![1; old.len()],
        advantage,
        keep,
        old_logps: Some(old.to_vec()),
        ref_logps: Some(reference.to_vec()),
    }
}

/// β = 0.5, rewards [1, 1]: completion 0's k1 sum is (−1 − −2) + (−1 − −1.5) = 1.5 → 1 − 0.75;
/// completion 1's is −0.5 → 1 + 0.25. A = [0.25 − 1.25, 1.25 − 0.25] = [−1, 1]. A masked
/// completion (kept = false) pays no penalty. `kl` is the mean per kept token: (1.5 − 0.5) / 3.
#[test]
fn the_kl_penalty_is_in_the_reward() {
    let rollout = crate::rl::rollout::Rollout {
        prompts: Vec::new(),
        completions: Vec::new(),
        rewards: Vec::new(),
        stats: Default::default(),
    };
    let adv = loo_advantages(&[1.0, 1.0, 1.0], &[1.0, 1.0, 1.0], 3, false);
    let main = Group {
        rollout,
        adv,
        experience: Experience {
            prompts: vec![vec![0]],
            samples: vec![
                sample(0.0, &[-1.0, -1.0], &[-2.0, -1.5], true),
                sample(0.0, &[-1.0], &[-0.5], true),
                sample(0.0, &[-1.0], &[-9.0], false),
            ],
        },
    };
    let mut got = Collected::single(main, 8);
    penalise(&mut got, &[1.0; 3], &[1.0; 3], 3, 0.5, false);
    // penalised rewards [0.25, 1.25, 1.0]: baselines [1.125, 0.625, 0.75]
    let want = [0.25 - 1.125, 1.25 - 0.625, 1.0 - 0.75];
    let got_adv: Vec<f32> = got
        .main
        .experience
        .samples
        .iter()
        .map(|s| s.advantage)
        .collect();
    close(&got_adv, &want);
    close(&got.main.adv.values, &want);
    assert!((got.reward_kl.unwrap() - 1.0 / 3.0).abs() < 1e-6);
    assert!(got
        .main
        .experience
        .samples
        .iter()
        .all(|s| s.ref_logps.is_none()));
    // the logged reward is the raw one
    assert_eq!(got.main.adv.reward_mean, 1.0);
}

/// The loss treats a completion as one action. Sequence 1: log-ratios [0, ln 1.5, ln 0.5]
/// sum to ln 0.75, r = 0.75, A = +1 → −min(0.75, clip 0.8) = −0.75. Sequence 2 (last token
/// masked): ln 0.5 → r = 0.5, A = −1 → −min(−0.5, −0.8) = 0.8 (clipped, no gradient). Mean
/// over the two: 0.025; ∂/∂logp of sequence 1's tokens: −A·r/2 = −0.375 each.
#[test]
fn the_loss_is_per_completion() {
    let ln = |x: f32| x.ln();
    let dev = Default::default();
    let logps =
        Tensor::<AB, 2>::from_data([[0.0, ln(1.5), ln(0.5)], [0.0, ln(0.5), ln(2.0)]], &dev)
            .require_grad();
    let inputs = LossInputs {
        logps: logps.clone(),
        old_logps: Some(Tensor::zeros([2, 3], &dev)),
        ref_logps: None,
        advantages: Tensor::from_data([1.0, -1.0], &dev),
        mask: Tensor::from_data([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]], &dev),
        entropy_mask: None,
    };
    let params = loss_params(LossParams {
        epsilon_low: 0.2,
        epsilon_high: 0.2,
        beta: 0.3,
        ..LossParams::default()
    });
    assert_eq!(params.beta, 0.0);
    let counts = StepCounts {
        sequences: 2,
        tokens: 5.0,
        micro_batches: 1,
        max_completion_length: 3,
    };
    let (loss, _) = grpo_loss(inputs, &params, &counts);
    let value = loss.clone().into_data().to_vec::<f32>().unwrap()[0];
    assert!((value - 0.025).abs() < 1e-6, "{value}");
    let grads = loss.backward();
    let g = logps
        .grad(&grads)
        .unwrap()
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    close(&g, &[-0.375, -0.375, -0.375, 0.0, 0.0, 0.0]);
}

/// RLOO's half of `tests/fixtures/trl/reward_statistics.json`: the block of
/// `RLOOTrainer._generate_and_score_completions` from its unscorable mask to
/// `frac_reward_zero_std`, run by `scripts/trl_parity.py` on fixed rewards (NaN: a function's
/// None), with and without `normalize_advantages`.
#[test]
fn advantages_and_statistics_are_trls() {
    let path = crate::test_repo().join("tests/fixtures/trl/reward_statistics.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let number = |v: &serde_json::Value| match v.as_str() {
        Some("nan") => f32::NAN,
        _ => v.as_f64().unwrap() as f32,
    };
    let same = |a: f32, b: f32| (a.is_nan() && b.is_nan()) || (a - b).abs() < 1e-5;
    let mut n = 0;
    for c in v["data"].as_array().unwrap() {
        if c["trainer"] != "RLOOTrainer" {
            continue;
        }
        let weights: Vec<f32> = c["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(number)
            .collect();
        let raw: Vec<f32> = c["rewards_per_func"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                let s: Vec<f32> = row.as_array().unwrap().iter().map(number).collect();
                crate::reward::weighted_total(&s, &weights)
            })
            .collect();
        let g = c["num_generations"].as_u64().unwrap() as usize;
        let normalize = c["normalize_advantages"].as_bool().unwrap();
        let a = loo_advantages(&raw, &raw, g, normalize);
        let what = format!("{} normalize={normalize}", c["name"]);
        let want: Vec<f32> = c["advantages"]
            .as_array()
            .unwrap()
            .iter()
            .map(number)
            .collect();
        assert!(
            a.values.iter().zip(&want).all(|(x, y)| same(*x, *y)),
            "{what}: {:?} vs TRL {want:?}",
            a.values
        );
        for (name, got, want) in [
            ("reward", a.reward_mean, &c["reward"]),
            ("reward_std", a.reward_std, &c["reward_std"]),
            (
                "frac_reward_zero_std",
                a.frac_zero_std,
                &c["frac_reward_zero_std"],
            ),
        ] {
            assert!(
                same(got, number(want)),
                "{what}: {name} ours {got}, TRL {want}"
            );
        }
        n += 1;
    }
    assert_eq!(n, 16);
}
