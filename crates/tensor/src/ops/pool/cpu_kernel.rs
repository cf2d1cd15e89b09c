//! Host pooling kernels on channels-last `[n, h, w, c]` slices.
//!
//! Channels are innermost, so every step of a window is one contiguous
//! run of `c` values compared or added elementwise into the output cell's
//! `c` values: the loops vectorise and each input row is read in order.
//!
//! Forward passes split the output rows (`n · out_h` of them) between
//! rayon's threads; each output element is computed by one thread in one
//! fixed order (the window's cells top-left to bottom-right), so the bits do
//! not depend on the split. Backward passes scatter into the input's
//! gradient, where overlapping windows (strides smaller than the pool) add
//! into the same cell; they split by sample, and inside a sample add in
//! output order, so they are deterministic too.

use rayon::prelude::*;

use super::Pool2d;

/// Output elements per rayon task at least (smaller outputs run on fewer
/// threads: a task switch costs about as much as pooling a few thousand
/// values).
const MIN_TASK: usize = 4096;

/// Rows of `row_len` elements per task so that a task has [`MIN_TASK`]
/// elements at least.
fn min_rows(row_len: usize) -> usize {
    MIN_TASK.div_ceil(row_len.max(1)).max(1)
}

/// `[start, end)` of the input cells along one axis that window `o` covers
/// (padding cells dropped).
#[inline]
fn span(o: usize, stride: usize, pad: usize, window: usize, size: usize) -> (usize, usize) {
    let first = (o * stride) as isize - pad as isize;
    let start = first.max(0) as usize;
    let end = ((first + window as isize).max(0) as usize).min(size);
    (start, end.max(start))
}

/// Max pooling forward; `argmax` gets each maximum's index within its
/// sample (`(ih · w + iw) · c + ch`).
pub(super) fn max_forward(g: &Pool2d, x: &[f32], out: &mut [f32], argmax: &mut [u32]) {
    let (h, w, c) = (g.height, g.width, g.channels);
    let (oh, ow) = (g.out_height, g.out_width);
    let row_len = ow * c;
    if row_len == 0 || out.is_empty() {
        return;
    }
    out.par_chunks_mut(row_len)
        .zip(argmax.par_chunks_mut(row_len))
        .enumerate()
        .with_min_len(min_rows(row_len))
        .for_each(|(r, (orow, arow))| {
            let (b, oy) = (r / oh, r % oh);
            let sample = &x[b * h * w * c..(b + 1) * h * w * c];
            let (y0, y1) = span(oy, g.strides[0], g.pad_top, g.pool[0], h);
            for ox in 0..ow {
                let (x0, x1) = span(ox, g.strides[1], g.pad_left, g.pool[1], w);
                let o = &mut orow[ox * c..(ox + 1) * c];
                let a = &mut arow[ox * c..(ox + 1) * c];
                let first = (y0 * w + x0) * c;
                o.copy_from_slice(&sample[first..first + c]);
                for (ch, slot) in a.iter_mut().enumerate() {
                    *slot = (first + ch) as u32;
                }
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        let base = (iy * w + ix) * c;
                        if base == first {
                            continue;
                        }
                        let v = &sample[base..base + c];
                        for ch in 0..c {
                            let (cur, new) = (o[ch], v[ch]);
                            // Strictly greater: the first maximum in scan
                            // order keeps it at ties; a NaN wins over numbers
                            // (the first NaN), so NaNs propagate.
                            if new > cur || (new.is_nan() && !cur.is_nan()) {
                                o[ch] = new;
                                a[ch] = (base + ch) as u32;
                            }
                        }
                    }
                }
            }
        });
}

/// Max pooling backward: each output gradient goes to its `argmax` input.
/// Returns the first index outside the sample, if any (nothing is written
/// for it).
pub(super) fn max_backward(
    g: &Pool2d,
    grad_out: &[f32],
    argmax: &[u32],
    grad_in: &mut [f32],
) -> Option<u32> {
    let sample_in = g.height * g.width * g.channels;
    let sample_out = g.out_height * g.out_width * g.channels;
    if sample_in == 0 {
        return None;
    }
    if sample_out == 0 {
        grad_in.fill(0.0);
        return None;
    }
    grad_in
        .par_chunks_mut(sample_in)
        .zip(grad_out.par_chunks(sample_out))
        .zip(argmax.par_chunks(sample_out))
        .map(|((gi, go), am)| {
            gi.fill(0.0);
            let mut bad = None;
            for (&v, &i) in go.iter().zip(am) {
                match gi.get_mut(i as usize) {
                    Some(slot) => *slot += v,
                    None => bad = bad.or(Some(i)),
                }
            }
            bad
        })
        .reduce(|| None, |a, b| a.or(b))
}

