//! Data parallelism over several devices of one backend (`num_devices`), and over several
//! processes (`num_nodes`).
//!
//! Every device holds a replica of the policy and of AdamW's state, forked from the same
//! model (so their parameter ids agree, which is how each replica's optimizer state finds its
//! parameters).
//! - Rollouts: `rl::shards::ParallelSampler` splits each batch of prompts into contiguous shards, one
//!   per device, generated in parallel; each sample keeps the RNG stream it would have in the
//!   whole batch (`GenerateConfig::first_prompt`), so the completions do not depend on the
//!   number of devices.
//! - Update: device `k` runs micro-batches `k, k + n, ...` of the step, each normalised by the
//!   counts of the whole step (`rl::loss`), so the **sum** of the devices' gradients is the
//!   step's gradient: summed in buckets in module order (`rl::reduce`: in device order on the
//!   host, or NCCL on CUDA), one more sum for the loss statistics, then every replica takes the same
//!   clipped AdamW step and they stay identical.
//! - Several nodes (`rl::nodes`): the devices of every node are ranks of one run; each node
//!   samples its ranks' shards and the nodes exchange them, so every node holds the rollout.
//!
//! With one device on one node nothing is spawned: this is `grpo::update` and the plain
//! sampler.

use crate::fused::{FusedAutodiffBackend, FusedBackend};
use burn::module::{AutodiffModule, Module};
use burn::prelude::*;
use burn::tensor::backend::{DeviceId, DeviceOps};
use std::sync::Arc;
use std::time::Duration;

use super::grpo::{
    accumulate, apply, Accumulated, Part, Share, UpdateConfig, UpdateStats, UpdateSums,
};
use super::mesh::Mesh;
use super::nodes::{ranks, Place};
use super::optim::PolicyOptimizer;
use super::reduce::{
    device_ids, native_all_reduce, sum_gradients, Group, NativeAllReduce, Reducer,
};
use super::shards::Gather;
use super::threads::{join_all, DevicePools};
use crate::error::{Error, Result};
use crate::fused::tensor::{host_memory, read_back};
use crate::model::{CausalLm, Precision};

/// `n` devices of `first`'s kind with consecutive indices from `first`'s (`cuda:2` with 3 →
/// `cuda:2`, `cuda:3`, `cuda:4`). A CPU backend has one device, repeated.
pub fn devices<D: DeviceOps>(first: &D, n: usize) -> Vec<D> {
    let id = first.id();
    (0..n)
        .map(|k| D::from_id(DeviceId::new(id.type_id, id.index_id + k as u16)))
        .collect()
}

/// Data parallelism on a GPU backend needs distinct devices: replicas on one device would share
/// its tensors between two threads, which Burn 0.21's fusion streams do not survive ("Should
/// have handle for tensor", now and then, on wgpu). A CPU backend repeats its one device safely.
pub fn check_devices<B: FusedBackend>(devices: &[B::Device]) -> Result<()> {
    let n = devices.len();
    let repeated = devices.iter().skip(1).any(|d| *d == devices[0]);
    if repeated && !host_memory::<B>(&devices[0]) {
        return Err(Error::ConfigKey {
            file: None,
            key: "num_devices".into(),
            msg: format!(
                "{n} devices asked for, but {} has the one device {:?} here: data parallelism \
                 on a GPU backend needs {n} distinct devices",
                B::name(&devices[0]),
                devices[0]
            ),
        });
    }
    Ok(())
}

/// The replicas of devices 1..n (device 0's model and optimizer stay with the caller), and
/// how the devices sum their gradients.
pub struct DataParallel<B: FusedAutodiffBackend> {
    devices: Vec<B::Device>,
    replicas: Vec<(CausalLm<B>, PolicyOptimizer<B>)>,
    /// This node's place, in a multi-node run.
    nodes: Option<Place>,
    /// The devices' (and nodes') host sums.
    group: Arc<Group>,
    /// The device library's all-reduce (NCCL), when the backend registered one and every
    /// device is in this process.
    native: Option<NativeAllReduce<B::InnerBackend>>,
    /// The CPU threads of each local device for its rollout shards (`rl::threads`).
    pools: Arc<DevicePools>,
}

impl<B: FusedAutodiffBackend> DataParallel<B> {
    /// Fork `model` and `optim` onto `devices[1..]` (`devices[0]` is where `model` lives) and
    /// set up the sums: the backend's native all-reduce on one node when it has one, else the
    /// host sum (over the nodes of `mesh` too), whose waits for a device end after `timeout`.
    /// The caller has checked `devices` with [`check_devices`] before writing anything.
    pub fn new(
        model: &CausalLm<B>,
        optim: &PolicyOptimizer<B>,
        devices: Vec<B::Device>,
        mesh: Option<Arc<Mesh>>,
        timeout: Duration,
    ) -> Result<Self> {
        let native = match mesh {
            None => native_all_reduce::<B::InnerBackend>(),
            Some(_) => None,
        };
        let nodes = mesh.as_ref().map(|m| Place {
            count: m.count,
            rank: m.rank,
        });
        let replicas = devices[1..]
            .iter()
            .map(|d| (model.clone().fork(d), optim.clone()))
            .collect();
        Ok(Self {
            pools: DevicePools::new(devices.len())?,
            group: Arc::new(Group::new(devices.len(), mesh, timeout)),
            devices,
            replicas,
            nodes,
            native,
        })
    }

