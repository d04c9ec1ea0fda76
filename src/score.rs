//! Per-token log-probs of given sequences: `log p(x_t | x_<t)` for every `t ≥ 1`.
//!
//! This is the quantity GRPO's ratios and KL terms are made of, and the one the parity tests
//! compare with transformers. Rows are batched by length (to waste little compute on padding),
//! left-padded, and returned in input order; a batch gives the same numbers as one row at a time.

use crate::fused::FusedBackend;
use burn::prelude::*;
use burn::tensor::DType;

use crate::model::batch::PaddedBatch;
use crate::model::CausalLm;

/// Log-probs of the tokens of a padded batch.
///
/// # Shapes
/// - returns `[batch, seq - 1]`: column `j` is `log p(ids[j + 1] | ids[..=j])`, in f32. Columns
///   that predict a padding token are meaningless.
pub fn batch_logprobs<B: FusedBackend>(
    model: &CausalLm<B>,
    batch: &PaddedBatch,
    device: &B::Device,
) -> Tensor<B, 2> {
    let s = batch.seq;
    let input = batch.to_input::<B>(device);
    let logits = model.forward(&input).narrow(1, 0, s - 1).cast(DType::F32); // [b, s-1, V]
    let targets = input.input_ids.narrow(1, 1, s - 1); // [b, s-1]
    target_logprobs(logits, targets)
}

/// `log_softmax(logits)[target]` per token through the backend's fused operation
/// ([`crate::fused::token_logprobs`]).
///
/// # Shapes
/// - `logits`: `[batch, seq, vocab]` (f32), `targets`: `[batch, seq]` → `[batch, seq]`
pub fn target_logprobs<B: FusedBackend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
) -> Tensor<B, 2> {
    crate::fused::token_logprobs(logits, targets, false).logprobs
}

/// `log p(x_t | x_<t)` for `t ≥ 1` of each row (`len - 1` values; none for rows shorter than 2),
/// computed `batch_size` rows at a time, in input order.
///
/// Token ids must be below the model's vocabulary size (checked by the caller).
pub fn score_rows<B: FusedBackend>(
    model: &CausalLm<B>,
    rows: &[Vec<u32>],
    batch_size: usize,
    device: &B::Device,
) -> crate::Result<Vec<Vec<f32>>> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(rows[i].len()));
    let mut out = vec![Vec::new(); rows.len()];
    for chunk in order.chunks(batch_size.max(1)) {
        let group: Vec<Vec<u32>> = chunk.iter().map(|&i| rows[i].clone()).collect();
        let batch = PaddedBatch::left_padded(&group, 0);
        if batch.seq < 2 {
            continue;
        }
        let lp =
            crate::fused::tensor::read_back(batch_logprobs(model, &batch, device), "log-probs")?;
        let width = batch.seq - 1;
        for (r, &i) in chunk.iter().enumerate() {
            let pad = batch.pad_lens[r];
            if rows[i].len() >= 2 {
                out[i] = lp[r * width + pad..(r + 1) * width].to_vec();
            }
        }
    }
    Ok(out)
}

/// One line of a `score` input file.
#[derive(Debug, Clone, PartialEq)]
pub enum ScoreRow {
    /// `{"input_ids": [...]}`: log-probs of every token after the first.
    Ids(Vec<u32>),
    /// `{"prompt": "...", "completion": "..."}`: log-probs of the completion tokens only.
    Text { prompt: String, completion: String },
}

/// A row ready to score: its token ids and how many trailing log-probs to report.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedRow {
    pub ids: Vec<u32>,
    pub n_report: usize,
}

