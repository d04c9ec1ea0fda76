//! Datasets: JSONL or Parquet problem sets (`rows.rs`: a file, a directory or a glob of
//! shards) mapped to `{question, gold_answer, id}` (GSM8K, MATH / MATH-500, Minerva Math,
//! OlympiadBench, AIME, AMC, or generic question/answer rows, whose `prompt` may be a
//! conversation: TRL's conversational format), the format detected from the fields or given,
//! every bad line reported with its file and line;
//! and the laptop task (`arith`, `trace`, `corpus`, `task`): generated arithmetic word problems,
//! the self-correction traces and the pairs of its warm-start corpus, and the files `mgrpo task`
//! writes.

pub(crate) mod arith;
pub(crate) mod check_anatomy;
pub(crate) mod corpus;
pub(crate) mod format;
pub mod rows;
pub(crate) mod task;
pub(crate) mod trace;

use std::path::{Path, PathBuf};

pub use format::{DatasetFormat, FORMATS};

use crate::error::{Error, Result};
use crate::run::jsonl::line_error;
use crate::text::chat_template::Message;
use crate::text::template::{Ask, PromptTemplate};

/// One problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The dataset's id (`id`, `unique_id`, `idx`), else `line-N`.
    pub id: String,
    pub question: String,
    /// The conversation to answer, when the row's `prompt` is a list of messages (TRL's
    /// conversational format): rendered by the model's chat template. `question` is then its
    /// last user message.
    pub conversation: Option<Vec<Message>>,
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
    /// Load `path` (a JSONL or Parquet file, a directory or a glob of shards); `format` forces
    /// a format, otherwise it is detected from the first row.
    pub fn load(path: &Path, format: Option<DatasetFormat>) -> Result<Self> {
        let rows = rows::read_rows(path)?;
        let Some((first_path, first_line, first)) = rows.first() else {
            return Err(Error::Invalid(format!(
                "{}: the dataset is empty",
                path.display()
            )));
        };
        let detected = format.is_none();
        let format = match format {
            Some(f) => f,
            None => DatasetFormat::detect(first).ok_or_else(|| {
                let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
                keys.sort_unstable();
                line_error(
                    first_path,
                    *first_line,
                    format!(
                        "cannot tell the dataset format from the fields [{}]; pass --format ({})",
                        keys.join(", "),
                        FORMATS.join(", ")
                    ),
                )
            })?,
        };
        // `"answer": 7` is not GSM8K's `"… #### 7"`: the rows read as question/answer pairs,
        // graded on a boxed (or last-number) answer; said, since it changes every reward
        if detected
            && format == DatasetFormat::Qa
            && first
                .get("answer")
                .is_some_and(serde_json::Value::is_number)
        {
            tracing::warn!(
                "{}:{first_line}: `answer` is a number, so the rows read as the `qa` format \
                 (question and final answer), not `gsm8k` (whose answers end `#### N`); pass \
                 the format explicitly if that is wrong",
                first_path.display()
            );
        }
        let several = rows.iter().any(|(file, _, _)| file != first_path);
        let problems = rows
            .iter()
            .map(|(file, line, row)| {
                let mut p = format.problem(row, file, *line)?;
                if let Some(why) = crate::verify::gold_beyond_caps(&p.gold_answer) {
                    return Err(line_error(
                        file,
                        *line,
                        format!("the gold answer is {why}: no completion could ever match it"),
                    ));
                }
                // a row without an id is named by its place: `row-N` in a Parquet file, and
                // with the file's name when there are several shards
                if p.id == format!("line-{line}") {
                    if rows::is_parquet(file) {
                        p.id = format!("row-{line}");
                    }
                    if several {
                        let name = file.file_name().unwrap_or_default().to_string_lossy();
                        p.id = format!("{name}:{}", p.id);
                    }
                }
                Ok(p)
            })
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
    pub fn prompts(&self, template: &PromptTemplate) -> Result<Vec<String>> {
        self.problems
            .iter()
            .map(|p| template.render_ask(p.ask()))
            .collect()
    }

    /// Refuse a dataset whose ids repeat (an evaluation's verdicts are kept per problem id):
    /// the error names the file, the id and where it appears first and again.
    pub fn check_unique_ids(&self) -> Result<()> {
        let mut seen = std::collections::HashMap::new();
        for (i, p) in self.problems.iter().enumerate() {
            if let Some(first) = seen.insert(p.id.as_str(), i) {
                return Err(Error::Invalid(format!(
                    "{}: problem id `{}` appears twice (problems {} and {}): an evaluation set \
                     needs unique ids",
                    self.path.display(),
                    p.id,
                    first + 1,
                    i + 1
                )));
            }
        }
        Ok(())
    }

    /// Refuse a conversational dataset under a template that cannot render conversations
    /// (only the model's chat template can), naming the file and the key to set.
    pub fn check_template(&self, template: &PromptTemplate) -> Result<()> {
        if template.is_chat() || self.problems.iter().all(|p| p.conversation.is_none()) {
            return Ok(());
        }
        Err(Error::Invalid(format!(
            "{}: the prompts are conversations (`prompt` is a list of messages), which only the \
             model's chat template renders: set template = \"checkpoint\" (now `{}`)",
            self.path.display(),
            template.name
        )))
    }
}

impl Problem {
    /// What the first prompt asks: the conversation, else the question.
    pub fn ask(&self) -> Ask<'_> {
        match &self.conversation {
            Some(messages) => Ask::Conversation(messages),
            None => Ask::Question(&self.question),
        }
    }
}
