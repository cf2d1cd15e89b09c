//! Host softmax kernel over contiguous rows.

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
