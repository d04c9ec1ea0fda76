//! The files of the laptop task, as `mgrpo task` writes them:
//! - `train.jsonl` / `test.jsonl`: problem sets for RL and the held-out evaluation
//!   (`{"id", "question", "answer", "family", "solution"}`, the `qa` dataset format);
//! - `sft.jsonl`: the warm-start corpus, `{"id", "prompt", "completion"}` pairs for `mgrpo sft`.
//!   Most pairs are a question and its reference solution; a `trace_share` of them are
//!   self-correction traces whose prompt already holds an attempt (right or with one slip) and
//!   a guide phrase, exactly as MGRPO's layer 2 and the turn-2 evaluation build it, and whose
//!   completion is the check. The loss therefore never trains the wrong attempts themselves.
//!   A [`TeacherNoise`] makes the teacher of the plain solutions imperfect, the way a
//!   pretraining corpus is: a share of them state the answer without working (a shortcut the
//!   small model can imitate in form but not in accuracy), a share carry one slip through.
//!
//! The test problems come from their own RNG stream, and no question of the test split occurs
//! in the train split or the corpus.

use std::collections::HashSet;
use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::arith::{ArithConfig, ArithProblem, ArithTask, Family};
use super::corpus::{sft_pair, PairKind, TeacherNoise};
use crate::error::{Error, Result};
use crate::run::fsutil::write_atomic;
use crate::text::template::PromptTemplate;

/// What to write.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub config: ArithConfig,
    pub seed: u64,
    pub train: usize,
    pub test: usize,
    pub sft: usize,
    /// Problems appended to the held-out split after the `test` first ones, drawn on from its
    /// stream after the train split and the corpus are drawn, so that those stay exactly as
    /// without them and none of their questions occurs in either: a bigger held-out split
    /// for a model trained on the task without them.
    pub more_test: usize,
    /// Share of self-correction traces in the corpus (half after a right attempt, half after a
    /// slip).
    pub trace_share: f64,
    /// How the plain solutions of the corpus depart from the reference.
    pub noise: TeacherNoise,
    pub template: PromptTemplate,
    /// Guide phrases of the traces, one drawn per trace (MGRPO's pool).
    pub guides: Vec<String>,
}

/// Counts of what was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSummary {
    pub train: usize,
    pub test: usize,
    pub sft: usize,
    pub traces: usize,
    pub traces_after_slip: usize,
    pub shortcuts: usize,
    pub slipped_solutions: usize,
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::Sum => "sum",
        Family::Linear => "linear",
    }
}

/// The most rows one split or the corpus may have.
pub const MAX_ROWS: usize = 10_000_000;

