//! Tests of `loss.rs`: every aggregation, clip and KL term worked out by hand.

use super::*;
use burn::backend::Autodiff;

type B = crate::TestBackend;
type AB = Autodiff<B>;

fn t2(rows: [[f32; 3]; 2]) -> Tensor<B, 2> {
    Tensor::from_data(rows, &Default::default())
}

/// Two sequences × three tokens, worked out by hand.
/// - old log-probs 0, so r = exp(logp): seq 1 r = [1, 1.5, 0.5], seq 2 r = [1, 0.5, 2].
/// - A = [+1, −1], ε_low = 0.2, ε_high = 0.28, seq 2's last token masked.
///
/// seq 1 (A = +1): min(r, clip r) = [1, 1.28 (high-clipped), 0.5] → ℓ = [−1, −1.28, −0.5]
/// seq 2 (A = −1): min(−r, −clip r) = [−1, −0.8 (low-clipped), −2] → ℓ = [1, 0.8, (2 masked)]
fn example(beta: f32, with_ref: bool) -> LossInputs<B> {
    let ln = |x: f32| x.ln();
    LossInputs {
        logps: t2([[0.0, ln(1.5), ln(0.5)], [0.0, ln(0.5), ln(2.0)]]),
        old_logps: Some(t2([[0.0; 3]; 2])),
        // ref − logp = ln 2 on seq 1 token 1 and seq 2 token 2, 0 elsewhere:
        // D = 2 − ln 2 − 1 = 0.306853 there, 0 elsewhere
        ref_logps: (with_ref && beta > 0.0).then(|| {
            t2([
                [ln(2.0), ln(1.5), ln(0.5)],
                [0.0, ln(0.5) + ln(2.0), ln(2.0)],
            ])
        }),
        advantages: Tensor::from_data([1.0, -1.0], &Default::default()),
        mask: t2([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]),
        entropy_mask: None,
    }
}

fn params(loss_type: LossType, beta: f32) -> LossParams {
    LossParams {
        epsilon_low: 0.2,
        epsilon_high: 0.28,
        beta,
        loss_type,
        ..LossParams::default()
    }
}

const STEP: StepCounts = StepCounts {
    sequences: 2,
    tokens: 5.0,
    micro_batches: 1,
    max_completion_length: 3,
};

fn value(t: Tensor<B, 1>) -> f32 {
    t.into_scalar()
}

#[test]
fn each_loss_type_by_hand() {
    // Σ mℓ = (−1 − 1.28 − 0.5) + (1 + 0.8) = −0.98 over 5 tokens
    // grpo: ((−2.78 / 3) + (1.8 / 2)) / 2 = (−0.926667 + 0.9) / 2
    for (lt, want) in [
        (LossType::Grpo, (-2.78 / 3.0 + 0.9) / 2.0),
        (LossType::Bnpo, -0.98 / 5.0),
        (LossType::DrGrpo, -0.98 / 6.0),
        (LossType::Dapo, -0.98 / 5.0),
    ] {
        let (loss, sums) = grpo_loss(example(0.0, false), &params(lt, 0.0), &STEP);
        let got = value(loss);
        assert!((got - want).abs() < 1e-6, "{lt:?}: {got} vs {want}");
        let s: Vec<f32> = sums.sums.into_data().to_vec().unwrap();
        let m = LossMetrics::from_sums(&s.try_into().unwrap());
        assert_eq!(m.clip_low, 0.2, "{lt:?}");
        assert_eq!(m.clip_high, 0.2, "{lt:?}");
        assert_eq!(m.clip_region, 0.4, "{lt:?}");
        assert_eq!(m.kl, 0.0);
        assert_eq!(m.tokens, 5.0);
    }
}

