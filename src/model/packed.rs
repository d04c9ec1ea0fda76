//! Padding-free input: the tokens of several rows back to back in one `[1, N]` row (verl's
//! remove-padding, TRL's `padding_free`), so that the embedding, the projections, the norms,
//! RoPE and the MLP compute on real tokens only. A left-padded batch of rows of very different
//! lengths (GRPO completions; MGRPO's layer-2 prompts that carry a whole first answer) spends
//! every padding position on all of those.
//!
//! Attention alone needs the rows apart: each layer gathers its queries, keys and values into
//! the left-padded `[rows, seq]` layout (one `select` of token rows), runs the backend's fused
//! attention with the causal + padding mask of that layout, and gathers the outputs back
//! ([`Unpadding`]). So the result is the padded forward pass's, token for token (up to float
//! summation order), on every backend, through ordinary Burn operations whose gradients Burn
//! already has (`select`'s backward scatters the rows back).

use crate::fused::FusedBackend;
use burn::prelude::*;

/// Where each row's tokens go, computed on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedRows {
    /// `[N]`: every row's tokens, row after row.
    pub ids: Vec<i64>,
    /// `[N]`: each token's position in its own row.
    pub positions: Vec<i64>,
    /// Index of each row's first token in `ids`.
    pub starts: Vec<usize>,
    /// `[rows · seq]`: for each slot of the left-padded layout, the token it holds (a padding
    /// slot points at token 0; attention masks it as a key and its output is dropped).
    pub to_padded: Vec<i64>,
    /// `[N]`: the left-padded slot of each token.
    pub to_packed: Vec<i64>,
    /// The left-padded layout attention runs on: `true` on padding, `[rows · seq]`.
    pub padding: Vec<bool>,
    pub rows: usize,
    /// The longest row.
    pub seq: usize,
}

impl PackedRows {
    /// Pack `rows` (at least one token among them; empty rows are allowed).
    pub fn new(rows: &[Vec<u32>]) -> Self {
        let seq = rows.iter().map(Vec::len).max().unwrap_or(0);
        let n: usize = rows.iter().map(Vec::len).sum();
        let mut padding = Vec::with_capacity(rows.len() * seq);
        let mut ids = Vec::with_capacity(n);
        let mut positions = Vec::with_capacity(n);
        let mut starts = Vec::with_capacity(rows.len());
        let mut to_padded = vec![0i64; rows.len() * seq];
        let mut to_packed = Vec::with_capacity(n);
        for (r, row) in rows.iter().enumerate() {
            let start = ids.len();
            let pad = seq - row.len();
            starts.push(start);
            padding.extend((0..seq).map(|j| j < pad));
            for (k, &t) in row.iter().enumerate() {
                ids.push(t as i64);
                positions.push(k as i64);
                let slot = r * seq + pad + k;
                to_padded[slot] = (start + k) as i64;
                to_packed.push(slot as i64);
            }
        }
        Self {
            ids,
            positions,
            starts,
            to_padded,
            to_packed,
            padding,
            rows: rows.len(),
            seq,
        }
    }

    /// Number of tokens (`N`).
    pub fn tokens(&self) -> usize {
        self.ids.len()
    }

    /// The model input on `device`.
    pub fn to_input<B: FusedBackend>(&self, device: &B::Device) -> PackedInput<B> {
        let n = self.tokens();
        let int1 = |v: &Vec<i64>| {
            Tensor::<B, 1, Int>::from_data(TensorData::new(v.clone(), [v.len()]), device)
        };
        let padding = Tensor::<B, 2, Bool>::from_data(
            TensorData::new(self.padding.clone(), [self.rows, self.seq]),
            device,
        );
        PackedInput {
            input_ids: int1(&self.ids).reshape([1, n]),
            positions: int1(&self.positions).reshape([1, n]),
            unpadding: Unpadding {
                to_padded: int1(&self.to_padded),
                to_packed: int1(&self.to_packed),
                mask: super::qwen2::attention_mask(padding),
                rows: self.rows,
                seq: self.seq,
            },
        }
    }
}

/// Tokens of several rows back to back; see [`PackedRows`], which builds this.
#[derive(Debug, Clone)]
pub struct PackedInput<B: Backend> {
    /// `[1, N]`
    pub input_ids: Tensor<B, 2, Int>,
    /// `[1, N]`, each token's position in its own row
    pub positions: Tensor<B, 2, Int>,
    pub unpadding: Unpadding<B>,
}

/// How attention moves packed tokens into the left-padded layout and back.
#[derive(Debug, Clone)]
pub struct Unpadding<B: Backend> {
    /// `[rows · seq]`: the token each padded slot holds.
    pub to_padded: Tensor<B, 1, Int>,
    /// `[N]`: the padded slot of each token.
    pub to_packed: Tensor<B, 1, Int>,
    /// `[rows, 1, seq, seq]`: the padded layout's causal + padding mask.
    pub mask: Tensor<B, 4, Bool>,
    pub rows: usize,
    pub seq: usize,
}

impl<B: Backend> Unpadding<B> {
    /// Packed heads `[1, N, heads, hd]` → left-padded `[rows, heads, seq, hd]`.
    pub fn pad(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, n, heads, hd] = x.dims();
        x.reshape([n, heads * hd])
            .select(0, self.to_padded.clone())
            .reshape([self.rows, self.seq, heads, hd])
            .swap_dims(1, 2)
    }

    /// Left-padded heads `[rows, heads, seq, hd]` → packed and merged `[1, N, heads · hd]`.
    pub fn unpad(&self, x: Tensor<B, 4>) -> Tensor<B, 3> {
        let [rows, heads, seq, hd] = x.dims();
        let n = self.to_packed.dims()[0];
        x.swap_dims(1, 2)
            .reshape([rows * seq, heads * hd])
            .select(0, self.to_packed.clone())
            .reshape([1, n, heads * hd])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_back_to_back_and_their_padded_slots() {
        let p = PackedRows::new(&[vec![5, 6, 7], vec![], vec![9, 8]]);
        assert_eq!((p.rows, p.seq, p.tokens()), (3, 3, 5));
        assert_eq!(p.ids, vec![5, 6, 7, 9, 8]);
        assert_eq!(p.positions, vec![0, 1, 2, 0, 1]);
        assert_eq!(p.starts, vec![0, 3, 3]);
        // row 0 fills slots 0..3; row 1 is all padding; row 2 is left-padded by one
        assert_eq!(p.to_padded, vec![0, 1, 2, 0, 0, 0, 0, 3, 4]);
        assert_eq!(p.to_packed, vec![0, 1, 2, 7, 8]);
        let pad = [false, false, false, true, true, true, true, false, false];
        assert_eq!(p.padding, pad);
    }
}