/// Average pooling forward: the sum of the window's cells inside the image
/// (scan order) divided by their count.
pub(super) fn avg_forward(g: &Pool2d, x: &[f32], out: &mut [f32]) {
    let (h, w, c) = (g.height, g.width, g.channels);
    let (oh, ow) = (g.out_height, g.out_width);
    let row_len = ow * c;
    if row_len == 0 || out.is_empty() {
        return;
    }
    out.par_chunks_mut(row_len)
        .enumerate()
        .with_min_len(min_rows(row_len))
        .for_each(|(r, orow)| {
            let (b, oy) = (r / oh, r % oh);
            let sample = &x[b * h * w * c..(b + 1) * h * w * c];
            let (y0, y1) = span(oy, g.strides[0], g.pad_top, g.pool[0], h);
            for ox in 0..ow {
                let (x0, x1) = span(ox, g.strides[1], g.pad_left, g.pool[1], w);
                let o = &mut orow[ox * c..(ox + 1) * c];
                o.fill(0.0);
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        let base = (iy * w + ix) * c;
                        for (acc, &v) in o.iter_mut().zip(&sample[base..base + c]) {
                            *acc += v;
                        }
                    }
                }
                let count = ((y1 - y0) * (x1 - x0)) as f32;
                for v in o.iter_mut() {
                    *v /= count;
                }
            }
        });
}

/// Average pooling backward: each output gradient divided by its window's
/// count, added to every cell of the window inside the image.
pub(super) fn avg_backward(g: &Pool2d, grad_out: &[f32], grad_in: &mut [f32]) {
    let (h, w, c) = (g.height, g.width, g.channels);
    let (oh, ow) = (g.out_height, g.out_width);
    let sample_in = h * w * c;
    let sample_out = oh * ow * c;
    if sample_in == 0 {
        return;
    }
    if sample_out == 0 {
        grad_in.fill(0.0);
        return;
    }
    grad_in
        .par_chunks_mut(sample_in)
        .zip(grad_out.par_chunks(sample_out))
        .for_each(|(gi, go)| {
            gi.fill(0.0);
            for oy in 0..oh {
                let (y0, y1) = span(oy, g.strides[0], g.pad_top, g.pool[0], h);
                for ox in 0..ow {
                    let (x0, x1) = span(ox, g.strides[1], g.pad_left, g.pool[1], w);
                    let count = ((y1 - y0) * (x1 - x0)) as f32;
                    let gcell = &go[(oy * ow + ox) * c..(oy * ow + ox + 1) * c];
                    for iy in y0..y1 {
                        for ix in x0..x1 {
                            let base = (iy * w + ix) * c;
                            for (acc, &v) in gi[base..base + c].iter_mut().zip(gcell) {
                                *acc += v / count;
                            }
                        }
                    }
                }
            }
        });
}

/// Channels summed per block in `f64` registers by the global average.
const BLOCK: usize = 32;

/// Global average pooling forward: per `(sample, channel)`, the mean of the
/// `h · w` cells, summed in `f64` in scan order and rounded once.
pub(super) fn global_avg_forward(shape: [usize; 4], x: &[f32], out: &mut [f32]) {
    let [_, h, w, c] = shape;
    let cells = h * w;
    if c == 0 || out.is_empty() {
        return;
    }
    let count = cells as f64;
    out.par_chunks_mut(c)
        .enumerate()
        .with_min_len(min_rows(cells * c))
        .for_each(|(b, o)| {
            let sample = &x[b * cells * c..(b + 1) * cells * c];
            for start in (0..c).step_by(BLOCK) {
                let width = BLOCK.min(c - start);
                let mut acc = [0f64; BLOCK];
                for cell in 0..cells {
                    let v = &sample[cell * c + start..cell * c + start + width];
                    for (a, &v) in acc.iter_mut().zip(v) {
                        *a += f64::from(v);
                    }
                }
                for (o, a) in o[start..start + width].iter_mut().zip(&acc) {
                    *o = (a / count) as f32;
                }
            }
        });
}

/// Global average pooling backward: `grad_in[b, y, x, ch] = grad_out[b, ch] / (h · w)`.
pub(super) fn global_avg_backward(shape: [usize; 4], grad_out: &[f32], grad_in: &mut [f32]) {
    let [_, h, w, c] = shape;
    let cells = h * w;
    if c == 0 || cells == 0 {
        return;
    }
    let count = cells as f32;
    grad_in
        .par_chunks_mut(cells * c)
        .zip(grad_out.par_chunks(c))
        .with_min_len(min_rows(cells * c))
        .for_each(|(gi, go)| {
            for row in gi.chunks_exact_mut(c) {
                for (d, &g) in row.iter_mut().zip(go) {
                    *d = g / count;
                }
            }
        });
}
