//! The kernels against their compositions (values within 1e-5 relative, gradients within
//! 1e-4), on flex and ndarray, over GQA ratios, odd sizes, single queries and left padding.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::prelude::*;
use burn::tensor::module::attention as burn_attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::Distribution;

use super::{composed, FusedBackend};

type F = Flex<f32>;
type N = NdArray<f32>;

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

const CASES: [Case; 6] = [
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
];

/// Causal over the last `q_len` positions of `k_len`, and batch row `r` left-padded by `r`
/// positions (pad keys hidden from every query; a pad query sees itself, as the model's mask
/// keeps every row alive).
fn mask_of<B: Backend>(c: Case, dev: &B::Device) -> Tensor<B, 4, Bool> {
    let mut m = Vec::new();
    for r in 0..c.batch {
        let pad = r.min(c.k_len - 1);
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
    B::seed(dev, seed);
    let n = Distribution::Normal(0.0, 1.0);
    [
        Tensor::random([c.batch, c.heads, c.q_len, c.head_dim], n, dev),
        Tensor::random([c.batch, c.kv_heads, c.k_len, c.head_dim], n, dev),
        Tensor::random([c.batch, c.kv_heads, c.k_len, c.head_dim], n, dev),
    ]
}

/// Every element within `tol` relative to the reference's magnitude (and `tol` absolute below
/// magnitude 1, where a relative error says little).
fn close<B: Backend, const D: usize>(got: Tensor<B, D>, want: Tensor<B, D>, tol: f32, what: &str) {
    assert_eq!(got.dims(), want.dims(), "{what}: shapes");
    let got: Vec<f32> = got.into_data().convert::<f32>().to_vec().unwrap();
    let want: Vec<f32> = want.into_data().convert::<f32>().to_vec().unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what}[{i}]: {g} against {w}"
        );
    }
}

