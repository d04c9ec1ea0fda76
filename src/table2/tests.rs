use super::*;
use report::{verdict, Sense};

/// Write `<root>/<row>/seed<seed>/eval/test.jsonl` from `(t1, t2)` verdicts (problem ids p0…),
/// optionally in reverse order, and a wall time.
fn write_seed(root: &Path, row: &str, seed: u64, v: &[(bool, bool)], reversed: bool) {
    let dir = root.join(row).join(format!("seed{seed}"));
    std::fs::create_dir_all(dir.join("eval")).unwrap();
    let mut lines: Vec<String> = v
        .iter()
        .enumerate()
        .map(|(i, (t1, t2))| {
            format!(
                "{{\"id\":\"p{i}\",\"gold\":\"1\",\"turn1\":\"…\",\"turn1_answer\":null,\
                 \"turn1_correct\":{t1},\"turn2_correct\":{t2}}}"
            )
        })
        .collect();
    if reversed {
        lines.reverse();
    }
    std::fs::write(dir.join("eval/test.jsonl"), lines.join("\n") + "\n").unwrap();
    std::fs::write(dir.join("wall_s"), format!("{}\n", 10 * (seed + 1))).unwrap();
}

/// The claims table's line that starts with `prefix`.
fn claim_line(claims: &str, prefix: &str) -> String {
    claims
        .lines()
        .find(|l| l.starts_with(&format!("| {prefix}")))
        .unwrap_or_else(|| panic!("no `{prefix}` in\n{claims}"))
        .to_string()
}

/// `right` of `n` problems with the pattern `pat` first, the rest (false, false).
fn pattern(n: usize, counts: &[((bool, bool), usize)]) -> Vec<(bool, bool)> {
    let mut v: Vec<(bool, bool)> = counts
        .iter()
        .flat_map(|&(p, c)| std::iter::repeat_n(p, c))
        .collect();
    v.resize(n, (false, false));
    v
}

/// A start model that breaks answers in turn 2 and an MGRPO that fixes them, three seeds of
/// 200 problems: the table's means are the hand-counted fractions, and the claims that the
/// construction makes true hold while the one it makes false does not.
#[test]
fn table_and_claims_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // start: 60 right→right, 10 wrong→right, 30 right→wrong → Acc@t1 45 %, Acc@t2 35 %
    let start = pattern(
        200,
        &[((true, true), 60), ((false, true), 10), ((true, false), 30)],
    );
    // mgrpo: 80 right→right, 40 wrong→right, 0 right→wrong → Acc@t1 40 %, Acc@t2 60 %
    let mgrpo = pattern(200, &[((true, true), 80), ((false, true), 40)]);
    for seed in 0..3 {
        write_seed(root, "start", seed, &start, seed == 1);
        write_seed(root, "mgrpo", seed, &mgrpo, false);
    }
    // a seed directory without per-problem results is reported, not read
    std::fs::create_dir_all(root.join("grpo/seed0/eval")).unwrap();
    std::fs::write(root.join("grpo/seed0/eval/summary.json"), "{}").unwrap();

    let results = load(root).unwrap();
    assert_eq!(results.ids.len(), 200);
    assert_eq!(results.skipped, vec!["grpo seed 0".to_string()]);
    let t = table(&results, &results.all()).unwrap();
    assert!(
        t.contains("| Start model (warm-started SFT) | 3 | 1 | 45.0 [")
            && t.contains("| 35.0 [")
            && t.contains("| 5.0 [")
            && t.contains("| 15.0 [")
            && t.contains("| 20 ± 10 |"),
        "{t}"
    );
    assert!(
        t.contains("| MGRPO | 3 | 1 | 40.0 [") && t.contains("| 60.0 ["),
        "{t}"
    );

    let c = claims(&results, &results.all(), &ClaimOptions::default()).unwrap();
    let line = |prefix: &str| claim_line(&c, prefix);
    // Δi→c 20 % against 5 %: +15 points
    let l = line("1. MGRPO corrects: Δi→c");
    assert!(
        l.contains("| primary | 3 × 1 | +15.0 |") && l.contains("| holds |"),
        "{l}"
    );
    assert!(line("1. MGRPO corrects: Δ(t1,t2)").contains("| holds |"));
    // Δc→i is exactly 0 in every seed: below 1 %
    assert!(line("1. MGRPO corrects: Δc→i").contains("| holds |"));
    // Acc@t2 60 % against 35 %
    assert!(line("MGRPO raises Acc@t2").contains("+25.0"));
    // Acc@t1 40 % against 45 %: below the start, not established at three seeds
    let l = line("MGRPO lifts turn 1");
    assert!(l.contains("-5.0") && l.contains("not established"), "{l}");
    // rows that are absent (grpo, intrinsic) leave their claims out
    assert!(
        !c.contains("GRPO raises Acc@t1") && !c.contains("Intrinsic"),
        "{c}"
    );
}

