//! Datasets: JSONL problem sets mapped to `{question, gold_answer, id}` (GSM8K, MATH /
//! MATH-500, Minerva Math, OlympiadBench, AIME, AMC, or generic question/answer rows), the
//! format detected from the fields or given, every bad line reported with its file and line;
//! and the laptop task (`arith`, `trace`, `corpus`, `task`): generated arithmetic word problems,
//! the self-correction traces and the pairs of its warm-start corpus, and the files `mgrpo task`
//! writes.

pub(crate) mod arith;
pub(crate) mod check_anatomy;
pub(crate) mod corpus;
pub(crate) mod format;
pub(crate) mod task;
pub(crate) mod trace;

use std::path::{Path, PathBuf};

pub use format::{DatasetFormat, FORMATS};

use crate::error::{Error, Result};
use crate::run::jsonl::{line_error, read_objects};
use crate::text::template::PromptTemplate;

/// One problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The dataset's id (`id`, `unique_id`, `idx`), else `line-N`.
    pub id: String,
    pub question: String,
    /// The final answer the verifier compares with.
    pub gold_answer: String,
    /// The reference solution, when the dataset has one.
    pub solution: Option<String>,
    pub format: DatasetFormat,
    /// The dataset row as read, every field included: rewards see the fields a task adds
    /// (`reward.commands` get them in each JSONL row they read).
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// A loaded dataset.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub path: PathBuf,
    pub format: DatasetFormat,
    pub problems: Vec<Problem>,
}

impl Dataset {
    /// Load `path`; `format` forces a format, otherwise it is detected from the first row.
    pub fn load(path: &Path, format: Option<DatasetFormat>) -> Result<Self> {
        let rows = read_objects(path)?;
        let Some((first_line, first)) = rows.first() else {
            return Err(Error::Invalid(format!(
                "{}: the dataset is empty",
                path.display()
            )));
        };
        let format = match format {
            Some(f) => f,
            None => DatasetFormat::detect(first).ok_or_else(|| {
                let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
                keys.sort_unstable();
                line_error(
                    path,
                    *first_line,
                    format!(
                        "cannot tell the dataset format from the fields [{}]; pass --format ({})",
                        keys.join(", "),
                        FORMATS.join(", ")
                    ),
                )
            })?,
        };
        let problems = rows
            .iter()
            .map(|(line, row)| format.problem(row, path, *line))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            path: path.to_path_buf(),
            format,
            problems,
        })
    }

    pub fn len(&self) -> usize {
        self.problems.len()
    }

    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// Every problem's layer-1 prompt under `template`.
    pub fn prompts(&self, template: &PromptTemplate) -> Vec<String> {
        self.problems
            .iter()
            .map(|p| template.render(&p.question))
            .collect()
    }
}
