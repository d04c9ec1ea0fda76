//! How the devices of a data-parallel run sum their gradients and statistics.
//!
//! - **Host sum** (every backend): each device's tensor is read back, the process adds them in
//!   device order (`((x₀ + x₁) + x₂) + …`), then, in a multi-node run, the nodes add their
//!   totals in rank order (`rl::mesh`), and every device gets the total back. The order is
//!   fixed, so a run is bit-identical whatever the threads' timing, and N nodes of one device
//!   train bit for bit like one process with N devices.
//! - **Native** (one process, a backend that registered one at the edge): the device library's
//!   own all-reduce — NCCL on `cuda`, through Burn's `distributed` feature
//!   (`DistributedBackend::all_reduce`). `cli/mod.rs` registers it for the CUDA backend with
//!   [`register_native_all_reduce`]; the generic code never names a backend.
//!
//! The gradients are summed in **module order** (the order a [`ModuleVisitor`] walks the
//! parameters), flattened into buckets of at most [`BUCKET_ELEMENTS`] values, one sum per
//! bucket: the order is the same in every process (parameter ids are random per process),
//! and a step makes a handful of sums instead of one per parameter.

use crate::fused::{FusedAutodiffBackend, FusedBackend};
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::{DeviceId, DeviceOps};
use burn::tensor::ops::FloatTensor;
use burn::tensor::TensorPrimitive;

use super::mesh::Mesh;
use crate::error::{Error, Result};
use crate::fused::tensor::read_back;

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

/// Use `f` instead of the host sum for backend `B` when all the devices are in one process
/// (called at the edge, where the backend is named).
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

/// One round of a host sum: each device's values, then the total every device takes.
#[derive(Default)]
struct Round {
    parts: Vec<Option<Vec<f32>>>,
    /// Set while the last device to arrive adds the parts (and waits for the other nodes).
    adding: bool,
    total: Option<Arc<std::result::Result<Vec<f32>, String>>>,
    taken: usize,
}

/// The devices of this process summing together (and, with `mesh`, with the other nodes).
pub struct Group {
    devices: usize,
    mesh: Option<Arc<Mesh>>,
    /// How long a device waits for the others to arrive.
    timeout: Duration,
    round: Mutex<Round>,
    changed: Condvar,
}

