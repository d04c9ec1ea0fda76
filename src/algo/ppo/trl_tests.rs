//! PPO's rewards, GAE and whitening against trl 1.9's `PPOTrainer` itself
//! (`tests/fixtures/trl/ppo_advantages.json`, from `scripts/trl_parity.py`, which runs the
//! block of `PPOTrainer.train` that builds them).
//!
//! Where TRL's layout and ours put the score on the same slot (a completion cut at the budget:
//! no EOS, no padding) our [`advantages`] is TRL's. With an EOS the two differ by where the
//! score sits and which tokens count, and only by that: TRL's numbers are rebuilt from our own
//! pieces ([`token_rewards`], [`gae`], [`whiten`]) laid out as TRL lays them out, and our
//! layout gives other numbers (docs/training.md, "Where we differ from TRL").

use super::gae::{gae, token_rewards, whiten, KlEstimator};
use super::update::{advantages, PpoConfig};
use serde_json::Value;

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|r| match r.as_array() {
            Some(row) => row.iter().map(|x| x.as_f64().unwrap() as f32).collect(),
            None => vec![r.as_f64().unwrap() as f32],
        })
        .collect()
}

fn max_diff(a: &[f32], b: &[f32], mask: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .zip(mask)
        .filter(|(_, m)| **m > 0.0)
        .map(|((x, y), _)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn config(c: &Value, d: &Value) -> PpoConfig {
    PpoConfig {
        kl_coef: d["kl_coef"].as_f64().unwrap() as f32,
        kl_estimator: match c["kl_estimator"].as_str().unwrap() {
            "k1" => KlEstimator::K1,
            _ => KlEstimator::K3,
        },
        whiten_rewards: c["whiten_rewards"].as_bool().unwrap(),
        gamma: d["gamma"].as_f64().unwrap() as f32,
        lam: d["lam"].as_f64().unwrap() as f32,
        cliprange: 0.2,
        cliprange_value: 0.2,
        vf_coef: 0.1,
        micro_batch: 1,
        max_grad_norm: 1.0,
        temperature: 1.0,
        padding_free: false,
    }
}

#[test]
fn rewards_gae_and_whitening_are_trls_but_for_the_score_position() {
    let path = crate::test_repo().join("tests/fixtures/trl/ppo_advantages.json");
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let d = &v["data"];
    assert_eq!(d["trl_version"], "1.9.0");
    let (logps, refs, values, scores) = (
        floats(&d["logps"]),
        floats(&d["ref_logps"]),
        floats(&d["values"]),
        floats(&d["scores"]),
    );
    let (n, t) = (scores.len(), logps.len() / scores.len());
    let cases = d["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 12);
    for c in cases {
        let cfg = config(c, d);
        let name = format!(
            "{} {} whiten_rewards={}",
            c["layout"], c["kl_estimator"], cfg.whiten_rewards
        );
        let (want_r, want_a, want_ret) = (
            floats(&c["rewards"]),
            floats(&c["advantages"]),
            floats(&c["returns"]),
        );
        let (policy, value) = (floats(&c["policy_mask"]), floats(&c["value_mask"]));
        // TRL's layout from our pieces: the KL on the policy's tokens, the score on the last
        // slot the value head is trained on, GAE over those slots, whitening over the policy's
        let mut r = token_rewards(
            &logps,
            &refs,
            &vec![0.0; n],
            &policy,
            cfg.kl_coef,
            cfg.kl_estimator,
        );
        for (i, score) in scores.iter().enumerate() {
            let last = (i * t..(i + 1) * t)
                .filter(|&k| value[k] > 0.0)
                .max()
                .unwrap();
            r[last] += score;
        }
        if cfg.whiten_rewards {
            r = whiten(&r, &value, false);
        }
        let (a, ret) = gae(&r, &values, &value, t, cfg.gamma, cfg.lam);
        let a = whiten(&a, &policy, true);
        assert!(
            max_diff(&r, &want_r, &value) < 1e-5,
            "{name}: rewards {r:?} vs {want_r:?}"
        );
        assert!(
            max_diff(&a, &want_a, &policy) < 1e-4,
            "{name}: advantages {a:?} vs {want_a:?}"
        );
        assert!(
            max_diff(&ret, &want_ret, &value) < 1e-5,
            "{name}: returns {ret:?} vs {want_ret:?}"
        );

        // ours: the completion's tokens (EOS included) all count, the score on the last one
        let lengths: Vec<usize> = c["completion_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| (x.as_u64().unwrap() as usize + 1).min(t))
            .collect();
        let ours_mask: Vec<f32> = (0..n * t)
            .map(|k| f32::from(k % t < lengths[k / t]))
            .collect();
        let (r, a, ret) = advantages(
            &logps,
            &refs,
            &values,
            &scores,
            &ours_mask,
            cfg.kl_coef,
            &cfg,
        );
        if c["layout"] == "cut" {
            assert_eq!(ours_mask, policy, "{name}");
            assert!(
                max_diff(&r, &want_r, &value) < 1e-5,
                "{name}: rewards {r:?} vs {want_r:?}"
            );
            assert!(max_diff(&a, &want_a, &policy) < 1e-4, "{name}: advantages");
            assert!(max_diff(&ret, &want_ret, &value) < 1e-5, "{name}: returns");
        } else {
            // the documented difference: the score's slot and the tokens that count
            assert!(
                max_diff(&a, &want_a, &policy) > 1e-2,
                "{name}: expected to differ"
            );
        }
    }
}