/// The random-reward control is a row after the methods, and the positive-control claims compare
/// GRPO with the start and with its control: here GRPO gains 20 points on the start and the
/// control loses 10, every problem decided the same way in every seed.
#[test]
fn the_random_reward_control_is_a_row_and_its_claims_are_judged() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let right = |n: usize| pattern(200, &[((true, true), n)]);
    for seed in 0..3 {
        write_seed(root, "start", seed, &right(60), false);
        write_seed(root, "grpo", seed, &right(100), false);
        write_seed(root, "grpo-random", seed, &right(40), false);
    }
    let results = load(root).unwrap();
    let t = table(&results, &results.all()).unwrap();
    let order: Vec<&str> = t
        .lines()
        .skip(2)
        .map(|l| l.split(" | ").next().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "| Start model (warm-started SFT)",
            "| GRPO (one round)",
            "| GRPO with a random reward (control: a coin of the true reward's mean)"
        ],
        "{t}"
    );
    let c = claims(&results, &results.all(), &ClaimOptions::default()).unwrap();
    let line = |prefix: &str| claim_line(&c, prefix);
    let l = line("Positive control");
    assert!(l.contains("+20.0") && l.contains("| holds |"), "{l}");
    let l = line("Random-reward control");
    assert!(
        l.contains("-10.0") && l.contains("the opposite holds"),
        "{l}"
    );
    let l = line("The reward teaches");
    assert!(l.contains("+30.0") && l.contains("| holds |"), "{l}");
    assert!(!c.contains("MGRPO") && !c.contains("iGRPO"), "{c}");
}

/// The main job's last line: a gain whose paired interval is above zero is "learnt", a loss
/// below zero "got worse", no change "not shown".
#[test]
fn the_learning_verdict_reads_the_paired_interval() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let right = |n: usize| pattern(200, &[((true, true), n)]);
    write_seed(root, "before", 0, &right(60), false);
    write_seed(root, "after", 0, &right(100), true);
    let read = |row: &str| {
        crate::eval::verdicts::Verdicts::read(&root.join(row).join("seed0/eval/test.jsonl"))
            .unwrap()
    };
    let (before, after) = (read("before"), read("after"));
    let v = learning_verdict(&before, &after, true).unwrap();
    assert!(
        v.starts_with("Learnt: Acc@t2 changed by +20.0 points"),
        "{v}"
    );
    let v = learning_verdict(&after, &before, false).unwrap();
    assert!(v.starts_with("Got worse: Acc@t1 changed by -20.0"), "{v}");
    let v = learning_verdict(&before, &before, true).unwrap();
    assert!(v.starts_with("Not shown to learn"), "{v}");
}

#[test]
fn verdicts_name_the_side() {
    assert_eq!(verdict(true, 0.03, Sense::Above(0.0)), "holds");
    assert_eq!(verdict(false, 0.03, Sense::Above(0.0)), "not established");
    assert_eq!(
        verdict(true, -0.03, Sense::Above(0.0)),
        "the opposite holds"
    );
    assert_eq!(verdict(true, 0.005, Sense::Below(0.01)), "holds");
    assert_eq!(
        verdict(true, 0.02, Sense::Below(0.01)),
        "the opposite holds"
    );
    assert_eq!(verdict(false, 0.005, Sense::Below(0.01)), "not established");
}

#[test]
fn export_keeps_what_the_statistics_read() {
    let dir = tempfile::tempdir().unwrap();
    let (root, out) = (dir.path().join("runs"), dir.path().join("docs"));
    let v = pattern(50, &[((true, true), 20), ((false, true), 5)]);
    for seed in [0, 2] {
        write_seed(&root, "mgrpo", seed, &v, seed == 2);
    }
    let results = load(&root).unwrap();
    results.export(&out).unwrap();
    let text = std::fs::read_to_string(out.join("mgrpo/seed2/eval/test.jsonl")).unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        r#"{"id":"p49","turn1_answered":false,"turn1_correct":false,"turn2_correct":false}"#
    );
    assert_eq!(
        std::fs::read_to_string(out.join("mgrpo/seed2/wall_s")).unwrap(),
        "30\n"
    );
    let again = load(&out).unwrap();
    assert_eq!(
        table(&again, &again.all()).unwrap(),
        table(&results, &results.all()).unwrap()
    );
}

