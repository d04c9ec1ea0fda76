//! Reference-model synchronisation (TRL's `sync_ref_model`, from TR-DPO): every
//! `ref_model_sync_steps` steps the frozen reference moves towards the policy,
//! `ref ← α · policy + (1 − α) · ref` with `α = ref_model_mixup_alpha`, so the KL term anchors
//! the policy to a recent version of itself rather than to the start model.

use crate::fused::FusedBackend;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

use crate::model::CausalLm;

/// `reference` moved `alpha` of the way towards `policy` (same architecture; each parameter is
/// taken in visiting order, which is the same for two models of one config). The result keeps
/// the reference's parameter ids and dtypes.
pub fn mix_into_reference<B: FusedBackend>(
    reference: CausalLm<B>,
    policy: &CausalLm<B>,
    alpha: f32,
) -> CausalLm<B> {
    struct Collect<B: Backend>(Vec<Tensor<B, 1>>);
    impl<B: FusedBackend> ModuleVisitor<B> for Collect<B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let t = param.val();
            let n = t.shape().num_elements();
            self.0.push(t.reshape([n]));
        }
    }
    struct Mix<B: Backend> {
        policy: std::vec::IntoIter<Tensor<B, 1>>,
        alpha: f32,
    }
    impl<B: FusedBackend> ModuleMapper<B> for Mix<B> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, r, mapper) = param.consume();
            let Some(p) = self.policy.next() else {
                unreachable!("the policy and the reference have the same parameters")
            };
            let p = p.cast(r.dtype()).reshape(r.shape());
            let mixed = r.mul_scalar(1.0 - self.alpha) + p.mul_scalar(self.alpha);
            Param::from_mapped_value(id, mixed, mapper)
        }
    }
    let mut collect = Collect(Vec::new());
    policy.visit(&mut collect);
    reference.map(&mut Mix {
        policy: collect.0.into_iter(),
        alpha,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{named_tensors, ModelConfig};

    type B = crate::TestBackend;

    /// Every weight of the result is `α·p + (1 − α)·r`, checked entry by entry; α = 1 copies
    /// the policy and α = 0 keeps the reference.
    #[test]
    fn every_weight_is_the_mixup() {
        let config = ModelConfig::new(16, 8, 16, 2, 2, 1, false);
        let dev = Default::default();
        <B as Backend>::seed(&dev, 1);
        let reference = CausalLm::<B>::random(&config, &dev);
        let policy = CausalLm::<B>::random(&config, &dev);
        let (r0, p0) = (
            named_tensors(&reference).unwrap(),
            named_tensors(&policy).unwrap(),
        );
        assert_ne!(r0, p0);
        for alpha in [0.0f32, 0.6, 1.0] {
            let mixed =
                named_tensors(&mix_into_reference(reference.clone(), &policy, alpha)).unwrap();
            assert_eq!(mixed.len(), r0.len());
            for (name, (m, shape)) in &mixed {
                let (r, p) = (&r0[name].0, &p0[name].0);
                assert_eq!(shape, &r0[name].1, "{name}");
                for ((m, r), p) in m.iter().zip(r).zip(p) {
                    let want = alpha * p + (1.0 - alpha) * r;
                    assert!((m - want).abs() < 1e-6, "{name} α {alpha}: {m} vs {want}");
                }
            }
        }
    }
}
