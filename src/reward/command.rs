//! A user reward as an external command (`[reward.commands.NAME]`): the program gets one JSON
//! object per completion on stdin (one per line) and writes one number per line on stdout, in
//! the same order. Each batch of completions is one run of the program, under a time limit.
//!
//! A row is what TRL hands a reward function: every field of the dataset row as it is (a
//! GSM8K `answer` keeps its `#### 72`), `prompt` the dataset's prompt column (the question
//! when the dataset has none), `completion` the text graded and `completion_ids` its token
//! ids. Ours, added only where the dataset has no field of that name: `question`, `id`,
//! `gold_answer` (the final answer the verifier compares with), `prompt_text` (the templated
//! prompt the completion follows, special tokens included), `completion_length` (tokens) and
//! `max_completion_length` (the token budget it was sampled with).
//!
//! A line `None` (or `null`, `nan`) is TRL's `None`: this reward has no opinion on the row
//! (a function for another task's rows). The row's total is the weighted sum of the rewards that
//! scored it; a row no reward scored has no reward at all and no advantage (`reward::set`).
//!
//! The program runs bounded (`program.rs`): its own process group (a terminal's Ctrl-C does
//! not reach it), killed as a whole at the timeout or when it exits, stdout capped at
//! [`max_stdout`], the time mgrpo spends stopped not counted.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::program::{self, Limits, Outcome};
use super::{Reward, RewardInput};
use crate::error::{Error, Result};

/// An external reward (`[reward.commands.NAME]`): a program that reads one JSONL row per
/// completion on stdin and writes one number per line on stdout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// The program and its arguments (`["python3", "my_reward.py"]`), run from the working
    /// directory of `mgrpo`.
    pub command: Vec<String>,
    /// Seconds one batch may take before the program is killed and the run stops.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
}

fn default_timeout() -> f64 {
    60.0
}

/// The most stdout a program may write for `rows` rows: 1 MiB, plus 4 KiB a row (a number
/// per line needs a few dozen bytes).
pub fn max_stdout(rows: usize) -> usize {
    (1 << 20) + rows.saturating_mul(4 << 10)
}

/// An external reward program.
pub struct CommandReward {
    name: String,
    spec: CommandSpec,
}

/// The JSON object a reward program reads for one completion (TRL's reward-function inputs:
/// see the module's header).
pub fn row_json(r: &RewardInput<'_>) -> Value {
    let mut row = r.problem.fields.clone();
    // TRL's `prompts` are the dataset's prompt column; a dataset without one gets the question
    if !row.contains_key("prompt") {
        row.insert("prompt".into(), json!(r.problem.question));
    }
    // the generated completion, never a dataset column of the same name (TRL passes neither
    // `completion` nor `completion_ids` from the dataset)
    // (a conversation's completion is an assistant message, as TRL gives it)
    let completion = match r.problem.conversation {
        Some(_) => json!([{"role": "assistant", "content": r.completion}]),
        None => json!(r.completion),
    };
    row.insert("completion".into(), completion);
    row.insert("completion_ids".into(), json!(r.completion_ids));
    let ours = [
        ("question", json!(r.problem.question)),
        ("id", json!(r.problem.id)),
        ("gold_answer", json!(r.problem.gold_answer)),
        ("prompt_text", json!(r.prompt)),
        ("completion_length", json!(r.completion_tokens)),
        ("max_completion_length", json!(r.max_completion_tokens)),
    ];
    for (key, value) in ours {
        row.entry(key).or_insert(value);
    }
    Value::Object(row)
}

/// The last non-empty line of a program's stderr (a Python traceback's exception), cut to
/// `n` characters, for a one-line error message.
fn last_line(bytes: &[u8], n: usize) -> String {
    let s = String::from_utf8_lossy(bytes);
    let line = s.lines().rev().map(str::trim).find(|l| !l.is_empty());
    match line {
        None => "nothing on stderr".into(),
        Some(l) if l.chars().count() > n => {
            format!(
                "{}… (stderr's last line)",
                l.chars().take(n).collect::<String>()
            )
        }
        Some(l) => format!("{l} (stderr's last line)"),
    }
}

impl CommandReward {
    pub fn new(name: &str, spec: &CommandSpec) -> Self {
        Self {
            name: name.to_string(),
            spec: spec.clone(),
        }
    }