#[test]
fn bad_results_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let v = pattern(4, &[((true, true), 2)]);
    write_seed(root, "start", 0, &v, false);
    write_seed(root, "mgrpo", 0, &v[..3], false);
    let e = load(root).unwrap_err().to_string();
    assert!(
        e.contains("mgrpo/seed0/eval/test.jsonl: not the problems of") && e.contains("3 against 4"),
        "{e}"
    );

    write_seed(root, "mgrpo", 0, &v, false);
    let bad = root.join("mgrpo/seed0/eval/test.jsonl");
    std::fs::write(
        &bad,
        "{\"id\":\"p0\",\"turn1_correct\":true,\"turn2_correct\":true}\n\
         {\"id\":\"p1\",\"turn1_correct\":\"yes\",\"turn2_correct\":true}\n",
    )
    .unwrap();
    let e = load(root).unwrap_err().to_string();
    assert!(
        e.contains("test.jsonl:2: `turn1_correct` must be true or false"),
        "{e}"
    );

    std::fs::write(
        &bad,
        "{\"id\":\"p0\",\"turn1_correct\":true,\"turn2_correct\":true}\n\
         {\"id\":\"p0\",\"turn1_correct\":true,\"turn2_correct\":true}\n",
    )
    .unwrap();
    let e = load(root).unwrap_err().to_string();
    assert!(
        e.contains("test.jsonl:2: problem `p0` sample 0 again (first on line 1)"),
        "{e}"
    );

    std::fs::write(root.join("mgrpo/seed0/eval/other.jsonl"), "").unwrap();
    let e = load(root).unwrap_err().to_string();
    assert!(e.contains("2 per-problem files"), "{e}");

    let e = load(&root.join("nothing")).unwrap_err().to_string();
    assert!(e.contains("not a directory of Table-2 runs"), "{e}");
}

/// Samples per problem end to end: the files' lines grouped by problem, the panel's cells the
/// per-problem means, and the sample level estimated. The hand example of the ANOVA test
/// (2 seeds × 3 problems × 2 samples), written in shuffled line order: mean ⅔, Var(mean) =
/// 5/72, MS_within = ⅙. Getting the per-problem mean wrong (e.g. keeping the first sample)
/// or dropping the level (one sample) changes all three.
#[test]
fn samples_are_per_problem_means_with_their_own_level() {
    let y = [[[1, 1], [1, 0], [0, 0]], [[1, 1], [1, 1], [0, 1]]];
    let dir = tempfile::tempdir().unwrap();
    for (s, seed) in y.iter().enumerate() {
        let eval = dir.path().join(format!("start/seed{s}/eval"));
        std::fs::create_dir_all(&eval).unwrap();
        let mut lines = Vec::new();
        for k in [1, 0] {
            for (p, cell) in seed.iter().enumerate().rev() {
                let t = cell[k] == 1;
                lines.push(format!(
                    r#"{{"id":"p{p}","sample":{k},"turn1_correct":{t},"turn2_correct":false}}"#
                ));
            }
        }
        std::fs::write(eval.join("test.jsonl"), lines.join("\n")).unwrap();
    }
    let results = load(dir.path()).unwrap();
    assert_eq!(results.ids, ["p2", "p1", "p0"]);
    let row = results.row("start").unwrap();
    let p = panel(row, Metric::AccT1, &[0, 1], &results.all()).unwrap();
    assert_eq!(p.samples, 2);
    // problems in the order of the first file read (p2, p1, p0)
    assert_eq!(
        p.cell_means(),
        vec![vec![0.0, 0.5, 1.0], vec![0.5, 1.0, 1.0]]
    );
    let e = crate::stats::estimate(&p).unwrap();
    assert!((e.mean - 2.0 / 3.0).abs() < 1e-12);
    assert!((e.se * e.se - 5.0 / 72.0).abs() < 1e-12, "{e:?}");
    assert!(
        (e.components.within.unwrap() - 1.0 / 6.0).abs() < 1e-12,
        "{e:?}"
    );
}
