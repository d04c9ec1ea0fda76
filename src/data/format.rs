//! The dataset formats of `shared/data/README.md` and how each maps to a [`Problem`]: where the
//! question, the gold answer, the reference solution and the id live.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde_json::{Map, Value};

use super::Problem;
use crate::error::{Error, Result};
use crate::run::jsonl::line_error;
use crate::text::chat_template::Message;
use crate::verify::extract::{extract_answer, Extraction};
use crate::verify::Policy;

/// A dataset format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetFormat {
    /// `{question, answer}` with the answer after `#### ` (openai/grade-school-math).
    Gsm8k,
    /// `{problem, solution, answer, ...}` (MATH, MATH-500).
    Math,
    /// `{problem, solution, ...}`, the answer in the last `\boxed{}` of the solution.
    Minerva,
    /// `{question, solution[], final_answer[], ...}`.
    Olympiadbench,
    /// `{problem, answer, solution?, url}` (AIME).
    Aime,
    /// `{problem, answer, url}` with a numeric answer (AMC).
    Amc,
    /// Any `{question | problem | prompt, answer | gold}` rows.
    Qa,
}

/// Format names for `--format`.
pub const FORMATS: &[&str] = &[
    "gsm8k",
    "math",
    "minerva",
    "olympiadbench",
    "aime",
    "amc",
    "qa",
];

impl FromStr for DatasetFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "gsm8k" => Self::Gsm8k,
            "math" | "math500" => Self::Math,
            "minerva" | "minerva_math" => Self::Minerva,
            "olympiadbench" => Self::Olympiadbench,
            "aime" | "aime24" => Self::Aime,
            "amc" | "amc23" => Self::Amc,
            "qa" => Self::Qa,
            _ => {
                return Err(Error::Invalid(format!(
                    "unknown dataset format `{s}` (known: {})",
                    FORMATS.join(", ")
                )))
            }
        })
    }
}

impl fmt::Display for DatasetFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Gsm8k => "gsm8k",
            Self::Math => "math",
            Self::Minerva => "minerva",
            Self::Olympiadbench => "olympiadbench",
            Self::Aime => "aime",
            Self::Amc => "amc",
            Self::Qa => "qa",
        };
        f.write_str(s)
    }
}

impl DatasetFormat {
    /// Where the verifier looks for an answer without a marker, unless the grader's policy
    /// says otherwise: the last number for GSM8K-type problems (plain-number answers), markers
    /// only for the rest.
    pub fn default_extraction(self) -> Extraction {
        match self {
            Self::Gsm8k => Extraction::LastNumber,
            _ => Extraction::Anchored,
        }
    }

    /// The extraction for problems of this format under a grader's `policy`: the policy's,
    /// else the format's default.
    pub fn extraction(self, policy: &Policy) -> Extraction {
        policy.extraction.unwrap_or(self.default_extraction())
    }

    /// Detect the format from a row's fields.
    pub fn detect(row: &Map<String, Value>) -> Option<Self> {
        let has = |k: &str| row.contains_key(k);
        let url = row
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        Some(if has("final_answer") {
            Self::Olympiadbench
        } else if has("question")
            && row
                .get("answer")
                .and_then(Value::as_str)
                .is_some_and(|a| a.contains("####"))
        {
            Self::Gsm8k
        } else if url.contains("aime") {
            Self::Aime
        } else if url.contains("amc") {
            Self::Amc
        } else if has("problem") && has("solution") && has("answer") {
            Self::Math
        } else if has("problem") && has("solution") {
            Self::Minerva
        } else if (has("question") || has("problem") || has("prompt"))
            && (has("answer") || has("gold"))
        {
            Self::Qa
        } else {
            return None;
        })
    }