    fn err(&self, msg: impl Into<String>) -> Error {
        Error::Reward {
            reward: self.name.clone(),
            msg: msg.into(),
        }
    }

    /// The program as written in the config, for messages.
    fn shown(&self) -> String {
        self.spec.command.join(" ")
    }

    /// Parse the program's output: one number per row.
    fn parse(&self, out: &str, rows: &[RewardInput<'_>]) -> Result<Vec<f32>> {
        let lines: Vec<&str> = out.lines().collect();
        if lines.len() != rows.len() {
            return Err(self.err(format!(
                "`{}` wrote {} lines for {} rows (one number per row, in order)",
                self.shown(),
                lines.len(),
                rows.len()
            )));
        }
        lines
            .iter()
            .zip(rows)
            .enumerate()
            .map(|(i, (line, r))| {
                let v = line.trim();
                // TRL's None (no opinion on this row): printed as `None`, `null` or `nan`
                if ["none", "null", "nan"].contains(&v.to_ascii_lowercase().as_str()) {
                    return Ok(f32::NAN);
                }
                match v.parse::<f32>() {
                    Ok(x) if x.is_finite() => Ok(x),
                    _ => Err(self.err(format!(
                        "`{}`: line {} (row {}, problem `{}`): `{v}` is neither a finite number \
                         nor None",
                        self.shown(),
                        i + 1,
                        i + 1,
                        r.problem.id
                    ))),
                }
            })
            .collect()
    }
}

impl Reward for CommandReward {
    fn may_abstain(&self) -> bool {
        true
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, rows: &[RewardInput<'_>]) -> Result<Vec<f32>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut input = Vec::new();
        for r in rows {
            serde_json::to_writer(&mut input, &row_json(r))
                .map_err(|e| Error::serialize("a reward row", e))?;
            input.push(b'\n');
        }
        let limits = Limits {
            timeout: Duration::from_secs_f64(self.spec.timeout_s),
            max_stdout: max_stdout(rows.len()),
        };
        let outcome = program::run(&self.spec.command, input, limits)
            .map_err(|e| self.err(format!("cannot start `{}`: {e}", self.shown())))?;
        let out = match outcome {
            Outcome::Exited {
                status,
                stdout,
                stderr_tail,
            } => {
                if !status.success() {
                    return Err(self.err(format!(
                        "`{}` failed ({status}) on a batch of {} rows: {}",
                        self.shown(),
                        rows.len(),
                        last_line(&stderr_tail, 300)
                    )));
                }
                stdout
            }
            Outcome::TimedOut => {
                return Err(self.err(format!(
                    "`{}` did not finish {} rows within timeout_s = {} s (its process group \
                     was killed)",
                    self.shown(),
                    rows.len(),
                    self.spec.timeout_s
                )))
            }
            Outcome::TooMuchOutput => {
                return Err(self.err(format!(
                    "`{}` wrote more than {} bytes for {} rows (one number per row; its \
                     process group was killed)",
                    self.shown(),
                    limits.max_stdout,
                    rows.len()
                )))
            }
            Outcome::HeldOpen => {
                return Err(self.err(format!(
                    "`{}` exited, but a process it started outside its process group (setsid) \
                     still holds its stdout or stderr open",
                    self.shown()
                )))
            }
        };
        let out = String::from_utf8_lossy(&out);
        self.parse(&out, rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::chat_template::Message;

    /// A conversational row reaches a reward program as TRL's reward functions see it: the
    /// dataset's `prompt` (the messages) and the completion as an assistant message.
    #[test]
    fn a_conversation_reaches_programs_as_trl_gives_it() {
        let mut p = crate::rl::scripted::problem("p1", "What is 2+2?", "4");
        let messages = json!([{"role": "user", "content": "What is 2+2?"}]);
        p.fields.insert("prompt".into(), messages.clone());
        p.conversation = Some(vec![Message::new("user", "What is 2+2?")]);
        let row = row_json(&RewardInput::text(&p, "It is 4."));
        assert_eq!(row["prompt"], messages);
        assert_eq!(
            row["completion"],
            json!([{"role": "assistant", "content": "It is 4."}])
        );
        p.conversation = None;
        p.fields.remove("prompt");
        let row = row_json(&RewardInput::text(&p, "It is 4."));
        assert_eq!(
            (row["prompt"].clone(), row["completion"].clone()),
            (json!("What is 2+2?"), json!("It is 4."))
        );
    }
}