fn forward_matches<B: FusedBackend>() {
    let dev = Default::default();
    assert!(B::has_attention_kernel(burn::tensor::DType::F32));
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
/// kernel's backward against autodiff through the composition.
fn gradients_match<B: FusedBackend>() {
    let dev = Default::default();
    for (s, c) in CASES.iter().enumerate() {
        let [q, k, v] = inputs::<B>(*c, 100 + s as u64, &dev);
        let w = inputs::<B>(*c, 200 + s as u64, &dev)[0].clone();
        let mask = mask_of::<B>(*c, &dev);
        let grads = |fused: bool| {
            let track =
                |t: &Tensor<B, 4>| Tensor::<Autodiff<B>, 4>::from_inner(t.clone()).require_grad();
            let (q, k, v) = (track(&q), track(&k), track(&v));
            let m = Tensor::<Autodiff<B>, 4, Bool>::from_inner(mask.clone());
            let out = if fused {
                <Autodiff<B> as FusedBackend>::fused_attention(q.clone(), k.clone(), v.clone(), m)
            } else {
                composed::attention(q.clone(), k.clone(), v.clone(), m)
            };
            let g = (out * Tensor::from_inner(w.clone())).sum().backward();
            [q, k, v].map(|t| t.grad(&g).expect("a gradient for every input"))
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

fn rope_tables<B: FusedBackend>(
    b: usize,
    s: usize,
    hd: usize,
    dev: &B::Device,
) -> [Tensor<B, 4>; 2] {
    let pos = Tensor::<B, 2, Int>::from_data(
        TensorData::new((0..(b * s) as i64).map(|p| p % 13).collect(), [b, s]),
        dev,
    );
    let t = crate::model::rope::RopeTables::<B>::new(pos, hd, 10_000.0, burn::tensor::DType::F32);
    [t.cos, t.sin]
}

fn rope_matches<B: FusedBackend>() {
    let dev = Default::default();
    for (b, s, n, hd) in [(2, 5, 3, 8), (1, 1, 7, 4), (3, 4, 2, 32)] {
        B::seed(&dev, (b * s * n) as u64);
        let x = Tensor::<B, 4>::random([b, s, n, hd], Distribution::Normal(0.0, 1.0), &dev);
        let [cos, sin] = rope_tables::<B>(b, s, hd, &dev);
        close(
            B::fused_rope(x.clone(), cos.clone(), sin.clone()),
            composed::rope(x.clone(), cos.clone(), sin.clone()),
            1e-5,
            "rope",
        );
        // gradients of Σ y ⊙ w
        let w = Tensor::<B, 4>::random([b, s, n, hd], Distribution::Normal(0.0, 1.0), &dev);
        let grad = |fused: bool| {
            let xa = Tensor::<Autodiff<B>, 4>::from_inner(x.clone()).require_grad();
            let (c, sn) = (
                Tensor::from_inner(cos.clone()),
                Tensor::from_inner(sin.clone()),
            );
            let y = if fused {
                <Autodiff<B> as FusedBackend>::fused_rope(xa.clone(), c, sn)
            } else {
                composed::rope(xa.clone(), c, sn)
            };
            let g = (y * Tensor::from_inner(w.clone())).sum().backward();
            xa.grad(&g).expect("a gradient for x")
        };
        close(grad(true), grad(false), 1e-4, "rope grad");
    }
}

#[test]
fn flex_rope_matches_composition() {
    rope_matches::<F>();
}

#[test]
fn ndarray_rope_matches_composition() {
    rope_matches::<N>();
}

/// Uniform over 4: entropy ln 4, log-prob −ln 4; a near-one-hot row: entropy ≈ 0, log-prob of
/// the peak ≈ 0 and of another token ≈ −100 (its exp underflows; the log-prob must not).
fn token_logprobs_by_hand<B: FusedBackend>() {
    let dev = Default::default();
    let l = Tensor::<B, 3>::from_data(
        [[
            [0.0, 0.0, 0.0, 0.0],
            [100.0, 0.0, 0.0, 0.0],
            [100.0, 0.0, 0.0, 0.0],
        ]],
        &dev,
    );
    let targets = Tensor::<B, 2, Int>::from_data([[1, 0, 3]], &dev);
    for out in [
        B::fused_token_logprobs(l.clone(), targets.clone(), true),
        composed::token_logprobs(l, targets, true),
    ] {
        let h: Vec<f32> = out
            .entropy
            .expect("asked for")
            .into_data()
            .to_vec()
            .unwrap();
        let lp: Vec<f32> = out.logprobs.into_data().to_vec().unwrap();
        assert!(
            (h[0] - 4f32.ln()).abs() < 1e-6 && h[1].abs() < 1e-6,
            "{h:?}"
        );
        assert!(
            (lp[0] + 4f32.ln()).abs() < 1e-6 && lp[1].abs() < 1e-6,
            "{lp:?}"
        );
        assert!((lp[2] + 100.0).abs() < 1e-4, "{lp:?}");
    }
}

#[test]
fn flex_token_logprobs_by_hand() {
    token_logprobs_by_hand::<F>();
}

#[test]
fn ndarray_token_logprobs_by_hand() {
    token_logprobs_by_hand::<N>();
}

/// Random logits (odd vocabularies, a scale that spreads the softmax), against the
/// composition: values, and gradients of `Σ logprob ⊙ w` through autodiff.
fn token_logprobs_match<B: FusedBackend>() {
    let dev = Default::default();
    assert!(B::has_logprob_kernel(burn::tensor::DType::F32));
    for (n, t, v) in [(2, 3, 5), (3, 7, 61), (1, 1, 4096), (4, 9, 1003)] {
        B::seed(&dev, (n * t * v) as u64);
        let logits = Tensor::<B, 3>::random([n, t, v], Distribution::Normal(0.0, 3.0), &dev);
        let targets =
            Tensor::<B, 2, Int>::random([n, t], Distribution::Uniform(0.0, v as f64), &dev);
        let w = Tensor::<B, 2>::random([n, t], Distribution::Normal(0.0, 1.0), &dev);
        let got = B::fused_token_logprobs(logits.clone(), targets.clone(), true);
        let want = composed::token_logprobs(logits.clone(), targets.clone(), true);
        close(got.logprobs, want.logprobs, 1e-5, "logprobs");
        close(got.lse, want.lse, 1e-5, "lse");
        close(got.entropy.unwrap(), want.entropy.unwrap(), 1e-5, "entropy");
        let grad = |fused: bool| {
            let x = Tensor::<Autodiff<B>, 3>::from_inner(logits.clone()).require_grad();
            let ids = Tensor::<Autodiff<B>, 2, Int>::from_inner(targets.clone());
            let lp = if fused {
                <Autodiff<B> as FusedBackend>::fused_token_logprobs(x.clone(), ids, false)
            } else {
                composed::token_logprobs(x.clone(), ids, false)
            };
            let g = (lp.logprobs * Tensor::from_inner(w.clone()))
                .sum()
                .backward();
            x.grad(&g).expect("a gradient for the logits")
        };
        close(grad(true), grad(false), 1e-4, "dlogits");
        // the composed backward (what a backend without the kernel would run) agrees too
        let lse = composed::token_logprobs(logits.clone(), targets.clone(), false).lse;
        let reference = grad(false);
        close(
            composed::token_logprobs_backward(logits.clone(), targets.clone(), lse, w.clone()),
            reference,
            1e-4,
            "composed dlogits",
        );
    }
}

#[test]
fn flex_token_logprobs_match_composition() {
    token_logprobs_match::<F>();
}

#[test]
fn ndarray_token_logprobs_match_composition() {
    token_logprobs_match::<N>();
}

/// The vectorisable `exp` against libm's over the range the kernels feed it.
#[test]
fn exp_matches_libm() {
    let (mut worst, mut at) = (0.0f32, 0.0f32);
    for i in 0..=200_000 {
        let x = -110.0 + i as f32 * (198.0 / 200_000.0);
        let (got, want) = (super::kernels::exp(x), x.exp());
        if want >= f32::MIN_POSITIVE {
            let e = ((got - want) / want).abs();
            if e > worst {
                (worst, at) = (e, x);
            }
        } else {
            // subnormal (fewer significant bits): within 1e-5 relative or four of the smallest
            // steps, and zero exactly where libm's is
            let tol = (1e-5 * want).max(4.0 * 1.4e-45);
            assert!((got - want).abs() <= tol, "exp({x}) = {got}, libm {want}");
            assert_eq!(got == 0.0, want == 0.0, "exp({x}) = {got}, libm {want}");
        }
    }
    assert!(worst < 4e-7, "worst relative error {worst} at {at}");
    assert_eq!(super::kernels::exp(f32::NEG_INFINITY), 0.0);
    assert!(super::kernels::exp(f32::NAN).is_nan());
}

/// SwiGLU against its composition: values, gradients of `Σ y ⊙ w` through the kernel's backward
/// and through autodiff, and the composed backward against autodiff.
fn swiglu_matches<B: FusedBackend>() {
    let dev = Default::default();
    assert!(B::has_swiglu_kernel(burn::tensor::DType::F32));
    for dims in [[2, 3, 5], [1, 7, 704], [3, 1, 20_000]] {
        B::seed(&dev, dims.iter().product::<usize>() as u64);
        let n = Distribution::Normal(0.0, 3.0);
        let (g, u, w) = (
            Tensor::<B, 3>::random(dims, n, &dev),
            Tensor::<B, 3>::random(dims, n, &dev),
            Tensor::<B, 3>::random(dims, n, &dev),
        );
        close(
            B::fused_swiglu(g.clone(), u.clone()),
            composed::swiglu(g.clone(), u.clone()),
            1e-5,
            "swiglu",
        );
        let grads = |fused: bool| {
            let ga = Tensor::<Autodiff<B>, 3>::from_inner(g.clone()).require_grad();
            let ua = Tensor::<Autodiff<B>, 3>::from_inner(u.clone()).require_grad();
            let y = if fused {
                <Autodiff<B> as FusedBackend>::fused_swiglu(ga.clone(), ua.clone())
            } else {
                composed::swiglu(ga.clone(), ua.clone())
            };
            let gr = (y * Tensor::from_inner(w.clone())).sum().backward();
            [ga.grad(&gr).expect("d gate"), ua.grad(&gr).expect("d up")]
        };
        let (got, want) = (grads(true), grads(false));
        let (cg, cu) = composed::swiglu_backward(g.clone(), u.clone(), w.clone());
        for ((got, want), name) in got.into_iter().zip(want.clone()).zip(["d gate", "d up"]) {
            close(got, want, 1e-4, name);
        }
        let [wg, wu] = want;
        close(cg, wg, 1e-4, "composed d gate");
        close(cu, wu, 1e-4, "composed d up");
    }
}

#[test]
fn flex_swiglu_matches_composition() {
    swiglu_matches::<F>();
}

#[test]
fn ndarray_swiglu_matches_composition() {
    swiglu_matches::<N>();
}

/// The KV-cache write: in place into a buffer nobody else holds, and into a copy when the buffer
/// is shared (the other holder keeps its values); the strided new rows land where
/// `slice_assign` puts them.
#[test]
fn cache_write_in_place_and_shared() {
    let dev = Default::default();
    let buf = Tensor::<F, 4>::zeros([2, 3, 5, 4], &dev);
    // new keys stored [b, s, kvh, hd] and viewed [b, kvh, s, hd], as attention hands them over
    let new =
        Tensor::<F, 4>::random([2, 2, 3, 4], Distribution::Normal(0.0, 1.0), &dev).swap_dims(1, 2);
    let want = buf
        .clone()
        .slice_assign([0..2, 0..3, 1..3, 0..4], new.clone());
    let kept = buf.clone(); // shared: the write must not touch `kept`
    close(
        F::fused_cache_write(buf, 1, new.clone()),
        want.clone(),
        0.0,
        "shared",
    );
    assert_eq!(kept.abs().sum().into_scalar(), 0.0);
    let unique = Tensor::<F, 4>::zeros([2, 3, 5, 4], &dev);
    close(F::fused_cache_write(unique, 1, new), want, 0.0, "unique");
}
