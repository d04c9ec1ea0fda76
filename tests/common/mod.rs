//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// All committed transformers fixtures (see `scripts/make_fixtures.py`).
pub const FIXTURES: &[&str] = &[
    "gqa2-tied-f32-t4",
    "gqa4-untied-bf16-t5",
    "mha-untied-f16-sharded",
    "mqa-odd-tied-f32-t5",
    "qwen3-headdim-tied-f32-t5",
    "qwen3-bias-untied-bf16-t4",
    "llama32-scaled-tied-f32-t4",
    "llama-bias-untied-bf16-t5",
];

/// The fixture that ships a tokenizer and text rows.
pub const TOKENIZER_FIXTURE: &str = "gqa4-untied-bf16-t5";

/// The repository the fixtures are read from: `$MGRPO_REPO` when set (a test binary copied
/// to another machine), else the one the test was built in.
pub fn repo() -> PathBuf {
    std::env::var_os("MGRPO_REPO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

pub fn expected(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture(name).join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

pub fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// `(input_ids, logprobs)` of every id-level row of a fixture.
pub fn id_rows(name: &str) -> Vec<(Vec<u32>, Vec<f32>)> {
    expected(name)["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (ids(&r["input_ids"]), floats(&r["logprobs"])))
        .collect()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Each of `files` (paths relative to the runs) byte for byte the same in run `a` and run `b`
/// (an uninterrupted run and its resumed twin); `label` prefixes the failure message.
pub fn assert_same_files(a: &Path, b: &Path, files: &[&str], label: &str) {
    for f in files {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{label}{f} differs after resuming"
        );
    }
}

/// Copy a fixture directory into a fresh temporary directory.
pub fn copy_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(name);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(fixture(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    (tmp, dst)
}

/// Run the `mgrpo` binary.
pub fn mgrpo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mgrpo"))
        .args(args)
        .output()
        .unwrap()
}

/// `mgrpo <command> --config <config> --out <out> <extra...>`, which must succeed.
pub fn run_config(command: &str, config: &str, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![command, "--config", config, "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = mgrpo(&args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The rows of a JSONL file.
pub fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A run's `metrics.jsonl` without the wall times (those differ between any two runs).
pub fn step_values(run: &Path) -> Vec<serde_json::Value> {
    jsonl(&run.join("metrics.jsonl"))
        .into_iter()
        .map(|mut m| {
            for k in mgrpo::metrics::TIMING_KEYS {
                m.as_object_mut().unwrap().remove(*k);
            }
            m
        })
        .collect()
}

/// Run, expect failure, return stderr (checked: one line, no panic, nothing on stdout).
pub fn fails(args: &[&str]) -> String {
    let out = mgrpo(args);
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert_eq!(
        err.lines().count(),
        1,
        "{args:?}: not a one-line error: {err}"
    );
    assert!(
        out.stdout.is_empty(),
        "{args:?}: printed to stdout on failure"
    );
    err
}

/// The greedy case of the tokenizer fixture that starts from a templated text prompt.
pub fn text_greedy_case() -> serde_json::Value {
    expected(TOKENIZER_FIXTURE)["greedy"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c.get("text").is_some())
        .unwrap()
        .clone()
}
