//! Stopping a run from outside: Ctrl-C and SIGTERM checkpoint the step in progress and say how
//! to resume; `kill -9` at any instant loses at most the steps since the last checkpoint; and
//! either way `mgrpo train --resume` ends with exactly the model, metrics and evaluations of
//! the run that was never stopped.
//!
//! The kill property test draws its kill instants at random: `MGRPO_KILL_TRIALS` (default 4)
//! trials, `MGRPO_KILL_SEED` to replay one draw (the seed is printed).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{jsonl, mgrpo, step_values};

const CONFIG: &str = "configs/copy-grpo.toml";

/// The run every trial must reproduce: 24 steps, a checkpoint every 4, a held-out evaluation
/// every 8 (so that kills land in steps, in saves and in evaluations).
const ARGS: &[&str] = &[
    "--set",
    "max_steps=24",
    "--set",
    "save_steps=4",
    "--set",
    "eval_dataset=tests/fixtures/copy-task/train.jsonl",
    "--set",
    "eval_limit=8",
    "--set",
    "eval_steps=8",
    "--set",
    "eval_turns=1",
    "--set",
    "eval_max_new_tokens=2",
];

fn spawn_train(run: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mgrpo"))
        .args(["train", "--config", CONFIG, "--out", run.to_str().unwrap()])
        .args(ARGS)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill {sig} failed");
}

type Outcome = (
    Vec<u8>,
    Vec<serde_json::Value>,
    Vec<serde_json::Value>,
    Vec<String>,
);

/// What a finished run must equal: the final weights, the step metrics without wall times,
/// the held-out evaluations and every evaluated answer.
fn outcome(run: &Path) -> Outcome {
    let weights = std::fs::read(run.join("model/model.safetensors")).unwrap();
    let mut answers: Vec<(String, String)> = std::fs::read_dir(run.join("eval"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("step-"))
        .map(|n| {
            let text = std::fs::read_to_string(run.join("eval").join(&n)).unwrap();
            (n, text)
        })
        .collect();
    answers.sort();
    let eval: Vec<serde_json::Value> = jsonl(&run.join("eval/metrics.jsonl"))
        .into_iter()
        .map(|mut m| {
            m.as_object_mut().unwrap().remove("eval_time");
            m
        })
        .collect();
    let answers = answers
        .into_iter()
        .map(|(n, t)| format!("{n}\n{t}"))
        .collect();
    (weights, step_values(run), eval, answers)
}

/// Whatever a killed writer left that a finished run must not hold.
fn leftovers(run: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for dir in [run.to_path_buf(), run.join("eval"), run.join("checkpoints")] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains(".tmp-") {
                found.push(e.path().display().to_string());
            }
        }
    }
    found
}

fn reference(dir: &Path) -> Outcome {
    let run = dir.join("reference");
    let o = spawn_train(&run, &[]).wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    outcome(&run)
}

