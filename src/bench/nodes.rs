//! `mgrpo bench nodes`: the throughput of the multi-node sum (`rl::mesh`) on loopback. Every
//! node is a thread of this process with its own sockets, so the figure is the engine's (TCP
//! through node 0, the adds, the copies), not a network's: on a real network the link's
//! bandwidth bounds node 0, which moves `2 (N − 1)` buffers a sum.

use std::time::{Duration, Instant};

use rand::RngCore;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::rl::mesh::{Hello, Mesh, NodeSpec};

/// One measurement.
#[derive(Debug, Clone, Serialize)]
pub struct NodesReport {
    pub nodes: usize,
    /// Bytes each node sums.
    pub bytes: usize,
    pub iters: usize,
    /// Seconds per sum (node 0's wall time, after the warm-up).
    pub secs_per_sum: f64,
    /// Bytes summed per second (a node's buffer over the time of one sum: the figure MPI
    /// benchmarks call algorithm bandwidth), in GB/s.
    pub algbw_gb_s: f64,
}

/// Sum `bytes` of f32 over `nodes` nodes, `warmup` times untimed then `iters` times timed.
pub fn bench_nodes(nodes: usize, bytes: usize, warmup: usize, iters: usize) -> Result<NodesReport> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| Error::Backend(format!("a free loopback port: {e}")))?
        .port();
    let mut secret = vec![0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let n = bytes / 4;
    let times: Vec<Result<f64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..nodes)
            .map(|rank| {
                let spec = NodeSpec {
                    count: nodes,
                    rank,
                    rendezvous: format!("127.0.0.1:{port}"),
                    secret: secret.clone(),
                    timeout: Duration::from_secs(60),
                };
                s.spawn(move || -> Result<f64> {
                    let hello = Hello {
                        rank,
                        count: nodes,
                        step: 0,
                        little_endian: cfg!(target_endian = "little"),
                        identity: Default::default(),
                    };
                    let mesh = Mesh::join(&spec, &hello)?;
                    let mut buf = vec![rank as f32 + 1.0; n];
                    for _ in 0..warmup {
                        mesh.sum(&mut buf, "warming up")?;
                    }
                    let t0 = Instant::now();
                    for _ in 0..iters {
                        mesh.sum(&mut buf, "measuring")?;
                    }
                    Ok(t0.elapsed().as_secs_f64())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Backend("a node's thread panicked".into())))
            })
            .collect()
    });
    let mut secs = 0.0;
    for (rank, t) in times.into_iter().enumerate() {
        let t = t?;
        if rank == 0 {
            secs = t;
        }
    }
    let per = secs / iters.max(1) as f64;
    Ok(NodesReport {
        nodes,
        bytes: n * 4,
        iters,
        secs_per_sum: per,
        algbw_gb_s: (n * 4) as f64 / per / 1e9,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_nodes_on_loopback() {
        let r = bench_nodes(3, 1 << 16, 1, 3).unwrap();
        assert_eq!((r.nodes, r.bytes, r.iters), (3, 1 << 16, 3));
        assert!(r.secs_per_sum > 0.0 && r.algbw_gb_s > 0.0);
    }
}
