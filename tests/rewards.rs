//! Bring your own task: `configs/copy-palindrome.toml` trains the copy-task model to reply with
//! a palindrome, graded by a TRL-style Python reward function (`scripts/palindrome_reward.py`)
//! run through `scripts/trl_reward.py` as an external command. Its reward must rise, its
//! metrics carry TRL's per-reward names, and a broken reward stops the run with one line that
//! names it.

mod common;

use common::{fails, jsonl, mgrpo, run_config};

const CONFIG: &str = "configs/copy-palindrome.toml";

fn mean(rows: &[serde_json::Value], key: &str) -> f64 {
    rows.iter().map(|m| m[key].as_f64().unwrap()).sum::<f64>() / rows.len() as f64
}

#[test]
fn an_external_reward_trains_a_non_math_task() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let t = std::time::Instant::now();
    run_config("train", CONFIG, &run, &["--set", "log_completions=true"]);
    assert!(t.elapsed().as_secs() < 60, "took {:?}", t.elapsed());
    let m = jsonl(&run.join("metrics.jsonl"));
    assert_eq!(m.len(), 40);
    let first = mean(&m[..5], "rewards/palindrome/mean");
    let last = mean(&m[m.len() - 5..], "rewards/palindrome/mean");
    assert!(first < 0.4, "starts too good: {first}");
    assert!(last > 0.9, "did not learn: {first} → {last}");
    for row in &m {
        // one reward of weight 1: the total is the palindrome reward
        assert_eq!(row["reward"], row["rewards/palindrome/mean"]);
        assert!(row["rewards/palindrome/std"].as_f64().unwrap() >= 0.0);
    }
    // "correct" is a full palindrome (correct_threshold = 1)
    assert!(mean(&m[m.len() - 5..], "rewards/accuracy") > 0.85);
    // the replies really are 3-digit palindromes, as the last step logged them
    let done = jsonl(&run.join("completions.jsonl"));
    let last_step: Vec<&serde_json::Value> = done.iter().filter(|c| c["step"] == 40).collect();
    let good = last_step
        .iter()
        .filter(|c| {
            let s = c["completion"].as_str().unwrap();
            s.len() == 3 && s.chars().all(|ch| ch.is_ascii_digit()) && s.chars().rev().eq(s.chars())
        })
        .count();
    assert!(
        good * 10 >= last_step.len() * 9,
        "{good} of {}",
        last_step.len()
    );
    for c in &last_step {
        assert_eq!(
            c["rewards"]["palindrome"], c["reward"],
            "each reward's score, by name"
        );
    }
    assert!(run.join("reward.png").is_file());
}

#[test]
fn a_broken_reward_stops_the_run_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let out_s = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["reward.commands.palindrome.command=[\"python3\", \"-c\", \"print('x')\"]"],
            "reward `palindrome`: `python3 -c print('x')` wrote 1 lines for 128 rows",
        ),
        (
            &["reward.commands.palindrome.command=[\"python3\", \"scripts/trl_reward.py\", \"scripts/palindrome_reward.py:nope\"]"],
            "KeyError: 'nope'",
        ),
        (
            &["reward.commands.palindrome.command=[\"sleep\", \"10\"]", "reward.commands.palindrome.timeout_s=0.5"],
            "did not finish 128 rows within timeout_s = 0.5 s",
        ),
    ];
    for (sets, want) in cases {
        let mut args = vec!["train", "--config", CONFIG, "--out", out_s];
        for s in *sets {
            args.extend(["--set", s]);
        }
        // the run started (the memory estimate is printed): the error is the last line
        let o = mgrpo(&args);
        assert!(!o.status.success(), "{sets:?} should fail");
        let stderr = String::from_utf8_lossy(&o.stderr);
        let e = stderr.trim().lines().last().unwrap_or_default();
        assert!(
            e.starts_with("error: reward `palindrome`: "),
            "{sets:?}: {stderr}"
        );
        assert!(
            e.contains(want) && !stderr.contains("panicked"),
            "{sets:?}: {stderr}"
        );
        let _ = std::fs::remove_dir_all(&out);
    }
    // config errors come before anything is written
    let bad: &[(&str, &str)] = &[
        (
            "reward.funcs=[\"palindrom\"]",
            "key `reward.funcs`: unknown reward `palindrom`",
        ),
        ("reward.correct_threshold=\"high\"", "correct_threshold"),
        (
            "reward.weights=[1.0, 2.0]",
            "key `reward.weights`: has 2 values for 1 funcs",
        ),
    ];
    for (set, want) in bad {
        let e = fails(&["train", "--config", CONFIG, "--out", out_s, "--set", set]);
        assert!(e.contains(want), "{set}: {e}");
        assert!(!out.exists(), "{set}: wrote {out_s}");
    }
}

/// TRL's None: a reward function that has no opinion on some rows (here every prompt starting
/// with an even digit). Those completions get no reward and advantage 0, the others train as
/// before; `reward` and `rewards/palindrome/mean` are over the scored rows; a run stopped and
/// resumed reads its own metrics back and ends where the uninterrupted one does.
#[test]
fn a_reward_that_abstains_leaves_rows_unscored() {
    let tmp = tempfile::tempdir().unwrap();
    let cmd = "reward.commands.palindrome.command=[\"python3\", \"scripts/trl_reward.py\", \
               \"scripts/palindrome_reward.py:palindrome_or_none\"]";
    let sets = [
        "--set",
        cmd,
        "--set",
        "max_steps=4",
        "--set",
        "save_steps=2",
    ];
    let whole = tmp.path().join("whole");
    let mut args = vec!["--set", "log_completions=true"];
    args.extend(sets);
    run_config("train", CONFIG, &whole, &args);
    let m = jsonl(&whole.join("metrics.jsonl"));
    assert_eq!(m.len(), 4);
    let done = jsonl(&whole.join("completions.jsonl"));
    let (mut unscored, mut scored) = (0, 0);
    for c in &done {
        let problem = c["problem"].as_str().unwrap();
        let digit: u32 = problem.trim_start_matches("pal-").parse().unwrap();
        if digit.is_multiple_of(2) {
            unscored += 1;
            assert!(c["reward"].is_null(), "{c}");
            assert!(c["rewards"]["palindrome"].is_null(), "{c}");
            assert_eq!(c["advantage"], 0.0, "{c}");
        } else {
            scored += 1;
            assert!(c["reward"].as_f64().unwrap() >= 0.0, "{c}");
        }
    }
    assert!(
        unscored > 0 && scored > 0,
        "{unscored} unscored, {scored} scored"
    );
    for (step, row) in m.iter().enumerate() {
        let rows: Vec<f64> = done
            .iter()
            .filter(|c| c["step"] == step + 1 && !c["reward"].is_null())
            .map(|c| c["reward"].as_f64().unwrap())
            .collect();
        let want = rows.iter().sum::<f64>() / rows.len() as f64;
        let got = row["reward"].as_f64().unwrap();
        assert!(
            (got - want).abs() < 1e-5,
            "step {}: {got} vs {want}",
            step + 1
        );
        assert_eq!(row["reward"], row["rewards/palindrome/mean"]);
    }
    let parted = tmp.path().join("parted");
    let mut args = vec!["--stop-after", "2"];
    args.extend(sets);
    run_config("train", CONFIG, &parted, &args);
    let o = mgrpo(&["train", "--resume", parted.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let resumed = jsonl(&parted.join("metrics.jsonl"));
    for (a, b) in m.iter().zip(&resumed) {
        assert_eq!(a["reward"], b["reward"]);
        assert_eq!(a["loss"], b["loss"]);
    }
}
