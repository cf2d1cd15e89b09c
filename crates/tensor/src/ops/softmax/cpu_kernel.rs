//! Host softmax kernel over contiguous rows.

pub(super) fn softmax(x: &[f32], classes: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(classes) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let start = out.len();
        out.extend(row.iter().map(|&v| (v - max).exp()));
        let sum: f32 = out[start..].iter().sum();
        let inv = 1.0 / sum;
        for v in &mut out[start..] {
            *v *= inv;
        }
    }
    out
}
