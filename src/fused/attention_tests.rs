//! The attention kernel against its composition (values within 1e-5 relative to the f32
//! composition, gradients within 1e-4 of the composition differentiated in f64), on flex and
//! ndarray, over GQA ratios, odd sizes, single queries and left padding.

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::module::attention as burn_attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::DType;

use super::tests::{close, normal, F, N};
use super::{composed, FusedBackend};

/// One attention case: sizes and the left padding of each batch row.
#[derive(Clone, Copy, Debug)]
struct Case {
    batch: usize,
    heads: usize,
    kv_heads: usize,
    q_len: usize,
    k_len: usize,
    head_dim: usize,
}

const CASES: [Case; 7] = [
    // training shapes: q_len = k_len, causal + left padding, GQA 1, 2, 4, 7
    Case {
        batch: 2,
        heads: 3,
        kv_heads: 3,
        q_len: 5,
        k_len: 5,
        head_dim: 8,
    },
    Case {
        batch: 3,
        heads: 4,
        kv_heads: 2,
        q_len: 7,
        k_len: 7,
        head_dim: 6,
    },
    Case {
        batch: 1,
        heads: 8,
        kv_heads: 2,
        q_len: 17,
        k_len: 17,
        head_dim: 32,
    },
    Case {
        batch: 2,
        heads: 7,
        kv_heads: 1,
        q_len: 9,
        k_len: 9,
        head_dim: 10,
    },
    // decoding: one new query over a longer cache; a chunk of 3 queries
    Case {
        batch: 3,
        heads: 4,
        kv_heads: 2,
        q_len: 1,
        k_len: 11,
        head_dim: 12,
    },
    Case {
        batch: 2,
        heads: 6,
        kv_heads: 3,
        q_len: 3,
        k_len: 13,
        head_dim: 9,
    },
    // longer than the forward pass's query block (64): blocks of 64, 64 and 22 queries, rows
    // left-padded by 0, 50 and 100 (see `mask_of`)
    Case {
        batch: 3,
        heads: 4,
        kv_heads: 2,
        q_len: 150,
        k_len: 150,
        head_dim: 8,
    },
];

/// Causal over the last `q_len` positions of `k_len`, and batch row `r` left-padded by `r`
/// positions (`50·r` when `q_len` > 64, so that whole query blocks see no real key; pad keys
/// hidden from every query; a pad query sees itself, as the model's mask keeps every row alive).
fn mask_of<B: Backend>(c: Case, dev: &B::Device) -> Tensor<B, 4, Bool> {
    let mut m = Vec::new();
    let step = if c.q_len > 64 { 50 } else { 1 };
    for r in 0..c.batch {
        let pad = (step * r).min(c.k_len - 1);
        for i in 0..c.q_len {
            let pos = c.k_len - c.q_len + i;
            for j in 0..c.k_len {
                let visible = j <= pos && (j >= pad || j == pos);
                m.push(!visible);
            }
        }
    }
    Tensor::from_data(TensorData::new(m, [c.batch, 1, c.q_len, c.k_len]), dev)
}

fn inputs<B: Backend>(c: Case, seed: u64, dev: &B::Device) -> [Tensor<B, 4>; 3] {
    let kv = [c.batch, c.kv_heads, c.k_len, c.head_dim];
    [
        normal([c.batch, c.heads, c.q_len, c.head_dim], 1.0, 3 * seed, dev),
        normal(kv, 1.0, 3 * seed + 1, dev),
        normal(kv, 1.0, 3 * seed + 2, dev),
    ]
}

fn forward_matches<B: FusedBackend>() {
    let dev = Default::default();
    assert!(B::has_attention_kernel(DType::F32));
    for (s, c) in CASES.iter().enumerate() {
        let [q, k, v] = inputs::<B>(*c, s as u64, &dev);
        let mask = mask_of::<B>(*c, &dev);
        let (out, lse) = B::fused_attention_lse(q.clone(), k.clone(), v.clone(), mask.clone());
        let (want, want_lse) =
            composed::attention_lse(q.clone(), k.clone(), v.clone(), mask.clone());
        close(out, want.clone(), 1e-5, "out");
        close(lse, want_lse, 1e-5, "lse");
        close(B::fused_attention(q, k, v, mask), want, 1e-5, "attention");
    }
}

#[test]
fn flex_attention_matches_composition() {
    forward_matches::<F>();
}

#[test]
fn ndarray_attention_matches_composition() {
    forward_matches::<N>();
}

