//! How the devices of a data-parallel run sum their gradients and statistics.
//!
//! - **Collective** (every backend): Burn's `collective` all-reduce. Within one process it sums
//!   the devices' tensors with its own tree of copies; across processes (`num_nodes > 1`,
//!   [`super::nodes`]) it goes on to a ring over the nodes through burn-collective's global
//!   orchestrator.
//! - **Native** (one process, a backend that registered one at the edge): the device library's
//!   own all-reduce — NCCL on `cuda`, through Burn's `distributed` feature
//!   (`DistributedBackend::all_reduce`). `cli/mod.rs` registers it for the CUDA backend with
//!   [`register_native_all_reduce`]; the generic code never names a backend.
//!
//! The gradients are summed in **module order** (the order a [`ModuleVisitor`] walks the
//! parameters), flattened into buckets of at most [`BUCKET_ELEMENTS`] values, one all-reduce
//! per bucket: the order is the same in every process (parameter ids are random per process,
//! so sorting by id, as `GradientsParams::all_reduce` does, pairs different tensors across
//! nodes), and a step makes a handful of all-reduces instead of one per parameter.

use crate::fused::{FusedAutodiffBackend, FusedBackend};
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use burn::collective::{self, PeerId, ReduceOperation};
use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::{DeviceId, DeviceOps};
use burn::tensor::ops::FloatTensor;
use burn::tensor::TensorPrimitive;

use crate::error::{Error, Result};

/// Values per all-reduce bucket (256 MiB of f32): large enough for a few all-reduces per
/// step, small enough that the flattened copy stays a fraction of a large model's gradients.
pub const BUCKET_ELEMENTS: usize = 1 << 26;

/// A device library's all-reduce (sum) of one tensor over the devices `ids`, called by every
/// device's thread with its own tensor; returns the sum, ready to use.
pub type NativeAllReduce<B> = fn(FloatTensor<B>, Vec<DeviceId>) -> FloatTensor<B>;

type Registry = HashMap<TypeId, Box<dyn Any + Send + Sync>>;

fn registry() -> &'static Mutex<Registry> {
    static NATIVE: OnceLock<Mutex<Registry>> = OnceLock::new();
    NATIVE.get_or_init(Default::default)
}

/// Use `f` instead of the collective all-reduce for backend `B` when all the devices are in
/// one process (called at the edge, where the backend is named).
#[cfg_attr(not(feature = "nccl"), allow(dead_code))]
pub fn register_native_all_reduce<B: FusedBackend>(f: NativeAllReduce<B>) {
    if let Ok(mut map) = registry().lock() {
        map.insert(TypeId::of::<B>(), Box::new(f));
    }
}

/// The all-reduce registered for `B`, if any.
pub fn native_all_reduce<B: FusedBackend>() -> Option<NativeAllReduce<B>> {
    let map = registry().lock().ok()?;
    map.get(&TypeId::of::<B>())
        .and_then(|f| f.downcast_ref::<NativeAllReduce<B>>())
        .copied()
}

/// One device's end of the sums: its peer id, and the native all-reduce with every device's
/// id when there is one.
#[derive(Clone)]
pub struct Reducer<B: Backend> {
    pub peer: PeerId,
    pub native: Option<(NativeAllReduce<B>, Vec<DeviceId>)>,
}

impl<B: FusedBackend> Reducer<B> {
    /// The element-wise sum of `t` over every device (and node).
    pub fn sum(&self, t: Tensor<B, 1>, what: &str) -> Result<Tensor<B, 1>> {
        let prim = t.into_primitive().tensor();
        let out = match &self.native {
            Some((f, ids)) => f(prim, ids.clone()),
            None => collective::all_reduce::<B>(self.peer, prim, ReduceOperation::Sum)
                .map_err(|e| Error::Backend(format!("data parallelism: {what}: {e:?}")))?,
        };
        Ok(Tensor::from_primitive(TensorPrimitive::Float(out)))
    }
}

/// The ids of `devices`, in the order the native all-reduce expects.
pub fn device_ids<D: DeviceOps>(devices: &[D]) -> Vec<DeviceId> {
    devices.iter().map(|d| d.id()).collect()
}

