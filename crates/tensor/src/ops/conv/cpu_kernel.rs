//! Host kernels of the 2-D convolution: im2col, col2im, and the grouped
//! forward and backward passes on the serial GEMM.
//!
//! The column matrix of one image is `[out_h · out_w, patch]` row-major,
//! one row per output pixel and one column per kernel tap and channel in
//! HWIO order (`patch = kh · kw · c`, column `(i · kw + j) · c + ch`). The
//! kernel `[kh, kw, c, filters]` read as a `[patch, filters]` matrix then
//! gives the output pixels `[out_h · out_w, filters]` (NHWC) as one GEMM,
//! both operands read contiguously.
//!
//! The batch is cut into groups of [`Conv2dGeometry::group_images`] images
//! (a number fixed by the geometry, never by the thread count), and the
//! groups run in parallel, each on one thread: im2col of the group, its
//! GEMM, bias and epilogue while the group's columns are still in cache;
//! in the backward pass its share of the kernel and bias gradients (summed
//! afterwards in group order) and its images' input gradient. So every
//! result is bit-identical for any number of threads.

use rayon::prelude::*;

use super::Conv2dGeometry;
use crate::Result;
use crate::ops::matmul::{MatRef, gemm_serial};

/// Output rows (pixels) a group aims at: its columns (`rows · patch`
/// floats, 560 KB for the MNIST convnet's second layer) stay in the core's
/// cache between im2col and the GEMM, and a batch of 128 still makes tens of
/// groups to share between the cores.
const GROUP_ROWS: usize = 512;

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

    /// Images per group (see the module docs).
    pub(super) fn group_images(&self) -> usize {
        (GROUP_ROWS / (self.out[0] * self.out[1]).max(1)).max(1)
    }

    /// Elements of one image, of its output, of its columns.
    fn per_image(&self) -> (usize, usize, usize) {
        let [h, w, c] = self.input;
        let pixels = self.out[0] * self.out[1];
        (h * w * c, pixels * self.filters, pixels * self.patch_len())
    }
}

/// Writes the columns of one image (`[h, w, c]`) into `cols`
/// (`[out_h · out_w, patch]`), zeros for taps in the padding.
fn im2col(g: &Conv2dGeometry, image: &[f32], cols: &mut [f32]) {
    let [_, w, c] = g.input;
    let [oh, ow, _] = g.output_hwc();
    let patch = g.patch_len();
    let [kh, kw] = g.kernel;
    let dw = g.dilation[1];
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
}

/// Adds one image's columns `dcols` (`[out_h · out_w, patch]`) back onto
/// the pixels they came from: `gx` (`[h, w, c]`) is overwritten with the
/// sum, in one fixed order (output pixels row-major, then kernel taps).
fn col2im(g: &Conv2dGeometry, dcols: &[f32], gx: &mut [f32]) {
    let [_, w, c] = g.input;
    let [oh, ow, _] = g.output_hwc();
    let patch = g.patch_len();
    let [kh, kw] = g.kernel;
    let dw = g.dilation[1];
    gx.fill(0.0);
    for oy in 0..oh {
        for ox in 0..ow {
            let row = &dcols[(oy * ow + ox) * patch..][..patch];
            let (j_lo, j_hi, ix_lo) = g.col_range(ox);
            for i in 0..kh {
                let Some(iy) = g.in_row(oy, i) else {
                    continue;
                };
                let taps = &row[i * kw * c..(i + 1) * kw * c];
                let dst = &mut gx[iy * w * c..(iy + 1) * w * c];
                for (t, j) in (j_lo..j_hi).enumerate() {
                    let ix = ix_lo + t * dw;
                    for (d, &s) in dst[ix * c..][..c].iter_mut().zip(&taps[j * c..][..c]) {
                        *d += s;
                    }
                }
            }
        }
    }
}

/// The columns of every image of `x` into `cols` (in parallel over images).
pub(super) fn im2col_batch(g: &Conv2dGeometry, x: &[f32], cols: &mut [f32]) {
    let (x_img, _, cols_img) = g.per_image();
    if cols_img == 0 {
        return;
    }
    cols.par_chunks_mut(cols_img)
        .zip(x.par_chunks(x_img))
        .for_each(|(cols, image)| im2col(g, image, cols));
}

/// col2im of every image: `gx` (`[batch, h, w, c]`) from `dcols`
/// (`[batch · out_h · out_w, patch]`), in parallel over images.
pub(super) fn col2im_batch(g: &Conv2dGeometry, dcols: &[f32], gx: &mut [f32]) {
    let (x_img, _, cols_img) = g.per_image();
    if x_img == 0 || cols_img == 0 {
        gx.fill(0.0);
        return;
    }
    gx.par_chunks_mut(x_img)
        .zip(dcols.par_chunks(cols_img))
        .for_each(|(image, dcols)| col2im(g, dcols, image));
}

