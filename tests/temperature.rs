//! The sampling temperature in the training log-probs. Completions sampled at temperature T come
//! from `softmax(logits / T)`, and TRL's GRPOTrainer computes the policy's, the old policy's and
//! the reference model's log-probs from that distribution. These tests check ours against
//! transformers' `log_softmax(logits / T)` (scripts/make_temperature_fixture.py), and that the
//! update scores the policy at the same temperature as the experience was scored.

mod common;

use burn::backend::{Autodiff, NdArray};
use common::*;
use mgrpo::model::{load_model, CausalLm};
use mgrpo::rl::experience::{score, Experience, Sample, Scorers};
use mgrpo::rl::grpo::{update, Part, UpdateConfig};
use mgrpo::rl::logprobs::Layout;
use mgrpo::rl::loss::{LossParams, LossType};
use mgrpo::rl::optim::{adamw, AdamParams};
use serde_json::Value;

type B = NdArray<f32>;
type AB = Autodiff<B>;

/// A fixture row: prompt, completion, and transformers' log-probs by temperature.
type Row = (Vec<u32>, Vec<u32>, serde_json::Map<String, Value>);

fn rows() -> Vec<Row> {
    let path = fixture("gqa2-tied-f32-t4").join("temperature.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ids = |v: &Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                ids(&r["prompt_ids"]),
                ids(&r["completion_ids"]),
                r["logprobs"].as_object().unwrap().clone(),
            )
        })
        .collect()
}

fn experience() -> Experience {
    let rows = rows();
    Experience {
        prompts: rows.iter().map(|r| r.0.clone()).collect(),
        samples: rows
            .iter()
            .enumerate()
            .map(|(i, r)| Sample {
                prompt: i,
                completion: r.1.clone(),
                advantage: [1.0, -1.0, 0.5][i],
                keep: true,
                old_logps: None,
                ref_logps: None,
            })
            .collect(),
    }
}

fn scored<Bk: mgrpo::fused::FusedBackend>(model: &CausalLm<Bk>, temperature: f32) -> Experience {
    let mut exp = experience();
    let scorers = Scorers {
        old: Some(model),
        reference: Some(model),
        temperature,
    };
    score(
        &mut exp,
        &scorers,
        2,
        true,
        Layout::Packed,
        &Default::default(),
    )
    .unwrap();
    exp
}

#[test]
fn scored_logprobs_are_transformers_log_softmax_of_logits_over_t() {
    let (_, model) = load_model::<B>(&fixture("gqa2-tied-f32-t4"), &Default::default()).unwrap();
    let rows = rows();
    for t in [0.7f32, 1.0] {
        let exp = scored(&model, t);
        for (s, (_, _, want)) in exp.samples.iter().zip(&rows) {
            let want: Vec<f32> = want[&format!("{t:?}")]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            for got in [s.old_logps.as_ref().unwrap(), s.ref_logps.as_ref().unwrap()] {
                let d = max_abs_diff(got, &want);
                assert!(d <= 1e-4, "T = {t}: max |ours - transformers| = {d}");
            }
        }
    }
    // the two temperatures are far apart, so the check above tells them apart
    let (cold, warm) = (&rows[0].2["0.7"], &rows[0].2["1.0"]);
    assert!((cold[1].as_f64().unwrap() - warm[1].as_f64().unwrap()).abs() > 1.0);
}

/// The first iteration of a step at T = 0.7: the old log-probs were scored at 0.7, so if the
/// update scores the policy at 0.7 too the ratio is exactly 1: nothing is clipped, and the
/// step equals the on-policy step (no old log-probs at all).
#[test]
fn the_update_scores_the_policy_at_the_sampling_temperature() {
    let device = Default::default();
    let (_, model) = load_model::<AB>(&fixture("gqa2-tied-f32-t4"), &device).unwrap();
    let with_old = scored(&model, 0.7);
    let mut on_policy = with_old.clone();
    for s in &mut on_policy.samples {
        s.old_logps = None;
    }
    let cfg = UpdateConfig {
        loss: LossParams {
            epsilon_low: 0.05,
            epsilon_high: 0.05,
            beta: 0.0,
            loss_type: LossType::Dapo,
            ..LossParams::default()
        },
        micro_batch: 2,
        max_grad_norm: 0.0,
        temperature: 0.7,
        top_entropy_quantile: 1.0,
        group_by_length: true,
        padding_free: true,
    };
    let run = |exp: &Experience| {
        let mut optim = adamw::<AB, _>(&AdamParams {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        });
        let parts = [Part {
            experience: exp,
            weight: 1.0,
            max_completion_length: 4,
            tokens_per_step: None,
        }];
        update(model.clone(), &mut optim, &parts, &cfg, 1e-3, &device)
            .unwrap()
            .1
    };
    let (a, b) = (run(&with_old), run(&on_policy));
    assert_eq!(a.metrics.clip_region, 0.0, "{:?}", a.metrics);
    assert!((a.loss - b.loss).abs() < 1e-6, "{} vs {}", a.loss, b.loss);
    assert!((a.grad_norm - b.grad_norm).abs() < 1e-4 * b.grad_norm);
}
