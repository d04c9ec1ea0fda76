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
        "--resamples",
        "400",
        "--export",
        docs.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("the 100 problems"), "{out}");
    assert!(
        out.contains("| Start model (warm-started SFT) | 2 | 30.0 ["),
        "{out}"
    );
    assert!(
        out.contains("| MGRPO | 2 | 32.0 [") && out.contains("| 12 ± 0 |"),
        "{out}"
    );
    let claim = |text: &str| {
        out.lines()
            .find(|l| l.contains(text))
            .unwrap_or_else(|| panic!("no `{text}` in\n{out}"))
            .to_string()
    };
    assert!(claim("Intrinsic self-correction hurts").contains("| -28.0 |"));
    assert!(claim("Intrinsic self-correction hurts").ends_with("| holds |"));
    assert!(claim("MGRPO corrects: Δi→c(MGRPO)").contains("| +7.0 |"));
    assert!(claim("MGRPO raises Acc@t2").ends_with("| holds |"));
    assert!(!out.contains("MGRPO beats GRPO"), "no GRPO row: {out}");
    for row in ["start", "intrinsic", "mgrpo"] {
        for s in 0..2 {
            assert!(docs
                .join(format!("{row}/seed{s}/eval/test.jsonl"))
                .is_file());
        }
    }
    // the exported verdicts rebuild the same table
    let again = mgrpo(&["table2", docs.to_str().unwrap(), "--resamples", "400"]);
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
