//! The kernels against their compositions (values within 1e-5 relative, gradients within
//! 1e-4) on flex and ndarray: RoPE, SwiGLU, the per-token log-probs, `exp`, the KV-cache write
//! (attention's are in `attention_tests.rs`), and the comparison they share.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::prelude::*;
use rand::{Rng, SeedableRng};

use super::{composed, FusedBackend};

pub(super) type F = Flex<f32>;
pub(super) type N = NdArray<f32>;

/// A tensor of `N(0, std²)` values drawn from its own seeded generator (not the backend's
/// global one, which tests running in parallel would share), so that every run and every
/// backend sees the same numbers.
pub(super) fn normal<B: Backend, const D: usize>(
    dims: [usize; D],
    std: f32,
    seed: u64,
    dev: &B::Device,
) -> Tensor<B, D> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n = dims.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|_| std * rng.sample::<f32, _>(rand_distr::StandardNormal))
        .collect();
    Tensor::from_data(TensorData::new(values, dims), dev)
}

/// Every element within `tol` relative to the reference's magnitude (and `tol` absolute below
/// magnitude 1, where a relative error says little).
pub(super) fn close<B: Backend, const D: usize>(
    got: Tensor<B, D>,
    want: Tensor<B, D>,
    tol: f32,
    what: &str,
) {
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
    let rope = crate::model::rope::Rope {
        theta: 10_000.0,
        llama3: None,
    };
    let t =
        crate::model::rope::RopeTables::<B>::new(pos, &rope.inv_freq(hd), burn::tensor::DType::F32);
    [t.cos, t.sin]
}

fn rope_matches<B: FusedBackend>() {
    let dev = Default::default();
    for (b, s, n, hd) in [(2, 5, 3, 8), (1, 1, 7, 4), (3, 4, 2, 32)] {
        let seed = (b * s * n) as u64;
        let x = normal::<B, 4>([b, s, n, hd], 1.0, seed, &dev);
        let [cos, sin] = rope_tables::<B>(b, s, hd, &dev);
        close(
            B::fused_rope(x.clone(), cos.clone(), sin.clone()),
            composed::rope(x.clone(), cos.clone(), sin.clone()),
            1e-5,
            "rope",
        );
        // gradients of Σ y ⊙ w
        let w = normal::<B, 4>([b, s, n, hd], 1.0, seed + 1, &dev);
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
        let seed = (n * t * v) as u64;
        let logits = normal::<B, 3>([n, t, v], 3.0, seed, &dev);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 1);
        let ids: Vec<i64> = (0..n * t).map(|_| rng.random_range(0..v as i64)).collect();
        let targets = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, t]), &dev);
        let w = normal::<B, 2>([n, t], 1.0, seed + 2, &dev);
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
        let seed = dims.iter().product::<usize>() as u64;
        let (g, u, w) = (
            normal::<B, 3>(dims, 3.0, seed, &dev),
            normal::<B, 3>(dims, 3.0, seed + 1, &dev),
            normal::<B, 3>(dims, 3.0, seed + 2, &dev),
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
    let new = normal::<F, 4>([2, 2, 3, 4], 1.0, 0, &dev).swap_dims(1, 2);
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

/// The few-row linear kernel against `x·w + b` composed (and the many-row fallback), with and
/// without a bias, on a transposed view of `x` as well as a contiguous one. (flex only: ndarray
/// copies what it lends, so it keeps the composition.)
fn linear_matches<B: FusedBackend>() {
    let dev = Default::default();
    for (m, k, n) in [
        (1, 8, 5),
        (16, 128, 512),
        (7, 33, 70),
        (32, 64, 48),
        (40, 16, 24),
    ] {
        let seed = (m * k * n) as u64;
        let x = normal::<B, 2>([m, k], 1.0, seed, &dev);
        let w = normal::<B, 2>([k, n], 1.0, seed + 1, &dev);
        let b = normal::<B, 1>([n], 1.0, seed + 2, &dev);
        let xt = normal::<B, 2>([k, m], 1.0, seed, &dev).transpose(); // strided [m, k]
        for x in [x, xt] {
            for bias in [None, Some(b.clone())] {
                close(
                    B::fused_linear(x.clone(), w.clone(), bias.clone()),
                    composed::linear(x.clone(), w.clone(), bias),
                    1e-5,
                    "linear",
                );
            }
        }
    }
}

#[test]
fn flex_linear_matches_composition() {
    linear_matches::<F>();
}

/// In a decoding scope the linear kernel reads a weight lent in place from its packed copy,
/// packed once, up to 128 rows: the values stay the composition's; a transposed weight (a copy
/// every call) is not packed, and 200 rows go to `gemm`; the copies go when the outermost scope closes.
#[test]
fn flex_linear_packs_weights_in_a_decoding_scope() {
    use super::{decoding, packed_weights};
    let dev = Default::default();
    let (m, k, n) = (8, 40, 70);
    let x = normal::<F, 2>([m, k], 1.0, 1, &dev);
    let w = normal::<F, 2>([k, n], 1.0, 2, &dev);
    let b = normal::<F, 1>([n], 1.0, 3, &dev);
    let wt = normal::<F, 2>([n, k], 1.0, 4, &dev).transpose();
    let want = composed::linear(x.clone(), w.clone(), Some(b.clone()));
    let want_t = composed::linear(x.clone(), wt.clone(), None);
    assert_eq!(packed_weights(), 0);
    decoding(|| {
        for _ in 0..3 {
            let y = F::fused_linear(x.clone(), w.clone(), Some(b.clone()));
            close(y, want.clone(), 1e-5, "packed linear");
        }
        assert_eq!(packed_weights(), 1, "one weight, packed once");
        close(
            F::fused_linear(x.clone(), wt.clone(), None),
            want_t,
            1e-5,
            "transposed",
        );
        for rows in [70, 200] {
            let x = normal::<F, 2>([rows, k], 1.0, 5, &dev);
            let y = F::fused_linear(x.clone(), w.clone(), None);
            close(y, composed::linear(x, w.clone(), None), 1e-5, "many rows");
        }
        assert_eq!(
            packed_weights(),
            1,
            "neither the copy nor the gemm rows packed"
        );
        decoding(|| assert_eq!(packed_weights(), 1, "a nested scope shares"));
        assert_eq!(packed_weights(), 1, "the inner scope left the copies");
    });
    assert_eq!(packed_weights(), 0);
}
