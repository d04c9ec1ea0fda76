//! Padding-free input: the tokens of several rows back to back in one `[1, N]` row (verl's
//! remove-padding, TRL's `padding_free`), so that the embedding, the projections, the norms,
//! RoPE and the MLP compute on real tokens only. A left-padded batch of rows of very different
//! lengths (GRPO completions; MGRPO's layer-2 prompts that carry a whole first answer) spends
//! every padding position on all of those.
//!
//! Rows that start with the same prefix (the `G` completions of one GRPO prompt) hold that
//! prefix's tokens once ([`PackedRows::sharing_prefixes`]): a token's hidden states depend only
//! on the tokens before it, so the prefix computes the same values in every row of its group.
//! The token-wise layers compute it once, and its keys and values serve every row's attention.
//!
//! Attention alone needs the rows apart: each layer gathers its queries, keys and values into
//! the left-padded `[rows, seq]` layout (one `select` of token rows; a shared prefix token is
//! selected into each of its rows), runs the backend's fused attention with the causal +
//! padding mask of that layout, and gathers the outputs back, a shared token's from the first
//! row that holds it ([`Unpadding`]). So the result is the padded forward pass's, token for
//! token (up to float summation order), on every backend, through ordinary Burn operations
//! whose gradients Burn already has (`select`'s backward scatters — and sums, for a shared
//! token's keys and values — the rows back).

use crate::fused::FusedBackend;
use burn::prelude::*;
use std::collections::{HashMap, HashSet};

/// Where each row's tokens go, computed on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedRows {
    /// `[N]`: every distinct token, row after row (a shared prefix where it first appears).
    pub ids: Vec<i64>,
    /// `[N]`: each token's position in its own row.
    pub positions: Vec<i64>,
    /// `[rows · seq]`: for each slot of the left-padded layout, the token it holds (a padding
    /// slot points at token 0; attention masks it as a key and its output is dropped).
    pub to_padded: Vec<i64>,
    /// `[N]`: the left-padded slot each token's output is read from (for a shared prefix, the
    /// first row that holds it).
    pub to_packed: Vec<i64>,
    /// The left-padded layout attention runs on: `true` on padding, `[rows · seq]`.
    pub padding: Vec<bool>,
    pub rows: usize,
    /// The longest row.
    pub seq: usize,
    /// Each row's length.
    lens: Vec<usize>,
}

/// The prefixes [`PackedRows::sharing_prefixes`] does not hold again: each non-empty prefix
/// equal to an earlier one (by content), in order.
pub fn repeated_prefixes<'a>(
    prefixes: impl IntoIterator<Item = &'a [u32]>,
) -> impl Iterator<Item = &'a [u32]> {
    let mut seen = HashSet::new();
    prefixes
        .into_iter()
        .filter(move |p| !p.is_empty() && !seen.insert(*p))
}

impl PackedRows {
    /// Pack rows given as `(prefix, rest)`: rows whose prefixes are equal (and not empty) hold
    /// one copy of the prefix's tokens, the first row's.
    pub fn sharing_prefixes(rows: &[(&[u32], &[u32])]) -> Self {
        let len = |(p, r): &(&[u32], &[u32])| p.len() + r.len();
        let seq = rows.iter().map(len).max().unwrap_or(0);
        let mut padding = Vec::with_capacity(rows.len() * seq);
        let mut ids = Vec::new();
        let mut positions = Vec::new();
        let mut to_padded = vec![0i64; rows.len() * seq];
        let mut to_packed = Vec::new();
        let mut lens = Vec::with_capacity(rows.len());
        let mut prefix_at: HashMap<&[u32], usize> = HashMap::new();
        let mut push = |tokens: &[u32], first_pos: usize, slot: usize| {
            let start = ids.len();
            for (k, &t) in tokens.iter().enumerate() {
                ids.push(t as i64);
                positions.push((first_pos + k) as i64);
                to_packed.push((slot + k) as i64);
            }
            start
        };
        for (r, row @ &(prefix, rest)) in rows.iter().enumerate() {
            let pad = seq - len(row);
            padding.extend((0..seq).map(|j| j < pad));
            let slot = r * seq + pad;
            let at = match prefix_at.get(prefix) {
                Some(&at) => at,
                None => {
                    let at = push(prefix, 0, slot);
                    if !prefix.is_empty() {
                        prefix_at.insert(prefix, at);
                    }
                    at
                }
            };
            let own = push(rest, prefix.len(), slot + prefix.len());
            let tokens = (at..at + prefix.len()).chain(own..own + rest.len());
            for (dst, token) in to_padded[slot..slot + len(row)].iter_mut().zip(tokens) {
                *dst = token as i64;
            }
            lens.push(len(row));
        }
        Self {
            ids,
            positions,
            to_padded,
            to_packed,
            padding,
            rows: rows.len(),
            seq,
            lens,
        }
    }

    /// The index in `ids` of token `j` of row `r`.
    pub fn token(&self, r: usize, j: usize) -> usize {
        self.to_padded[r * self.seq + self.seq - self.lens[r] + j] as usize
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
                mask: super::causal_lm::attention_mask(padding),
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
        let rows = [vec![5, 6, 7], vec![], vec![9, 8]];
        let split: Vec<(&[u32], &[u32])> = rows.iter().map(|r| (&[][..], &r[..])).collect();
        let p = PackedRows::sharing_prefixes(&split);
        assert_eq!((p.rows, p.seq, p.tokens()), (3, 3, 5));
        assert_eq!(p.ids, vec![5, 6, 7, 9, 8]);
        assert_eq!(p.positions, vec![0, 1, 2, 0, 1]);
        assert_eq!((p.token(0, 0), p.token(2, 0), p.token(2, 1)), (0, 3, 4));
        // row 0 fills slots 0..3; row 1 is all padding; row 2 is left-padded by one
        assert_eq!(p.to_padded, vec![0, 1, 2, 0, 0, 0, 0, 3, 4]);
        assert_eq!(p.to_packed, vec![0, 1, 2, 7, 8]);
        let pad = [false, false, false, true, true, true, true, false, false];
        assert_eq!(p.padding, pad);
    }

    #[test]
    fn equal_prefixes_hold_their_tokens_once() {
        let (a, b) = ([5u32, 6], [7u32]);
        let rows: [(&[u32], &[u32]); 4] = [(&a, &[1, 2]), (&b, &[3]), (&a, &[4]), (&[], &[8])];
        let p = PackedRows::sharing_prefixes(&rows);
        assert_eq!((p.rows, p.seq, p.tokens()), (4, 4, 8));
        // row 2's prefix is row 0's tokens 0 and 1; only its own token 4 is new
        assert_eq!(p.ids, vec![5, 6, 1, 2, 7, 3, 4, 8]);
        assert_eq!(p.positions, vec![0, 1, 2, 3, 0, 1, 2, 0]);
        assert_eq!(
            p.to_padded,
            vec![0, 1, 2, 3, 0, 0, 4, 5, 0, 0, 1, 6, 0, 0, 0, 7]
        );
        // each token's output is read from the first row that holds it
        assert_eq!(p.to_packed, vec![0, 1, 2, 3, 6, 7, 11, 15]);
        assert_eq!((p.token(2, 0), p.token(2, 1), p.token(2, 2)), (0, 1, 6));
        // an empty prefix shares nothing
        let rows: [(&[u32], &[u32]); 2] = [(&[], &[1]), (&[], &[1])];
        assert_eq!(PackedRows::sharing_prefixes(&rows).tokens(), 2);
    }
}