#[test]
fn kl_term_by_hand() {
    // D = 1 − ln 2 on two active tokens; β = 0.1 adds 0.1·2·(1 − ln 2) to Σ mℓ
    let d = 1.0 - 2f32.ln();
    for (lt, want) in [
        (LossType::Dapo, (-0.98 + 0.2 * d) / 5.0),
        (
            LossType::Grpo,
            ((-2.78 + 0.1 * d) / 3.0 + (1.8 + 0.1 * d) / 2.0) / 2.0,
        ),
        (LossType::DrGrpo, (-0.98 + 0.2 * d) / 6.0),
    ] {
        let (loss, sums) = grpo_loss(example(0.1, true), &params(lt, 0.1), &STEP);
        let got = value(loss);
        assert!((got - want).abs() < 1e-6, "{lt:?}: {got} vs {want}");
        let s: Vec<f32> = sums.sums.into_data().to_vec().unwrap();
        let kl = LossMetrics::from_sums(&s.try_into().unwrap()).kl;
        assert!((kl - 2.0 * d / 5.0).abs() < 1e-6);
    }
}

#[test]
fn kl_is_exactly_zero_when_policy_equals_reference() {
    let mut x = example(0.5, false);
    x.ref_logps = Some(x.logps.clone());
    let with = value(grpo_loss(x.clone(), &params(LossType::Dapo, 0.5), &STEP).0);
    let (without, sums) = grpo_loss(example(0.0, false), &params(LossType::Dapo, 0.0), &STEP);
    assert_eq!(with, value(without));
    let s: Vec<f32> = sums.sums.into_data().to_vec().unwrap();
    assert_eq!(s[0], 0.0);
}

/// A masked column (seq 2's last token) where log π = −200 and the reference is the
/// placeholder 0 that right-aligned padding leaves there: exp(0 − (−200)) overflows, and
/// before the fix inf · 0 made the loss NaN for every loss type. The loss, its KL metric
/// and its gradient must be finite, and equal to the same batch with a harmless value there.
#[test]
fn a_masked_column_far_below_the_reference_keeps_the_k3_loss_finite() {
    let beta = 0.5;
    let with_logp = |masked_logp: f32| {
        let mut x = example(beta, true);
        let ln = |v: f32| v.ln();
        x.logps = t2([[0.0, ln(1.5), ln(0.5)], [0.0, ln(0.5), masked_logp]]);
        x.ref_logps = Some(t2([
            [ln(2.0), ln(1.5), ln(0.5)],
            [0.0, ln(0.5) + ln(2.0), 0.0],
        ]));
        x
    };
    for lt in [
        LossType::Grpo,
        LossType::Bnpo,
        LossType::DrGrpo,
        LossType::Dapo,
    ] {
        let (far, sums) = grpo_loss(with_logp(-200.0), &params(lt, beta), &STEP);
        let (near, _) = grpo_loss(with_logp(-1.0), &params(lt, beta), &STEP);
        let (far, near) = (value(far), value(near));
        assert!(far.is_finite(), "{lt:?}: loss {far}");
        assert!((far - near).abs() < 1e-6, "{lt:?}: {far} vs {near}");
        let s: Vec<f32> = sums.sums.into_data().to_vec().unwrap();
        assert!(s.iter().all(|v| v.is_finite()), "{lt:?}: sums {s:?}");
    }
    // the gradient through log π is finite too, and zero on the masked column
    let (logps, inputs) = trainable(with_logp(-200.0));
    let (loss, _) = grpo_loss(inputs, &params(LossType::Dapo, beta), &STEP);
    let grads = loss.backward();
    let g: Vec<f32> = logps.grad(&grads).unwrap().into_data().to_vec().unwrap();
    assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
    assert_eq!(g[5], 0.0);
}

/// `x` on the autodiff backend, its log-probs tracked: (those log-probs, the inputs).
fn trainable(x: LossInputs<B>) -> (Tensor<AB, 2>, LossInputs<AB>) {
    let logps = Tensor::<AB, 2>::from_inner(x.logps).require_grad();
    let inputs = LossInputs {
        logps: logps.clone(),
        old_logps: x.old_logps.map(Tensor::from_inner),
        ref_logps: x.ref_logps.map(Tensor::from_inner),
        advantages: Tensor::from_inner(x.advantages),
        mask: Tensor::from_inner(x.mask),
        entropy_mask: x.entropy_mask.map(Tensor::from_inner),
    };
    (logps, inputs)
}

