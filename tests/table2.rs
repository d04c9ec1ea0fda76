//! `mgrpo table2`: Table 2 over seeds with intervals and paired claims, from `mgrpo eval`'s
//! per-problem results, and its export of the verdicts.

mod common;

use std::path::Path;

use common::{fails, mgrpo};

/// `<root>/<row>/seed<seed>/eval/test.jsonl`: `right1` problems right at turn 1, of which the
/// first `kept` stay right at turn 2, and `fixed` wrong ones right at turn 2, of 100.
fn seed(root: &Path, row: &str, seed: u32, right1: usize, kept: usize, fixed: usize) {
    let eval = root.join(row).join(format!("seed{seed}/eval"));
    std::fs::create_dir_all(&eval).unwrap();
    let lines: Vec<String> = (0..100)
        .map(|i| {
            let t1 = i < right1;
            let t2 = if t1 { i < kept } else { i < right1 + fixed };
            format!(r#"{{"id":"q{i}","turn1_correct":{t1},"turn2_correct":{t2}}}"#)
        })
        .collect();
    std::fs::write(eval.join("test.jsonl"), lines.join("\n")).unwrap();
    std::fs::write(root.join(row).join(format!("seed{seed}/wall_s")), "12\n").unwrap();
}

#[test]
fn table2_prints_intervals_and_claims_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let (runs, docs) = (dir.path().join("runs"), dir.path().join("docs"));
    for s in 0..2 {
        seed(&runs, "start", s, 30, 20, 5); // Acc@t1 30, Acc@t2 25
        seed(&runs, "intrinsic", s, 30, 2, 0); // Acc@t2 2: turn 2 breaks answers
        seed(&runs, "mgrpo", s, 32, 32, 12); // Acc@t2 44, nothing broken
    }
    let o = mgrpo(&[
        "table2",
        runs.to_str().unwrap(),
        "--export",
        docs.to_str().unwrap(),
        "--within-share",
        "0.9",
        "--plan",
        "10x400x4",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("the 100 problems"), "{out}");
    assert!(
        out.contains("| Start model (warm-started SFT) | 2 | 1 | 30.0 ["),
        "{out}"
    );
    assert!(
        out.contains("| MGRPO | 2 | 1 | 32.0 [") && out.contains("| 12 ± 0 |"),
        "{out}"
    );
    let claim = |text: &str| {
        out.lines()
            .find(|l| l.contains(text))
            .unwrap_or_else(|| panic!("no `{text}` in\n{out}"))
            .to_string()
    };
    assert!(claim("Intrinsic self-correction hurts").contains("| -28.0 |"));
    assert!(claim("Intrinsic self-correction hurts").contains("| primary | 2 × 1 |"));
    assert!(claim("Intrinsic self-correction hurts").contains("| holds |"));
    assert!(claim("MGRPO corrects: Δi→c(MGRPO)").contains("| +7.0 |"));
    // the planned design (more seeds, problems and samples) detects a smaller effect than the
    // current one; the assumed sampling share fills the samples column
    assert!(out.contains("| detectable at 10×400×4 |"), "{out}");
    let cols: Vec<String> = claim("MGRPO raises Acc@t2")
        .split('|')
        .map(|c| c.trim().to_string())
        .collect();
    let (now, planned): (f64, f64) = (cols[9].parse().unwrap(), cols[12].parse().unwrap());
    assert!(planned < now, "{cols:?}");
    assert_ne!(cols[11], "–", "{cols:?}");
    assert!(claim("MGRPO raises Acc@t2").contains("| exploratory |"));
    assert!(claim("MGRPO raises Acc@t2").contains("| holds |"));
    assert!(!out.contains("MGRPO beats GRPO"), "no GRPO row: {out}");
    for row in ["start", "intrinsic", "mgrpo"] {
        for s in 0..2 {
            assert!(docs
                .join(format!("{row}/seed{s}/eval/test.jsonl"))
                .is_file());
        }
    }
    // the exported verdicts rebuild the same table
    let again = mgrpo(&[
        "table2",
        docs.to_str().unwrap(),
        "--within-share",
        "0.9",
        "--plan",
        "10x400x4",
    ]);
    assert_eq!(String::from_utf8_lossy(&again.stdout), out);
}

#[test]
fn table2_refuses_what_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let e = fails(&["table2", dir.path().join("none").to_str().unwrap()]);
    assert!(e.contains("not a directory of Table-2 runs"), "{e}");
    let e = fails(&["table2", dir.path().to_str().unwrap()]);
    assert!(
        e.contains("no <row>/seed<N>/eval/*.jsonl to summarise"),
        "{e}"
    );
    seed(dir.path(), "start", 0, 10, 10, 0);
    std::fs::write(dir.path().join("start/seed0/wall_s"), "soon\n").unwrap();
    let e = fails(&["table2", dir.path().to_str().unwrap()]);
    assert!(
        e.contains("start/seed0/wall_s: not a number of seconds"),
        "{e}"
    );
}

