//! Host softmax kernel over contiguous rows.

use crate::{Error, Result};

/// Softmax of one row in place: `e = exp(x - max)`, then `e * (1 / sum(e))`.
/// Returns `(max, sum)`, from which a cross-entropy takes
/// `log Σ exp(x) = max + ln(sum)`.
pub(crate) fn softmax_row_in_place(row: &mut [f32]) -> (f32, f32) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for v in row.iter_mut() {
        *v = (*v - max).exp();
    }
    let sum: f32 = row.iter().sum();
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
    (max, sum)
}

pub(super) fn softmax(x: &[f32], classes: usize) -> Vec<f32> {
    let mut out = x.to_vec();
    for row in out.chunks_exact_mut(classes) {
        softmax_row_in_place(row);
    }
    out
}

/// The labels of a cross-entropy: `[rows]` class indices stored as `f32`,
/// or `[rows, classes]` target probabilities.
#[derive(Debug, Clone, Copy)]
pub(super) enum Labels<'a> {
    Sparse(&'a [f32]),
    Dense(&'a [f32]),
}

/// Checks that every sparse label is an integer in `0..classes`.
pub(super) fn check_sparse(labels: &[f32], classes: usize) -> Result<()> {
    for (row, &y) in labels.iter().enumerate() {
        if y >= 0.0 && y.fract() == 0.0 && (y as f64) < classes as f64 {
            continue;
        }
        if y >= 0.0 && y.fract() == 0.0 {
            // A whole number, too large (`as` saturates at usize::MAX).
            return Err(Error::Index {
                op: "softmax_cross_entropy",
                index: y as usize,
                bound: classes,
            });
        }
        return Err(Error::InvalidArgument {
            op: "softmax_cross_entropy",
            reason: format!(
                "sparse label {y} of row {row} is not a class index (an integer in 0..{classes})"
            ),
        });
    }
    Ok(())
}

/// Softmax cross-entropy of the rows of `z` (`[rows, classes]`): the loss
/// per row and the gradient of their sum, in one pass over each row.
///
/// Per row, with `(max, sum)` from [`softmax_row_in_place`] (which leaves
/// `p = softmax(z)` in the gradient row) and `lse - z_j = (max - z_j) + ln(sum)`:
/// - sparse label `t`: loss `(max - z_t) + ln(sum)`, gradient `p - onehot(t)`;
/// - dense `y`: loss `Σ_{y_j != 0} y_j ((max - z_j) + ln(sum))`, gradient
///   `p · Σy - y`.
///
/// Sparse labels must have been checked ([`check_sparse`]).
pub(super) fn softmax_cross_entropy(
    z: &[f32],
    labels: Labels<'_>,
    classes: usize,
) -> (Vec<f32>, Vec<f32>) {
    let rows = z.len() / classes;
    let mut loss = Vec::with_capacity(rows);
    let mut grad = z.to_vec();
    for (r, (zr, gr)) in z
        .chunks_exact(classes)
        .zip(grad.chunks_exact_mut(classes))
        .enumerate()
    {
        let (max, sum) = softmax_row_in_place(gr);
        let ln_sum = sum.ln();
        match labels {
            Labels::Sparse(y) => {
                let t = y[r] as usize;
                gr[t] -= 1.0;
                loss.push((max - zr[t]) + ln_sum);
            }
            Labels::Dense(y) => {
                let yr = &y[r * classes..(r + 1) * classes];
                let mut total = 0.0f32;
                let mut l = 0.0f32;
                for (&zj, &yj) in zr.iter().zip(yr) {
                    total += yj;
                    if yj != 0.0 {
                        l += yj * ((max - zj) + ln_sum);
                    }
                }
                for (g, &yj) in gr.iter_mut().zip(yr) {
                    *g = *g * total - yj;
                }
                loss.push(l);
            }
        }
    }
    (loss, grad)
}

/// Sigmoid cross-entropy of the rows of `z` against `y` (both `[rows,
/// classes]`), averaged over each row: loss
/// `Σ_j (max(z_j, 0) - z_j y_j + ln(1 + e^{-|z_j|})) / classes` and
/// gradient of the summed loss `(σ(z_j) - y_j) / classes`.
pub(super) fn sigmoid_cross_entropy(z: &[f32], y: &[f32], classes: usize) -> (Vec<f32>, Vec<f32>) {
    let c = classes as f32;
    let mut loss = Vec::with_capacity(z.len() / classes);
    let mut grad = Vec::with_capacity(z.len());
    for (zr, yr) in z.chunks_exact(classes).zip(y.chunks_exact(classes)) {
        let mut l = 0.0f32;
        for (&x, &t) in zr.iter().zip(yr) {
            l += (x.max(0.0) - x * t) + (-x.abs()).exp().ln_1p();
            grad.push((crate::ops::unary::sigmoid(x) - t) / c);
        }
        loss.push(l / c);
    }
    (loss, grad)
}