/// Trainable log-probs (2 × 3) and the inputs of a first iteration (no old log-probs).
fn first_iteration(
    advantages: Tensor<AB, 1>,
    mask: Tensor<AB, 2>,
) -> (Tensor<AB, 2>, LossInputs<AB>) {
    let logps = Tensor::<AB, 2>::from_data(
        [[-1.0, -2.0, -0.5], [-0.3, -1.7, -4.0]],
        &Default::default(),
    )
    .require_grad();
    let inputs = LossInputs {
        logps: logps.clone(),
        old_logps: None,
        ref_logps: None,
        advantages,
        mask,
        entropy_mask: None,
    };
    (logps, inputs)
}

#[test]
fn first_iteration_ratio_is_one_and_gradient_is_not_zero() {
    let dev = Default::default();
    let (logps, inputs) = first_iteration(
        Tensor::from_data([1.0, -1.0], &dev),
        Tensor::from_data([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]], &dev),
    );
    let (loss, sums) = grpo_loss(inputs, &params(LossType::Dapo, 0.0), &STEP);
    // r = 1: ℓ = −A per token; Σ = −3 + 2 = −1 over 5 tokens
    assert!((loss.clone().into_scalar() + 0.2).abs() < 1e-7);
    let s: Vec<f32> = sums.sums.into_data().to_vec().unwrap();
    assert_eq!(&s[1..4], &[0.0, 0.0, 0.0], "nothing is clipped at r = 1");
    let grads = loss.backward();
    let g: Vec<f32> = logps.grad(&grads).unwrap().into_data().to_vec().unwrap();
    // ∂/∂logp = −A·m / 5
    assert_eq!(g, vec![-0.2, -0.2, -0.2, 0.2, 0.2, 0.0]);
}

#[test]
fn all_equal_advantages_give_zero_loss_and_zero_gradient() {
    let dev = Default::default();
    let (logps, inputs) = first_iteration(Tensor::zeros([2], &dev), Tensor::ones([2, 3], &dev));
    let (loss, _) = grpo_loss(inputs, &params(LossType::Grpo, 0.0), &STEP);
    let v = loss.clone().into_scalar();
    assert_eq!(v, 0.0);
    let g: Vec<f32> = logps
        .grad(&loss.backward())
        .unwrap()
        .into_data()
        .to_vec()
        .unwrap();
    assert!(g.iter().all(|x| *x == 0.0 && x.is_finite()));
}

/// `example` with every token of sequence 2 counted (its last ratio, 2 on A = −1, is the one
/// two-sided clipping bounds).
fn example_all_counted() -> LossInputs<B> {
    let mut x = example(0.0, false);
    x.mask = t2([[1.0; 3]; 2]);
    x
}

const STEP6: StepCounts = StepCounts {
    sequences: 2,
    tokens: 6.0,
    micro_batches: 1,
    max_completion_length: 3,
};

/// `delta` = 1.5: seq 2's last token (r = 2, A = −1) gives −min(−min(r, δ), −clip r)
/// = −min(−1.5, −1.28) = 1.5 instead of 2. Σℓ = (−1 − 1.28 − 0.5) + (1 + 0.8 + 1.5) = 0.52 over
/// 6 tokens; without δ, 1.02. Seq 1's ratios are all ≤ δ, so it is unchanged.
#[test]
fn two_sided_clipping_by_hand() {
    for (delta, sum) in [(None, 1.02), (Some(1.5), 0.52)] {
        let p = LossParams {
            delta,
            ..params(LossType::Dapo, 0.0)
        };
        let got = value(grpo_loss(example_all_counted(), &p, &STEP6).0);
        assert!((got - sum / 6.0).abs() < 1e-6, "δ {delta:?}: {got}");
    }
}

