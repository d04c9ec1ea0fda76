//! The generation engine against its references: greedy decoding by repeated full forward
//! passes (no cache), transformers' `generate(do_sample=False)` (committed ids), each row alone
//! versus in a left-padded batch, and teacher-forced log-probs (`score`).

mod common;

use burn::prelude::*;
use common::*;
use mgrpo::fused::FusedBackend;
use mgrpo::generate::sampler::argmax;
use mgrpo::generate::sampler::filtered_distribution;
use mgrpo::generate::{
    generate, sample_on_device, Completion, DeviceDraw, FinishReason, GenerateConfig, SampleOn,
    SamplingParams, StopStrings,
};
use mgrpo::model::batch::PaddedBatch;
use mgrpo::model::{load_model, CausalLm};
use mgrpo::score::score_rows;
use mgrpo::text::tokenizer::Tokenizer;
use rand::{Rng, SeedableRng};

/// Greedy continuation by a full forward pass over the whole sequence for every new token.
fn greedy_uncached<B: FusedBackend>(
    model: &CausalLm<B>,
    prompt: &[u32],
    n: usize,
    device: &B::Device,
) -> Vec<u32> {
    let mut ids = prompt.to_vec();
    for _ in 0..n {
        let batch = PaddedBatch::left_padded(std::slice::from_ref(&ids), 0);
        let logits = model.forward(&batch.to_input::<B>(device)); // [1, s, V]
        let [_, s, v] = logits.dims();
        let last: Vec<f32> = logits
            .slice([0..1, s - 1..s, 0..v])
            .into_data()
            .convert::<f32>()
            .to_vec()
            .unwrap();
        ids.push(argmax(&last) as u32);
    }
    ids[prompt.len()..].to_vec()
}

fn greedy(max_new_tokens: usize, batch_size: usize, eos_ids: Vec<u32>) -> GenerateConfig {
    GenerateConfig {
        max_new_tokens,
        sampling: SamplingParams::greedy(),
        batch_size,
        eos_ids,
        ..GenerateConfig::default()
    }
}

