//! How the nodes of a multi-node run join: node 0 listens on the `rendezvous` address (that
//! address only, and only until every node has joined), every other node connects to it and
//! authenticates with the run's shared secret (`rl::wire`). Node 0 then checks that the nodes
//! agree — their count and ranks, the step they start from, their config and the hashes of
//! their inputs — and starts the run or stops every node, naming what differs.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::wire::{Link, Tag};
use crate::error::{Error, KeyError, Result};
use crate::run::interrupt::{self, Interrupt};

/// A multi-node failure seen by node `rank`.
pub(super) fn node_error(rank: usize, msg: impl Into<String>) -> Error {
    Error::Node {
        node: rank,
        msg: msg.into(),
    }
}

/// Node `rank` stopped by a signal before the run began (nothing written yet): it exits as an
/// interrupted run does, 128 + the signal.
fn interrupted(rank: usize, i: Interrupt, msg: &str) -> Error {
    Error::Interrupted {
        signal: i.signal,
        msg: format!("node {rank}: {msg}; nothing was written"),
    }
}

/// How long a connection to node 0 may take to authenticate and say who it is (a silent
/// stranger holds no slot longer).
const HANDSHAKE: Duration = Duration::from_secs(10);
/// Connections node 0 authenticates at once; more are closed at once.
const MAX_PENDING: usize = 64;
/// The largest `Hello` accepted.
const MAX_HELLO: usize = 1 << 20;
/// Differences named in a refusal.
const NAMED: usize = 6;

/// How this node joins the others.
#[derive(Clone)]
pub struct NodeSpec {
    /// `num_nodes`.
    pub count: usize,
    /// `node_rank`.
    pub rank: usize,
    /// Node 0's `host:port`.
    pub rendezvous: String,
    /// The shared secret every node holds.
    pub secret: Vec<u8>,
    /// The longest wait for a peer's progress.
    pub timeout: Duration,
}

impl std::fmt::Debug for NodeSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSpec")
            .field("count", &self.count)
            .field("rank", &self.rank)
            .field("rendezvous", &self.rendezvous)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What a node tells node 0 when it joins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub rank: usize,
    pub count: usize,
    /// The step it starts from (its last checkpoint's; 0 for a new run).
    pub step: usize,
    pub little_endian: bool,
    /// What must be the same on every node, by name: the config's keys, the inputs' hashes.
    pub identity: BTreeMap<String, String>,
}

/// The first address `rendezvous` resolves to.
fn resolve(spec: &NodeSpec) -> Result<SocketAddr> {
    let bad = |msg: String| Error::from(KeyError::new("rendezvous", msg));
    spec.rendezvous
        .to_socket_addrs()
        .map_err(|e| bad(format!("`{}`: {e}", spec.rendezvous)))?
        .next()
        .ok_or_else(|| bad(format!("`{}` resolves to no address", spec.rendezvous)))
}

/// The keys whose values differ between two identities, named with both values.
fn differences(ours: &BTreeMap<String, String>, theirs: &BTreeMap<String, String>) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (a, b) = (ours.get(k), theirs.get(k));
            let show = |v: Option<&String>| v.map_or("(none)".to_string(), |v| v.clone());
            (a != b).then(|| format!("{k}: {} here, {} there", show(a), show(b)))
        })
        .collect()
}

/// A joining node's side: connect to node 0 (retrying until the timeout: node 0 may start
/// later), authenticate, say hello, wait for the welcome.
pub(super) fn guest(spec: &NodeSpec, hello: &Hello) -> Result<Link> {
    let me = spec.rank;
    let at = &spec.rendezvous;
    let deadline = Instant::now() + spec.timeout;
    let stream = loop {
        let addr = resolve(spec)?;
        let left = deadline.saturating_duration_since(Instant::now());
        match TcpStream::connect_timeout(&addr, left.clamp(Duration::from_millis(1), HANDSHAKE)) {
            Ok(s) => break s,
            Err(e) if Instant::now() >= deadline => {
                return Err(node_error(
                    me,
                    format!(
                        "node 0 did not answer at {at} within {} s ({e})",
                        spec.timeout.as_secs_f64()
                    ),
                ))
            }
            Err(_) => match interrupt::requested() {
                Some(i) => {
                    let msg = format!(
                        "interrupted by {} while waiting for node 0 at {at}",
                        i.name()
                    );
                    return Err(interrupted(me, i, &msg));
                }
                None => std::thread::sleep(Duration::from_millis(200)),
            },
        }
    };
    let fail = |why: String| node_error(me, format!("node 0 at {at} {why}"));
    let mut link = Link::connect(stream, &spec.secret, spec.timeout).map_err(fail)?;
    let text = serde_json::to_vec(hello).map_err(|e| Error::serialize("the hello", e))?;
    link.send(Tag::Hello, &text).map_err(fail)?;
    match link.recv(1 << 16).map_err(fail)? {
        (Tag::Welcome, _) => Ok(link),
        (Tag::Abort, why) => Err(node_error(
            me,
            format!("the run did not start: {}", String::from_utf8_lossy(&why)),
        )),
        (tag, _) => Err(fail(format!("answered {tag:?} instead of a welcome"))),
    }
}

