//! Products of strided matrices in host memory for the attention kernel: through the `gemm`
//! crate (burn-flex's own GEMM) straight on the tensors' memory, a transposed view costing no
//! copy, or, for a few rows (decoding), as dot products and sums of rows.

use gemm::Parallelism;

/// A strided matrix in a slice: element `(i, j)` at `offset + i·rs + j·cs`.
#[derive(Clone, Copy)]
pub(super) struct Mat<'a> {
    pub(super) data: &'a [f32],
    pub(super) offset: usize,
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) rs: usize,
    pub(super) cs: usize,
}

impl<'a> Mat<'a> {
    /// A contiguous row-major `rows × cols` matrix.
    pub(super) fn dense(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            offset: 0,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// Whether every element lies inside `len` elements.
    fn fits(offset: usize, rows: usize, cols: usize, rs: usize, cs: usize, len: usize) -> bool {
        rows == 0 || cols == 0 || offset + (rows - 1) * rs + (cols - 1) * cs < len
    }

    /// Rows `start..start + n` (a view).
    pub(super) fn rows(self, start: usize, n: usize) -> Self {
        Self {
            offset: self.offset + start * self.rs,
            rows: n,
            ..self
        }
    }

    /// The transpose (a view: strides swapped).
    pub(super) fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

/// Products with at most this many rows (decoding: one query per head, or a short chunk) run
/// as dot products or sums of rows instead of through `gemm`, which packs its operands first.
const SMALL_ROWS: usize = 4;

/// `dst[offset + i·rs + j·cs] (+)= alpha · (lhs · rhs)[i, j]` for a `rows × cols` destination.
#[inline(always)]
pub(super) fn matmul(
    dst: &mut [f32],
    (offset, rs, cs): (usize, usize, usize),
    lhs: Mat,
    rhs: Mat,
    alpha: f32,
    accumulate: bool,
) {
    let (m, n, k) = (lhs.rows, rhs.cols, lhs.cols);
    assert_eq!(k, rhs.rows, "matmul: inner sizes");
    assert!(
        Mat::fits(offset, m, n, rs, cs, dst.len())
            && Mat::fits(lhs.offset, m, k, lhs.rs, lhs.cs, lhs.data.len())
            && Mat::fits(rhs.offset, k, n, rhs.rs, rhs.cs, rhs.data.len()),
        "matmul: an operand reaches past its buffer"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst[offset + i * rs + j * cs] = 0.0;
                }
            }
        }
        return;
    }
    if m <= SMALL_ROWS && lhs.cs == 1 && (rhs.rs == 1 || rhs.cs == 1) {
        few_rows(dst, (offset, rs, cs), lhs, rhs, alpha, accumulate);
        return;
    }
    // SAFETY: every index the product reads or writes was checked above to lie inside its
    // slice (strides are non-negative), `dst` is borrowed mutably and is not aliased by the
    // operands (they are shared borrows of other buffers).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(offset),
            cs as isize,
            rs as isize,
            accumulate,
            lhs.data.as_ptr().add(lhs.offset),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr().add(rhs.offset),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            alpha,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// [`matmul`] for a few rows of `lhs`, each row contiguous: a dot product per output when
/// `rhs`'s columns are contiguous (`Q·Kᵀ`), a sum of `rhs`'s rows when its rows are (`P·V`).
#[inline(always)]
fn few_rows(
    dst: &mut [f32],
    (offset, rs, cs): (usize, usize, usize),
    lhs: Mat,
    rhs: Mat,
    alpha: f32,
    accumulate: bool,
) {
    let (m, n, k) = (lhs.rows, rhs.cols, lhs.cols);
    let mut acc = vec![0.0f32; n];
    for i in 0..m {
        let a = &lhs.data[lhs.offset + i * lhs.rs..][..k];
        if rhs.rs == 1 {
            for (j, c) in acc.iter_mut().enumerate() {
                *c = dot(a, &rhs.data[rhs.offset + j * rhs.cs..][..k]);
            }
        } else {
            acc.fill(0.0);
            for (p, &ap) in a.iter().enumerate() {
                let b = &rhs.data[rhs.offset + p * rhs.rs..][..n];
                for (c, &bv) in acc.iter_mut().zip(b) {
                    *c += ap * bv;
                }
            }
        }
        for (j, &c) in acc.iter().enumerate() {
            let at = offset + i * rs + j * cs;
            dst[at] = if accumulate {
                dst[at] + alpha * c
            } else {
                alpha * c
            };
        }
    }
}

/// `Σ a·b`, eight lanes at a time.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}
