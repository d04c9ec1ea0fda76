//! Two-turn self-correction evaluation (SCoRe's metrics; the MGRPO paper's Table 2).
//!
//! Turn 1 answers the question. Turn 2 continues the same assistant turn after a fixed guide
//! phrase (or, for the intrinsic self-correction baseline, the paper's instruction) and is
//! graded on its own final answer (`turn2_graded_on`: the continuation alone by default, no
//! answer = wrong; or the whole turn, where the last answer given counts). Over N problems:
//! `Acc@t1`, `Acc@t2`, `Δ = Acc@t2 − Acc@t1`, `Δi→c` (wrong at t1, right at t2) and `Δc→i`
//! (right at t1, wrong at t2), so that `Δ = Δi→c − Δc→i`.
//!
//! Beside it: `grade` grades files with the verifier (`mgrpo verify`), and `verdicts` reads
//! back the per-problem results an evaluation writes (what `table2` computes on).

pub mod grade;
pub(crate) mod verdicts;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::Problem;
use crate::error::{Error, Result};
use crate::rl::policy::Policy;
use crate::rl::rollout::{Draw, Sampler};
use crate::run::fsutil::write_atomic;
use crate::text::template::{Ask, PromptTemplate};
use crate::text::tokenizer::Tokenizer;
use crate::verify::extract_answer;

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
                policy.new_user_turn(p.ask(), t1.text(i), &settings.guide)?
            } else {
                policy.turn2(p.ask(), t1.text(i), &settings.guide)?
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
            let ids = tokenizer.encode(&template.render_ask(p.ask())?)?;
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
                .encode(&template.render_new_turn(Ask::Question(""), "", guide)?)?
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
mod tests;
