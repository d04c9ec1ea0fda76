//! Two-turn self-correction evaluation (SCoRe's metrics; the MGRPO paper's Table 2).
//!
//! Turn 1 answers the question. Turn 2 continues the same assistant turn after a fixed guide
//! phrase (or, for the intrinsic self-correction baseline, the paper's instruction) and is
//! graded on its own final answer (`turn2_graded_on`: the continuation alone by default, no
//! answer = wrong; or the whole turn, where the last answer given counts). Over N problems:
//! `Acc@t1`, `Acc@t2`, `Δ = Acc@t2 − Acc@t1`, `Δi→c` (wrong at t1, right at t2) and `Δc→i`
//! (right at t1, wrong at t2), so that `Δ = Δi→c − Δc→i`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::Problem;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::reward::extract_answer;
use crate::rl::policy::Policy;
use crate::rl::rollout::{Draw, Sampler};
use crate::template::PromptTemplate;
use crate::tokenizer::Tokenizer;

/// The paper's intrinsic self-correction instruction (`--baseline intrinsic`).
pub const INTRINSIC_INSTRUCTION: &str = "The solution above may contain errors due to a misunderstanding of the question. Please identify and correct any mistakes, then rewrite the solution clearly and accurately.";

/// Table-2 metrics over N problems, as fractions (the table prints percentages): with several
/// samples per problem, the mean over problems of each problem's mean over its samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TwoTurnMetrics {
    pub n: usize,
    /// Samples per problem (absent in logs written before it existed: one).
    #[serde(default = "one")]
    pub samples: usize,
    pub acc_t1: f64,
    /// Equal to `acc_t1` when only one turn was run.
    pub acc_t2: f64,
    pub delta: f64,
    pub delta_i_to_c: f64,
    pub delta_c_to_i: f64,
}

fn one() -> usize {
    1
}

impl TwoTurnMetrics {
    /// From each problem's (right at t1, right at t2).
    pub fn from_verdicts(verdicts: &[(bool, bool)]) -> Self {
        Self::from_samples(verdicts, 1)
    }

    /// From `samples` consecutive (right at t1, right at t2) per problem (every problem the
    /// same number, so the mean of all is the mean of the per-problem means).
    pub fn from_samples(verdicts: &[(bool, bool)], samples: usize) -> Self {
        let samples = samples.max(1);
        let n = verdicts.len();
        let frac = |f: &dyn Fn(&(bool, bool)) -> bool| {
            verdicts.iter().filter(|v| f(v)).count() as f64 / n.max(1) as f64
        };
        let acc_t1 = frac(&|v| v.0);
        let acc_t2 = frac(&|v| v.1);
        let i2c = frac(&|v| !v.0 && v.1);
        let c2i = frac(&|v| v.0 && !v.1);
        Self {
            n: n / samples,
            samples,
            acc_t1,
            acc_t2,
            delta: i2c - c2i,
            delta_i_to_c: i2c,
            delta_c_to_i: c2i,
        }
    }
}

/// One problem's answers and verdicts (a line of the evaluation JSONL); with several samples per
/// problem, one line per sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemResult {
    pub id: String,
    /// Which sample of the problem (0, 1, …); absent with one sample per problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<usize>,
    /// The dataset's `family` field (the problem's kind, for per-family tables), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    pub gold: String,
    pub turn1: String,
    pub turn1_answer: Option<String>,
    pub turn1_correct: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn2_answer: Option<String>,
    pub turn2_correct: bool,
}

/// How to evaluate.
#[derive(Debug, Clone)]
pub struct EvalSettings {
    /// 1 or 2.
    pub turns: usize,
    /// What follows the turn-1 answer (a guide phrase, or [`INTRINSIC_INSTRUCTION`]).
    pub guide: String,
    /// Token budget of each turn.
    pub max_new_tokens: usize,
    pub seed: u64,
    /// Two-turn samples per problem (each problem's turn 1 drawn this many times, each draw
    /// continued once).
    pub samples: usize,
    /// Turn 2 as a new user message after the first answer (intrinsic self-correction as
    /// Huang et al. and SCoRe ask for it) instead of a continuation of the assistant turn.
    pub new_user_turn: bool,
}

