//! What the multi-node tests share (`tests/nodes.rs`, `tests/node_failures.rs`): README's
//! launch command for a node, the processes, their logs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::common::run_config;

/// The runs of this file one at a time: several nodes each, on a 2-core machine, with
/// timeouts of a few seconds.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

pub const CONFIG: &str = "configs/copy-grpo.toml";

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A secret file as README says to make one (owner-only).
pub fn secret_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let f = dir.join(name);
    std::fs::write(&f, text).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    f
}

pub fn weights(run: &Path) -> Vec<u8> {
    let model: PathBuf = run.join("model/model.safetensors");
    std::fs::read(&model).unwrap_or_else(|e| panic!("{}: {e}", model.display()))
}

/// One node of a run being launched.
pub struct Launch<'a> {
    pub config: &'a str,
    pub count: usize,
    pub port: u16,
    pub secret: &'a Path,
    pub sets: Vec<String>,
}

/// A started node: its process and where its stderr goes.
pub struct Node {
    pub rank: usize,
    pub child: Child,
    pub log: PathBuf,
    pub status: Option<ExitStatus>,
}

impl Node {
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Launch<'_> {
    /// README's command for node `rank`, writing to `run`.
    pub fn start(&self, rank: usize, run: &Path) -> Node {
        let mut args: Vec<String> = vec![
            "train".into(),
            "--config".into(),
            self.config.into(),
            "--out".into(),
            run.to_str().unwrap().into(),
            "--resume".into(),
        ];
        let mut sets = vec![
            format!("num_nodes={}", self.count),
            format!("node_rank={rank}"),
            format!("rendezvous=127.0.0.1:{}", self.port),
            format!("node_secret_file={}", self.secret.display()),
        ];
        sets.extend(self.sets.iter().cloned());
        for s in sets {
            args.extend(["--set".into(), s]);
        }
        let log = PathBuf::from(format!("{}.stderr", run.display()));
        let child = Command::new(env!("CARGO_BIN_EXE_mgrpo"))
            .args(&args)
            .env_remove("MGRPO_NODE_SECRET")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Node {
            rank,
            child,
            log,
            status: None,
        }
    }

    pub fn start_all(&self, runs: &[PathBuf]) -> Vec<Node> {
        (0..self.count).map(|r| self.start(r, &runs[r])).collect()
    }
}

/// Wait for every node to exit, at most `limit`; returns when each did.
pub fn wait_all(nodes: &mut [Node], limit: Duration) -> Vec<Duration> {
    let t0 = Instant::now();
    let mut when = vec![Duration::ZERO; nodes.len()];
    while nodes.iter().any(|n| n.status.is_none()) {
        for (k, n) in nodes.iter_mut().enumerate() {
            if n.status.is_none() {
                if let Some(s) = n.child.try_wait().unwrap() {
                    n.status = Some(s);
                    when[k] = t0.elapsed();
                }
            }
        }
        if t0.elapsed() > limit {
            let logs: Vec<String> = nodes.iter().map(|n| n.stderr()).collect();
            panic!("the nodes did not all exit within {limit:?}: {logs:#?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    when
}

pub fn assert_all_succeeded(nodes: &[Node]) {
    for n in nodes {
        assert!(
            n.status.unwrap().success(),
            "node {} failed: {}",
            n.rank,
            n.stderr()
        );
    }
}

/// Wait until `run` has logged at least `steps` steps (the node is training).
pub fn wait_for_steps(run: &Path, steps: usize, node: &mut Node) {
    let t0 = Instant::now();
    loop {
        let n = std::fs::read_to_string(run.join("metrics.jsonl"))
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if n >= steps {
            return;
        }
        if let Some(s) = node.child.try_wait().unwrap() {
            panic!(
                "node {} exited ({s}) before step {steps}: {}",
                node.rank,
                node.stderr()
            );
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no step {steps}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A reproducible "random" point: xorshift from `seed`, in `lo..hi`.
pub fn pick(seed: &mut u64, lo: usize, hi: usize) -> usize {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    lo + (*seed % (hi - lo) as u64) as usize
}

pub fn sets(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// One process with `devices` devices: the reference a run over nodes must equal.
pub fn one_process(config: &str, out: &Path, devices: usize, base: &[&str]) {
    let mut a: Vec<String> = base.iter().map(|s| format!("--set={s}")).collect();
    a.push(format!("--set=num_devices={devices}"));
    run_config(
        "train",
        config,
        out,
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
    );
}