/// Write `train.jsonl`, `test.jsonl` and `sft.jsonl` into `out` (created if needed; each file
/// written atomically).
pub fn write_task(spec: &TaskSpec, out: &Path) -> Result<TaskSummary> {
    if !(0.0..=1.0).contains(&spec.trace_share) {
        return Err(Error::arg("--trace-share", "must be in [0, 1]"));
    }
    spec.noise.validate()?;
    // checked before anything is allocated (`--test 1e17` asked for a vector of that capacity)
    for (flag, n) in [
        ("--train", spec.train),
        ("--test", spec.test),
        ("--more-test", spec.more_test),
        ("--sft", spec.sft),
    ] {
        if n > MAX_ROWS {
            return Err(Error::arg(
                flag,
                format!("at most {MAX_ROWS} rows (got {n}): a file of gigabytes"),
            ));
        }
    }
    if spec.test == 0 || spec.train + spec.sft == 0 {
        return Err(Error::Invalid(
            "the task needs a test split and a train split or corpus".into(),
        ));
    }
    let task = |stream: u64| {
        ArithTask::new(
            spec.config.clone(),
            spec.seed.wrapping_mul(2).wrapping_add(stream),
        )
        .map_err(Error::from)
    };
    // The held-out split first, from its own stream; its questions are then kept out of the rest.
    let mut test_task = task(0)?;
    let mut test = Vec::with_capacity(spec.test);
    let mut seen = HashSet::new();
    let mut tries = 0usize;
    while test.len() < spec.test {
        let p = test_task.sample();
        tries += 1;
        if seen.insert(p.question.clone()) {
            test.push(p);
        } else if tries > spec.test * 50 {
            return Err(Error::Invalid(format!(
                "only {} distinct test problems after {tries} draws: widen the task (digits, steps)",
                test.len()
            )));
        }
    }
    let mut rest = task(1)?;
    let mut draw = |n: usize, what: &str| -> Result<Vec<ArithProblem>> {
        let mut v = Vec::with_capacity(n);
        let mut tries = 0usize;
        while v.len() < n {
            let p = rest.sample();
            tries += 1;
            if !seen.contains(&p.question) {
                v.push(p);
            } else if tries > n * 50 + 1000 {
                return Err(Error::Invalid(format!(
                    "cannot draw {n} {what} problems outside the test split: widen the task"
                )));
            }
        }
        Ok(v)
    };
    let train = draw(spec.train, "train")?;
    let sft = draw(spec.sft, "corpus")?;
    // the extension: on from the test stream, clear of every question drawn so far
    for p in train.iter().chain(&sft) {
        seen.insert(p.question.clone());
    }
    let goal = test.len() + spec.more_test;
    let mut tries = 0usize;
    while test.len() < goal {
        let p = test_task.sample();
        tries += 1;
        if seen.insert(p.question.clone()) {
            test.push(p);
        } else if tries > spec.more_test * 50 + 1000 {
            return Err(Error::Invalid(format!(
                "only {} of {} more distinct test problems after {tries} draws: widen the task \
                 (digits, steps)",
                test.len() + spec.more_test - goal,
                spec.more_test
            )));
        }
    }

    let rows = |split: &str, problems: &[ArithProblem]| -> Result<String> {
        let mut text = String::new();
        for (i, p) in problems.iter().enumerate() {
            let row = json!({
                "id": format!("{split}-{i}"),
                "question": p.question,
                "answer": p.answer.to_string(),
                "family": family_name(p.family),
                "solution": p.solution(),
            });
            text.push_str(
                &serde_json::to_string(&row).map_err(|e| Error::serialize("a task row", e))?,
            );
            text.push('\n');
        }
        Ok(text)
    };
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x5f7_u64);
    let mut counts = std::collections::HashMap::new();
    let mut corpus = String::new();
    for (i, p) in sft.iter().enumerate() {
        let pair = sft_pair(
            p,
            &spec.template,
            &spec.guides,
            spec.trace_share,
            spec.noise,
            &mut rng,
        );
        *counts.entry(pair.kind).or_insert(0usize) += 1;
        let row = json!({
            "id": format!("sft-{i}"),
            "kind": pair.kind.name(),
            "prompt": pair.prompt,
            "completion": pair.completion,
        });
        corpus.push_str(
            &serde_json::to_string(&row).map_err(|e| Error::serialize("a corpus row", e))?,
        );
        corpus.push('\n');
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    write_atomic(&out.join("test.jsonl"), rows("test", &test)?.as_bytes())?;
    if spec.train > 0 {
        write_atomic(&out.join("train.jsonl"), rows("train", &train)?.as_bytes())?;
    }
    if spec.sft > 0 {
        write_atomic(&out.join("sft.jsonl"), corpus.as_bytes())?;
    }
    let n = |k: PairKind| counts.get(&k).copied().unwrap_or(0);
    Ok(TaskSummary {
        train: train.len(),
        test: test.len(),
        sft: sft.len(),
        traces: n(PairKind::CheckRight) + n(PairKind::CheckSlip),
        traces_after_slip: n(PairKind::CheckSlip),
        shortcuts: n(PairKind::Shortcut),
        slipped_solutions: n(PairKind::Slipped),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;
    use crate::text::template::PAPER_GUIDE_PHRASES;

    fn spec() -> TaskSpec {
        TaskSpec {
            config: ArithConfig::default(),
            seed: 5,
            train: 300,
            test: 100,
            sft: 400,
            more_test: 0,
            trace_share: 0.25,
            noise: TeacherNoise::default(),
            template: PromptTemplate::builtin("chatml").unwrap(),
            guides: PAPER_GUIDE_PHRASES.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Sizes past the limit are refused by flag before anything is drawn or written (a
    /// `--test` of 10^17 asked for a vector of that capacity and panicked).
    #[test]
    fn huge_splits_are_refused_by_flag() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("task");
        let e = write_task(
            &TaskSpec {
                test: 100_000_000_000_000_000,
                ..spec()
            },
            &out,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("--test") && e.contains("at most"), "{e}");
        let e = write_task(
            &TaskSpec {
                sft: usize::MAX,
                ..spec()
            },
            &out,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("--sft"), "{e}");
        assert!(!out.exists());
    }

    #[test]
    fn the_splits_are_disjoint_loadable_and_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let s = write_task(&spec(), dir.path()).unwrap();
        assert_eq!((s.train, s.test, s.sft), (300, 100, 400));
        assert!((60..140).contains(&s.traces), "{} traces", s.traces);
        assert!(s.traces_after_slip > 0 && s.traces_after_slip < s.traces);
        let train = Dataset::load(&dir.path().join("train.jsonl"), None).unwrap();
        let test = Dataset::load(&dir.path().join("test.jsonl"), None).unwrap();
        let held: HashSet<_> = test.problems.iter().map(|p| &p.question).collect();
        assert!(train.problems.iter().all(|p| !held.contains(&p.question)));
        let corpus = std::fs::read_to_string(dir.path().join("sft.jsonl")).unwrap();
        assert!(held.iter().all(|q| !corpus.contains(q.as_str())));
        let again = tempfile::tempdir().unwrap();
        write_task(&spec(), again.path()).unwrap();
        for f in ["train.jsonl", "test.jsonl", "sft.jsonl"] {
            assert_eq!(
                std::fs::read(dir.path().join(f)).unwrap(),
                std::fs::read(again.path().join(f)).unwrap(),
                "{f}"
            );
        }
    }

    /// `more_test` appends held-out problems: the first `test` and the train split and corpus
    /// are byte for byte those without it, and no appended question is in any of them.
    #[test]
    fn more_test_problems_extend_the_split_and_nothing_else() {
        let (plain, more) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write_task(&spec(), plain.path()).unwrap();
        let s = write_task(
            &TaskSpec {
                more_test: 250,
                ..spec()
            },
            more.path(),
        )
        .unwrap();
        assert_eq!(s.test, 350);
        for f in ["train.jsonl", "sft.jsonl"] {
            assert_eq!(
                std::fs::read(plain.path().join(f)).unwrap(),
                std::fs::read(more.path().join(f)).unwrap(),
                "{f}"
            );
        }
        let old = std::fs::read_to_string(plain.path().join("test.jsonl")).unwrap();
        let new = std::fs::read_to_string(more.path().join("test.jsonl")).unwrap();
        assert!(new.starts_with(&old));
        let test = Dataset::load(&more.path().join("test.jsonl"), None).unwrap();
        let questions: HashSet<_> = test.problems.iter().map(|p| &p.question).collect();
        assert_eq!(questions.len(), 350);
        let train = Dataset::load(&more.path().join("train.jsonl"), None).unwrap();
        assert!(train
            .problems
            .iter()
            .all(|p| !questions.contains(&p.question)));
        let corpus = std::fs::read_to_string(more.path().join("sft.jsonl")).unwrap();
        assert!(questions.iter().all(|q| !corpus.contains(q.as_str())));
    }

    /// The noisy teacher: the shares come out as asked (traces untouched), a shortcut is the
    /// bare boxed right answer, a slipped solution is worked and ends in a wrong answer, the
    /// splits do not move, and shares over 1 are refused naming the flag.
    #[test]
    fn a_noisy_teacher_writes_shortcuts_and_slips_in_their_shares() {
        let (plain, noisy) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let quiet = write_task(&spec(), plain.path()).unwrap();
        let noise = TeacherNoise {
            shortcut: 0.5,
            slip: 0.25,
        };
        let s = write_task(&TaskSpec { noise, ..spec() }, noisy.path()).unwrap();
        assert_eq!((quiet.shortcuts, quiet.slipped_solutions), (0, 0));
        let plain_pairs = s.sft - s.traces;
        let share = |n: usize| n as f64 / plain_pairs as f64;
        assert!((0.4..0.6).contains(&share(s.shortcuts)), "{s:?}");
        assert!((0.17..0.33).contains(&share(s.slipped_solutions)), "{s:?}");
        assert!((60..140).contains(&s.traces), "{s:?}");
        for f in ["train.jsonl", "test.jsonl"] {
            assert_eq!(
                std::fs::read(plain.path().join(f)).unwrap(),
                std::fs::read(noisy.path().join(f)).unwrap(),
                "{f}"
            );
        }
        let corpus = std::fs::read_to_string(noisy.path().join("sft.jsonl")).unwrap();
        let (mut shortcuts, mut slips) = (0, 0);
        for line in corpus.lines() {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let completion = row["completion"].as_str().unwrap();
            let boxed = completion.rsplit("\\boxed{").next().unwrap();
            let answer: i64 = boxed.trim_end_matches('}').parse().unwrap();
            match row["kind"].as_str().unwrap() {
                "shortcut" => {
                    shortcuts += 1;
                    assert_eq!(completion, format!("\\boxed{{{answer}}}"));
                }
                "slipped" => {
                    slips += 1;
                    assert!(completion.lines().count() >= 2, "{completion}");
                    // the last step's result is the boxed answer it carries through
                    let last = completion.lines().rev().nth(1).unwrap();
                    assert!(last.ends_with(&format!("= {answer}.")), "{completion}");
                }
                _ => {}
            }
        }
        assert_eq!((shortcuts, slips), (s.shortcuts, s.slipped_solutions));
        // a slipped solution's answer is never the problem's
        let t = spec();
        let mut task = ArithTask::new(t.config.clone(), 3).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let all_slips = TeacherNoise {
            shortcut: 0.0,
            slip: 1.0,
        };
        for _ in 0..200 {
            let p = task.sample();
            let pair = sft_pair(&p, &t.template, &t.guides, 0.0, all_slips, &mut rng);
            assert_eq!(pair.kind, PairKind::Slipped);
            assert!(!pair.completion.ends_with(&format!("{{{}}}", p.answer)));
        }
        let over = TaskSpec {
            noise: TeacherNoise {
                shortcut: 0.7,
                slip: 0.5,
            },
            ..spec()
        };
        let e = write_task(&over, noisy.path()).unwrap_err().to_string();
        assert!(e.contains("--slip-share"), "{e}");
    }
}
