//! The nodes of a multi-node run, once joined (`rl::rendezvous`): their sums and votes.
//!
//! **Sums** go through node 0 (a star): each node sends its buffer, node 0 adds them in rank
//! order (`((x₀ + x₁) + x₂) + …`, the order one process with as many devices uses,
//! `rl::reduce`) and sends the total back. Deterministic whatever the timing, so nodes hold
//! bit-identical weights; node 0 moves `2 (N − 1)` buffers a sum, which suits the handful of
//! nodes this is for (see `bench nodes` for the throughput).
//!
//! **Failures.** Every read and write waits at most `node_timeout_s` for progress. A node that
//! dies closes its connections (the others see it at once); a stopped or unreachable one is
//! found by the timeout. Node 0 tells every other node why the run ends (`Abort`), so every
//! node exits non-zero naming the node at fault; while it waits for a late node it tells the
//! nodes that delivered that it is alive (`Wait`), so that only node 0's clock decides.

use std::sync::{mpsc, Mutex};
use std::thread::ScopedJoinHandle;
use std::time::Duration;

use super::rendezvous::{guest, host, node_error};
pub use super::rendezvous::{Hello, NodeSpec};
use super::wire::{Link, Tag, STOPPED};
use crate::error::{Error, Result};

/// This node's connections to the others.
pub struct Mesh {
    pub rank: usize,
    pub count: usize,
    /// Node 0: nodes 1.. in rank order; another node: node 0.
    links: Vec<Mutex<Link>>,
    /// How often node 0 tells the nodes waiting for a total that it is alive.
    beat: Duration,
    /// Node 0: each other node's last buffer (kept: a fresh one a sum costs its page faults).
    scratch: Vec<Mutex<Vec<f32>>>,
}

fn lock(link: &Mutex<Link>) -> std::sync::MutexGuard<'_, Link> {
    link.lock().unwrap_or_else(|p| p.into_inner())
}

impl Mesh {
    /// Join the run's nodes: node 0 waits for every other one, the others connect to it; all
    /// return once node 0 has checked that they agree, or fail naming what went wrong.
    pub fn join(spec: &NodeSpec, hello: &Hello) -> Result<Mesh> {
        let links = match spec.rank {
            0 => host(spec, hello)?,
            _ => vec![Mutex::new(guest(spec, hello)?)],
        };
        Ok(Mesh {
            rank: spec.rank,
            count: spec.count,
            beat: (spec.timeout / 4).min(Duration::from_secs(5)),
            scratch: (0..links.len()).map(|_| Mutex::new(Vec::new())).collect(),
            links,
        })
    }