/// A connection that authenticated and said who it is.
struct Joined {
    from: SocketAddr,
    link: Link,
    hello: Hello,
}

/// Node 0's side: listen on the rendezvous address until every node has joined (or the
/// timeout), refusing strangers; check that the nodes agree; welcome them or stop them all.
pub(super) fn host(spec: &NodeSpec, ours: &Hello) -> Result<Vec<Mutex<Link>>> {
    let addr = resolve(spec)?;
    let listener = TcpListener::bind(addr).map_err(|e| {
        Error::from(KeyError::new(
            "rendezvous",
            format!(
                "node 0 cannot listen on {addr} ({e}): it must be an address of node 0's \
                 machine, with a free port"
            ),
        ))
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| node_error(0, e.to_string()))?;
    let (tx, rx) = mpsc::channel::<std::result::Result<Joined, (SocketAddr, String)>>();
    let deadline = Instant::now() + spec.timeout;
    let mut joined: Vec<Joined> = Vec::new();
    let mut refused = 0usize;
    // connections authenticating now, each in a thread of its own (bounded: a flood of
    // strangers costs them, not node 0)
    let mut pending = 0usize;
    let mut problems: Vec<String> = Vec::new();
    while joined.len() < spec.count - 1 && problems.is_empty() {
        if Instant::now() >= deadline {
            let missing: Vec<String> = (1..spec.count)
                .filter(|r| !joined.iter().any(|j| j.hello.rank == *r))
                .map(|r| r.to_string())
                .collect();
            problems.push(format!(
                "node(s) {} did not join at {addr} within {} s{}",
                missing.join(", "),
                spec.timeout.as_secs_f64(),
                match refused {
                    0 => String::new(),
                    n => format!(" ({n} connection(s) refused: see the warnings above)"),
                }
            ));
            break;
        }
        match listener.accept() {
            Ok((stream, from)) if pending >= MAX_PENDING => {
                drop(stream);
                refused += 1;
                eprintln!(
                    "warning: node 0: refused a connection from {from}: {MAX_PENDING} others are \
                     still authenticating"
                );
            }
            Ok((stream, from)) => {
                let (tx, secret, timeout) = (tx.clone(), spec.secret.clone(), spec.timeout);
                pending += 1;
                std::thread::spawn(move || {
                    let _ = tx.send(handshake(stream, from, &secret, timeout));
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => tracing::warn!("node 0: accepting a connection: {e}"),
        }
        while let Ok(r) = rx.try_recv() {
            pending -= 1;
            match r {
                Ok(j) => {
                    if let Some(p) = disagreement(ours, &j, &joined) {
                        problems.push(p);
                    }
                    joined.push(j);
                }
                Err((from, why)) => {
                    refused += 1;
                    eprintln!("warning: node 0: refused a connection from {from}: {why}");
                }
            }
        }
        if let Some(i) = interrupt::requested() {
            let msg = format!("interrupted by {} before every node had joined", i.name());
            for j in &mut joined {
                j.link.abort(&format!("node 0: {msg}"));
            }
            return Err(interrupted(0, i, &msg));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(listener);
    if let Some(p) = problems.first() {
        let msg = match problems.len() {
            1 => p.clone(),
            n => format!("{p} (and {} more)", n - 1),
        };
        for j in &mut joined {
            j.link.abort(&format!("node 0: {msg}"));
        }
        return Err(node_error(0, msg));
    }
    joined.sort_by_key(|j| j.hello.rank);
    let mut links = Vec::with_capacity(joined.len());
    for mut j in joined {
        let rank = j.hello.rank;
        j.link.send(Tag::Welcome, &[]).map_err(|why| {
            node_error(
                0,
                format!("node {rank} ({}) {why} before the start", j.from),
            )
        })?;
        links.push(Mutex::new(j.link));
    }
    Ok(links)
}

/// Authenticate one connection and read its hello.
fn handshake(
    stream: TcpStream,
    from: SocketAddr,
    secret: &[u8],
    timeout: Duration,
) -> std::result::Result<Joined, (SocketAddr, String)> {
    let fail = |why: String| (from, why);
    let _ = stream.set_nonblocking(false);
    let mut link = Link::accept(stream, secret, HANDSHAKE.min(timeout)).map_err(fail)?;
    let (tag, text) = link.recv(MAX_HELLO).map_err(fail)?;
    if tag != Tag::Hello {
        return Err(fail(format!("sent {tag:?} instead of its hello")));
    }
    let hello: Hello = serde_json::from_slice(&text)
        .map_err(|e| fail(format!("sent a hello that is not one ({e})")))?;
    link.set_timeout(timeout).map_err(fail)?;
    Ok(Joined { from, link, hello })
}

/// What is wrong with a node that joined, if anything: its rank or count, a rank another node
/// already holds, another step, byte order, config or inputs.
fn disagreement(ours: &Hello, j: &Joined, before: &[Joined]) -> Option<String> {
    let (h, from) = (&j.hello, j.from);
    if h.count != ours.count {
        return Some(format!(
            "the node at {from} has num_nodes = {}, node 0 has {}",
            h.count, ours.count
        ));
    }
    if h.rank == 0 || h.rank >= ours.count {
        return Some(format!(
            "the node at {from} has node_rank = {}: node 0 is this one, the others are 1..{}",
            h.rank,
            ours.count - 1
        ));
    }
    if let Some(other) = before.iter().find(|o| o.hello.rank == h.rank) {
        return Some(format!(
            "two nodes have node_rank = {} ({} and {from})",
            h.rank, other.from
        ));
    }
    let r = h.rank;
    if h.step != ours.step {
        return Some(format!(
            "node {r} starts from step {}, node 0 from step {}: resume every node from the same \
             checkpoint (delete the newer checkpoints/step-… directory on the nodes that have it)",
            h.step, ours.step
        ));
    }
    if h.little_endian != ours.little_endian {
        return Some(format!("node {r} has another byte order"));
    }
    let diff = differences(&ours.identity, &h.identity);
    if !diff.is_empty() {
        let shown: Vec<&str> = diff.iter().take(NAMED).map(String::as_str).collect();
        return Some(format!(
            "node {r}'s run differs from node 0's (node 0 here, node {r} there): {}{}",
            shown.join("; "),
            match diff.len() > NAMED {
                true => format!("; and {} more", diff.len() - NAMED),
                false => String::new(),
            }
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rl::mesh::tests::{hello, port, spec};
    use crate::rl::mesh::Mesh;

    /// A node whose config differs stops every node, named.
    #[test]
    fn a_mismatch_stops_all() {
        let p = port();
        let errs: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..2)
                .map(|r| {
                    s.spawn(move || {
                        let lr = ["1e-5", "2e-5"][r];
                        Mesh::join(&spec(2, r, p, b"k"), &hello(2, r, lr))
                            .err()
                            .unwrap()
                            .to_string()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for e in errs {
            assert!(e.contains("learning_rate: 1e-5 here, 2e-5 there"), "{e}");
        }
    }

    /// Node 0 alone gives up at the timeout, naming the missing node.
    #[test]
    fn a_missing_node_is_named_at_the_timeout() {
        let mut s = spec(2, 0, port(), b"k");
        s.timeout = Duration::from_millis(400);
        let e = Mesh::join(&s, &hello(2, 0, "x")).err().unwrap().to_string();
        assert!(e.contains("node(s) 1 did not join"), "{e}");
        let mut s = spec(2, 1, port(), b"k");
        s.timeout = Duration::from_millis(400);
        let e = Mesh::join(&s, &hello(2, 1, "x")).err().unwrap().to_string();
        assert!(e.contains("node 0 did not answer"), "{e}");
    }
}
