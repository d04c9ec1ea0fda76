//! Multi-node training (`num_nodes`, `rl::mesh`) as several `mgrpo train` processes over
//! loopback, launched as README's "Several machines" says: the same config, secret file and
//! `rendezvous` on every node, its own `node_rank`, and the one command that starts the run
//! and continues it (`--resume`). Failures of running nodes: `tests/node_failures.rs`.
//! - N nodes of one device train bit for bit like one process with N devices (N = 2, 3).
//! - Strangers (a bare connection, junk, a wrong handshake, a node with another secret) are
//!   refused while node 0 waits, and nothing listens once the run has started.
//! - Nodes that disagree (config, count, rank, step) never start, and write nothing.

mod common;
mod nodes_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{fails, step_values};
use nodes_common::*;

#[test]
fn two_and_three_nodes_train_like_one_process() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let secret = secret_file(tmp.path(), "secret", "correct horse battery staple\n");
    for (config, count, base) in [
        (CONFIG, 2, vec!["max_steps=4", "beta=0.04"]),
        (CONFIG, 3, vec!["max_steps=4", "beta=0.04"]),
        ("configs/copy-mgrpo.toml", 2, vec!["max_steps=2"]),
    ] {
        let name = format!(
            "{}-{count}",
            Path::new(config).file_stem().unwrap().to_str().unwrap()
        );
        let one = tmp.path().join(format!("{name}-devices"));
        one_process(config, &one, count, &base);
        let runs: Vec<PathBuf> = (0..count)
            .map(|r| tmp.path().join(format!("{name}-node{r}")))
            .collect();
        let launch = Launch {
            config,
            count,
            port: free_port(),
            secret: &secret,
            sets: sets(&base),
        };
        let mut nodes = launch.start_all(&runs);
        wait_all(&mut nodes, Duration::from_secs(300));
        assert_all_succeeded(&nodes);
        let want = step_values(&one);
        assert!(!want.is_empty());
        for run in &runs {
            assert_eq!(step_values(run), want, "{name}: {}", run.display());
            assert!(
                weights(run) == weights(&one),
                "{name}: {} holds other weights",
                run.display()
            );
        }
    }
}

/// The listening sockets on `port` in /proc/net/tcp{,6}: their local addresses (hex).
fn listeners(port: u16) -> Vec<String> {
    let mut out = Vec::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local address, remote address, state (0A = LISTEN)
            if cols.len() > 3 && cols[3] == "0A" {
                if let Some((addr, p)) = cols[1].split_once(':') {
                    if u16::from_str_radix(p, 16) == Ok(port) {
                        out.push(addr.to_string());
                    }
                }
            }
        }
    }
    out
}

