//! MGRPO and iGRPO end to end on the copy-task fixture (`configs/copy-mgrpo.toml`,
//! `configs/copy-igrpo.toml`), and `mgrpo eval`'s two-turn table.

mod common;

use std::path::Path;

use common::{fails, fixture, jsonl, mgrpo, run_config, step_values};
use serde_json::Value;

fn train(config: &str, out: &Path, extra: &[&str]) {
    run_config("train", config, out, extra);
}

fn sum(rows: &[Value], key: &str) -> f64 {
    rows.iter()
        .map(|m| m[key].as_f64().unwrap_or_else(|| panic!("no {key} in {m}")))
        .sum()
}

#[test]
fn mgrpo_trains_layer2_groups_with_signal() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let t = std::time::Instant::now();
    train(
        "configs/copy-mgrpo.toml",
        &run,
        &["--set", "max_steps=20", "--set", "log_completions=true"],
    );
    assert!(t.elapsed().as_secs() < 180);
    let m = jsonl(&run.join("metrics.jsonl"));
    assert_eq!(m.len(), 20);
    for row in &m {
        let (q, kept) = (row["layer2/queries"].as_u64(), row["layer2/kept"].as_u64());
        // every one of the 16 × 8 layer-1 answers becomes a query
        assert_eq!(q, Some(128));
        assert!(kept.unwrap() <= 128);
        let signal = row["layer2/groups_with_signal"].as_u64().unwrap();
        let flat = row["layer2/groups_zero_std"].as_u64().unwrap();
        assert_eq!(signal + flat, kept.unwrap(), "{row}");
        assert_eq!(row["rollout_tokens/layer1"], 128);
        // selection (one per query) + H = 4 per kept query, one token each
        assert_eq!(
            row["rollout_tokens/layer2"].as_u64().unwrap(),
            128 + 4 * kept.unwrap()
        );
        assert!(row["layer2/loss"].is_number());
    }
    assert!(
        sum(&m, "layer2/groups_with_signal") > 0.0,
        "layer 2 never had a group with signal"
    );
    assert!(sum(&m, "layer2/wrong_to_right") > 0.0);
    // the layer-2 samples trained on have non-zero advantages, one group of H = 4 per query
    let c = jsonl(&run.join("completions.jsonl"));
    let l2: Vec<&Value> = c.iter().filter(|r| r["layer"] == "2").collect();
    assert_eq!(
        l2.len() as f64,
        4.0 * sum(&m, "layer2/kept"),
        "H samples per kept query"
    );
    assert!(l2.iter().any(|r| r["advantage"].as_f64().unwrap() != 0.0));
    assert!(l2.iter().all(|r| r["first_answer"].is_string()));
    // the two-turn evaluation before the first step and after the last
    let e = jsonl(&run.join("eval/metrics.jsonl"));
    let steps: Vec<u64> = e.iter().map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [0, 20]);
    for r in &e {
        let d = r["delta"].as_f64().unwrap();
        let (i2c, c2i) = (
            r["delta_i_to_c"].as_f64().unwrap(),
            r["delta_c_to_i"].as_f64().unwrap(),
        );
        assert!((d - (i2c - c2i)).abs() < 1e-9);
        assert_eq!(r["n"], 60);
    }
    let answers = jsonl(&run.join("eval/step-20.jsonl"));
    assert_eq!(answers.len(), 60);
    assert!(answers.iter().all(|a| a["turn2"].is_string()));
    assert!(run.join("model/model.safetensors").is_file());
}

#[test]
fn mgrpo_resume_is_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let sets = [
        "--set",
        "max_steps=8",
        "--set",
        "save_steps=3",
        "--set",
        "eval_steps=4",
        "--set",
        "mgrpo.layer2_max_queries_per_step=40",
        "--set",
        "log_completions=true",
    ];
    train("configs/copy-mgrpo.toml", &a, &sets);
    let mut stop = sets.to_vec();
    stop.extend(["--stop-after", "5"]);
    train("configs/copy-mgrpo.toml", &b, &stop);
    let o = mgrpo(&["train", "--resume", b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(step_values(&a), step_values(&b));
    assert!(step_values(&a).iter().all(|m| m["layer2/queries"] == 40));
    common::assert_same_files(
        &a,
        &b,
        &[
            "model/model.safetensors",
            "completions.jsonl",
            "eval/metrics.jsonl",
            "eval/step-8.jsonl",
        ],
        "",
    );
}

#[test]
fn igrpo_refines_the_best_draft() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    train(
        "configs/copy-igrpo.toml",
        &run,
        &["--set", "max_steps=30", "--set", "log_completions=true"],
    );
    let m = jsonl(&run.join("metrics.jsonl"));
    for row in &m {
        // 16 questions × N = 4 drafts, then × G = 8 refinements, one token each
        assert_eq!(row["rollout_tokens/layer1"], 64);
        assert_eq!(row["rollout_tokens/layer2"], 128);
        let (all, best) = (
            row["igrpo/draft_reward"].as_f64().unwrap(),
            row["igrpo/best_draft_reward"].as_f64().unwrap(),
        );
        assert!(best >= all, "the best draft is at least the mean: {row}");
        assert!(row.get("layer2/queries").is_none());
    }
    let c = jsonl(&run.join("completions.jsonl"));
    assert_eq!(c.len(), 30 * 128, "only refinements are trained and logged");
    assert!(c.iter().all(|r| r["layer"] == "refine"));
    // refinements learn: reward over the last 5 steps above the first 5
    let first: f64 = m[..5].iter().map(|r| r["reward"].as_f64().unwrap()).sum();
    let last: f64 = m[25..].iter().map(|r| r["reward"].as_f64().unwrap()).sum();
    assert!(last > first, "{first} → {last}");
}