/// Prompts of several lengths (the fixtures' recorded greedy prompts).
fn prompts(name: &str) -> Vec<Vec<u32>> {
    expected(name)["greedy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| ids(&c["prompt_ids"]))
        .collect()
}

fn run<B: FusedBackend>(
    dir: &std::path::Path,
    prompts: &[Vec<u32>],
    gen: &GenerateConfig,
    device: &B::Device,
) -> Vec<Completion> {
    let (config, model) = load_model::<B>(dir, device).unwrap();
    let tok = Tokenizer::from_model_dir(dir).unwrap();
    generate(&model, &config, prompts, gen, tok.as_ref(), device)
        .unwrap()
        .completions
}

/// 40 new tokens with the cache, one batch of all prompts (left-padded), equal the uncached
/// greedy continuation of each prompt alone, token for token.
fn cache_equals_full_forward<B: FusedBackend>(device: B::Device) {
    for name in FIXTURES {
        let dir = fixture(name);
        let (config, model) = load_model::<B>(&dir, &device).unwrap();
        let ps = prompts(name);
        let out = generate(&model, &config, &ps, &greedy(40, 8, vec![]), None, &device)
            .unwrap()
            .completions;
        for (p, c) in ps.iter().zip(&out) {
            assert_eq!(c.ids.len(), 40);
            assert_eq!(c.finish_reason, FinishReason::Length);
            let want = greedy_uncached(&model, p, 40, &device);
            assert_eq!(c.ids, want, "{name}: prompt of {} tokens", p.len());
        }
    }
}

/// Every fixture's greedy continuations equal transformers' (stopping at config.json's EOS),
/// and the decoded text of the text prompt equals the HF tokenizer's decode.
fn matches_transformers<B: FusedBackend>(device: B::Device) {
    for name in FIXTURES {
        let dir = fixture(name);
        let cases = expected(name)["greedy"].as_array().unwrap().clone();
        let ps: Vec<Vec<u32>> = cases.iter().map(|c| ids(&c["prompt_ids"])).collect();
        // batch of 2: two batches, one of them padded
        let out = run::<B>(&dir, &ps, &greedy(40, 2, vec![2]), &device);
        for (c, got) in cases.iter().zip(&out) {
            let want = ids(&c["completion_ids"]);
            assert_eq!(got.ids, want, "{name}: prompt {:?}", c["prompt_ids"]);
            let eos = c["eos"].as_bool().unwrap();
            let reason = if eos {
                FinishReason::Eos
            } else {
                FinishReason::Length
            };
            assert_eq!(got.finish_reason, reason);
            if let Some(text) = c.get("text") {
                assert_eq!(got.text.as_deref(), text.as_str(), "{name}");
            }
        }
    }
}

#[cfg(feature = "ndarray")]
#[test]
fn greedy_ndarray() {
    cache_equals_full_forward::<burn::backend::NdArray<f32>>(Default::default());
    matches_transformers::<burn::backend::NdArray<f32>>(Default::default());
}

#[cfg(feature = "flex")]
#[test]
fn greedy_flex() {
    cache_equals_full_forward::<burn::backend::Flex<f32>>(Default::default());
    matches_transformers::<burn::backend::Flex<f32>>(Default::default());
}

#[cfg(feature = "wgpu")]
#[test]
fn greedy_wgpu() {
    cache_equals_full_forward::<burn::backend::Wgpu<f32, i32>>(Default::default());
    matches_transformers::<burn::backend::Wgpu<f32, i32>>(Default::default());
}

#[cfg(feature = "tch")]
#[test]
fn greedy_tch() {
    cache_equals_full_forward::<burn::backend::LibTorch<f32>>(Default::default());
    matches_transformers::<burn::backend::LibTorch<f32>>(Default::default());
}

#[cfg(feature = "cuda")]
#[test]
#[ignore = "needs an NVIDIA GPU: cargo test --release --features cuda -- --ignored"]
fn greedy_cuda() {
    cache_equals_full_forward::<burn::backend::Cuda<f32, i32>>(Default::default());
    matches_transformers::<burn::backend::Cuda<f32, i32>>(Default::default());
}

type Cpu = burn::backend::NdArray<f32>;

/// Seven prompts of lengths 1, 4, ..., 19 (ids below 90, in every fixture's vocabulary).
fn mixed_prompts() -> Vec<Vec<u32>> {
    (0..7u32)
        .map(|i| (0..1 + 3 * i).map(|j| (7 * i + 13 * j + 3) % 90).collect())
        .collect()
}

/// A left-padded batch gives each row exactly what the row gives alone: greedy ids for a prompt
/// run by itself, and, sampling with a seed, the same ids whatever the batch size (each sample
/// draws from its own RNG stream, keyed by prompt and sample index), with G = 3.
#[test]
fn batch_equals_rows_alone() {
    let dev = Default::default();
    let dir = fixture("gqa2-tied-f32-t4");
    let ps = mixed_prompts();
    let gen = |sampling, batch_size| GenerateConfig {
        max_new_tokens: 24,
        sampling,
        num_return_sequences: 3,
        seed: 11,
        batch_size,
        eos_ids: vec![2],
        ..GenerateConfig::default()
    };
    let greedy = SamplingParams::greedy();
    let batched = run::<Cpu>(&dir, &ps, &gen(greedy, 21), &dev);
    assert_eq!(batched.len(), 21);
    for (i, p) in ps.iter().enumerate() {
        let alone = run::<Cpu>(&dir, std::slice::from_ref(p), &gen(greedy, 1), &dev);
        for (s, a) in alone.iter().enumerate() {
            let b = &batched[i * 3 + s];
            assert_eq!((b.prompt_index, b.sample_index), (i, s));
            assert_eq!(b.ids, a.ids, "greedy, prompt {i} sample {s}");
            assert_eq!(b.finish_reason, a.finish_reason);
            assert!(max_abs_diff(&b.model_logprobs, &a.model_logprobs) < 1e-4);
        }
    }
    let sampling = SamplingParams {
        temperature: 0.9,
        top_k: 50,
        top_p: 0.95,
        min_p: 0.01,
        ..SamplingParams::default()
    };
    let by_size: Vec<Vec<Completion>> = [3, 7, 21]
        .iter()
        .map(|&bs| run::<Cpu>(&dir, &ps, &gen(sampling, bs), &dev))
        .collect();
    for other in &by_size[1..] {
        for (a, b) in by_size[0].iter().zip(other) {
            assert_eq!(
                a.ids, b.ids,
                "prompt {} sample {}",
                a.prompt_index, a.sample_index
            );
            assert!(max_abs_diff(&a.logprobs, &b.logprobs) < 1e-4);
        }
    }
}

/// The log-probs a completion reports equal those of scoring prompt + completion with a full
/// forward pass; at temperature 1 without filters the sampling log-probs are the model's.
#[test]
fn logprobs_match_teacher_forcing() {
    let dev = Default::default();
    for name in FIXTURES {
        let dir = fixture(name);
        let (config, model) = load_model::<Cpu>(&dir, &dev).unwrap();
        let ps = prompts(name);
        let gen = GenerateConfig {
            max_new_tokens: 20,
            num_return_sequences: 2,
            seed: 5,
            ..GenerateConfig::default()
        };
        let out = generate(&model, &config, &ps, &gen, None, &dev).unwrap();
        let rows: Vec<Vec<u32>> = out
            .completions
            .iter()
            .map(|c| [ps[c.prompt_index].clone(), c.ids.clone()].concat())
            .collect();
        let scored = score_rows(&model, &rows, 4, &dev).unwrap();
        for (c, lp) in out.completions.iter().zip(&scored) {
            let tail = &lp[lp.len() - c.ids.len()..];
            assert!(max_abs_diff(tail, &c.model_logprobs) < 1e-4, "{name}");
            assert!(
                max_abs_diff(&c.logprobs, &c.model_logprobs) < 1e-5,
                "{name}"
            );
        }
        assert_eq!(out.stats.generated_tokens, 2 * ps.len() * 20);
    }
}

#[test]
fn seeds_reproduce_and_differ() {
    let dev = Default::default();
    let dir = fixture("mqa-odd-tied-f32-t5");
    let ps = prompts("mqa-odd-tied-f32-t5");
    let gen = |seed| GenerateConfig {
        max_new_tokens: 16,
        num_return_sequences: 4,
        seed,
        ..GenerateConfig::default()
    };
    let ids = |cs: Vec<Completion>| cs.into_iter().map(|c| c.ids).collect::<Vec<_>>();
    let a = ids(run::<Cpu>(&dir, &ps, &gen(1), &dev));
    assert_eq!(a, ids(run::<Cpu>(&dir, &ps, &gen(1), &dev)));
    let b = ids(run::<Cpu>(&dir, &ps, &gen(2), &dev));
    assert_ne!(a, b);
    // the G samples of one prompt differ from each other
    assert!(a[0] != a[1] || a[1] != a[2] || a[2] != a[3]);
}

/// A stop string ends the completion at the token that completes it; the ids are kept up to
/// that token and the text contains the string.
#[test]
fn stop_strings_end_completions() {
    let dev = Default::default();
    let name = TOKENIZER_FIXTURE;
    let dir = fixture(name);
    let tok = Tokenizer::from_model_dir(&dir).unwrap().unwrap();
    let case = text_greedy_case();
    let full = ids(&case["completion_ids"]);
    // a string that first appears in the decode of the first 12 tokens
    let text12 = tok.decode(&full[..12], false).unwrap();
    let text11 = tok.decode(&full[..11], false).unwrap();
    let stop: String = text12[text11.len()..].to_string();
    let stop = if stop.is_empty() || text11.contains(&stop) {
        text12[text12.len().saturating_sub(3)..].to_string()
    } else {
        stop
    };
    let first = (1..=full.len())
        .find(|&n| tok.decode(&full[..n], false).unwrap().contains(&stop))
        .unwrap();
    let gen = GenerateConfig {
        stop: StopStrings::new(vec![stop.clone()], Some(&tok)).unwrap(),
        ..greedy(40, 4, vec![])
    };
    let out = run::<Cpu>(&dir, &[ids(&case["prompt_ids"])], &gen, &dev);
    assert_eq!(out[0].finish_reason, FinishReason::Stop);
    assert_eq!(out[0].ids, full[..first].to_vec());
    assert!(tok.decode(&out[0].ids, false).unwrap().contains(&stop));
}

/// Completions stop below max_position_embeddings (128 in the fixtures) and say so.
#[test]
fn position_limit_truncates() {
    let dev = Default::default();
    let dir = fixture("gqa2-tied-f32-t4");
    let long: Vec<u32> = (0..125).map(|i| (i * 7 % 200) as u32).collect();
    let out = run::<Cpu>(&dir, &[long, vec![5]], &greedy(10, 4, vec![]), &dev);
    assert_eq!(out[0].ids.len(), 3);
    assert!(out[0].truncated());
    assert_eq!(out[1].ids.len(), 10);
    let (config, model) = load_model::<Cpu>(&dir, &dev).unwrap();
    let too_long: Vec<u32> = vec![3; config.max_position_embeddings];
    let e = generate(
        &model,
        &config,
        &[vec![4], too_long],
        &greedy(4, 2, vec![]),
        None,
        &dev,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("prompt 1") && e.contains("max_position_embeddings 128"),
        "{e}"
    );
}

/// χ² critical values at α = 0.001 by degrees of freedom (1..=9).
const CHI2_999: [f64; 9] = [
    10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88,
];

/// Sampling on the device draws from the host sampler's distribution under every filter (χ²
/// at α = 0.001 over 20,000 draws, never a filtered-out token), reports the filtered and the
/// model log-probs of what it drew, and in a whole generation is reproducible, independent of
/// the batch a row is decoded in, and equal to the host under greedy decoding.
fn device_sampling<B: FusedBackend>(device: B::Device) {
    let row: Vec<f32> = vec![2.0, 1.5, 1.5, 0.7, 0.2, -0.3, -1.0, -1.0, -2.5, -4.0];
    let v = row.len();
    let lse = row.iter().map(|&x| (x as f64).exp()).sum::<f64>().ln();
    let n = 2000;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for params in [
        SamplingParams::default(),
        SamplingParams {
            temperature: 0.7,
            ..SamplingParams::default()
        },
        SamplingParams {
            top_k: 3,
            ..SamplingParams::default()
        },
        SamplingParams {
            top_p: 0.8,
            ..SamplingParams::default()
        },
        SamplingParams {
            min_p: 0.2,
            ..SamplingParams::default()
        },
        SamplingParams {
            temperature: 1.3,
            top_k: 6,
            top_p: 0.9,
            min_p: 0.05,
            ..SamplingParams::default()
        },
    ] {
        let dist = filtered_distribution(&row, &params);
        let mut counts = vec![0usize; v];
        for _ in 0..10 {
            let logits: Vec<f32> = row.iter().copied().cycle().take(n * v).collect();
            let logits = Tensor::<B, 2>::from_data(TensorData::new(logits, [n, v]), &device);
            let uniforms = || (0..n).map(|_| rng.random::<f64>()).collect();
            let DeviceDraw::Picks(picks) = sample_on_device(logits, &params, uniforms).unwrap()
            else {
                panic!("no picks");
            };
            for p in picks {
                let t = p.token as usize;
                counts[t] += 1;
                let want = dist.iter().find(|d| d.0 == p.token).map(|d| d.1.ln());
                let want = want.unwrap_or_else(|| panic!("{params:?}: drew filtered-out {t}"));
                assert!((p.logprob as f64 - want).abs() < 1e-4, "{params:?}");
                assert!((p.model_logprob as f64 - (row[t] as f64 - lse)).abs() < 1e-4);
            }
        }
        let total = (10 * n) as f64;
        let chi2: f64 = dist
            .iter()
            .map(|&(t, p)| (counts[t as usize] as f64 - total * p).powi(2) / (total * p))
            .sum();
        let df = dist.len() - 1;
        if df > 0 {
            assert!(
                chi2 < CHI2_999[df - 1],
                "{params:?}: χ² {chi2:.1} at df {df}, {counts:?}"
            );
        }
    }
    // a whole generation
    let dir = fixture("gqa2-tied-f32-t4");
    let ps = mixed_prompts();
    let gen = |sampling, batch_size| GenerateConfig {
        max_new_tokens: 16,
        sampling,
        num_return_sequences: 2,
        seed: 5,
        batch_size,
        eos_ids: vec![2],
        ..GenerateConfig::default()
    };
    let on_device = SamplingParams {
        temperature: 0.9,
        top_k: 50,
        top_p: 0.95,
        sample_on: SampleOn::Device,
        ..SamplingParams::default()
    };
    let whole = run::<B>(&dir, &ps, &gen(on_device, 14), &device);
    assert_eq!(whole, run::<B>(&dir, &ps, &gen(on_device, 14), &device));
    let small = run::<B>(&dir, &ps, &gen(on_device, 2), &device);
    for (a, b) in whole.iter().zip(&small) {
        assert_eq!(
            a.ids, b.ids,
            "prompt {} sample {}",
            a.prompt_index, a.sample_index
        );
    }
    let greedy = |sample_on| SamplingParams {
        sample_on,
        ..SamplingParams::greedy()
    };
    let host = run::<B>(&dir, &ps, &gen(greedy(SampleOn::Host), 14), &device);
    let dev = run::<B>(&dir, &ps, &gen(greedy(SampleOn::Device), 14), &device);
    for (a, b) in host.iter().zip(&dev) {
        assert_eq!(a.ids, b.ids);
    }
}

#[cfg(feature = "flex")]
#[test]
fn device_sampling_flex() {
    device_sampling::<burn::backend::Flex<f32>>(Default::default());
}

#[cfg(feature = "wgpu")]
#[test]
fn device_sampling_wgpu() {
    device_sampling::<burn::backend::Wgpu<f32, i32>>(Default::default());
}

/// Attention over the cache in length buckets (the unfilled slots masked) decodes what exact
/// lengths decode: the same greedy and sampled tokens, log-probs equal to float rounding.
fn bucketed_decode<B: FusedBackend>(device: B::Device) {
    let dir = fixture("gqa2-tied-f32-t4");
    let ps = mixed_prompts();
    let gen = |sampling, kv_buckets| GenerateConfig {
        max_new_tokens: 40,
        sampling,
        num_return_sequences: 2,
        seed: 3,
        batch_size: 14,
        eos_ids: vec![2],
        kv_buckets: Some(kv_buckets),
        ..GenerateConfig::default()
    };
    let sampled = SamplingParams {
        temperature: 0.8,
        sample_on: SampleOn::Host,
        ..SamplingParams::default()
    };
    for sampling in [SamplingParams::greedy(), sampled] {
        let exact = run::<B>(&dir, &ps, &gen(sampling, false), &device);
        let bucketed = run::<B>(&dir, &ps, &gen(sampling, true), &device);
        for (a, b) in exact.iter().zip(&bucketed) {
            assert_eq!(
                a.ids, b.ids,
                "prompt {} sample {}",
                a.prompt_index, a.sample_index
            );
            assert!(max_abs_diff(&a.model_logprobs, &b.model_logprobs) < 1e-4);
        }
    }
}

#[cfg(feature = "flex")]
#[test]
fn bucketed_decode_flex() {
    bucketed_decode::<burn::backend::Flex<f32>>(Default::default());
}

#[cfg(feature = "wgpu")]
#[test]
fn bucketed_decode_wgpu() {
    bucketed_decode::<burn::backend::Wgpu<f32, i32>>(Default::default());
}
