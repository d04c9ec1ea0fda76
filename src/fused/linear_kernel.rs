//! `y = x·w + bias` for a few rows of `x`: the projections and the LM head while decoding, one
//! row per sequence. `gemm` packs both operands before every product, which pays off when many
//! rows share the packed weight; at 8–32 rows the packing of a weight read once costs as much
//! as the product (the tiny model's decode step ran at ~15 GFLOP/s on one core). Here the
//! weight is streamed once per block of four rows into 4 × 16 register accumulators, either in
//! its own row-major layout (`[in, out]`, Burn's: [`linear`]) or, while decoding, from a copy
//! packed once into panels of sixteen columns ([`Panels`], [`linear_packed`]). Row-major, the
//! sixteen columns of consecutive rows of `w` lie a whole row apart (16 KiB for a 4096-wide LM
//! head): every load is a new page, which the hardware prefetcher does not follow, and the
//! kernel waits on memory (20–25 GFLOP/s at 8 rows on one core of the 2-core machine). A panel
//! is one contiguous run of `16·in` values, read front to back (40–45 GFLOP/s at 8 rows, ~65 at
//! 32).

use rayon::prelude::*;

/// Rows up to which the kernel runs on a row-major weight; above, `gemm`'s packed kernels are
/// faster.
pub const MAX_ROWS: usize = 32;

/// Rows up to which the kernel runs on a packed weight.
pub const MAX_PACKED_ROWS: usize = 128;

/// Rows and columns of one register block.
const MR: usize = 4;
const NR: usize = 16;

/// Multiply-adds above which the columns are split over the threads.
const PARALLEL_MACS: usize = 1 << 18;

/// A `[k, n]` weight packed into `n.div_ceil(16)` panels of `[k, 16]` (the last one padded
/// with zeros), each contiguous.
#[derive(Debug, Clone)]
pub struct Panels {
    data: Vec<f32>,
    k: usize,
    n: usize,
}

impl Panels {
    /// Pack a row-major `[k, n]` weight.
    pub fn pack(w: &[f32], k: usize, n: usize) -> Self {
        debug_assert_eq!(w.len(), k * n);
        let mut data = vec![0.0f32; n.div_ceil(NR) * k * NR];
        for (p, panel) in data.chunks_exact_mut((k * NR).max(1)).enumerate() {
            let j = p * NR;
            let nr = NR.min(n - j);
            for (kk, dst) in panel.chunks_exact_mut(NR).enumerate() {
                dst[..nr].copy_from_slice(&w[kk * n + j..kk * n + j + nr]);
            }
        }
        Self { data, k, n }
    }
}