impl Group {
    pub fn new(devices: usize, mesh: Option<Arc<Mesh>>, timeout: Duration) -> Self {
        Self {
            devices,
            mesh,
            timeout,
            round: Mutex::new(Round {
                parts: vec![None; devices],
                ..Round::default()
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Round> {
        self.round.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait for `until` to hold, at most until `deadline` (`None`: as long as it takes).
    fn wait<'a>(
        &self,
        mut r: MutexGuard<'a, Round>,
        deadline: Option<Instant>,
        until: impl Fn(&Round) -> bool,
        what: &str,
    ) -> Result<MutexGuard<'a, Round>> {
        while !until(&r) {
            r = match deadline {
                None => self.changed.wait(r).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Error::Backend(format!(
                            "data parallelism: a device did not join the sum within {} s while \
                             {what}",
                            self.timeout.as_secs_f64()
                        )));
                    }
                    self.changed
                        .wait_timeout(r, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
        Ok(r)
    }

    /// Device `k`'s `values` summed with every other device's (and node's), in order.
    pub fn sum(&self, k: usize, values: Vec<f32>, what: &str) -> Result<Vec<f32>> {
        let deadline = Some(Instant::now() + self.timeout);
        let r = self.lock();
        // the previous round's total is still being taken
        let mut r = self.wait(r, deadline, |r| r.total.is_none() && !r.adding, what)?;
        r.parts[k] = Some(values);
        if r.parts.iter().all(Option::is_some) {
            r.adding = true;
            let parts: Vec<Vec<f32>> = r.parts.iter_mut().filter_map(Option::take).collect();
            drop(r);
            let total = self.add(parts, what);
            let mut r = self.lock();
            r.adding = false;
            r.total = Some(Arc::new(total.map_err(|e| match e {
                // the other devices say the same, without the node's prefix twice
                Error::Node { msg, .. } | Error::Backend(msg) => msg,
                e => e.to_string(),
            })));
            self.changed.notify_all();
            return self.take(r);
        }
        let r = self.wait(r, deadline, |r| r.adding || r.total.is_some(), what)?;
        let r = self.wait(r, None, |r| r.total.is_some(), what)?;
        self.take(r)
    }

    /// The parts added in device order, then over the nodes.
    fn add(&self, parts: Vec<Vec<f32>>, what: &str) -> Result<Vec<f32>> {
        let mut parts = parts.into_iter();
        let mut total = parts.next().unwrap_or_default();
        for p in parts {
            if p.len() != total.len() {
                return Err(Error::Backend(format!(
                    "data parallelism: devices sum {} and {} values while {what}",
                    total.len(),
                    p.len()
                )));
            }
            total.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
        }
        if let Some(mesh) = &self.mesh {
            mesh.sum(&mut total, what)?;
        }
        Ok(total)
    }

    fn take(&self, mut r: MutexGuard<'_, Round>) -> Result<Vec<f32>> {
        let total = r.total.clone();
        r.taken += 1;
        if r.taken == self.devices {
            r.total = None;
            r.taken = 0;
            self.changed.notify_all();
        }
        drop(r);
        match total.as_deref() {
            Some(Ok(v)) => Ok(v.clone()),
            Some(Err(msg)) => Err(match &self.mesh {
                Some(m) => Error::Node {
                    node: m.rank,
                    msg: msg.clone(),
                },
                None => Error::Backend(msg.clone()),
            }),
            None => Err(Error::Backend(
                "data parallelism: a sum went missing".into(),
            )),
        }
    }
}

/// One device's end of the sums: its index in this process, the group, and the native
/// all-reduce with every device's id when there is one.
#[derive(Clone)]
pub struct Reducer<B: Backend> {
    pub local: usize,
    pub group: Arc<Group>,
    pub native: Option<(NativeAllReduce<B>, Vec<DeviceId>)>,
}

impl<B: FusedBackend> Reducer<B> {
    /// The element-wise sum of `t` over every device (and node).
    pub fn sum(&self, t: Tensor<B, 1>, what: &str) -> Result<Tensor<B, 1>> {
        if let Some((f, ids)) = &self.native {
            let out = f(t.into_primitive().tensor(), ids.clone());
            return Ok(Tensor::from_primitive(TensorPrimitive::Float(out)));
        }
        let device = t.device();
        let values = read_back(t, what)?;
        let n = values.len();
        let total = self.group.sum(self.local, values, what)?;
        Ok(Tensor::from_data(TensorData::new(total, [n]), &device))
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

    /// Three devices add in device order whatever order they arrive in, round after round.
    #[test]
    fn host_sum_is_in_device_order() {
        let g = Arc::new(Group::new(3, None, Duration::from_secs(5)));
        let values = [vec![0.1f32, 1e8], vec![0.2, 1.0], vec![0.3, -1e8]];
        let want = vec![(0.1f32 + 0.2) + 0.3, (1e8f32 + 1.0) - 1e8];
        for round in 0..20 {
            let outs: Vec<Vec<f32>> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..3)
                    .map(|k| {
                        let (g, v) = (Arc::clone(&g), values[k].clone());
                        s.spawn(move || {
                            std::thread::sleep(Duration::from_millis(((k + round) % 3) as u64));
                            g.sum(k, v, "testing").unwrap()
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for o in outs {
                assert_eq!(o, want);
            }
        }
        // a device that never comes is named at the timeout
        let g = Group::new(2, None, Duration::from_millis(100));
        let e = g.sum(0, vec![1.0], "testing").unwrap_err().to_string();
        assert!(e.contains("did not join"), "{e}");
    }

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
            local: 0,
            group: Arc::new(Group::new(1, None, Duration::from_secs(1))),
            native: Some((f, Vec::new())),
        };
        let dev = Default::default();
        let t = Tensor::<B, 1>::from_floats([1.0, 2.5], &dev);
        let s = reducer.sum(t, "test").unwrap();
        assert_eq!(s.into_data().to_vec::<f32>().unwrap(), vec![2.0, 5.0]);
        registry().lock().unwrap().remove(&TypeId::of::<B>());
    }
}
