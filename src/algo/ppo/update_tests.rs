//! Tests of `ppo.rs`: the critic's values in the window, the batch's advantages by hand, the
//! epoch's mini-batches, and one PPO step (split into micro-batches or not).

use super::*;
use crate::model::batch::PaddedBatch;
use crate::model::save::value_tensors;
use crate::model::ModelConfig;
use crate::rl::experience::Sample;
use crate::rl::optim::{adamw, AdamParams};
use burn::backend::Autodiff;

type AB = Autodiff<crate::TestBackend>;

fn close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= tol, "{got:?} vs {want:?}");
    }
}

fn experience() -> Experience {
    let prompts = vec![vec![1, 2, 3], vec![4, 5]];
    let completions: [&[u32]; 4] = [&[10, 11], &[12, 13, 14], &[15], &[16, 17]];
    let samples = completions
        .iter()
        .enumerate()
        .map(|(i, c)| Sample {
            prompt: i % 2,
            completion: c.to_vec(),
            advantage: 0.0,
            keep: i != 3,
            old_logps: Some(c.iter().map(|&x| -(x as f32) / 10.0).collect()),
            ref_logps: Some(c.iter().map(|&x| -(x as f32) / 12.0).collect()),
        })
        .collect();
    Experience { prompts, samples }
}

fn ppo() -> PpoConfig {
    PpoConfig {
        kl_coef: 0.0,
        kl_estimator: KlEstimator::K1,
        whiten_rewards: false,
        gamma: 1.0,
        lam: 1.0,
        cliprange: 0.2,
        cliprange_value: 0.2,
        vf_coef: 0.1,
        micro_batch: 4,
        max_grad_norm: 1.0,
        temperature: 1.0,
        padding_free: true,
    }
}

/// Column k of a completion's values is the critic's value at the position before its token
/// k, whatever the padding of the micro-batch.
#[test]
fn values_are_read_before_each_completion_token() {
    let dev = Default::default();
    <crate::TestBackend as Backend>::seed(&dev, 3);
    let config = ModelConfig::new(32, 16, 32, 2, 4, 2, true);
    let policy = CausalLm::<crate::TestBackend>::random(&config, &dev);
    let critic = ValueModel::from_policy(policy, 1, &dev);
    let exp = experience();
    for mb in [1, 3] {
        let values = sample_values(&critic, &exp, mb, &dev).unwrap();
        for (s, v) in exp.samples.iter().zip(&values) {
            let seq = [&exp.prompts[s.prompt][..], &s.completion].concat();
            let input = PaddedBatch::left_padded(std::slice::from_ref(&seq), 0).to_input(&dev);
            let full: Vec<f32> = critic.forward(&input).into_data().to_vec().unwrap();
            let p = exp.prompts[s.prompt].len();
            close(v, &full[p - 1..seq.len() - 1], 1e-5);
        }
    }
}

/// Samples 0 (V 0.5, 0.25; score 1) and 1 (V 0, 0, 0; score 0) and a masked sample 3, with
/// γ = λ = 1, kl_coef 0. Sample 0: δ₁ = 1 − 0.25 = 0.75, δ₀ = 0.25 − 0.5 = −0.25 → A = 0.5,
/// 0.75, returns 1, 1. Sample 1: A = 0, R = 0. Sample 2 (one token, V 1, score 1): A = 0,
/// R = 1. Whitened over the six active advantages 0.5, 0.75, 0, 0, 0, 0: mean 0.2083333,
/// unbiased variance 0.1104167, std 0.3322900 → 0.877747, 1.630102, −0.626962 (× 4).
#[test]
fn advantages_and_returns_by_hand() {
    let exp = experience();
    let values = vec![
        vec![0.5, 0.25],
        vec![0.0, 0.0, 0.0],
        vec![1.0],
        vec![3.0, 3.0],
    ];
    let b = prepare(&exp, &[1.0, 0.0, 1.0, 1.0], values, &ppo()).unwrap();
    let s = &b.samples;
    close(&s[0].advantages, &[0.877747, 1.630102], 1e-5);
    close(&s[1].advantages, &[-0.626962; 3], 1e-5);
    close(&s[2].advantages, &[-0.626962], 1e-5);
    close(&s[3].advantages, &[0.0, 0.0], 0.0);
    close(&s[0].returns, &[1.0, 1.0], 1e-6);
    close(&s[2].returns, &[1.0], 1e-6);
    close(&s[0].old_values, &[0.5, 0.25], 0.0);
    // objective/*: per-sequence sums over active tokens, averaged over the 4 sequences
    let o = b.objective;
    assert!((o.scores - 0.75).abs() < 1e-6);
    let surprisal = (2.1 + 3.9 + 1.5) / 4.0; // Σ −log π_old of samples 0, 1, 2
    assert!((o.entropy - surprisal).abs() < 1e-5, "{o:?}");
    // k1 per token: log π_old − log π_ref = −x/10 + x/12 = −x/60
    let kl = -(21.0 + 39.0 + 15.0) / 60.0 / 4.0;
    assert!((o.kl - kl).abs() < 1e-5, "{o:?}");
    assert_eq!(o.non_score_reward, 0.0, "kl_coef 0");

    // kl_coef 0.5 puts −0.5·KL on every token: the rlhf reward is the score plus that
    let cfg = PpoConfig {
        kl_coef: 0.5,
        ..ppo()
    };
    let values = vec![vec![0.0; 2], vec![0.0; 3], vec![0.0], vec![0.0; 2]];
    let b = prepare(&exp, &[1.0, 0.0, 1.0, 1.0], values, &cfg).unwrap();
    assert!((b.objective.non_score_reward + 0.5 * kl).abs() < 1e-6);
    assert!((b.objective.rlhf_reward() - (0.75 - 0.5 * kl)).abs() < 1e-6);
    // γ = λ = 1 and V = 0: sample 2's return is its score plus its token's penalty
    let r2 = 1.0 - 0.5 * (-15.0 / 60.0);
    close(&b.samples[2].returns, &[r2], 1e-6);
}