/// Several samples per problem and a family label: the cells are per-problem means, the
/// sample count is printed, the power columns use the sample level, and `--by family` gives
/// one table per family (from the files' own `family`, or joined from `--data`).
#[test]
fn table2_with_samples_and_families() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    for s in 0..3u32 {
        let eval = runs.join(format!("start/seed{s}/eval"));
        std::fs::create_dir_all(&eval).unwrap();
        let mut lines = Vec::new();
        for i in 0..40 {
            let family = if i < 20 { "sum" } else { "linear" };
            for k in 0..2 {
                // `linear` right in both samples, `sum` right in sample 0 only (and in sample
                // 1 on seed 2's first ten problems): per-problem means 1 and ½
                let t1 = family == "linear" || k == 0 || (s == 2 && i < 10);
                lines.push(format!(
                    r#"{{"id":"q{i}","sample":{k},"family":"{family}","turn1_correct":{t1},"turn2_correct":{t1}}}"#
                ));
            }
        }
        std::fs::write(eval.join("test.jsonl"), lines.join("\n")).unwrap();
    }
    let o = mgrpo(&[
        "table2",
        runs.to_str().unwrap(),
        "--by",
        "family",
        "--components",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("| Start model (warm-started SFT) | Acc@t1 | 79.2 |"),
        "{out}"
    );
    // seeds 0 and 1: (20·1 + 20·½)/40 = 75 %; seed 2: (20 + 10·1 + 10·½)/40 = 87.5 % → 79.2
    assert!(
        out.contains("| Start model (warm-started SFT) | 3 | 2 | 79.2 ["),
        "{out}"
    );
    assert!(
        out.contains("### family = linear (20 problems; exploratory)"),
        "{out}"
    );
    assert!(out.contains("| Start model (warm-started SFT) | 3 | 2 | 100.0 [100.0, 100.0]"));
    assert!(
        out.contains("### family = sum (20 problems; exploratory)"),
        "{out}"
    );
    // `family` is the default grouping when every problem has one
    let o = mgrpo(&["table2", runs.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("### family = sum (20 problems"));
    // a label joined from --data is kept by --export: the export groups by it unasked
    let plain = dir.path().join("plain");
    let eval = plain.join("start/seed0/eval");
    std::fs::create_dir_all(&eval).unwrap();
    let line = |i: usize| format!(r#"{{"id":"q{i}","turn1_correct":true,"turn2_correct":false}}"#);
    std::fs::write(
        eval.join("test.jsonl"),
        (0..4).map(line).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let tasks = dir.path().join("tasks.jsonl");
    let rows: Vec<String> = (0..4)
        .map(|i| format!(r#"{{"id":"q{i}","family":"{}"}}"#, ["a", "b"][i % 2]))
        .collect();
    std::fs::write(&tasks, rows.join("\n")).unwrap();
    let kept = dir.path().join("kept");
    let o = mgrpo(&[
        "table2",
        plain.to_str().unwrap(),
        "--by",
        "family",
        "--data",
        tasks.to_str().unwrap(),
        "--export",
        kept.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let again = mgrpo(&["table2", kept.to_str().unwrap()]);
    let again = String::from_utf8_lossy(&again.stdout);
    assert!(again.contains("### family = b (2 problems"), "{again}");
    // a dataset without the field named is refused by line
    let data = dir.path().join("data.jsonl");
    std::fs::write(&data, "{\"id\":\"q0\",\"kind\":\"x\"}\n").unwrap();
    let e = fails(&[
        "table2",
        runs.to_str().unwrap(),
        "--by",
        "family",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(e.contains("data.jsonl:1: no `family` to group by"), "{e}");
    let e = fails(&["table2", runs.to_str().unwrap(), "--by", "level"]);
    assert!(e.contains("problem `q0` has no `level`"), "{e}");
}

#[test]
fn table2_coverage_reports_both_estimators() {
    let o = mgrpo(&["table2", "--coverage", "--simulations", "50"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("| paired")).count(),
        18,
        "{out}"
    );
    assert!(out.contains("| ANOVA covers |") && out.contains("| bootstrap covers |"));
    let e = fails(&["table2", "--coverage", "--simulations", "0"]);
    assert!(e.contains("--simulations"), "{e}");
}

/// `--compare`: a run's end against its start, problem by problem (ids in any order).
#[test]
fn table2_compares_two_evaluations() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, right: usize, reversed: bool| {
        let mut lines: Vec<String> = (0..50)
            .map(|i| {
                let t = i < right;
                format!(r#"{{"id":"q{i}","turn1_correct":{t},"turn2_correct":{t}}}"#)
            })
            .collect();
        if reversed {
            lines.reverse();
        }
        let path = dir.path().join(name);
        std::fs::write(&path, lines.join("\n")).unwrap();
        path
    };
    let (before, after) = (
        write("step-0.jsonl", 10, false),
        write("step-9.jsonl", 20, true),
    );
    std::fs::write(
        dir.path().join("metrics.jsonl"),
        "{\"step\":0,\"acc_t1\":0.2}\n",
    )
    .unwrap();
    let kept = dir.path().join("kept");
    let o = mgrpo(&[
        "table2",
        "--compare",
        before.to_str().unwrap(),
        after.to_str().unwrap(),
        "--export",
        kept.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    // 10 problems gained of 50: +20 points, a paired t interval on 49 df
    assert!(out.contains("(50 problems × 1 samples)"), "{out}");
    assert!(
        out.contains("| Acc@t1 | 20.0 [") && out.contains("| 40.0 [") && out.contains("| +20.0 ["),
        "{out}"
    );
    // files that do not say turn 2 answered are judged by Acc@t1; the interval is above zero
    assert!(
        out.contains("Learnt: Acc@t1 changed by +20.0 points"),
        "{out}"
    );
    // the kept files give the same comparison
    for f in ["step-0.jsonl", "step-9.jsonl", "metrics.jsonl"] {
        assert!(kept.join(f).is_file(), "{f}");
    }
    let again = mgrpo(&[
        "table2",
        "--compare",
        kept.join("step-0.jsonl").to_str().unwrap(),
        kept.join("step-9.jsonl").to_str().unwrap(),
    ]);
    let tail = |o: &std::process::Output| {
        let t = String::from_utf8_lossy(&o.stdout).to_string();
        t[t.find("| metric").unwrap()..].to_string()
    };
    assert_eq!(tail(&again), tail(&o));
    let missing = dir.path().join("step-5.jsonl");
    let e = fails(&[
        "table2",
        "--compare",
        before.to_str().unwrap(),
        missing.to_str().unwrap(),
    ]);
    assert!(e.contains("step-5.jsonl"), "{e}");
}
