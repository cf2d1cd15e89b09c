//! Host kernels of the 2-D convolution: im2col, col2im, the bias add and
//! the bias gradient, each parallel over images (or fixed row blocks) with
//! rayon, so that no sum depends on how the work is split.
//!
//! The column matrix `cols` is `[rows, patch]` row-major, one row per output
//! pixel (`rows = batch · out_h · out_w`, in NHWC order) and one column per
//! kernel tap and channel in HWIO order (`patch = kh · kw · c`, column
//! `(i · kw + j) · c + ch`). The kernel `[kh, kw, c, filters]` read as a
//! `[patch, filters]` matrix then gives the output `[rows, filters]` =
//! NHWC `[batch, out_h, out_w, filters]` as one GEMM, `cols · kernel`, with
//! both operands read contiguously.

use rayon::prelude::*;

use super::Conv2dGeometry;

impl Conv2dGeometry {
    /// The input row `oy · stride - pad + i · dilation` of output row `oy`
    /// and kernel row `i`, if inside the image.
    #[inline]
    fn in_row(&self, oy: usize, i: usize) -> Option<usize> {
        (oy * self.strides[0] + i * self.dilation[0])
            .checked_sub(self.pad[0])
            .filter(|&y| y < self.input[0])
    }

    /// The kernel columns `j` whose input column for output column `ox` lies
    /// inside the image: `j_lo..j_hi`, and the input column of `j_lo`.
    #[inline]
    fn col_range(&self, ox: usize) -> (usize, usize, usize) {
        let (w, kw) = (self.input[1], self.kernel[1]);
        let (s, d, p) = (self.strides[1], self.dilation[1], self.pad[1]);
        let start = ox * s; // input column + pad of tap 0
        // Smallest j with start + j·d >= p.
        let j_lo = if start >= p {
            0
        } else {
            (p - start).div_ceil(d).min(kw)
        };
        // Largest j + 1 with start + j·d - p < w, i.e. start + j·d < w + p.
        let j_hi = if start >= w + p {
            0
        } else {
            ((w + p - start - 1) / d + 1).min(kw)
        };
        let j_hi = j_hi.max(j_lo);
        (j_lo, j_hi, (start + j_lo * d).saturating_sub(p))
    }
}

/// Writes the columns of `batch` images `x` (`[batch, h, w, c]`) into
/// `cols` (`[batch · out_h · out_w, patch]`), zeros for taps in the padding.
pub(super) fn im2col(g: &Conv2dGeometry, x: &[f32], cols: &mut [f32]) {
    let [h, w, c] = g.input;
    let [oh, ow, _] = g.output_hwc();
    let patch = g.patch_len();
    let [kh, kw] = g.kernel;
    let dw = g.dilation[1];
    if oh * ow * patch == 0 {
        return;
    }
    cols.par_chunks_mut(oh * ow * patch)
        .zip(x.par_chunks(h * w * c))
        .for_each(|(cols, image)| {
            for oy in 0..oh {
                for ox in 0..ow {
                    let row = &mut cols[(oy * ow + ox) * patch..][..patch];
                    let (j_lo, j_hi, ix_lo) = g.col_range(ox);
                    for i in 0..kh {
                        let taps = &mut row[i * kw * c..(i + 1) * kw * c];
                        let Some(iy) = g.in_row(oy, i) else {
                            taps.fill(0.0);
                            continue;
                        };
                        taps[..j_lo * c].fill(0.0);
                        taps[j_hi * c..].fill(0.0);
                        let src = &image[iy * w * c..(iy + 1) * w * c];
                        if dw == 1 {
                            let n = (j_hi - j_lo) * c;
                            taps[j_lo * c..j_hi * c].copy_from_slice(&src[ix_lo * c..][..n]);
                        } else {
                            for (t, j) in (j_lo..j_hi).enumerate() {
                                let ix = ix_lo + t * dw;
                                taps[j * c..(j + 1) * c].copy_from_slice(&src[ix * c..][..c]);
                            }
                        }
                    }
                }
            }
        });
}

/// Adds the columns `dcols` (`[batch · out_h · out_w, patch]`) back onto
/// the images they came from: `gx` (`[batch, h, w, c]`) is overwritten with
/// the sum, per image in one fixed order (output pixels row-major, then
/// kernel taps), whatever the number of threads.
pub(super) fn col2im(g: &Conv2dGeometry, dcols: &[f32], gx: &mut [f32]) {
    let [h, w, c] = g.input;
    let [oh, ow, _] = g.output_hwc();
    let patch = g.patch_len();
    let [kh, kw] = g.kernel;
    let dw = g.dilation[1];
    if h * w * c == 0 {
        return;
    }
    if oh * ow * patch == 0 {
        gx.fill(0.0);
        return;
    }
    gx.par_chunks_mut(h * w * c)
        .zip(dcols.par_chunks(oh * ow * patch))
        .for_each(|(image, cols)| {
            image.fill(0.0);
            for oy in 0..oh {
                for ox in 0..ow {
                    let row = &cols[(oy * ow + ox) * patch..][..patch];
                    let (j_lo, j_hi, ix_lo) = g.col_range(ox);
                    for i in 0..kh {
                        let Some(iy) = g.in_row(oy, i) else {
                            continue;
                        };
                        let taps = &row[i * kw * c..(i + 1) * kw * c];
                        let dst = &mut image[iy * w * c..(iy + 1) * w * c];
                        for (t, j) in (j_lo..j_hi).enumerate() {
                            let ix = ix_lo + t * dw;
                            for (d, &s) in dst[ix * c..][..c].iter_mut().zip(&taps[j * c..][..c]) {
                                *d += s;
                            }
                        }
                    }
                }
            }
        });
}

/// Rows per block of the row-parallel loops below (a fixed number, so the
/// blocks, and any per-block sums, do not depend on the thread count).
const ROW_BLOCK: usize = 256;

/// `out[r, f] += bias[f]` for every row `r` of `out` (`[rows, filters]`).
pub(super) fn add_bias(out: &mut [f32], bias: &[f32]) {
    let filters = bias.len();
    if filters == 0 {
        return;
    }
    out.par_chunks_mut(ROW_BLOCK * filters).for_each(|block| {
        for row in block.chunks_exact_mut(filters) {
            for (o, &b) in row.iter_mut().zip(bias) {
                *o += b;
            }
        }
    });
}

/// `gb[f] = Σ_r g[r, f]` over the rows of `g` (`[rows, filters]`): each
/// block of [`ROW_BLOCK`] rows is summed in row order (in parallel), then
/// the block sums are added in block order, so the bits do not depend on
/// the number of threads. `partials` is scratch (resized as needed).
pub(super) fn sum_rows(g: &[f32], gb: &mut [f32], partials: &mut Vec<f32>) {
    let filters = gb.len();
    gb.fill(0.0);
    if filters == 0 || g.is_empty() {
        return;
    }
    let blocks = (g.len() / filters).div_ceil(ROW_BLOCK);
    partials.clear();
    partials.resize(blocks * filters, 0.0);
    partials
        .par_chunks_mut(filters)
        .zip(g.par_chunks(ROW_BLOCK * filters))
        .for_each(|(sum, block)| {
            for row in block.chunks_exact(filters) {
                for (s, &v) in sum.iter_mut().zip(row) {
                    *s += v;
                }
            }
        });
    for sum in partials.chunks_exact(filters) {
        for (b, &s) in gb.iter_mut().zip(sum) {
            *b += s;
        }
    }
}