/// The forward pass (see `Conv2dGeometry::forward`): per group, im2col into
/// its part of `cols`, `out = cols · K`, `+ bias`, then
/// `epilogue(first_row, rows)` on the group's output rows.
pub(super) fn forward(
    g: &Conv2dGeometry,
    x: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    cols: &mut [f32],
    epilogue: &(dyn Fn(usize, &mut [f32]) + Sync),
) -> Result<()> {
    let (x_img, out_img, cols_img) = g.per_image();
    let per = g.group_images();
    let (patch, filters) = (g.patch_len(), g.filters);
    let k = MatRef::new(kernel, patch, filters)?;
    if out_img == 0 {
        return Ok(());
    }
    out.par_chunks_mut(per * out_img)
        .zip(cols.par_chunks_mut(per * cols_img))
        .zip(x.par_chunks(per * x_img))
        .enumerate()
        .try_for_each(|(group, ((out, cols), x))| {
            for (cols, image) in cols.chunks_mut(cols_img).zip(x.chunks(x_img)) {
                im2col(g, image, cols);
            }
            let rows = out.len() / filters;
            gemm_serial(out, MatRef::new(cols, rows, patch)?, k)?;
            if let Some(bias) = bias {
                for row in out.chunks_exact_mut(filters) {
                    for (o, &b) in row.iter_mut().zip(bias) {
                        *o += b;
                    }
                }
            }
            epilogue(group * per * out_img / filters, out);
            Ok(())
        })
}

/// What the backward pass computes: the kernel and bias gradients' per-group
/// shares go to `partials` (`groups · (patch · filters + filters)`), summed
/// into `kernel` and `bias` afterwards; the input gradient directly.
pub(super) struct Backward<'a> {
    pub kernel: Option<&'a mut [f32]>,
    pub bias: Option<&'a mut [f32]>,
    pub input: Option<&'a mut [f32]>,
}

/// The backward pass (see `Conv2dGeometry::backward`); `cols` holds the
/// forward pass's columns and is overwritten when the input gradient is
/// asked for.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward(
    g: &Conv2dGeometry,
    kernel: &[f32],
    grad_out: &mut [f32],
    cols: &mut [f32],
    partials: &mut [f32],
    grads: Backward<'_>,
    prologue: &(dyn Fn(usize, &mut [f32]) + Sync),
) -> Result<()> {
    let (x_img, out_img, cols_img) = g.per_image();
    let per = g.group_images();
    let (patch, filters) = (g.patch_len(), g.filters);
    let kt = MatRef::new(kernel, patch, filters)?.t();
    let share = patch * filters + filters;
    let (need_k, need_b) = (grads.kernel.is_some(), grads.bias.is_some());
    if out_img == 0 {
        if let Some(gx) = grads.input {
            gx.fill(0.0);
        }
        for grad in [grads.kernel, grads.bias].into_iter().flatten() {
            grad.fill(0.0);
        }
        return Ok(());
    }
    let group = |group: usize,
                 gy: &mut [f32],
                 cols: &mut [f32],
                 part: &mut [f32],
                 gx: Option<&mut [f32]>|
     -> Result<()> {
        let rows = gy.len() / filters;
        prologue(group * per * out_img / filters, gy);
        let (pk, pb) = part.split_at_mut(patch * filters);
        if need_k {
            gemm_serial(
                pk,
                MatRef::new(cols, rows, patch)?.t(),
                MatRef::new(gy, rows, filters)?,
            )?;
        }
        if need_b {
            pb.fill(0.0);
            for row in gy.chunks_exact(filters) {
                for (s, &v) in pb.iter_mut().zip(row) {
                    *s += v;
                }
            }
        }
        if let Some(gx) = gx {
            gemm_serial(cols, MatRef::new(gy, rows, filters)?, kt)?;
            for (dcols, image) in cols.chunks(cols_img).zip(gx.chunks_mut(x_img)) {
                col2im(g, dcols, image);
            }
        }
        Ok(())
    };
    let groups = grad_out
        .par_chunks_mut(per * out_img)
        .zip(cols.par_chunks_mut(per * cols_img))
        .zip(partials.par_chunks_mut(share))
        .enumerate();
    match grads.input {
        Some(gx) => groups
            .zip(gx.par_chunks_mut(per * x_img))
            .try_for_each(|((i, ((gy, cols), part)), gx)| group(i, gy, cols, part, Some(gx)))?,
        None => groups.try_for_each(|(i, ((gy, cols), part))| group(i, gy, cols, part, None))?,
    }
    // The groups' shares, added in group order (in parallel over elements).
    let partials = &*partials;
    let add_shares = |grad: &mut [f32], offset: usize| {
        grad.par_chunks_mut(256)
            .enumerate()
            .for_each(|(block, out)| {
                let start = offset + block * 256;
                out.fill(0.0);
                for part in partials.chunks_exact(share) {
                    for (s, &v) in out.iter_mut().zip(&part[start..]) {
                        *s += v;
                    }
                }
            });
    };
    if let Some(gk) = grads.kernel {
        add_shares(gk, 0);
    }
    if let Some(gb) = grads.bias {
        add_shares(gb, patch * filters);
    }
    Ok(())
}