/// GSPO (`importance_sampling_level = "sequence"`): one ratio per sequence, the geometric mean
/// of its counted tokens' ratios. Seq 1: (1 · 1.5 · 0.5)^(1/3) = 0.75^(1/3) = 0.908560, inside
/// the clip range, A = +1 → ℓ = −0.908560 on each token. Seq 2 (2 counted tokens):
/// (1 · 0.5)^(1/2) = 0.707107 < 0.8 on A = −1 → low-clipped, ℓ = −min(−0.7071, −0.8) = 0.8.
/// `grpo` aggregation: (−0.908560 + 0.8) / 2 = −0.054280. The clip metrics count sequences,
/// as TRL's do for sequence ratios: 1 of 2 low-clipped (counting tokens would say 2 of 5).
#[test]
fn sequence_level_ratios_by_hand() {
    let p = LossParams {
        importance_sampling: ImportanceSampling::Sequence,
        ..params(LossType::Grpo, 0.0)
    };
    let (loss, sums) = grpo_loss(example(0.0, false), &p, &STEP);
    let want = (-(0.75f32.powf(1.0 / 3.0)) + 0.8) / 2.0;
    let got = value(loss);
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    let s: Vec<f32> = sums.sums.into_data().to_vec().unwrap();
    let m = LossMetrics::from_sums(&s.try_into().unwrap());
    assert_eq!((m.clip_low, m.clip_high, m.clip_region), (0.5, 0.0, 0.5));
}

/// CISPO with ε_high = 1.2: ℓ = −sg(min(r, 1.2))·A·log π. Seq 1 (A = +1): weights [1, 1.2, 0.5],
/// log π = [0, ln 1.5, ln 0.5] → ℓ = [0, −1.2 ln 1.5, −0.5 ln 0.5]. Seq 2 (A = −1): weights
/// [1, 0.5], log π = [0, ln 0.5] → ℓ = [0, 0.5 ln 0.5]. Σℓ = −1.2 ln 1.5 over 5 tokens. The
/// weight carries no gradient: ∂L/∂log π = −w·A / 5 on each counted token. One token (r = 1.5
/// > 1.2 on A > 0) had its weight capped.
#[test]
fn cispo_by_hand() {
    let p = LossParams {
        epsilon_high: 1.2,
        ..params(LossType::Cispo, 0.0)
    };
    let (logps, inputs) = trainable(example(0.0, false));
    let (loss, sums) = grpo_loss(inputs, &p, &STEP);
    let want = -1.2 * 1.5f32.ln() / 5.0;
    let got: f32 = loss.clone().into_scalar();
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    let g: Vec<f32> = logps
        .grad(&loss.backward())
        .unwrap()
        .into_data()
        .to_vec()
        .unwrap();
    let want_g = [-1.0, -1.2, -0.5, 1.0, 0.5, 0.0].map(|x: f32| x / 5.0);
    for (a, b) in g.iter().zip(want_g) {
        assert!((a - b).abs() < 1e-6, "{g:?} vs {want_g:?}");
    }
    let s: Vec<f32> = sums.sums.into_data().to_vec().unwrap();
    let m = LossMetrics::from_sums(&s.try_into().unwrap());
    assert_eq!((m.clip_low, m.clip_high), (0.0, 0.2));
}

/// The (1 − q) quantile as `torch.quantile` computes it: active entropies sorted
/// [0.1, 0.3, 0.5, 0.7, 0.9], q = 0.4 → position 0.6 · 4 = 2.4 → 0.5 + 0.4 · 0.2 = 0.58; the
/// tokens at or above it are 0.7 and 0.9 (the masked 5.0 never counts). With that mask the
/// example keeps seq 1's last token (−0.5) and seq 2's second (0.8): Σℓ = 0.3 over the 5
/// counted tokens (the normaliser is the completion mask's, as in TRL).
#[test]
fn top_entropy_quantile_by_hand() {
    let h = [0.1, 0.5, 0.9, 0.3, 0.7, 5.0];
    let m = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0];
    let keep = high_entropy_mask(&h, &m, 0.4);
    assert_eq!(keep, vec![0.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
    assert_eq!(high_entropy_mask(&h, &m, 1.0), m.to_vec());
    assert_eq!(high_entropy_mask(&h, &[0.0; 6], 0.4), vec![0.0; 6]);
    let mut x = example(0.0, false);
    x.entropy_mask = Some(Tensor::from_data(
        TensorData::new(keep, [2, 3]),
        &Default::default(),
    ));
    let got = value(grpo_loss(x, &params(LossType::Dapo, 0.0), &STEP).0);
    assert!((got - 0.3 / 5.0).abs() < 1e-6, "{got}");
}