/// Where a register block's weight columns are.
#[derive(Clone, Copy)]
enum Weight<'a> {
    /// `[k, n]`, row-major.
    RowMajor(&'a [f32]),
    Panels(&'a Panels),
}

impl<'a> Weight<'a> {
    /// The weight from column `j` (a multiple of 16) and its row stride (nothing to read when
    /// `k = 0`).
    fn at_column(self, j: usize, k: usize, n: usize) -> (&'a [f32], usize) {
        match self {
            Weight::RowMajor(w) => (&w[j.min(w.len())..], n),
            Weight::Panels(p) => (&p.data[(j / NR) * k * NR..], NR),
        }
    }
}

/// `y = x·w (+ bias)`.
///
/// # Shapes
/// - `x`: `[m, k]`, `w`: `[k, n]`, `bias`: `[n]`, all row-major and contiguous → `[m, n]`
pub fn linear(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    m: usize,
    k: usize,
    n: usize,
) -> Vec<f32> {
    debug_assert!(w.len() == k * n);
    product(x, Weight::RowMajor(w), bias, [m, k, n])
}

/// `y = x·w (+ bias)` with `w` packed.
///
/// # Shapes
/// - `x`: `[m, k]` row-major, `bias`: `[n]` → `[m, n]`, for the `[k, n]` weight `w` packs
pub fn linear_packed(x: &[f32], w: &Panels, bias: Option<&[f32]>, m: usize) -> Vec<f32> {
    product(x, Weight::Panels(w), bias, [m, w.k, w.n])
}

fn product(x: &[f32], w: Weight<'_>, bias: Option<&[f32]>, [m, k, n]: [usize; 3]) -> Vec<f32> {
    debug_assert!(x.len() == m * k);
    debug_assert!(bias.is_none_or(|b| b.len() == n));
    let mut y = vec![0.0f32; m * n];
    if y.is_empty() {
        return y;
    }
    let threads = rayon::current_num_threads();
    let tasks = if m * n * k >= PARALLEL_MACS {
        threads.min(n.div_ceil(NR))
    } else {
        1
    };
    if tasks <= 1 {
        columns(x, w, bias, [m, k, n], 0..n, &mut y, n);
        return y;
    }
    // Each task computes a band of columns into its own buffer, copied into `y` after.
    let width = n.div_ceil(NR).div_ceil(tasks) * NR;
    let bands: Vec<(usize, Vec<f32>)> = (0..tasks)
        .into_par_iter()
        .map(|t| {
            let cols = (t * width).min(n)..((t + 1) * width).min(n);
            let mut band = vec![0.0f32; m * cols.len()];
            let ld = cols.len();
            let start = cols.start;
            columns(x, w, bias, [m, k, n], cols, &mut band, ld);
            (start, band)
        })
        .collect();
    for (start, band) in bands {
        let ld = band.len() / m;
        for r in 0..m {
            y[r * n + start..r * n + start + ld].copy_from_slice(&band[r * ld..(r + 1) * ld]);
        }
    }
    y
}

/// Columns `cols` of `y = x·w + bias` into `out` (`[m, cols.len()]`, row stride `ldo`).
fn columns(
    x: &[f32],
    w: Weight<'_>,
    bias: Option<&[f32]>,
    [m, k, n]: [usize; 3],
    cols: std::ops::Range<usize>,
    out: &mut [f32],
    ldo: usize,
) {
    let avx2 = super::kernels::avx2_fma();
    let mut j = cols.start;
    while j < cols.end {
        let nr = NR.min(cols.end - j);
        let mut init = [0.0f32; NR];
        if let Some(b) = bias {
            init[..nr].copy_from_slice(&b[j..j + nr]);
        }
        let mut r = 0;
        while r < m {
            let mr = MR.min(m - r);
            let at = r * ldo + (j - cols.start);
            let (w, ldw) = w.at_column(j, k, n);
            let block = Block {
                x: &x[r * k..(r + mr) * k],
                w,
                k,
                ldw,
                init: &init,
            };
            #[cfg(target_arch = "x86_64")]
            if avx2 && nr == NR {
                // SAFETY: the CPU has AVX2 and FMA (checked at run time); `block` holds `mr`
                // rows of `x` and sixteen columns of every row of `w`, and `out` `mr` rows of
                // sixteen columns at `at` with row stride `ldo`.
                unsafe {
                    match mr {
                        4 => block.rows_avx2::<4>(&mut out[at..], ldo),
                        3 => block.rows_avx2::<3>(&mut out[at..], ldo),
                        2 => block.rows_avx2::<2>(&mut out[at..], ldo),
                        _ => block.rows_avx2::<1>(&mut out[at..], ldo),
                    }
                }
                r += mr;
                continue;
            }
            let _ = avx2;
            block.any(mr, nr, &mut out[at..], ldo);
            r += mr;
        }
        j += nr;
    }
}

/// One register block's operands: `mr` rows of `x` (`[mr, k]`), `w` from the block's first
/// column (row stride `ldw`), and the accumulators' start (the bias, or zeros).
struct Block<'a> {
    x: &'a [f32],
    w: &'a [f32],
    k: usize,
    ldw: usize,
    init: &'a [f32; NR],
}