    /// The CPU threads of each local device, for the rollout shards.
    pub fn pools(&self) -> Arc<DevicePools> {
        Arc::clone(&self.pools)
    }

    /// Local device `k`'s end of the sums.
    fn reducer(&self, k: usize) -> Reducer<B::InnerBackend> {
        Reducer {
            local: k,
            group: Arc::clone(&self.group),
            native: self.native.map(|f| (f, device_ids(&self.devices))),
        }
    }

    /// Every device's end of the sums, in device order.
    pub fn reducers(&self) -> Vec<Reducer<B::InnerBackend>> {
        (0..self.devices.len()).map(|k| self.reducer(k)).collect()
    }

    pub fn devices(&self) -> &[B::Device] {
        &self.devices
    }

    /// The sampling copy of every replica (device 0's from `model`), in `precision`.
    pub fn policies(
        &self,
        model: &CausalLm<B>,
        precision: Precision,
    ) -> Vec<(CausalLm<B::InnerBackend>, B::Device)> {
        std::iter::once(model)
            .chain(self.replicas.iter().map(|(m, _)| m))
            .zip(&self.devices)
            .map(|(m, d)| (m.valid().to_precision(precision), d.clone()))
            .collect()
    }

    /// `grpo::update` over every device: each runs its share of the micro-batches, the
    /// gradients are summed across devices, every replica takes the same step. Returns device
    /// 0's model (the others stay here) and the step's statistics.
    pub fn update(
        &mut self,
        model: CausalLm<B>,
        optim: &mut PolicyOptimizer<B>,
        parts: &[Part<'_>],
        cfg: &UpdateConfig,
        lr: f64,
    ) -> Result<(CausalLm<B>, UpdateStats)> {
        let n = self.devices.len();
        if n == 1 && self.nodes.is_none() {
            return super::grpo::update(model, optim, parts, cfg, lr, &self.devices[0]);
        }
        let (world, first) = ranks(self.nodes.as_ref(), n);
        let reducers = self.reducers();
        let others = std::mem::take(&mut self.replicas);
        let mut jobs = vec![(model, optim)];
        let mut optims: Vec<PolicyOptimizer<B>> = Vec::with_capacity(n - 1);
        let mut models = Vec::with_capacity(n - 1);
        for (m, o) in others {
            models.push(m);
            optims.push(o);
        }
        jobs.extend(models.into_iter().zip(optims.iter_mut()));
        let devices = &self.devices;
        let results: Vec<Result<(CausalLm<B>, UpdateStats)>> = std::thread::scope(|s| {
            let handles: Vec<_> = jobs
                .into_iter()
                .zip(devices.iter().zip(reducers))
                .enumerate()
                .map(|(k, ((m, o), (d, r)))| {
                    let share = Share {
                        index: first + k,
                        of: world,
                    };
                    let peer = Peer {
                        share,
                        reducer: r,
                        device: d,
                    };
                    s.spawn(move || peer_update(peer, m, o, parts, cfg, lr))
                })
                .collect();
            join_all(handles, "update")
        });
        let mut first = None;
        let mut back = Vec::with_capacity(n - 1);
        for (k, r) in results.into_iter().enumerate() {
            let (m, stats) = r?;
            if k == 0 {
                first = Some((m, stats));
            } else {
                back.push(m);
            }
        }
        self.replicas = back.into_iter().zip(optims).collect();
        first.ok_or_else(|| Error::Backend("data parallelism: no device 0".into()))
    }
}

impl<B: FusedAutodiffBackend> DataParallel<B> {
    /// The exchange of rollouts between nodes, in a multi-node run.
    pub fn gather(&self) -> Option<Gather<B::InnerBackend>> {
        let nodes = self.nodes?;
        Some(Gather {
            nodes,
            reducers: self.reducers(),
        })
    }
}

/// One device's place in an update: its share of the micro-batches, its end of the sums.
struct Peer<'a, B: FusedAutodiffBackend> {
    share: Share,
    reducer: Reducer<B::InnerBackend>,
    device: &'a B::Device,
}