#[test]
fn mini_batches_partition_every_epoch() {
    let a = mini_batches(10, 3, 7);
    assert_eq!(a.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 4]);
    let mut all: Vec<usize> = a.concat();
    all.sort_unstable();
    assert_eq!(all, (0..10).collect::<Vec<_>>());
    assert_eq!(a, mini_batches(10, 3, 7), "seeded");
    assert_ne!(a, mini_batches(10, 3, 8), "another epoch, another order");
    assert_eq!(mini_batches(2, 5, 0).len(), 2, "never an empty mini-batch");
}

/// One PPO step: the critic moves towards the returns and the policy's ratio away from 1;
/// the same step in micro-batches of 1 gives the same weights (the mini-batch's counts
/// normalise every micro-batch). Adam's ε = 1e-3 for the reason given in `grpo_tests.rs`
/// (with 1e-8 a gradient entry near 1e-8 turns f32 rounding into an lr-sized step).
#[test]
fn one_step_in_micro_batches_equals_one_pass() {
    let dev = Default::default();
    let config = ModelConfig::new(32, 16, 32, 2, 4, 2, true);
    <AB as Backend>::seed(&dev, 4);
    let policy = CausalLm::<AB>::random(&config, &dev);
    let critic = ValueModel::from_policy(policy.clone(), 1, &dev);
    let exp = experience();
    let values = sample_values(&critic, &exp, 4, &dev).unwrap();
    let batch = prepare(&exp, &[1.0, 0.0, 1.0, 0.0], values, &ppo()).unwrap();
    let adam = AdamParams {
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-3,
        weight_decay: 0.0,
    };
    let run = |mb: usize| {
        let (mut po, mut vo) = (adamw::<AB, _>(&adam), adamw::<AB, _>(&adam));
        let models = PpoModels {
            policy: policy.clone(),
            critic: critic.clone(),
            policy_optim: &mut po,
            value_optim: &mut vo,
        };
        let cfg = PpoConfig {
            micro_batch: mb,
            max_grad_norm: 0.0,
            ..ppo()
        };
        let (p, c, s) =
            ppo_update(models, &batch, &[0, 1, 2, 3], &cfg, (1e-3, 1e-2), &dev).unwrap();
        assert!(s.applied && s.grad_norm > 0.0);
        (p, c, s)
    };
    let (p1, c1, s1) = run(4);
    let (p2, c2, s2) = run(1);
    assert!((s1.sums.policy_loss - s2.sums.policy_loss).abs() < 1e-5);
    assert!((s1.sums.value_loss - s2.sums.value_loss).abs() < 1e-5);
    assert_eq!(s1.sums.tokens, 6.0, "sample 3 is masked");
    let flat = |c: &ValueModel<AB>| -> Vec<f32> {
        value_tensors(c)
            .unwrap()
            .into_values()
            .flat_map(|(v, _)| v)
            .collect()
    };
    close(&flat(&c1), &flat(&c2), 1e-5);
    let lm = |p: &CausalLm<AB>| -> Vec<f32> {
        crate::model::named_tensors(p)
            .unwrap()
            .into_values()
            .flat_map(|(v, _)| v)
            .collect()
    };
    close(&lm(&p1), &lm(&p2), 1e-5);
    assert!(lm(&p1) != lm(&policy), "the policy moved");
    // the value loss on the same batch is lower after the step
    let (mut po, mut vo) = (adamw::<AB, _>(&adam), adamw::<AB, _>(&adam));
    let models = PpoModels {
        policy: p1,
        critic: c1,
        policy_optim: &mut po,
        value_optim: &mut vo,
    };
    let (_, _, after) =
        ppo_update(models, &batch, &[0, 1, 2, 3], &ppo(), (0.0, 0.0), &dev).unwrap();
    assert!(
        after.sums.value_loss < s1.sums.value_loss,
        "{} → {}",
        s1.sums.value_loss,
        after.sums.value_loss
    );
}