#[test]
fn self_correction_configs_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let out_s = out.to_str().unwrap();
    let cfg = "configs/copy-mgrpo.toml";
    for (sets, needle) in [
        (vec!["mgrpo.augment_h=1"], "mgrpo.augment_h"),
        (vec!["mgrpo.layer2_on=sometimes"], "sometimes"),
        (vec!["mgrpo.guide_phrases=[]"], "mgrpo.guide_phrases"),
        (vec!["eval_turns=3"], "eval_turns"),
        (vec!["eval_samples=0"], "eval_samples"),
        (vec!["mgrpo.layer2_weight=-1"], "mgrpo.layer2_weight"),
        (vec!["algorithm=reinforce"], "reinforce"),
        (vec!["igrpo.draft_tie=longest"], "longest"),
        // a key that moved into a table points to it
        (vec!["augment_h=4"], "[mgrpo] augment_h"),
        (
            vec![
                "max_completion_length=31",
                "mgrpo.layer2_max_completion_length=31",
            ],
            "exceed the model's context 64",
        ),
        (vec!["eval_dataset=tests/fixtures/nope.jsonl"], "nope.jsonl"),
    ] {
        let mut a = vec!["train", "--config", cfg, "--out", out_s];
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

#[test]
fn eval_prints_the_two_turn_table_per_benchmark() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("eval");
    let model = fixture("copy-task");
    let data = model.join("train.jsonl");
    let other = tmp.path().join("copy-b.jsonl");
    std::fs::copy(&data, &other).unwrap();
    let run = |extra: &[&str]| {
        let mut a = vec![
            "eval",
            "--model",
            model.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--template",
            "plain",
            "--max-new-tokens",
            "1",
            "--out",
            out.to_str().unwrap(),
            // each run replaces the last one's evaluation
            "--overwrite",
        ];
        a.extend_from_slice(extra);
        mgrpo(&a)
    };
    let o = run(&[
        "--data",
        other.to_str().unwrap(),
        "--limit",
        "25",
        "--guide",
        "#",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0],
        "| Benchmark | N | Acc@t1 | Acc@t2 | Δ(t1,t2) | Δi→c | Δc→i |"
    );
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[2].starts_with("| train | 25 |") && lines[3].starts_with("| copy-b | 25 |"));
    // percentages: Δ = Δi→c − Δc→i on every row, and the JSONL agrees with the row
    for (line, file) in lines[2..].iter().zip(["train.jsonl", "copy-b.jsonl"]) {
        let cells: Vec<f64> = line
            .split('|')
            .filter_map(|c| c.trim().parse().ok())
            .collect();
        let (n, t1, t2, d, i2c, c2i) = (cells[0], cells[1], cells[2], cells[3], cells[4], cells[5]);
        assert!(
            (d - (i2c - c2i)).abs() < 0.11 && (d - (t2 - t1)).abs() < 0.11,
            "{line}"
        );
        let rows = jsonl(&out.join(file));
        assert_eq!(rows.len() as f64, n);
        let right1 = rows.iter().filter(|r| r["turn1_correct"] == true).count() as f64;
        assert!((100.0 * right1 / n - t1).abs() < 0.051, "{line}");
        assert!(rows
            .iter()
            .all(|r| r["turn2"].is_string() && r["gold"].is_string()));
    }
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["guide"], "#");
    assert!(out.join("table.md").is_file());

    // one turn, the intrinsic baseline
    let o = run(&["--turns", "1"]);
    assert!(o.status.success());
    assert!(String::from_utf8(o.stdout)
        .unwrap()
        .starts_with("| Benchmark | N | Acc@t1 |\n"));
    // the intrinsic instruction is ~170 characters, too long for the fixtures' contexts: one
    // clear error (the turn-2 text itself is checked in src/eval/mod.rs on a scripted policy)
    let err = fails(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--max-new-tokens",
        "1",
        "--baseline",
        "intrinsic",
    ]);
    assert!(err.contains("exceed the model's context (64)"), "{err}");
    // a bad file among good ones: one line naming it, nothing written
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"question\": \"1\", \"answer\": \"#### 1\"}\nnot json\n",
    )
    .unwrap();
    let fresh = tmp.path().join("fresh");
    let err = fails(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--data",
        bad.to_str().unwrap(),
        "--max-new-tokens",
        "1",
        "--template",
        "plain",
        "--guide",
        "#",
        "--out",
        fresh.to_str().unwrap(),
    ]);
    assert!(err.contains("bad.jsonl") && err.contains('2'), "{err}");
    assert!(!fresh.exists());
    // clap's usage error (several lines)
    let o = mgrpo(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--guide",
        "x",
        "--baseline",
        "intrinsic",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be used with"));
}