/// One device's part of [`DataParallel::update`]. A device whose forward pass fails still
/// joins both sums (with zeros and a failure count), so the others never wait forever.
fn peer_update<B: FusedAutodiffBackend>(
    peer: Peer<'_, B>,
    model: CausalLm<B>,
    optim: &mut PolicyOptimizer<B>,
    parts: &[Part<'_>],
    cfg: &UpdateConfig,
    lr: f64,
) -> Result<(CausalLm<B>, UpdateStats)> {
    let Peer {
        share,
        reducer,
        device,
    } = peer;
    let (acc, failed) = match accumulate(&model, parts, cfg, share, device) {
        Ok(a) => (a, None),
        Err(e) => (
            Accumulated {
                grads: None,
                sums: UpdateSums::new(parts.len()),
                forward_secs: 0.0,
                secs: 0.0,
                padding: Default::default(),
            },
            Some(e),
        ),
    };
    let grads = sum_gradients(&model, acc.grads.unwrap_or_default(), &reducer, device)?;
    // one sum for every statistic, and a count of the devices that failed
    let mut sums = acc.sums.to_vec();
    sums.push(failed.is_some() as u8 as f32);
    let local = Tensor::<B::InnerBackend, 1>::from_data(TensorData::from(&sums[..]), device);
    let total = reducer.sum(local, "summing the loss statistics")?;
    let total = read_back(total, "the summed statistics")?;
    if let Some(e) = failed {
        return Err(e);
    }
    let (sums, failures) = total.split_at(total.len() - 1);
    if failures[0] > 0.0 {
        return Err(Error::Backend(
            "data parallelism: another device's update failed".into(),
        ));
    }
    let sums = UpdateSums::from_vec(sums);
    let (model, mut stats) = apply(model, optim, parts, Some(grads), &sums, cfg, lr);
    stats.forward_secs = acc.forward_secs;
    stats.backward_secs = acc.secs - acc.forward_secs;
    stats.padding = acc.padding;
    Ok((model, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{named_tensors, ModelConfig};
    use crate::rl::experience::{Experience, Sample};
    use crate::rl::grpo::update;
    use crate::rl::loss::{LossParams, LossType};
    use crate::rl::optim::{adamw, AdamParams};
    use burn::backend::Autodiff;

    type AB = Autodiff<crate::TestBackend>;

    /// Three devices, two micro-batches: device 2 runs none and all-reduces zeros; the step
    /// equals one device's, and the replicas stay identical.
    #[test]
    fn three_devices_step_like_one() {
        let config = ModelConfig::new(32, 16, 32, 2, 4, 2, true);
        let dev = Default::default();
        <AB as Backend>::seed(&dev, 3);
        let model = CausalLm::<AB>::random(&config, &dev);
        let exp = Experience {
            prompts: vec![vec![1, 2, 3], vec![4, 5]],
            samples: [&[10u32, 11][..], &[12, 13, 14], &[15]]
                .iter()
                .enumerate()
                .map(|(i, c)| Sample {
                    prompt: i % 2,
                    completion: c.to_vec(),
                    advantage: [1.0, -0.5, 0.25][i],
                    keep: true,
                    old_logps: None,
                    ref_logps: None,
                })
                .collect(),
        };
        let parts = [Part {
            experience: &exp,
            weight: 1.0,
            max_completion_length: 3,
            tokens_per_step: None,
        }];
        let cfg = UpdateConfig {
            loss: LossParams {
                epsilon_low: 0.2,
                epsilon_high: 0.2,
                beta: 0.0,
                loss_type: LossType::Grpo,
                ..LossParams::default()
            },
            micro_batch: 2,
            max_grad_norm: 0.5,
            temperature: 1.0,
            top_entropy_quantile: 1.0,
            group_by_length: true,
            padding_free: true,
        };
        let adam = AdamParams {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-3,
            weight_decay: 0.0,
        };
        let weights = |m: &CausalLm<AB>| -> Vec<f32> {
            named_tensors(m)
                .unwrap()
                .into_values()
                .flat_map(|(v, _)| v)
                .collect()
        };
        let mut optim = adamw::<AB, _>(&adam);
        let (alone, one) = update(model.clone(), &mut optim, &parts, &cfg, 1e-2, &dev).unwrap();

        let mut optim = adamw::<AB, _>(&adam);
        let mut dp = DataParallel::new(
            &model,
            &optim,
            devices(&dev, 3),
            None,
            Duration::from_secs(60),
        )
        .unwrap();
        let (split, three) = dp
            .update(model.clone(), &mut optim, &parts, &cfg, 1e-2)
            .unwrap();
        assert!(one.applied && three.applied && one.grad_norm > 0.0);
        assert!(
            (one.loss - three.loss).abs() < 1e-6,
            "{} vs {}",
            one.loss,
            three.loss
        );
        assert!((one.grad_norm - three.grad_norm).abs() < 1e-5 * one.grad_norm);
        assert_eq!(one.metrics.tokens, three.metrics.tokens);
        let (a, b) = (weights(&alone), weights(&split));
        let moved = a
            .iter()
            .zip(weights(&model))
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(moved > 1e-4, "the step must move the weights ({moved})");
        let diff = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-6, "one device vs three: {diff}");
        for (replica, _) in &dp.replicas {
            assert_eq!(weights(replica), b, "replicas must stay identical");
        }
    }
}
