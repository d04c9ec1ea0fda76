//! Models by hub id (`ORG/NAME[@REVISION]`), found offline in a Hugging Face cache that
//! `huggingface_hub` itself laid out (`tests/fixtures/hf-cache`, made by
//! `scripts/make_hub_cache_fixture.py`: `mgrpo-test/tiny`, `main` the copy-task Qwen2, branch
//! `v1` the llama-bias fixture).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::fixture;

const MAIN: &str = "5c22174696d5b56a0272c5bca6282b1e7df0cd3b";

/// `mgrpo ARGS` with the Hugging Face environment `env` (everything else of it removed).
fn mgrpo_env(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mgrpo"));
    for k in [
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "HF_HOME",
        "XDG_CACHE_HOME",
    ] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(args).output().unwrap()
}

fn hub_cache() -> std::path::PathBuf {
    fixture("hf-cache")
}

/// Greedy completions of two token prompts.
fn generate(model: &str, env: &[(&str, &Path)], prompts: &Path) -> Output {
    mgrpo_env(
        &[
            "generate",
            "--model",
            model,
            "--input",
            prompts.to_str().unwrap(),
            "--temperature",
            "0",
            "--max-new-tokens",
            "6",
        ],
        env,
    )
}

fn ok(o: Output) -> Vec<u8> {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

#[test]
fn hub_ids_resolve_in_the_cache_by_revision() {
    let tmp = tempfile::tempdir().unwrap();
    let prompts = tmp.path().join("p.jsonl");
    std::fs::write(&prompts, "{\"input_ids\": [3, 7]}\n{\"input_ids\": [1]}\n").unwrap();
    let cache = hub_cache();
    let hub = [("HF_HUB_CACHE", cache.as_path())];
    let copy_task = fixture("copy-task");
    let want_main = ok(generate(copy_task.to_str().unwrap(), &[], &prompts));
    let llama = fixture("llama-bias-untied-bf16-t5");
    let want_v1 = ok(generate(llama.to_str().unwrap(), &[], &prompts));
    assert_ne!(want_main, want_v1);
    assert_eq!(ok(generate("mgrpo-test/tiny", &hub, &prompts)), want_main);
    assert_eq!(
        ok(generate("mgrpo-test/tiny@main", &hub, &prompts)),
        want_main
    );
    assert_eq!(
        ok(generate(&format!("mgrpo-test/tiny@{MAIN}"), &hub, &prompts)),
        want_main
    );
    assert_eq!(ok(generate("mgrpo-test/tiny@v1", &hub, &prompts)), want_v1);
    // $HF_HOME/hub, then ~/.cache/huggingface/hub
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join(".cache/huggingface")).unwrap();
    std::os::unix::fs::symlink(hub_cache(), home.join(".cache/huggingface/hub")).unwrap();
    let hf_home = home.join(".cache/huggingface");
    let got = generate("mgrpo-test/tiny@v1", &[("HF_HOME", &hf_home)], &prompts);
    assert_eq!(ok(got), want_v1);
    let got = generate("mgrpo-test/tiny", &[("HOME", &home)], &prompts);
    assert_eq!(ok(got), want_main);
    // a directory of that name wins over the hub id
    let shadow = tmp.path().join("mgrpo-test/tiny");
    std::fs::create_dir_all(shadow.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&llama, &shadow).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_mgrpo"))
        .current_dir(tmp.path())
        .env("HF_HUB_CACHE", hub_cache())
        .args(["generate", "--model", "mgrpo-test/tiny", "--input"])
        .arg(&prompts)
        .args(["--temperature", "0", "--max-new-tokens", "6"])
        .output()
        .unwrap();
    assert_eq!(ok(o), want_v1);
}

/// A model or a revision the cache lacks: one line naming the cache path searched and the
/// command that would fetch it; nothing is downloaded.
#[test]
fn a_missing_model_names_the_cache_and_the_fetch_command() {
    let cache = hub_cache();
    let hub = [("HF_HUB_CACHE", cache.as_path())];
    let err = |o: Output| {
        assert!(!o.status.success());
        let e = String::from_utf8_lossy(&o.stderr).trim().to_string();
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(!e.contains("panicked"), "{e}");
        e
    };
    let e = err(mgrpo_env(
        &[
            "score",
            "--model",
            "Qwen/Qwen2.5-Math-1.5B",
            "--input",
            "x.jsonl",
        ],
        &hub,
    ));
    let searched = cache.join("models--Qwen--Qwen2.5-Math-1.5B");
    assert!(
        e.contains(searched.to_str().unwrap()) && e.contains("hf download Qwen/Qwen2.5-Math-1.5B"),
        "{e}"
    );
    let e = err(mgrpo_env(
        &[
            "convert",
            "--model",
            "mgrpo-test/tiny@v2",
            "--out",
            "/nonexistent/x",
        ],
        &hub,
    ));
    assert!(
        e.contains("`v2`") && e.contains("main, v1") && e.contains("--revision v2"),
        "{e}"
    );
}

/// `model = "ORG/NAME"` in a run config: the run trains on the cached snapshot, pins it in
/// `config.resolved.toml`, and resumes.
#[test]
fn a_config_names_a_hub_model() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let cache = hub_cache();
    let hub = [("HF_HUB_CACHE", cache.as_path())];
    let o = mgrpo_env(
        &[
            "train",
            "--config",
            "configs/copy-grpo.toml",
            "--out",
            run.to_str().unwrap(),
            "--set",
            "model=\"mgrpo-test/tiny\"",
            "--set",
            "max_steps=2",
            "--set",
            "save_steps=1",
            "--stop-after",
            "1",
        ],
        &hub,
    );
    assert!(!o.status.success() || run.join("checkpoints/step-000001").is_dir());
    let resolved = std::fs::read_to_string(run.join("config.resolved.toml")).unwrap();
    assert!(
        resolved.contains(&format!("snapshots/{MAIN}")),
        "{resolved}"
    );
    let o = mgrpo_env(&["train", "--resume", run.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(common::jsonl(&run.join("metrics.jsonl")).len(), 2);
}