/// Evaluate `problems` (their layer-1 prompts already tokenized in `prompts`).
pub fn evaluate<S: Sampler>(
    policy: &mut Policy<'_, S>,
    problems: &[&Problem],
    prompts: Vec<Vec<u32>>,
    settings: &EvalSettings,
) -> Result<(Vec<ProblemResult>, TwoTurnMetrics)> {
    let k = settings.samples.max(1);
    let draw = |n, seed| Draw {
        n,
        max_new_tokens: settings.max_new_tokens,
        seed,
    };
    // turn 1: k samples of each prompt, grouped by problem (problem i's sample j at i·k + j)
    let t1 = policy.rollout(problems, prompts, None, draw(k, settings.seed))?;
    // the rollout graded each answer; only the extracted answer is left to record (found as
    // the grader found it)
    let extraction = policy.extraction;
    let answer = |p: &Problem, text: &str| {
        let how = extraction.unwrap_or_else(|| p.format.default_extraction());
        extract_answer(text, how).map(|e| e.answer)
    };
    // one entry per (problem, sample), in that order
    let each: Vec<&Problem> = problems
        .iter()
        .flat_map(|p| std::iter::repeat_n(*p, k))
        .collect();
    let mut results: Vec<ProblemResult> = each
        .iter()
        .enumerate()
        .map(|(i, p)| ProblemResult {
            id: p.id.clone(),
            sample: (k > 1).then_some(i % k),
            family: p
                .fields
                .get("family")
                .and_then(|v| v.as_str())
                .map(String::from),
            gold: p.gold_answer.clone(),
            turn1: t1.text(i).to_string(),
            turn1_answer: answer(p, t1.text(i)),
            turn1_correct: t1.rewards[i].correct,
            turn2: None,
            turn2_answer: None,
            turn2_correct: t1.rewards[i].correct,
        })
        .collect();
    if settings.turns >= 2 {
        let mut ids = Vec::with_capacity(each.len());
        let mut prefixes = Vec::with_capacity(each.len());
        for (i, p) in each.iter().enumerate() {
            let turn = if settings.new_user_turn {
                policy.new_user_turn(&p.question, t1.text(i), &settings.guide)?
            } else {
                policy.turn2(&p.question, t1.text(i), &settings.guide)?
            };
            ids.push(turn.ids);
            prefixes.push(turn.graded_prefix);
        }
        let t2 = policy.rollout(
            &each,
            ids,
            Some(&prefixes),
            draw(1, settings.seed ^ 0x7_0272),
        )?;
        for (i, r) in results.iter_mut().enumerate() {
            r.turn2_answer = answer(each[i], &policy.graded_text(&prefixes[i], t2.text(i)));
            r.turn2_correct = t2.rewards[i].correct;
            r.turn2 = Some(t2.text(i).to_string());
        }
    }
    let verdicts: Vec<(bool, bool)> = results
        .iter()
        .map(|r| (r.turn1_correct, r.turn2_correct))
        .collect();
    Ok((results, TwoTurnMetrics::from_samples(&verdicts, k)))
}

/// The paper's Table 2 as Markdown: one row per benchmark, percentages with one decimal.
pub fn table(rows: &[(String, TwoTurnMetrics)], turns: usize) -> String {
    let pct = |x: f64| format!("{:.1}", 100.0 * x);
    let mut out = if turns >= 2 {
        String::from(
            "| Benchmark | N | Acc@t1 | Acc@t2 | Δ(t1,t2) | Δi→c | Δc→i |\n\
             |---|---:|---:|---:|---:|---:|---:|\n",
        )
    } else {
        String::from("| Benchmark | N | Acc@t1 |\n|---|---:|---:|\n")
    };
    for (name, m) in rows {
        if turns >= 2 {
            out.push_str(&format!(
                "| {name} | {} | {} | {} | {} | {} | {} |\n",
                m.n,
                pct(m.acc_t1),
                pct(m.acc_t2),
                pct(m.delta),
                pct(m.delta_i_to_c),
                pct(m.delta_c_to_i)
            ));
        } else {
            out.push_str(&format!("| {name} | {} | {} |\n", m.n, pct(m.acc_t1)));
        }
    }
    out
}

/// Tokenize the layer-1 prompt of each problem; a prompt that leaves no room for two turns of
/// `max_new_tokens` in the model's `context` is an error naming the file and the problem.
pub fn encode_prompts(
    problems: &[Problem],
    template: &PromptTemplate,
    tokenizer: &Tokenizer,
    room: usize,
    context: usize,
    source: &Path,
) -> Result<Vec<Vec<u32>>> {
    problems
        .iter()
        .map(|p| {
            let ids = tokenizer.encode(&template.render(&p.question))?;
            if ids.len() + room > context {
                return Err(Error::Invalid(format!(
                    "{}: problem `{}`: {} prompt tokens + {room} for the answers exceed the \
                     model's context ({context})",
                    source.display(),
                    p.id,
                    ids.len()
                )));
            }
            Ok(ids)
        })
        .collect()
}