    /// The element-wise sum of `buf` over every node, in rank order, into `buf`.
    pub fn sum(&self, buf: &mut [f32], what: &str) -> Result<()> {
        let bytes = buf.len() * 4;
        if self.rank != 0 {
            let mut link = lock(&self.links[0]);
            let sent = link.send(Tag::Data, bytemuck::cast_slice(buf));
            return sent
                .and_then(|_| link.recv_data(bytemuck::cast_slice_mut(buf)))
                .map_err(|why| {
                    let msg = match why.starts_with(STOPPED) {
                        // node 0's reason says what it was doing
                        true => format!("node 0 {why}"),
                        false => format!("node 0 {why} while {what}"),
                    };
                    node_error(self.rank, msg)
                });
        }
        let received: Vec<std::result::Result<(), String>> = std::thread::scope(|s| {
            // each receiving thread says when it is done, so node 0 sleeps only between beats
            let (done, finished) = mpsc::channel::<()>();
            let handles: Vec<_> = self
                .links
                .iter()
                .zip(&self.scratch)
                .map(|(l, v)| {
                    let done = done.clone();
                    s.spawn(move || {
                        let mut v = v.lock().unwrap_or_else(|p| p.into_inner());
                        v.resize(bytes / 4, 0.0);
                        let r = lock(l).recv_data(bytemuck::cast_slice_mut(&mut v[..]));
                        let _ = done.send(());
                        r
                    })
                })
                .collect();
            drop(done);
            // the nodes that delivered wait for the total: tell them node 0 is alive, so
            // that only node 0's timeout decides which node is late
            let mut left = handles.len();
            while left > 0 {
                match finished.recv_timeout(self.beat) {
                    Ok(()) => left -= 1,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        for (l, h) in self.links.iter().zip(&handles) {
                            if h.is_finished() {
                                let _ = lock(l).send(Tag::Wait, &[]);
                            }
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
            join_each(handles)
        });
        self.first_failure(received, what)?;
        for v in &self.scratch {
            let v = v.lock().unwrap_or_else(|p| p.into_inner());
            buf.iter_mut().zip(v.iter()).for_each(|(a, b)| *a += b);
        }
        let sent: Vec<std::result::Result<(), String>> = std::thread::scope(|s| {
            let buf: &[f32] = buf;
            let handles: Vec<_> = self
                .links
                .iter()
                .map(|l| s.spawn(move || lock(l).send(Tag::Data, bytemuck::cast_slice(buf))))
                .collect();
            join_each(handles)
        });
        self.first_failure(sent, what)
    }

    /// Whether any node says `yes` (every node calls this at the same point).
    pub fn any(&self, yes: bool, what: &str) -> Result<bool> {
        let mut v = [yes as u8 as f32];
        self.sum(&mut v, what)?;
        Ok(v[0] > 0.0)
    }

    /// Node 0: the first node whose part of a sum failed, its reason told to every other node.
    fn first_failure(
        &self,
        results: Vec<std::result::Result<(), String>>,
        what: &str,
    ) -> Result<()> {
        for (k, r) in results.into_iter().enumerate() {
            if let Err(why) = r {
                return Err(self.fail(format!("node {} {why} while {what}", k + 1)));
            }
        }
        Ok(())
    }

    /// Node 0: tell every other node why the run ends; the error to return.
    fn fail(&self, msg: String) -> Error {
        self.abort(&msg);
        node_error(self.rank, msg)
    }

    /// Tell the nodes this one talks to that the run ends, and why (best effort).
    pub fn abort(&self, why: &str) {
        let why = format!("node {}: {why}", self.rank);
        for l in &self.links {
            if let Ok(mut link) = l.try_lock() {
                link.abort(&why);
            }
        }
    }
}

/// Each thread's result (a panic is a failure too).
fn join_each<T>(
    handles: Vec<ScopedJoinHandle<'_, std::result::Result<T, String>>>,
) -> Vec<std::result::Result<T, String>> {
    handles
        .into_iter()
        .map(|h| h.join().unwrap_or_else(|_| Err("panicked".into())))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Node `rank` of `count` on loopback `port`, a 5 s timeout.
    pub(crate) fn spec(count: usize, rank: usize, port: u16, secret: &[u8]) -> NodeSpec {
        NodeSpec {
            count,
            rank,
            rendezvous: format!("127.0.0.1:{port}"),
            secret: secret.to_vec(),
            timeout: Duration::from_secs(5),
        }
    }

    /// A hello whose identity is one `learning_rate`.
    pub(crate) fn hello(count: usize, rank: usize, lr: &str) -> Hello {
        Hello {
            rank,
            count,
            step: 0,
            little_endian: true,
            identity: [("learning_rate".to_string(), lr.to_string())].into(),
        }
    }

    /// A loopback port nothing listens on now.
    pub(crate) fn port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Three nodes sum in rank order, and vote.
    #[test]
    fn three_nodes_sum_in_rank_order() {
        let p = port();
        let outs: Vec<Result<Vec<f32>>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..3)
                .map(|r| {
                    s.spawn(move || {
                        let m = Mesh::join(&spec(3, r, p, b"k"), &hello(3, r, "1e-5"))?;
                        let mut v = vec![0.1 * (r as f32 + 1.0), 1e8, r as f32];
                        m.sum(&mut v, "testing")?;
                        assert!(m.any(r == 2, "voting")?);
                        Ok(v)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let want = vec![(0.1f32 + 0.2) + 0.3, 3e8, 3.0];
        for o in outs {
            assert_eq!(o.unwrap(), want);
        }
    }
}
