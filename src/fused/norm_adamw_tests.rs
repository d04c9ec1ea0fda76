//! RMSNorm's and AdamW's kernels against their compositions on flex and ndarray: values within
//! 1e-5 relative, gradients within 1e-4; a shared parameter buffer is left as it was.

use burn::backend::Autodiff;
use burn::prelude::*;

use super::tests::{close, normal, F, N};
use super::{composed, AdamWStep, FusedBackend};

/// RMSNorm against its composition: values, and the gradients of `Σ y ⊙ r` through the kernel's
/// backward and through the explicit composed backward, against autodiff of the composition.
fn rms_norm_matches<B: FusedBackend>() {
    let dev = Default::default();
    assert!(B::has_rms_norm_kernel(burn::tensor::DType::F32));
    for (n, h) in [(1, 1), (3, 5), (70, 256), (5, 1000)] {
        let seed = (n * h) as u64;
        let (x, w, r) = (
            normal::<B, 2>([n, h], 2.0, seed, &dev),
            normal::<B, 1>([h], 1.0, seed + 1, &dev),
            normal::<B, 2>([n, h], 1.0, seed + 2, &dev),
        );
        close(
            B::fused_rms_norm(x.clone(), w.clone(), 1e-6),
            composed::rms_norm(x.clone(), w.clone(), 1e-6),
            1e-5,
            "rms_norm",
        );
        // through the fused node under autodiff
        let xa = Tensor::<Autodiff<B>, 2>::from_inner(x.clone()).require_grad();
        let wa = Tensor::<Autodiff<B>, 1>::from_inner(w.clone()).require_grad();
        let y = <Autodiff<B> as FusedBackend>::fused_rms_norm(xa.clone(), wa.clone(), 1e-6);
        let g = (y * Tensor::from_inner(r.clone())).sum().backward();
        let (dx, dw) = (xa.grad(&g).expect("dx"), wa.grad(&g).expect("dw"));
        // the reference: autodiff of the composition on flex (on ndarray, the broadcast
        // division's backward rounds ~2e-4 relative away from IEEE division, in the
        // composition, not in the kernel)
        let flex = Default::default();
        let fx = Tensor::<Autodiff<F>, 2>::from_data(x.clone().into_data(), &flex).require_grad();
        let fw = Tensor::<Autodiff<F>, 1>::from_data(w.clone().into_data(), &flex).require_grad();
        let fr = Tensor::<Autodiff<F>, 2>::from_data(r.clone().into_data(), &flex);
        let g = (composed::rms_norm(fx.clone(), fw.clone(), 1e-6) * fr)
            .sum()
            .backward();
        let want_dx = Tensor::<B, 2>::from_data(fx.grad(&g).expect("dx").into_data(), &dev);
        let want_dw = Tensor::<B, 1>::from_data(fw.grad(&g).expect("dw").into_data(), &dev);
        close(dx, want_dx.clone(), 1e-4, "dx");
        close(dw, want_dw.clone(), 1e-4, "dw");
        // the explicit backward composed, on this backend
        let (cx, cw) = composed::rms_norm_backward(x.clone(), w.clone(), r.clone(), 1e-6);
        close(cx, want_dx, 1e-4, "composed dx");
        close(cw, want_dw, 1e-4, "composed dw");
    }
}

#[test]
fn flex_rms_norm_matches_composition() {
    rms_norm_matches::<F>();
}

#[test]
fn ndarray_rms_norm_matches_composition() {
    rms_norm_matches::<N>();
}

/// Three AdamW steps through the kernel against Burn's arithmetic composed, with decay and a
/// clip factor, on sizes around the parallel chunk; a parameter buffer that another tensor
/// shares keeps its values.
fn adamw_matches<B: FusedBackend>() {
    let dev = Default::default();
    for n in [1, 37, (1 << 14) + 3, 50_000] {
        let seed = n as u64;
        let p0 = normal::<B, 1>([n], 1.0, seed, &dev);
        let kept = p0.clone(); // shares p0's buffer: the kernel must copy rather than write it
        let zeros = || Tensor::<B, 1>::zeros([n], &dev);
        let (mut fused, mut reference) = ((p0.clone(), zeros(), zeros()), (p0, zeros(), zeros()));
        for t in 1..=3 {
            let g = normal::<B, 1>([n], 0.5, seed + t as u64, &dev);
            let s = AdamWStep {
                lr: 1e-2,
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
                decay: 1.0 - 1e-3,
                time: t,
                grad_scale: if t == 2 { 0.25 } else { 1.0 },
            };
            let (p, m, v) = fused;
            fused = B::fused_adamw(p, g.clone(), m, v, &s);
            let (p, m, v) = reference;
            reference = composed::adamw(p, g, m, v, &s);
        }
        close(fused.0, reference.0, 1e-5, "parameter");
        close(fused.1, reference.1, 1e-5, "first moment");
        close(fused.2, reference.2, 1e-5, "second moment");
        close(
            kept,
            normal::<B, 1>([n], 1.0, seed, &dev),
            0.0,
            "the shared buffer",
        );
        let x = normal::<B, 1>([n], 3.0, seed, &dev);
        close(
            B::fused_sum_squares(x.clone()),
            composed::sum_squares(x),
            1e-5,
            "sum of squares",
        );
    }
}

#[test]
fn flex_adamw_matches_composition() {
    adamw_matches::<F>();
}

#[test]
fn ndarray_adamw_matches_composition() {
    adamw_matches::<N>();
}