/// `grads` summed over every device: each trainable parameter of `model` in module order (a
/// zero gradient for one this device has none for — a device that ran no micro-batch — so
/// every device sums the same tensors), flattened into buckets, one sum per bucket.
pub fn sum_gradients<B: FusedAutodiffBackend>(
    model: &impl AutodiffModule<B>,
    grads: GradientsParams,
    reducer: &Reducer<B::InnerBackend>,
    device: &B::Device,
) -> Result<GradientsParams> {
    struct Take<'a, B: FusedAutodiffBackend> {
        grads: GradientsParams,
        flat: Vec<Tensor<B::InnerBackend, 1>>,
        device: &'a B::Device,
    }
    impl<B: FusedAutodiffBackend> ModuleVisitor<B> for Take<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if !param.is_require_grad() {
                return;
            }
            let g = self
                .grads
                .remove::<B::InnerBackend, D>(param.id)
                .unwrap_or_else(|| Tensor::zeros(param.shape(), self.device));
            self.flat.push(g.reshape([-1]));
        }
    }
    struct Put<B: FusedAutodiffBackend> {
        grads: GradientsParams,
        summed: std::vec::IntoIter<Tensor<B::InnerBackend, 1>>,
    }
    impl<B: FusedAutodiffBackend> ModuleVisitor<B> for Put<B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if !param.is_require_grad() {
                return;
            }
            if let Some(g) = self.summed.next() {
                let g: Tensor<B::InnerBackend, D> = g.reshape(param.shape());
                self.grads.register(param.id, g);
            }
        }
    }
    let mut take = Take::<B> {
        grads,
        flat: Vec::new(),
        device,
    };
    model.visit(&mut take);
    let sizes: Vec<usize> = take.flat.iter().map(|t| t.dims()[0]).collect();
    let mut summed = Vec::with_capacity(sizes.len());
    let mut rest = take.flat.into_iter();
    for bucket in buckets(&sizes, BUCKET_ELEMENTS) {
        let mut parts: Vec<_> = rest.by_ref().take(bucket.len()).collect();
        let joined = match parts.len() {
            1 => parts.remove(0),
            _ => Tensor::cat(parts, 0),
        };
        let total = reducer.sum(joined, "summing the gradients")?;
        let mut at = 0;
        for n in bucket {
            summed.push(total.clone().narrow(0, at, n));
            at += n;
        }
    }
    let mut put = Put::<B> {
        grads: take.grads,
        summed: summed.into_iter(),
    };
    model.visit(&mut put);
    Ok(put.grads)
}

/// Consecutive runs of `sizes` holding at most `cap` values each (a larger tensor alone).
fn buckets(sizes: &[usize], cap: usize) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut filled = 0;
    for &n in sizes {
        match out.last_mut() {
            Some(b) if filled + n <= cap => {
                b.push(n);
                filled += n;
            }
            _ => {
                out.push(vec![n]);
                filled = n;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_order_and_cap() {
        assert_eq!(
            buckets(&[3, 4, 2, 10, 1, 1], 8),
            vec![vec![3, 4], vec![2], vec![10], vec![1, 1]]
        );
        assert!(buckets(&[], 8).is_empty());
    }

    #[test]
    fn native_all_reduce_is_found_by_backend() {
        // a backend type no other test sums with (the registry is per process)
        type B = burn::backend::Autodiff<crate::TestBackend>;
        fn twice(t: FloatTensor<B>, _: Vec<DeviceId>) -> FloatTensor<B> {
            let t = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(t));
            (t.clone() + t).into_primitive().tensor()
        }
        assert!(native_all_reduce::<B>().is_none());
        register_native_all_reduce::<B>(twice);
        let f = native_all_reduce::<B>().unwrap();
        let reducer = Reducer::<B> {
            peer: PeerId::from(0),
            native: Some((f, Vec::new())),
        };
        let dev = Default::default();
        let t = Tensor::<B, 1>::from_floats([1.0, 2.5], &dev);
        let s = reducer.sum(t, "test").unwrap();
        assert_eq!(s.into_data().to_vec::<f32>().unwrap(), vec![2.0, 5.0]);
        registry().lock().unwrap().remove(&TypeId::of::<B>());
    }
}