/// Gradients of `Σ out ⊙ w` (a random `w`, so that every output element matters) through the
/// kernel's backward against autodiff through the composition computed in f64. (The f32
/// composition is not the reference: differentiated through Burn's ndarray backend it is off
/// by up to 1e-3 relative on the GQA cases, where the kernel and flex agree with f64 to 2e-6.)
fn gradients_match<B: FusedBackend>() {
    let dev = Default::default();
    assert!(B::has_attention_kernel(DType::F32));
    for (s, c) in CASES.iter().enumerate() {
        let [q, k, v] = inputs::<B>(*c, 100 + s as u64, &dev);
        let w = inputs::<B>(*c, 200 + s as u64, &dev)[0].clone();
        let mask = mask_of::<B>(*c, &dev);
        let grads = |fused: bool| {
            let dtype = if fused { DType::F32 } else { DType::F64 };
            let track = |t: &Tensor<B, 4>| {
                Tensor::<Autodiff<B>, 4>::from_inner(t.clone().cast(dtype)).require_grad()
            };
            let (q, k, v) = (track(&q), track(&k), track(&v));
            let m = Tensor::<Autodiff<B>, 4, Bool>::from_inner(mask.clone());
            let out = if fused {
                <Autodiff<B> as FusedBackend>::fused_attention(q.clone(), k.clone(), v.clone(), m)
            } else {
                composed::attention(q.clone(), k.clone(), v.clone(), m)
            };
            let g = (out * Tensor::from_inner(w.clone().cast(dtype)))
                .sum()
                .backward();
            [q, k, v].map(|t| {
                let grad = t.grad(&g).expect("a gradient for every input");
                assert_eq!(grad.dtype(), dtype);
                grad.cast(DType::F32)
            })
        };
        let (got, want) = (grads(true), grads(false));
        for ((g, w), name) in got.into_iter().zip(want).zip(["dq", "dk", "dv"]) {
            close(g, w, 1e-4, name);
        }
    }
}

#[test]
fn flex_attention_gradients_match_composition() {
    gradients_match::<F>();
}

#[test]
fn ndarray_attention_gradients_match_composition() {
    gradients_match::<N>();
}

/// The kernel reads transposed views (what the model hands it) as well as contiguous tensors.
#[test]
fn strided_inputs() {
    let dev = Default::default();
    let c = CASES[2];
    let [q, k, v] = inputs::<F>(c, 7, &dev);
    let mask = mask_of::<F>(c, &dev);
    // the same tensors, stored [b, s, h, hd] and viewed [b, h, s, hd]
    let t = |x: Tensor<F, 4>| x.swap_dims(1, 2).into_data();
    let back = |d: TensorData| Tensor::<F, 4>::from_data(d, &dev).swap_dims(1, 2);
    let (qs, ks, vs) = (back(t(q.clone())), back(t(k.clone())), back(t(v.clone())));
    close(
        F::fused_attention(qs, ks, vs, mask.clone()),
        composed::attention(q, k, v, mask),
        1e-5,
        "strided",
    );
}

/// GQA through the kernel equals transformers' `repeat_kv` (each K/V head copied `n_rep`
/// times) through Burn's plain attention.
#[test]
fn gqa_equals_repeated_kv_heads() {
    let dev = Default::default();
    let c = CASES[1];
    let [q, k, v] = inputs::<F>(c, 3, &dev);
    let mask = mask_of::<F>(c, &dev);
    let n_rep = c.heads / c.kv_heads;
    let rep = |x: Tensor<F, 4>| {
        x.unsqueeze_dim::<5>(2)
            .repeat_dim(2, n_rep)
            .reshape([c.batch, c.heads, c.k_len, c.head_dim])
    };
    let want = burn_attention(
        q.clone(),
        rep(k.clone()),
        rep(v.clone()),
        Some(mask.clone().expand([c.batch, c.heads, c.q_len, c.k_len])),
        None,
        AttentionModuleOptions::default(),
    );
    close(
        F::fused_attention(q.clone(), k.clone(), v.clone(), mask.clone()),
        want.clone(),
        1e-5,
        "kernel",
    );
    close(composed::attention(q, k, v, mask), want, 1e-5, "composed");
}

/// By hand: one query, two keys with equal scores and values 0 and 1; key 1 masked → 0, and a
/// row with every key masked gives 0 (the composition would give NaN).
#[test]
fn masks_by_hand() {
    let dev = Default::default();
    assert!(!composed::bool_mask_is_inverted::<F>(&dev));
    let q = Tensor::<F, 4>::zeros([1, 1, 1, 2], &dev);
    let v = Tensor::<F, 4>::from_data([[[[0.0, 0.0], [1.0, 1.0]]]], &dev);
    let mask = Tensor::<F, 4, Bool>::from_data([[[[false, true]]]], &dev);
    let out: Vec<f32> = F::fused_attention(q.clone(), v.clone() * 0.0, v.clone(), mask)
        .into_data()
        .to_vec()
        .unwrap();
    assert_eq!(out, vec![0.0, 0.0]);
    let none = Tensor::<F, 4, Bool>::from_data([[[[false, false]]]], &dev);
    let out: Vec<f32> = F::fused_attention(q.clone(), v.clone() * 0.0, v.clone(), none)
        .into_data()
        .to_vec()
        .unwrap();
    assert_eq!(out, vec![0.5, 0.5]);
    let all = Tensor::<F, 4, Bool>::from_data([[[[true, true]]]], &dev);
    let out: Vec<f32> = F::fused_attention(q, v.clone() * 0.0, v, all)
        .into_data()
        .to_vec()
        .unwrap();
    assert_eq!(out, vec![0.0, 0.0]);
}

#[test]
fn key_span_covers_every_unmasked_key() {
    use super::attention_kernel::key_span;
    // rows over 4 keys (1 = masked): keys 1..4 are seen by one row or the other
    assert_eq!(key_span(&[1, 0, 0, 1, 1, 1, 0, 0], 4), (1, 4));
    // a fully masked row adds nothing; a block of them sees no key at all
    assert_eq!(key_span(&[1, 1, 1, 1, 1, 0, 1, 1], 4), (1, 2));
    assert_eq!(key_span(&[1, 1, 1, 1], 4), (0, 0));
    // an unmasked key between masked ones still counts at the ends only
    assert_eq!(key_span(&[0, 1, 1, 0], 4), (0, 4));
}