/// Tokens an evaluation needs after the layer-1 prompt: `max_new_tokens` per turn, and for a
/// second turn the guide phrase as it is appended to the first answer (measured with the
/// tokenizer, so a long guide never silently shortens turn 2 at the context's end). As a new
/// user turn (`new_user_turn`), what the template adds around the instruction is measured on an
/// empty question and answer, plus 2 tokens for merges across the joins.
pub fn eval_room(
    tokenizer: &Tokenizer,
    template: &PromptTemplate,
    turns: usize,
    max_new_tokens: usize,
    guide: &str,
    new_user_turn: bool,
) -> Result<usize> {
    let guide_tokens = match (turns >= 2, new_user_turn) {
        (false, _) => 0,
        (true, false) => tokenizer.encode(&format!("\n\n{guide}"))?.len(),
        (true, true) => {
            let whole = tokenizer
                .encode(&template.render_new_turn("", "", guide)?)?
                .len();
            let first = tokenizer.encode(&template.render(""))?.len();
            whole.saturating_sub(first) + 2
        }
    };
    Ok(turns * max_new_tokens + guide_tokens)
}

/// Every problem's answers and verdicts as JSONL, written atomically.
pub fn write_results(path: &Path, results: &[ProblemResult]) -> Result<()> {
    let mut text = String::new();
    for r in results {
        let line = serde_json::to_string(r).map_err(|e| Error::serialize("a result", e))?;
        text.push_str(&line);
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_by_hand() {
        // 10 problems: 4 right→right, 2 wrong→right, 1 right→wrong, 3 wrong→wrong
        let mut v = vec![(true, true); 4];
        v.extend([(false, true); 2]);
        v.push((true, false));
        v.extend([(false, false); 3]);
        let m = TwoTurnMetrics::from_verdicts(&v);
        assert_eq!(m.n, 10);
        assert!((m.acc_t1 - 0.5).abs() < 1e-12);
        assert!((m.acc_t2 - 0.6).abs() < 1e-12);
        assert!((m.delta_i_to_c - 0.2).abs() < 1e-12);
        assert!((m.delta_c_to_i - 0.1).abs() < 1e-12);
        assert!((m.delta - 0.1).abs() < 1e-12);
        assert!((m.delta - (m.acc_t2 - m.acc_t1)).abs() < 1e-12);
        let t = table(&[("gsm8k".into(), m)], 2);
        assert!(
            t.contains("| gsm8k | 10 | 50.0 | 60.0 | 10.0 | 20.0 | 10.0 |"),
            "{t}"
        );
        // a drop: Δ negative
        let m = TwoTurnMetrics::from_verdicts(&[(true, false), (true, true), (false, false)]);
        assert!((m.delta + 1.0 / 3.0).abs() < 1e-12);
        assert!(table(&[("x".into(), m)], 2).contains("| -33.3 | 0.0 | 33.3 |"));
        // no problems: zeros, no NaN (checked below)
        let m = TwoTurnMetrics::from_verdicts(&[]);
        assert_eq!((m.n, m.acc_t1, m.delta), (0, 0.0, 0.0));
    }

    #[test]
    fn two_turns_on_a_scripted_policy() {
        use crate::reward::RewardConfig;
        use crate::rl::scripted::{problem, test_tokenizer, Scripted};
        let tok = test_tokenizer();
        let problems = [
            problem("a", "1+1?", "2"),
            problem("b", "2+2?", "4"),
            problem("c", "3+3?", "6"),
            problem("d", "4+4?", "8"),
        ];
        let refs: Vec<&Problem> = problems.iter().collect();
        let t = PromptTemplate::builtin("plain").unwrap();
        let prompts: Vec<Vec<u32>> = refs
            .iter()
            .map(|p| tok.encode(&t.render(&p.question)).unwrap())
            .collect();
        // a: right, confirmed (right→right); b: wrong, fixed (i→c); c: right, broken (c→i);
        // d: wrong, unchanged
        let script = |call: usize, prompt: &str, _: usize| -> String {
            let q = &prompt[..4];
            match (call, q) {
                (0, "1+1?") => r"\boxed{2}",
                (0, "2+2?") => r"\boxed{5}",
                (0, "3+3?") => r"\boxed{6}",
                (0, _) => r"\boxed{9}",
                (1, "1+1?") => "Yes.",
                (1, "2+2?") => r"Oops: \boxed{4}",
                (1, "3+3?") => r"Hmm, \boxed{7}",
                (1, _) => "Still the same.",
                _ => panic!("a third turn"),
            }
            .to_string()
        };
        let mut scripted = Scripted::new(&tok, Box::new(script));
        let settings = EvalSettings {
            turns: 2,
            guide: INTRINSIC_INSTRUCTION.into(),
            max_new_tokens: 8,
            seed: 0,
            samples: 1,
            new_user_turn: false,
        };
        // graded on the continuation (the default): "Yes." gives no answer, so it is wrong
        let reward = RewardConfig::default();
        let mut policy = Policy::new(&mut scripted, &t, &tok, &reward).unwrap();
        let (results, m) = evaluate(&mut policy, &refs, prompts.clone(), &settings).unwrap();
        let verdicts = |results: &[ProblemResult]| -> Vec<(bool, bool)> {
            results
                .iter()
                .map(|r| (r.turn1_correct, r.turn2_correct))
                .collect()
        };
        assert_eq!(
            verdicts(&results),
            [(true, false), (false, true), (true, false), (false, false)]
        );
        assert_eq!(results[0].turn2_answer, None);
        assert_eq!((m.acc_t1, m.acc_t2), (0.5, 0.25));
        assert_eq!((m.delta_i_to_c, m.delta_c_to_i), (0.25, 0.5));
        // graded on the whole turn: "Yes." keeps the first answer
        let mut scripted = Scripted::new(&tok, Box::new(script));
        let whole_turn = RewardConfig {
            turn2_graded_on: crate::reward::Turn2Grading::Turn,
            ..RewardConfig::default()
        };
        let mut policy = Policy::new(&mut scripted, &t, &tok, &whole_turn).unwrap();
        let (results, m) = evaluate(&mut policy, &refs, prompts.clone(), &settings).unwrap();
        assert_eq!(
            scripted.calls[1].0[1],
            format!("2+2?\n\\boxed{{5}}\n\n{INTRINSIC_INSTRUCTION}")
        );
        assert_eq!(
            verdicts(&results),
            [(true, true), (false, true), (true, false), (false, false)]
        );
        assert_eq!(results[0].turn2_answer.as_deref(), Some("2"));
        assert_eq!(results[1].turn1_answer.as_deref(), Some("5"));
        assert_eq!(results[1].turn2_answer.as_deref(), Some("4"));
        assert_eq!(results[2].turn2.as_deref(), Some(r"Hmm, \boxed{7}"));
        assert_eq!((m.acc_t1, m.acc_t2, m.delta), (0.5, 0.5, 0.0));
        assert_eq!((m.delta_i_to_c, m.delta_c_to_i), (0.25, 0.25));
        // as a new user turn: the instruction after the closed first answer, and the second
        // answer is its own turn (graded alone even under `turn`: "Yes." states nothing)
        let mut scripted = Scripted::new(&tok, Box::new(script));
        let new_turn = EvalSettings {
            new_user_turn: true,
            ..settings.clone()
        };
        let mut policy = Policy::new(&mut scripted, &t, &tok, &whole_turn).unwrap();
        let (results, _) = evaluate(&mut policy, &refs, prompts.clone(), &new_turn).unwrap();
        assert_eq!(
            scripted.calls[1].0[1],
            format!("2+2?\n\\boxed{{5}}\n\n{INTRINSIC_INSTRUCTION}\n")
        );
        assert_eq!(
            verdicts(&results),
            [(true, false), (false, true), (true, false), (false, false)]
        );
        // one turn: no second call, t2 = t1
        let mut scripted = Scripted::new(&tok, Box::new(script));
        let one = EvalSettings {
            turns: 1,
            ..settings
        };
        let mut policy = Policy::new(&mut scripted, &t, &tok, &reward).unwrap();
        let (results, m) = evaluate(&mut policy, &refs, prompts, &one).unwrap();
        assert_eq!(scripted.calls.len(), 1);
        assert!(results.iter().all(|r| r.turn2.is_none()));
        assert_eq!((m.acc_t1, m.acc_t2, m.delta), (0.5, 0.5, 0.0));
    }

    /// Two samples per problem: turn 1 draws each problem twice, each draw is continued once,
    /// the lines come problem by problem with their sample index, and the metrics are the
    /// per-problem means (a: right then wrong at t1, both fixed or kept; b: both wrong, one
    /// fixed).
    #[test]
    fn several_samples_per_problem() {
        use crate::reward::RewardConfig;
        use crate::rl::scripted::{problem, test_tokenizer, Scripted};
        let tok = test_tokenizer();
        let problems = [problem("a", "1+1?", "2"), problem("b", "2+2?", "4")];
        let refs: Vec<&Problem> = problems.iter().collect();
        let t = PromptTemplate::builtin("plain").unwrap();
        let prompts: Vec<Vec<u32>> = refs
            .iter()
            .map(|p| tok.encode(&t.render(&p.question)).unwrap())
            .collect();
        let script = |call: usize, prompt: &str, sample: usize| -> String {
            match (call, &prompt[..4], sample) {
                (0, "1+1?", 0) => r"\boxed{2}",
                (0, "1+1?", _) => r"\boxed{3}",
                (0, _, _) => r"\boxed{5}",
                // turn 2 sees its own first answer
                (1, "1+1?", _) => r"\boxed{2}",
                (1, _, _) => r"\boxed{4}",
                _ => panic!("a third turn"),
            }
            .to_string()
        };
        let mut scripted = Scripted::new(&tok, Box::new(script));
        let settings = EvalSettings {
            turns: 2,
            guide: "Check.".into(),
            max_new_tokens: 8,
            seed: 0,
            samples: 2,
            new_user_turn: false,
        };
        let reward = RewardConfig::default();
        let mut policy = Policy::new(&mut scripted, &t, &tok, &reward).unwrap();
        let (results, m) = evaluate(&mut policy, &refs, prompts, &settings).unwrap();
        let lines: Vec<(&str, Option<usize>, bool, bool)> = results
            .iter()
            .map(|r| (r.id.as_str(), r.sample, r.turn1_correct, r.turn2_correct))
            .collect();
        assert_eq!(
            lines,
            [
                ("a", Some(0), true, true),
                ("a", Some(1), false, true),
                ("b", Some(0), false, true),
                ("b", Some(1), false, true),
            ]
        );
        // turn 1: n = 2 per prompt; turn 2: one continuation of each of the 4 first answers
        assert_eq!((scripted.calls[0].1.n, scripted.calls[0].0.len()), (2, 2));
        assert_eq!((scripted.calls[1].1.n, scripted.calls[1].0.len()), (1, 4));
        assert!(scripted.calls[1].0[1].contains(r"\boxed{3}"));
        assert_eq!((m.n, m.samples), (2, 2));
        // Acc@t1: a ½, b 0 → ¼; Acc@t2: 1; Δi→c: a ½, b 1 → ¾
        assert_eq!((m.acc_t1, m.acc_t2, m.delta_i_to_c), (0.25, 1.0, 0.75));
    }

    /// The recorded answer is found the way the grader found it: under `extraction =
    /// last_math`, an unmarked `$2$` is both graded right and recorded.
    #[test]
    fn recorded_answers_follow_the_extraction_policy() {
        use crate::reward::{Extraction, RewardConfig};
        use crate::rl::scripted::{problem, test_tokenizer, Scripted};
        let tok = test_tokenizer();
        let problems = [problem("a", "1+1?", "2")];
        let refs: Vec<&Problem> = problems.iter().collect();
        let t = PromptTemplate::builtin("plain").unwrap();
        let prompts = vec![tok.encode(&t.render("1+1?")).unwrap()];
        let settings = EvalSettings {
            turns: 1,
            guide: String::new(),
            max_new_tokens: 8,
            seed: 0,
            samples: 1,
            new_user_turn: false,
        };
        let mut reward = RewardConfig::default();
        reward.policy.extraction = Some(Extraction::LastMath);
        let script = |_: usize, _: &str, _: usize| "So it is $2$.".to_string();
        let mut scripted = Scripted::new(&tok, Box::new(script));
        let mut policy = Policy::new(&mut scripted, &t, &tok, &reward).unwrap();
        let (results, _) = evaluate(&mut policy, &refs, prompts, &settings).unwrap();
        assert!(results[0].turn1_correct);
        assert_eq!(results[0].turn1_answer.as_deref(), Some("2"));
    }
}
