//! Prompts for `mgrpo generate`: `--prompt TEXT`, or a JSONL file whose rows carry `"prompt"`
//! (text, through the tokenizer and the optional template) or `"input_ids"`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::ModelConfig;
use crate::run::jsonl::{line_error, read_objects, token_ids};
use crate::text::template::PromptTemplate;
use crate::text::tokenizer::Tokenizer;

/// One prompt before tokenisation.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptRow {
    Text(String),
    Ids(Vec<u32>),
}

/// Where prompts came from, for error messages.
#[derive(Debug, Clone)]
pub enum PromptSource {
    /// `--prompt` on the command line
    Arg,
    /// a JSONL file
    File(PathBuf),
}

impl PromptSource {
    fn err(&self, line: usize, msg: String) -> Error {
        match self {
            Self::Arg => Error::arg("--prompt", msg),
            Self::File(path) => line_error(path, line, msg),
        }
    }
}

/// Read a prompts file: one JSON object per line with `"prompt"` (string) or `"input_ids"`
/// (list of ids); blank lines are skipped. Returns `(line number, row)` pairs.
pub fn read_prompts(path: &Path) -> Result<Vec<(usize, PromptRow)>> {
    let src = PromptSource::File(path.to_path_buf());
    let mut rows = Vec::new();
    for (n, obj) in read_objects(path)? {
        let row = match (obj.get("prompt"), obj.get("input_ids")) {
            (Some(p), None) => PromptRow::Text(
                p.as_str()
                    .ok_or_else(|| src.err(n, "`prompt` must be a string".into()))?
                    .to_string(),
            ),
            (None, Some(ids)) => PromptRow::Ids(token_ids(ids).ok_or_else(|| {
                src.err(
                    n,
                    "`input_ids` must be a list of non-negative integers".into(),
                )
            })?),
            (Some(_), Some(_)) => {
                return Err(src.err(n, "give `prompt` or `input_ids`, not both".into()))
            }
            (None, None) => {
                return Err(src.err(
                    n,
                    "expected a `prompt` string or an `input_ids` list".into(),
                ))
            }
        };
        rows.push((n, row));
    }
    if rows.is_empty() {
        return Err(line_error(path, 0, "no prompts in the file".into()));
    }
    Ok(rows)
}

/// Tokenise (text rows, after `template`) and validate every prompt against the model; errors
/// name the source and line.
pub fn prepare_prompts(
    rows: &[(usize, PromptRow)],
    source: &PromptSource,
    tokenizer: Option<&Tokenizer>,
    template: Option<&PromptTemplate>,
    config: &ModelConfig,
) -> Result<Vec<Vec<u32>>> {
    rows.iter()
        .map(|(line, row)| {
            let ids = match row {
                PromptRow::Ids(ids) => ids.clone(),
                PromptRow::Text(text) => {
                    let tok = tokenizer.ok_or_else(|| {
                        source.err(
                            *line,
                            "a text prompt needs tokenizer.json in the model directory; give `input_ids` instead".into(),
                        )
                    })?;
                    if text.is_empty() {
                        return Err(source.err(*line, "the prompt is empty".into()));
                    }
                    let rendered = template.map_or_else(|| text.clone(), |t| t.render(text));
                    tok.encode(&rendered)?
                }
            };
            super::check_prompt(&ids, config).map_err(|e| source.err(*line, e.to_string()))?;
            Ok(ids)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn reads_both_kinds_and_names_bad_lines() {
        let f = write("{\"prompt\": \"hi\"}\n\n{\"input_ids\": [1, 2]}\n");
        let rows = read_prompts(f.path()).unwrap();
        assert_eq!(
            rows,
            vec![
                (1, PromptRow::Text("hi".into())),
                (3, PromptRow::Ids(vec![1, 2]))
            ]
        );
        for (text, needle) in [
            ("{\"prompt\": 3}", ":1: `prompt` must be a string"),
            ("\n{\"input_ids\": [-1]}", ":2: `input_ids` must be"),
            ("{\"x\": 1}", ":1: expected a `prompt`"),
            ("[1]", ":1: expected a JSON object"),
            ("{", ":1: invalid JSON"),
            ("", "no prompts"),
        ] {
            let f = write(text);
            let e = read_prompts(f.path()).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn validation_against_the_model() {
        let mut config = ModelConfig::new(10, 8, 16, 1, 2, 1, true);
        config.max_position_embeddings = 4;
        let src = PromptSource::File("p.jsonl".into());
        let rows = |ids: Vec<u32>| vec![(7, PromptRow::Ids(ids))];
        assert!(prepare_prompts(&rows(vec![1, 2, 3]), &src, None, None, &config).is_ok());
        for (ids, needle) in [
            (vec![], "p.jsonl:7: the prompt is empty"),
            (vec![1, 10], "p.jsonl:7: token id 10 is out of range"),
            (vec![1, 2, 3, 4], "p.jsonl:7: 4 prompt tokens leave no room"),
        ] {
            let e = prepare_prompts(&rows(ids), &src, None, None, &config)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{e}");
        }
        let text = vec![(1, PromptRow::Text("hi".into()))];
        let e = prepare_prompts(&text, &PromptSource::Arg, None, None, &config)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--prompt: a text prompt needs tokenizer.json"),
            "{e}"
        );
    }
}