/// Read a `score` input file: one JSON object per line (blank lines are skipped). Errors name
/// the file and line.
pub fn read_score_input(path: &std::path::Path) -> crate::Result<Vec<(usize, ScoreRow)>> {
    use crate::run::jsonl::{line_error, read_objects, token_ids};
    let err = |line: usize, msg: String| line_error(path, line, msg);
    let mut rows = Vec::new();
    for (n, obj) in read_objects(path)? {
        let row = if let Some(ids) = obj.get("input_ids") {
            if !ids.is_array() {
                return Err(err(n, "`input_ids` must be a list of token ids".into()));
            }
            let ids = token_ids(ids).ok_or_else(|| {
                err(
                    n,
                    "`input_ids` must contain only non-negative integers".into(),
                )
            })?;
            ScoreRow::Ids(ids)
        } else {
            let field = |k: &str| -> crate::Result<String> {
                obj.get(k)
                    .and_then(|x| x.as_str())
                    .map(str::to_string)
                    .ok_or_else(|| err(n, format!("expected `input_ids`, or string fields `prompt` and `completion` (missing `{k}`)")))
            };
            ScoreRow::Text {
                prompt: field("prompt")?,
                completion: field("completion")?,
            }
        };
        rows.push((n, row));
    }
    Ok(rows)
}

/// Tokenise and validate rows against the model: ids below `vocab_size`, lengths within
/// `max_positions`, a tokenizer for text rows, a non-empty prompt. `template`, if given, is
/// applied to each text row's prompt. Errors name `path` and the line.
pub fn prepare_rows(
    rows: &[(usize, ScoreRow)],
    path: &std::path::Path,
    tokenizer: Option<&crate::text::tokenizer::Tokenizer>,
    template: Option<&crate::text::template::PromptTemplate>,
    vocab_size: usize,
    max_positions: usize,
) -> crate::Result<Vec<PreparedRow>> {
    use crate::Error;
    let err = |line: usize, msg: String| Error::Data {
        path: path.to_path_buf(),
        line,
        msg,
    };
    rows.iter()
        .map(|(line, row)| {
            let prepared = match row {
                ScoreRow::Ids(ids) => {
                    if ids.is_empty() {
                        return Err(err(*line, "`input_ids` is empty".into()));
                    }
                    PreparedRow { ids: ids.clone(), n_report: ids.len() - 1 }
                }
                ScoreRow::Text { prompt, completion } => {
                    let tok = tokenizer.ok_or_else(|| {
                        err(*line, "a `prompt`/`completion` row needs tokenizer.json in the model directory; give `input_ids` instead".into())
                    })?;
                    let prompt = match template {
                        Some(t) => t.render(prompt),
                        None => prompt.clone(),
                    };
                    let mut ids = tok.encode(&prompt)?;
                    if ids.is_empty() {
                        return Err(err(*line, "`prompt` is empty: the first completion token would have no context".into()));
                    }
                    let c = tok.encode(completion)?;
                    ids.extend_from_slice(&c);
                    PreparedRow { ids, n_report: c.len() }
                }
            };
            if let Some(bad) = prepared.ids.iter().find(|&&t| t as usize >= vocab_size) {
                return Err(err(*line, format!("token id {bad} is out of range (vocab_size {vocab_size})")));
            }
            if prepared.ids.len() > max_positions {
                return Err(err(
                    *line,
                    format!("{} tokens exceed max_position_embeddings {max_positions}", prepared.ids.len()),
                ));
            }
            Ok(prepared)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestBackend;

    /// logits [0, 0, ln 2] → probabilities [1/4, 1/4, 1/2]; shifting a row by a constant (here
    /// +1000, which overflows a naive exp) changes nothing.
    #[test]
    fn target_logprobs_by_hand() {
        let dev = Default::default();
        let l2 = 2f32.ln();
        let logits = Tensor::<TestBackend, 3>::from_data(
            [[[0.0, 0.0, l2], [1000.0, 1000.0, 1000.0 + l2]]],
            &dev,
        );
        let targets = Tensor::<TestBackend, 2, Int>::from_data([[2, 0]], &dev);
        let kernel = target_logprobs(logits.clone(), targets.clone());
        let composed = crate::fused::composed::token_logprobs(logits, targets, false).logprobs;
        for got in [kernel, composed] {
            let got: Vec<f32> = got.into_data().to_vec().unwrap();
            assert!((got[0] - 0.5f32.ln()).abs() < 1e-6, "{got:?}");
            assert!((got[1] - 0.25f32.ln()).abs() < 1e-4, "{got:?}");
        }
    }
}
