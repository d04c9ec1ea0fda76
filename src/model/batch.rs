//! Left-padded batches of token rows, with positions taken from the mask.

use crate::fused::FusedBackend;
use burn::prelude::*;

use crate::model::ModelInput;

/// Token rows padded on the left to the longest row.
///
/// Left padding keeps every row's last token in the last column (what generation needs) and,
/// with positions `cumsum(mask) - 1`, a padded row gets the same positions as the row alone.
#[derive(Debug, Clone)]
pub struct PaddedBatch {
    /// `[batch * seq]`, row-major, padding filled with `pad_id`
    pub ids: Vec<i64>,
    /// `[batch * seq]`, position of each token in its row (0 on padding)
    pub positions: Vec<i64>,
    /// `[batch * seq]`, `true` on padding
    pub padding: Vec<bool>,
    /// Number of padding tokens in front of each row.
    pub pad_lens: Vec<usize>,
    pub batch: usize,
    pub seq: usize,
}

impl PaddedBatch {
    /// Pad `rows` on the left with `pad_id`. Empty rows are allowed (all padding).
    pub fn left_padded(rows: &[Vec<u32>], pad_id: u32) -> Self {
        let seq = rows.iter().map(Vec::len).max().unwrap_or(0);
        let batch = rows.len();
        let mut ids = Vec::with_capacity(batch * seq);
        let mut positions = Vec::with_capacity(batch * seq);
        let mut padding = Vec::with_capacity(batch * seq);
        let mut pad_lens = Vec::with_capacity(batch);
        for row in rows {
            let pad = seq - row.len();
            pad_lens.push(pad);
            ids.extend(
                std::iter::repeat_n(pad_id as i64, pad).chain(row.iter().map(|&t| t as i64)),
            );
            positions.extend(std::iter::repeat_n(0, pad).chain(0..row.len() as i64));
            padding.extend(
                std::iter::repeat_n(true, pad).chain(std::iter::repeat_n(false, row.len())),
            );
        }
        Self {
            ids,
            positions,
            padding,
            pad_lens,
            batch,
            seq,
        }
    }

    /// The model input on `device`.
    pub fn to_input<B: FusedBackend>(&self, device: &B::Device) -> ModelInput<B> {
        let shape = [self.batch, self.seq];
        ModelInput {
            input_ids: Tensor::from_data(TensorData::new(self.ids.clone(), shape), device),
            positions: Tensor::from_data(TensorData::new(self.positions.clone(), shape), device),
            padding: Tensor::from_data(TensorData::new(self.padding.clone(), shape), device),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_padding_and_positions() {
        let b = PaddedBatch::left_padded(&[vec![5, 6, 7], vec![9]], 0);
        assert_eq!((b.batch, b.seq), (2, 3));
        assert_eq!(b.ids, vec![5, 6, 7, 0, 0, 9]);
        assert_eq!(b.positions, vec![0, 1, 2, 0, 0, 0]);
        assert_eq!(b.padding, vec![false, false, false, true, true, false]);
        assert_eq!(b.pad_lens, vec![0, 2]);
    }
}