impl Block<'_> {
    /// Any block of `mr ≤ 4` rows and `nr ≤ 16` columns, portable code.
    fn any(&self, mr: usize, nr: usize, out: &mut [f32], ldo: usize) {
        let mut acc = [[0.0f32; NR]; MR];
        for row in acc.iter_mut().take(mr) {
            *row = *self.init;
        }
        for kk in 0..self.k {
            let wr = &self.w[kk * self.ldw..kk * self.ldw + nr];
            for (r, row) in acc.iter_mut().enumerate().take(mr) {
                let a = self.x[r * self.k + kk];
                for (c, &wv) in row.iter_mut().zip(wr) {
                    *c += a * wv;
                }
            }
        }
        for (r, row) in acc.iter().enumerate().take(mr) {
            out[r * ldo..r * ldo + nr].copy_from_slice(&row[..nr]);
        }
    }

    /// `R ≤ 4` rows × 16 columns: `2R` AVX registers of accumulators, each row of `w` loaded
    /// once and multiplied by the rows' broadcast values.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; the block must hold `R` rows of `x` and sixteen columns
    /// of `w` and of `out` from their starts.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn rows_avx2<const R: usize>(&self, out: &mut [f32], ldo: usize) {
        use std::arch::x86_64::*;
        let k = self.k;
        assert!(R <= MR && self.x.len() >= R * k && out.len() >= (R - 1) * ldo + NR);
        assert!(k == 0 || self.w.len() >= (k - 1) * self.ldw + NR);
        let (x, w) = (self.x.as_ptr(), self.w.as_ptr());
        let b0 = _mm256_loadu_ps(self.init.as_ptr());
        let b1 = _mm256_loadu_ps(self.init.as_ptr().add(8));
        let mut c = [b0, b1, b0, b1, b0, b1, b0, b1];
        for kk in 0..k {
            let wr = w.add(kk * self.ldw);
            let (w0, w1) = (_mm256_loadu_ps(wr), _mm256_loadu_ps(wr.add(8)));
            for r in 0..R {
                let a = _mm256_set1_ps(*x.add(r * k + kk));
                c[2 * r] = _mm256_fmadd_ps(a, w0, c[2 * r]);
                c[2 * r + 1] = _mm256_fmadd_ps(a, w1, c[2 * r + 1]);
            }
        }
        let o = out.as_mut_ptr();
        for r in 0..R {
            _mm256_storeu_ps(o.add(r * ldo), c[2 * r]);
            _mm256_storeu_ps(o.add(r * ldo + 8), c[2 * r + 1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Row-major and packed against a plain triple loop in f64, over shapes with row and column
    /// tails (a last panel of 4 columns), with and without a bias, one thread and several.
    #[test]
    fn matches_a_plain_product() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for (m, k, n) in [
            (1, 1, 1),
            (3, 5, 7),
            (4, 128, 16),
            (16, 128, 512),
            (7, 33, 70),
            (32, 256, 704),
            (5, 64, 4100),
            (70, 48, 40),
            (3, 0, 20),
        ] {
            let mut draw = |len: usize| -> Vec<f32> {
                (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
            };
            let (x, w, b) = (draw(m * k), draw(k * n), draw(n));
            let packed = Panels::pack(&w, k, n);
            for (bias, got) in [None, Some(b.as_slice())].into_iter().flat_map(|bias| {
                [
                    (bias, linear(&x, &w, bias, m, k, n)),
                    (bias, linear_packed(&x, &packed, bias, m)),
                ]
            }) {
                for r in 0..m {
                    for j in 0..n {
                        let mut want = bias.map_or(0.0, |b| b[j] as f64);
                        for kk in 0..k {
                            want += x[r * k + kk] as f64 * w[kk * n + j] as f64;
                        }
                        let g = got[r * n + j] as f64;
                        assert!(
                            (g - want).abs() <= 1e-5 * (k as f64).sqrt().max(1.0),
                            "[{m}, {k}, {n}] y[{r}, {j}]: {g} against {want}"
                        );
                    }
                }
            }
        }
    }
}
