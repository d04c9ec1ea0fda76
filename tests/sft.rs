//! `mgrpo sft` and the STaR baselines end to end on the copy-task fixture.

mod common;

use std::path::Path;

use common::{fails, fixture, jsonl, mgrpo, run_config};
use serde_json::Value;

fn sft(config: &str, out: &Path, extra: &[&str]) {
    run_config("sft", config, out, extra);
}

/// Greedy one-token answers of `model` to "d\n" for every digit.
fn copies(model: &Path) -> usize {
    let mut right = 0;
    for d in 0..10 {
        let o = mgrpo(&[
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            &format!("{d}\n"),
            "--max-new-tokens",
            "1",
            "--temperature",
            "0",
        ]);
        assert!(o.status.success());
        let row: Value = serde_json::from_slice(&o.stdout).unwrap();
        right += usize::from(row["text"].as_str() == Some(d.to_string().as_str()));
    }
    right
}

#[test]
fn sft_learns_the_pairs() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    assert!(
        copies(&fixture("copy-task")) <= 3,
        "the random model already copies"
    );
    sft("configs/copy-sft.toml", &run, &[]);
    let m = jsonl(&run.join("metrics.jsonl"));
    assert_eq!(m.len(), 40);
    let (first, last) = (
        m[0]["loss"].as_f64().unwrap(),
        m[39]["loss"].as_f64().unwrap(),
    );
    // a random model over 16 tokens starts near ln 16 ≈ 2.77 per token
    assert!(first > 1.5 && last < 0.2, "{first} → {last}");
    assert_eq!(
        m[39]["num_tokens"],
        40 * 20,
        "10 pairs × (1 token + EOS) per step"
    );
    assert_eq!(copies(&run.join("model")), 10);
}

#[test]
fn star_keeps_only_verified_solutions_and_successful_revisions() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("star"), tmp.path().join("external"));
    sft("configs/copy-star.toml", &a, &["--set", "max_steps=30"]);
    let kept = jsonl(&a.join("star.jsonl"));
    assert!(!kept.is_empty());
    for r in &kept {
        // "7\n" → "7": every kept solution is the question's digit
        let q = r["prompt"].as_str().unwrap().trim_end().to_string();
        assert_eq!(r["completion"].as_str().unwrap(), q, "{r}");
    }
    assert!(
        copies(&a.join("model")) >= 8,
        "STaR on verified copies must learn to copy"
    );

    sft(
        "configs/copy-star-external.toml",
        &b,
        &["--set", "max_steps=5"],
    );
    let kept = jsonl(&b.join("star.jsonl"));
    assert!(!kept.is_empty());
    for r in &kept {
        // turn-2 prompt "d\n<wrong answer>\n\n#", revision = d (the first answer was not d)
        let p = r["prompt"].as_str().unwrap();
        let (q, rest) = p.split_once('\n').unwrap();
        let first = rest.strip_suffix("\n\n#").unwrap();
        assert_ne!(first, q, "a right first answer is not a revision: {r}");
        assert_eq!(r["completion"].as_str().unwrap(), q, "{r}");
    }
}

#[test]
fn bad_sft_configs_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let out_s = out.to_str().unwrap();
    let bad = tmp.path().join("pairs.jsonl");
    std::fs::write(
        &bad,
        "{\"prompt\": \"1\\n\", \"completion\": \"1\"}\n{\"prompt\": \"2\"}\n",
    )
    .unwrap();
    let bad_s = format!("dataset={}", bad.display());
    for (cfg, sets, needle) in [
        (
            "configs/copy-sft.toml",
            vec!["lerning_rate=1"],
            "lerning_rate",
        ),
        (
            "configs/copy-sft.toml",
            vec![bad_s.as_str()],
            "pairs.jsonl:2",
        ),
        ("configs/copy-sft.toml", vec!["max_length=2"], "example 1"),
        (
            "configs/copy-star.toml",
            vec!["star.samples_per_question=0"],
            "star.samples_per_question",
        ),
        ("configs/copy-star.toml", vec!["star.source=magic"], "magic"),
        (
            "configs/copy-star.toml",
            vec!["dataset=tests/fixtures/copy-task/sft.jsonl"],
            "not with [star]",
        ),
        (
            "configs/copy-star.toml",
            vec!["star.problems=nope.jsonl"],
            "nope.jsonl",
        ),
    ] {
        let mut a = vec!["sft", "--config", cfg, "--out", out_s];
        for s in &sets {
            a.extend(["--set", s]);
        }
        let err = fails(&a);
        assert!(
            err.contains(needle),
            "{sets:?}: {err:?} should name {needle}"
        );
        assert!(!out.exists(), "{sets:?} wrote {out_s}");
    }
}
