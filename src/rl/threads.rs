//! The process's CPU threads, split among the devices that generate side by side.
//!
//! The host-memory backends (flex, ndarray) and the fused CPU kernels parallelise with rayon.
//! When several CPU "devices" decode at once (data parallelism repeats the one CPU device, each
//! replica on its own thread), all of them sharing rayon's one global pool means every small
//! decode-step operation of every replica is split over all the threads and queued behind the
//! other replica's pieces, with a wake-up per piece: in a profile of the main job (two devices,
//! two cores) 13 % of the time went to waking threads. So each device's rollout shard runs on a
//! pool of its own, `threads / devices` threads (at least one): on one thread without any
//! hand-off (the main job's generation: 2.0 → 1.6–1.7 s a step). The updates keep the global
//! pool: their GEMMs are big enough to split, and a device that runs out of micro-batches lends
//! its cores to the other (measured: with per-device pools the forward and backward passes
//! were 5–10 % slower). A run on one device keeps the global pool throughout. GPU backends do
//! not use rayon; the pools cost them idle threads.

use std::sync::Arc;

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};

/// One rayon pool per device (none with one device).
#[derive(Debug, Default)]
pub struct DevicePools {
    pools: Vec<ThreadPool>,
}

impl DevicePools {
    /// Pools for `devices` devices sharing the threads of rayon's global pool
    /// (`RAYON_NUM_THREADS`, else one per core).
    pub fn new(devices: usize) -> Result<Arc<Self>> {
        if devices <= 1 {
            return Ok(Arc::default());
        }
        let each = (rayon::current_num_threads() / devices).max(1);
        let pools = (0..devices)
            .map(|k| {
                ThreadPoolBuilder::new()
                    .num_threads(each)
                    .thread_name(move |i| format!("device-{k}-{i}"))
                    .build()
                    .map_err(|e| Error::Backend(format!("thread pool of device {k}: {e}")))
            })
            .collect::<Result<_>>()?;
        Ok(Arc::new(Self { pools }))
    }

    /// Threads in device `k`'s pool (the global pool's with one device).
    #[cfg(test)]
    fn threads(&self, k: usize) -> usize {
        self.pools
            .get(k)
            .map_or_else(rayon::current_num_threads, ThreadPool::current_num_threads)
    }

    /// Run `f` with device `k`'s pool as the current one: every rayon call inside stays on it.
    pub fn run<R: Send>(&self, k: usize, f: impl FnOnce() -> R + Send) -> R {
        match self.pools.get(k) {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }
}

/// Every device thread's result, in device order; a panic becomes an error naming `what`.
pub(crate) fn join_all<T>(
    handles: Vec<std::thread::ScopedJoinHandle<'_, Result<T>>>,
    what: &str,
) -> Vec<Result<T>> {
    handles
        .into_iter()
        .map(|h| {
            h.join().unwrap_or_else(|_| {
                Err(Error::Backend(format!(
                    "data parallelism: a device's {what} panicked"
                )))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    #[test]
    fn each_device_runs_on_its_own_threads() {
        let pools = DevicePools::new(2).unwrap();
        let each = (rayon::current_num_threads() / 2).max(1);
        for k in 0..2 {
            assert_eq!(pools.threads(k), each);
            let names: Vec<String> = pools.run(k, || {
                (0..64)
                    .into_par_iter()
                    .map(|_| std::thread::current().name().unwrap_or("").to_string())
                    .collect()
            });
            let prefix = format!("device-{k}-");
            assert!(names.iter().all(|n| n.starts_with(&prefix)), "{names:?}");
            assert_eq!(pools.run(k, rayon::current_num_threads), each);
        }
    }

    #[test]
    fn one_device_keeps_the_global_pool() {
        let pools = DevicePools::new(1).unwrap();
        assert_eq!(pools.threads(0), rayon::current_num_threads());
        assert_eq!(pools.run(0, || 7), 7);
    }
}
