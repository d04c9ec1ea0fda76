//! Multi-node training (`num_nodes`, burn-collective's global orchestrator) as two `mgrpo
//! train` processes over loopback, one device each: they train exactly like one process with
//! two devices — the same rollouts (each node samples its shard and the nodes exchange them),
//! the same summed gradients, the same weights on both nodes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{fails, run_config, step_values};

/// A port nothing listens on now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn sets(extra: &[String]) -> Vec<String> {
    extra
        .iter()
        .flat_map(|s| ["--set".to_string(), s.clone()])
        .collect()
}

/// Both nodes of a run, started side by side; each must finish within the deadline.
fn two_nodes(config: &str, base: &[&str], runs: [&Path; 2]) {
    let (orchestrator, ports) = (free_port(), [free_port(), free_port()]);
    let mut children: Vec<_> = (0..2)
        .map(|rank| {
            let mut extra: Vec<String> = base.iter().map(|s| s.to_string()).collect();
            extra.extend([
                "num_nodes=2".to_string(),
                format!("node_rank={rank}"),
                format!("orchestrator=127.0.0.1:{orchestrator}"),
                format!("node_address=127.0.0.1:{}", ports[rank]),
            ]);
            let mut args = vec![
                "train".to_string(),
                "--config".into(),
                config.into(),
                "--out".into(),
                runs[rank].to_str().unwrap().into(),
            ];
            args.extend(sets(&extra));
            Command::new(env!("CARGO_BIN_EXE_mgrpo"))
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut done = [false, false];
    while done.iter().any(|d| !d) {
        for (k, c) in children.iter_mut().enumerate() {
            if !done[k] {
                if let Some(status) = c.try_wait().unwrap() {
                    done[k] = true;
                    if !status.success() {
                        let mut err = String::new();
                        use std::io::Read;
                        c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                        for c in &mut children {
                            let _ = c.kill();
                        }
                        panic!("node {k} failed: {err}");
                    }
                }
            }
        }
        if Instant::now() > deadline {
            for c in &mut children {
                let _ = c.kill();
            }
            panic!("the two nodes did not finish within 300 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn weights(run: &Path) -> Vec<u8> {
    let model: PathBuf = run.join("model/model.safetensors");
    std::fs::read(&model).unwrap_or_else(|e| panic!("{}: {e}", model.display()))
}

#[test]
fn two_nodes_train_like_one_process_with_two_devices() {
    let tmp = tempfile::tempdir().unwrap();
    for (config, base) in [
        ("configs/copy-grpo.toml", vec!["max_steps=4", "beta=0.04"]),
        ("configs/copy-mgrpo.toml", vec!["max_steps=2"]),
    ] {
        let name = Path::new(config).file_stem().unwrap().to_str().unwrap();
        let one = tmp.path().join(format!("{name}-devices"));
        let nodes = [
            tmp.path().join(format!("{name}-node0")),
            tmp.path().join(format!("{name}-node1")),
        ];
        let mut a: Vec<String> = base.iter().map(|s| s.to_string()).collect();
        a.push("num_devices=2".into());
        let a = sets(&a);
        run_config(
            "train",
            config,
            &one,
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        two_nodes(config, &base, [&nodes[0], &nodes[1]]);
        let want = step_values(&one);
        let steps: usize = base[0].trim_start_matches("max_steps=").parse().unwrap();
        assert_eq!(want.len(), steps, "{name}: one metrics line per step");
        for node in &nodes {
            assert_eq!(step_values(node), want, "{name}: {}", node.display());
            assert!(
                weights(node) == weights(&one),
                "{name}: {} holds other weights",
                node.display()
            );
        }
    }
}

#[test]
fn bad_node_keys_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let out = out.to_str().unwrap();
    let base = ["train", "--config", "configs/copy-grpo.toml", "--out", out];
    for (sets, key) in [
        (vec!["num_nodes=0"], "num_nodes"),
        (vec!["num_nodes=2", "node_rank=2"], "node_rank"),
        (
            vec!["num_nodes=2", "node_address=127.0.0.1:5000"],
            "orchestrator",
        ),
        (
            vec![
                "num_nodes=2",
                "orchestrator=127.0.0.1:5000",
                "node_address=127.0.0.1",
            ],
            "node_address",
        ),
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