/// Ctrl-C and SIGTERM finish the step in progress, checkpoint it, exit with 130 / 143 and a
/// line naming the checkpoint and the command that continues; continued, the run ends exactly
/// as if never stopped. (Ctrl-C used to kill the process and lose the steps since the last
/// checkpoint.)
#[test]
fn a_signal_checkpoints_the_step_in_progress() {
    let tmp = tempfile::tempdir().unwrap();
    let want = reference(tmp.path());
    for (sig, code) in [("-INT", 130), ("-TERM", 143)] {
        let run = tmp.path().join(format!("run{sig}"));
        // no periodic checkpoint after step 0: whatever the signal saves is its own
        let mut child = spawn_train(&run, &["--set", "save_steps=1000"]);
        let t = Instant::now();
        while !std::fs::read_to_string(run.join("metrics.jsonl"))
            .is_ok_and(|m| m.lines().count() >= 2)
        {
            assert!(t.elapsed() < Duration::from_secs(60), "no step in 60 s");
            std::thread::sleep(Duration::from_millis(5));
        }
        signal(&child, sig);
        let status = child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(code), "{sig}: {err}");
        let steps = jsonl(&run.join("metrics.jsonl")).len();
        assert!(steps < 24, "{sig} came too late to test anything");
        let ckpt = run.join(format!("checkpoints/step-{steps:06}"));
        assert!(ckpt.join("manifest.json").is_file(), "{sig}: {err}");
        let line = err.lines().last().unwrap();
        assert!(
            line.contains(&format!("after step {steps} of 24"))
                && line.contains(&ckpt.display().to_string())
                && line.contains(&format!("mgrpo train --resume {}", run.display())),
            "{line}"
        );
        let o = mgrpo(&["train", "--resume", run.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(outcome(&run) == want, "{sig}: the continued run differs");
    }
}

/// A small deterministic generator for the kill instants (the test needs no crate for it).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `kill -9` at random instants of a run (during start-up, steps, checkpoint saves and
/// evaluations), sometimes twice; after each kill the user's one command — the original
/// command with `--resume` added, in every state (also before the config was written: that
/// used to need the original command without `--resume`) — must finish the run, leave no temporary file, and end byte-identical to the run
/// that was never killed.
#[test]
fn kill_anywhere_then_resume_is_the_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let want = reference(tmp.path());
    let span = t.elapsed().as_micros() as u64 + 1;
    let trials: usize = std::env::var("MGRPO_KILL_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let seed = std::env::var("MGRPO_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("MGRPO_KILL_SEED={seed} MGRPO_KILL_TRIALS={trials}");
    let mut rng = SplitMix(seed);
    let mut phases = Vec::new();
    for trial in 0..trials {
        let run = tmp.path().join(format!("trial-{trial}"));
        let kills = 1 + (rng.next() % 2) as usize;
        let mut at = Vec::new();
        for k in 0..kills {
            let delay = Duration::from_micros(rng.next() % span);
            at.push(delay);
            let mut child = match k {
                0 => spawn_train(&run, &[]),
                _ => resume_cmd(&run, trial % 2 == 1)
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            };
            std::thread::sleep(delay);
            let _ = child.kill(); // SIGKILL; the run may have finished already
            child.wait().unwrap();
        }
        phases.push(phase(&run));
        let o = resume_cmd(&run, trial % 2 == 1).output().unwrap();
        assert!(
            o.status.success(),
            "trial {trial} (seed {seed}, kills at {at:?}): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(leftovers(&run), Vec::<String>::new(), "trial {trial}");
        assert!(
            outcome(&run) == want,
            "trial {trial} (seed {seed}, kills at {at:?}): the resumed run differs"
        );
    }
    phases.sort();
    phases.dedup_by(|a, b| {
        let same = a.0 == b.0;
        if same {
            b.1 += a.1;
        }
        same
    });
    println!("{trials} trials identical; what the kills left: {phases:?}");
}

/// Where a killed run stood: no config yet, no checkpoint yet, its last checkpoint's step, or
/// finished.
fn phase(run: &Path) -> (String, usize) {
    let label = if run.join("model").is_dir() {
        "finished".to_string()
    } else if !run.join("config.resolved.toml").is_file() {
        "no config".to_string()
    } else {
        let last = std::fs::read_dir(run.join("checkpoints"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix("step-").map(|s| s.to_string())
            })
            .max();
        match last {
            Some(s) => format!("checkpoint {s}"),
            None => "no checkpoint".to_string(),
        }
    };
    (label, 1)
}

/// What the user runs after a kill, whatever the run's state: the command that started it with
/// `--resume` added (it starts a run that never wrote its config, and continues any other,
/// checking it was started with this config). `--resume RUN` is the same once the config is
/// written; every other trial uses that form.
fn resume_cmd(run: &Path, short: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mgrpo"));
    if short && run.join("config.resolved.toml").is_file() {
        c.args(["train", "--resume", run.to_str().unwrap()]);
    } else {
        c.args(["train", "--config", CONFIG, "--out", run.to_str().unwrap()])
            .args(ARGS)
            .arg("--resume");
    }
    c.stdout(Stdio::null());
    c
}