    /// Map line `line` of `path` (the row `row`) to a problem; the error names the file, the
    /// line and the missing or bad field.
    pub fn problem(self, row: &Map<String, Value>, path: &Path, line: usize) -> Result<Problem> {
        let row = Row {
            map: row,
            path,
            line,
            format: self,
        };
        let conversation = match (self, row.map.get("prompt")) {
            (Self::Qa, Some(Value::Array(messages)))
                if !row.map.contains_key("question") && !row.map.contains_key("problem") =>
            {
                Some(row.messages(messages)?)
            }
            _ => None,
        };
        let question = match (self, &conversation) {
            (_, Some(messages)) => messages
                .iter()
                .rev()
                .find(|m| m.role == "user")
                .map(|m| m.content.clone())
                .unwrap_or_default(),
            (Self::Gsm8k | Self::Olympiadbench, None) => row.text(&["question"])?,
            (Self::Qa, None) => row.text(&["question", "problem", "prompt"])?,
            _ => row.text(&["problem", "question"])?,
        };
        let question = match row.map.get("context").and_then(Value::as_str) {
            Some(c) if !c.trim().is_empty() && self == Self::Olympiadbench => {
                format!("{}\n\n{question}", c.trim())
            }
            _ => question,
        };
        let (gold, solution) = match self {
            Self::Gsm8k => {
                let a = row.text(&["answer"])?;
                let (_, gold) = a
                    .rsplit_once("####")
                    .ok_or_else(|| row.err("field `answer` has no `#### N` final line"))?;
                (gold.trim().replace(',', ""), Some(a))
            }
            Self::Math | Self::Aime | Self::Amc | Self::Qa => {
                let gold = row.text(&["answer", "gold"])?;
                let gold = if self == Self::Amc {
                    trim_float(&gold)
                } else {
                    gold
                };
                (gold, row.text(&["solution"]).ok())
            }
            Self::Minerva => {
                let s = row.text(&["solution"])?;
                let gold = extract_answer(&s, Extraction::Anchored)
                    .ok_or_else(|| row.err("field `solution` has no \\boxed{} answer"))?
                    .answer;
                (gold, Some(s))
            }
            Self::Olympiadbench => {
                let answers = row.strings("final_answer")?;
                let gold = answers.join(", ");
                let solution = row
                    .strings("solution")
                    .ok()
                    .and_then(|s| s.into_iter().next());
                (gold, solution)
            }
        };
        if gold.trim().is_empty() {
            return Err(row.err("the gold answer is empty"));
        }
        let id = ["id", "unique_id", "idx"]
            .iter()
            .find_map(|k| row.map.get(*k).and_then(scalar))
            .unwrap_or_else(|| format!("line-{line}"));
        Ok(Problem {
            id,
            question,
            conversation,
            gold_answer: gold.trim().to_string(),
            solution,
            format: self,
            fields: row.map.clone(),
        })
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One row of a dataset file, with where it came from for error messages.
struct Row<'a> {
    map: &'a Map<String, Value>,
    path: &'a Path,
    line: usize,
    format: DatasetFormat,
}

impl Row<'_> {
    /// An error at this row: `path:line: msg (FORMAT format)`.
    fn err(&self, msg: impl fmt::Display) -> Error {
        line_error(
            self.path,
            self.line,
            format!("{msg} ({} format)", self.format),
        )
    }

    /// The first of `keys` present, as text (numbers are accepted and printed).
    fn text(&self, keys: &[&str]) -> Result<String> {
        for k in keys {
            if let Some(v) = self.map.get(*k) {
                return scalar(v)
                    .ok_or_else(|| self.err(format!("field `{k}` must be a string or a number")));
            }
        }
        Err(self.err(format!("missing field `{}`", keys.join("` or `"))))
    }

    /// A conversation (TRL's conversational `prompt`): `{role, content}` objects, `content` a
    /// string or a list of `{type: "text", text}` parts, ending with the user's message.
    fn messages(&self, list: &[Value]) -> Result<Vec<Message>> {
        let mut out = Vec::with_capacity(list.len());
        for (i, m) in list.iter().enumerate() {
            let at = |what: &str| self.err(format!("field `prompt[{i}]`: {what}"));
            let role = m.get("role").and_then(Value::as_str);
            let Some(role) = role.filter(|r| ["system", "user", "assistant"].contains(r)) else {
                return Err(at("`role` must be \"system\", \"user\" or \"assistant\""));
            };
            let content = match m.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .map(
                        |p| match (p.get("type").and_then(Value::as_str), p.get("text")) {
                            (Some("text"), Some(Value::String(t))) => Ok(t.as_str()),
                            _ => Err(at(
                                "only text parts (`{\"type\": \"text\", …}`) are supported",
                            )),
                        },
                    )
                    .collect::<Result<Vec<_>>>()?
                    .concat(),
                _ => return Err(at("`content` must be a string or a list of text parts")),
            };
            out.push(Message::new(role, &content));
        }
        match out.last() {
            Some(m) if m.role == "user" => Ok(out),
            Some(_) => Err(self.err(
                "field `prompt`: the conversation must end with the user's message (the model \
                 answers it)",
            )),
            None => Err(self.err("field `prompt`: the conversation is empty")),
        }
    }

    /// A list of strings (or one string) under `key`.
    fn strings(&self, key: &str) -> Result<Vec<String>> {
        match self.map.get(key) {
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|v| {
                    scalar(v).ok_or_else(|| self.err(format!("field `{key}` must hold strings")))
                })
                .collect(),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(_) => Err(self.err(format!("field `{key}` must be a non-empty list of strings"))),
            None => Err(self.err(format!("missing field `{key}`"))),
        }
    }
}

/// `27.0` → `27` (AMC answers are stored as floats).
fn trim_float(s: &str) -> String {
    match s.strip_suffix(".0") {
        Some(i) if !i.is_empty() && i.chars().all(|c| c.is_ascii_digit() || c == '-') => i.into(),
        _ => s.to_string(),
    }
}