#[test]
fn strangers_are_refused_and_nothing_listens_once_the_run_starts() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let secret = secret_file(tmp.path(), "secret", "correct horse battery staple\n");
    let other = secret_file(tmp.path(), "other", "another secret, not this run's\n");
    let base = ["max_steps=200", "node_timeout_s=60"];
    let one = tmp.path().join("one");
    one_process(CONFIG, &one, 2, &base);
    let port = free_port();
    let launch = |secret: &Path, rank: usize, run: &Path| {
        Launch {
            config: CONFIG,
            count: 2,
            port,
            secret,
            sets: sets(&base),
        }
        .start(rank, run)
    };
    let runs = [tmp.path().join("node0"), tmp.path().join("node1")];
    let node0 = launch(&secret, 0, &runs[0]);
    let addr = format!("127.0.0.1:{port}");
    let t0 = Instant::now();
    let bare = loop {
        if let Ok(s) = TcpStream::connect(&addr) {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "node 0 never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // node 0 listens on the rendezvous address only (127.0.0.1, not 0.0.0.0 or ::)
    assert_eq!(listeners(port), vec!["0100007F".to_string()]);
    // a bare connection, closed; junk; a handshake answered with a wrong proof
    drop(bare);
    let mut junk = TcpStream::connect(&addr).unwrap();
    junk.write_all(b"GET /data HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\x01")
        .unwrap();
    let mut liar = TcpStream::connect(&addr).unwrap();
    let mut head = [0u8; 12 + 32];
    liar.read_exact(&mut head).unwrap();
    assert_eq!(&head[..12], b"mgrpo-node/1");
    liar.write_all(&[7u8; 64]).unwrap();
    // a node of another run (another secret) trying to register as node 1
    let impostor_run = tmp.path().join("impostor");
    let mut impostor = launch(&other, 1, &impostor_run);
    let status = impostor.child.wait().unwrap();
    let err = impostor.stderr();
    assert!(
        !status.success() && err.contains("node 0 at 127.0.0.1"),
        "{err}"
    );
    assert!(err.contains("secret"), "{err}");
    assert!(!impostor_run.exists(), "the refused node wrote its run");
    drop((junk, liar));
    std::thread::sleep(Duration::from_millis(300));
    // the real node 1 joins; once training runs, nothing listens: nobody else can join
    let mut node1 = launch(&secret, 1, &runs[1]);
    let mut node0 = node0;
    wait_for_steps(&runs[0], 1, &mut node0);
    assert!(listeners(port).is_empty(), "still listening");
    assert!(TcpStream::connect(&addr).is_err());
    assert!(
        node0.child.try_wait().unwrap().is_none(),
        "the run ended too soon to tell"
    );
    wait_for_steps(&runs[1], 1, &mut node1);
    // the run is the one-process run
    let mut nodes = vec![node0, node1];
    wait_all(&mut nodes, Duration::from_secs(120));
    assert_all_succeeded(&nodes);
    for run in &runs {
        assert!(weights(run) == weights(&one), "{}", run.display());
    }
    let log = nodes[0].stderr();
    assert!(log.matches("refused a connection").count() >= 4, "{log}");
    assert!(log.contains("failed authentication"), "{log}");
    for n in &nodes {
        assert!(!n.stderr().contains("panicked"), "{}", n.stderr());
    }
}

/// Start `count` nodes as `sets_of(rank)` says; every one must fail, naming `needle`, and
/// write no run directory.
fn refused(tmp: &Path, name: &str, count: usize, ranks: &[usize], extra: &[&[&str]], needle: &str) {
    let secret = secret_file(tmp, "secret", "correct horse battery staple\n");
    let port = free_port();
    let mut nodes: Vec<Node> = ranks
        .iter()
        .enumerate()
        .map(|(k, &rank)| {
            let mut s = sets(&["max_steps=4", "node_timeout_s=5"]);
            s.extend(sets(extra[k]));
            Launch {
                config: CONFIG,
                count,
                port,
                secret: &secret,
                sets: s,
            }
            .start(rank, &tmp.join(format!("{name}-{k}")))
        })
        .collect();
    wait_all(&mut nodes, Duration::from_secs(60));
    for (k, n) in nodes.iter().enumerate() {
        let err = n.stderr();
        assert!(!n.status.unwrap().success(), "{name}: node {k} ran: {err}");
        let last = err.trim().lines().last().unwrap_or_default();
        assert!(last.contains(needle), "{name}: node {k} said: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            !tmp.join(format!("{name}-{k}")).exists(),
            "{name}: node {k} wrote its run"
        );
    }
}

#[test]
fn nodes_that_disagree_never_start() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    refused(
        t,
        "lr",
        2,
        &[0, 1],
        &[&[], &["learning_rate=0.02"]],
        "learning_rate: 0.01 here, 0.02 there",
    );
    refused(
        t,
        "count",
        2,
        &[0, 1],
        &[&[], &["num_nodes=3"]],
        "num_nodes = 3",
    );
    refused(t, "twice", 3, &[0, 1, 1], &[&[], &[], &[]], "node_rank = 1");
    refused(t, "alone1", 2, &[1], &[&[]], "node 0 did not answer");
    refused(t, "alone0", 2, &[0], &[&[]], "node(s) 1 did not join");

    // nodes whose newest checkpoints differ are not resumed
    let secret = secret_file(t, "secret", "correct horse battery staple\n");
    let runs = [t.join("step-node0"), t.join("step-node1")];
    let launch = Launch {
        config: CONFIG,
        count: 2,
        port: free_port(),
        secret: &secret,
        sets: sets(&["max_steps=6", "save_steps=2"]),
    };
    let mut nodes = launch.start_all(&runs);
    wait_all(&mut nodes, Duration::from_secs(120));
    assert_all_succeeded(&nodes);
    std::fs::remove_dir_all(runs[1].join("checkpoints/step-000006")).unwrap();
    let mut nodes = Launch {
        port: free_port(),
        sets: sets(&["max_steps=8", "save_steps=2"]),
        ..launch
    }
    .start_all(&runs);
    wait_all(&mut nodes, Duration::from_secs(60));
    for n in &nodes {
        let err = n.stderr();
        assert!(!n.status.unwrap().success(), "{err}");
        assert!(
            err.contains("node 1 starts from step 4, node 0 from step 6"),
            "{err}"
        );
    }
}

#[test]
fn bad_node_keys_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let out = out.to_str().unwrap();
    let open = tmp.path().join("open");
    std::fs::write(&open, "0123456789abcdef0123").unwrap();
    let open_set = format!("node_secret_file={}", open.display());
    let base = ["train", "--config", CONFIG, "--out", out];
    let two = ["num_nodes=2", "rendezvous=127.0.0.1:5000"];
    for (sets, key) in [
        (vec!["num_nodes=0"], "num_nodes"),
        (vec!["num_nodes=2", "node_rank=2"], "node_rank"),
        (vec!["num_nodes=2"], "rendezvous"),
        (vec!["num_nodes=2", "rendezvous=127.0.0.1"], "rendezvous"),
        (
            vec!["num_nodes=2", "orchestrator=127.0.0.1:5000"],
            "rendezvous",
        ),
        (vec!["node_timeout_s=0"], "node_timeout_s"),
        (two.to_vec(), "node_secret_file"),
        ([&two[..], &[open_set.as_str()]].concat(), "chmod 600"),
    ] {
        let mut args: Vec<&str> = base.to_vec();
        for s in &sets {
            args.extend(["--set", s]);
        }
        let err = fails(&args);
        assert!(err.contains(key), "{sets:?}: {err}");
        assert!(!Path::new(out).exists(), "{sets:?} wrote {out}");
    }
}

/// On a GPU backend the replicas need distinct devices (two threads sharing one device's tensors
/// break Burn 0.21's fusion streams): lavapipe has one, so `num_devices = 2` is refused before
/// anything is written. (CI's wgpu step.)
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_refuses_two_replicas_on_one_device() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = common::mgrpo(&[
        "train",
        "--device",
        "wgpu",
        "--config",
        "configs/copy-grpo.toml",
        "--out",
        out.to_str().unwrap(),
        "--set",
        "num_devices=2",
    ]);
    // (the Vulkan loader may print its own lines first)
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && !err.contains("panicked"), "{err}");
    let last = err.trim().lines().last().unwrap_or_default();
    assert!(
        last.contains("num_devices") && last.contains("distinct devices"),
        "{err}"
    );
    assert!(!out.exists(), "wrote {}", out.display());
}
