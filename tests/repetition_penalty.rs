//! `repetition_penalty` against transformers (`tests/fixtures/trl/repetition_penalty.json`,
//! from `scripts/trl_parity.py`): its `RepetitionPenaltyLogitsProcessor` on fixed logits, and
//! greedy `generate` of the shipped model with and without the penalty, token for token.

mod common;

use common::{fixture, ids};
use mgrpo::generate::sampler::penalise_repeats;
use mgrpo::generate::{generate, GenerateConfig, SamplingParams};
use mgrpo::model::load_model;
use mgrpo::text::tokenizer::Tokenizer;
use serde_json::Value;

type B = burn::backend::NdArray<f32>;

fn data() -> Value {
    let v: Value =
        serde_json::from_slice(&std::fs::read(fixture("trl/repetition_penalty.json")).unwrap())
            .unwrap();
    v["data"].clone()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn the_logits_processor_is_transformers() {
    let d = data();
    let penalty = d["penalty"].as_f64().unwrap() as f32;
    for ((scores, input), want) in d["scores"]
        .as_array()
        .unwrap()
        .iter()
        .zip(d["input_ids"].as_array().unwrap())
        .zip(d["processed"].as_array().unwrap())
    {
        let mut got = floats(scores);
        penalise_repeats(&mut got, ids(input), penalty);
        for (g, w) in got.iter().zip(floats(want)) {
            assert!((g - w).abs() < 1e-6, "{got:?} vs {want}");
        }
    }
}

/// Greedy decoding of the shipped model equals transformers' `generate(do_sample=False)`
/// without the penalty and with `repetition_penalty = 1.3`, and the two differ (the penalty,
/// which counts the prompt's tokens too, changes what is decoded).
#[test]
fn greedy_generation_with_a_penalty_is_transformers() {
    let d = data();
    let dir = common::repo().join("model");
    let device = Default::default();
    let (config, model) = load_model::<B>(&dir, &device).unwrap();
    let tok = Tokenizer::from_model_dir(&dir).unwrap();
    let penalty = d["generate_penalty"].as_f64().unwrap() as f32;
    let cases = d["greedy"].as_array().unwrap();
    let prompts: Vec<Vec<u32>> = cases.iter().map(|c| ids(&c["prompt_ids"])).collect();
    let mut differ = 0;
    let mut runs: Vec<Vec<mgrpo::generate::Completion>> = Vec::new();
    for (name, repetition_penalty) in [("plain", 1.0), ("penalised", penalty)] {
        let gen = GenerateConfig {
            max_new_tokens: 40,
            sampling: SamplingParams {
                repetition_penalty,
                ..SamplingParams::greedy()
            },
            batch_size: 2,
            eos_ids: ids(&d["eos_token_id"]),
            ..GenerateConfig::default()
        };
        let got = generate(&model, &config, &prompts, &gen, tok.as_ref(), &device)
            .unwrap()
            .completions;
        for (c, case) in got.iter().zip(cases) {
            assert_eq!(
                c.ids,
                ids(&case[name]),
                "{name}: prompt {:?}",
                case["prompt_ids"]
            );
            assert!(c
                .model_logprobs
                .iter()
                .all(|lp| *lp <= 0.0 && lp.is_finite()));
        }
        runs.push(got);
    }
    // the model's log-probs (what the trainer uses) are unpenalised: where the two runs
    // decoded the same tokens from the same context, they are the same
    let mut shared = 0;
    for (a, b) in runs[0].iter().zip(&runs[1]) {
        let same = a.ids.iter().zip(&b.ids).take_while(|(x, y)| x == y).count();
        // (the unpenalised greedy path reduces on the device, the penalised one on the host)
        for (x, y) in a.model_logprobs[..same]
            .iter()
            .zip(&b.model_logprobs[..same])
        {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
        shared += same;
    }
    assert!(shared > 0);
    for case in cases {
        differ += usize::from(case["plain"] != case["penalised"]);
    }
    assert_eq!(
        differ,
        cases.len(),
        "the penalty changes every continuation"
    );
}
