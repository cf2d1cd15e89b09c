//! Host kernels for reductions over the middle axis of `[outer, n, inner]`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reduce {
    Sum,
    Mean,
    Max,
    Min,
    ArgMax,
}

/// Eigen's packet width for `f32` with AVX, the width TensorFlow's CPU builds use.
const PACKET: usize = 8;
/// Eigen's leaf size for tree reductions.
const LEAF: usize = 1024;

/// Sums a contiguous run in the order of Eigen's vectorised inner-most
/// reducer (which TensorFlow's `reduce_sum`/`reduce_mean` use on the CPU):
/// runs over 1024 elements are split in two at a packet boundary and summed
/// recursively; shorter ones accumulate four 8-lane packets side by side,
/// then single packets, then the leftover elements one by one, and the lanes
/// are added pairwise at the end. Besides matching TensorFlow to the last
/// bit, this is more accurate and faster than a sequential sum.
pub(crate) fn packet_sum(x: &[f32]) -> f32 {
    let n = x.len();
    if n > LEAF {
        let split = (n / 2).div_ceil(PACKET) * PACKET;
        return packet_sum(&x[..split]) + packet_sum(&x[split..]);
    }
    let mut acc = [0f32; PACKET];
    let mut start = 0;
    if n >= 4 * PACKET {
        let mut quad = [[0f32; PACKET]; 4];
        start = n / (4 * PACKET) * 4 * PACKET;
        for chunk in x[..start].chunks_exact(4 * PACKET) {
            for (k, lanes) in quad.iter_mut().enumerate() {
                for (a, &v) in lanes.iter_mut().zip(&chunk[k * PACKET..(k + 1) * PACKET]) {
                    *a += v;
                }
            }
        }
        for l in 0..PACKET {
            acc[l] = ((quad[0][l] + quad[1][l]) + quad[2][l]) + quad[3][l];
        }
    }
    if start + PACKET <= n {
        let end = n / PACKET * PACKET;
        for chunk in x[start..end].chunks_exact(PACKET) {
            for (a, &v) in acc.iter_mut().zip(chunk) {
                *a += v;
            }
        }
        start = end;
    }
    let tail = x[start..].iter().fold(0f32, |s, &v| s + v);
    // predux: 8 lanes -> 4 (low + high half) -> (q0 + q2) + (q1 + q3).
    let q = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    tail + ((q[0] + q[2]) + (q[1] + q[3]))
}

pub(super) fn reduce(how: Reduce, x: &[f32], (outer, n, inner): (usize, usize, usize)) -> Vec<f32> {
    let mut out = Vec::with_capacity(outer * inner);
    // Accumulators of the sums along an outer axis, reused for each outer index.
    let mut acc: Vec<f64> = Vec::new();
    for o in 0..outer {
        let block = &x[o * n * inner..(o + 1) * n * inner];
        match how {
            // Reducing the inner-most axis: contiguous runs, summed as Eigen does.
            Reduce::Sum | Reduce::Mean if inner == 1 => {
                let s = packet_sum(block);
                out.push(if how == Reduce::Mean { s / n as f32 } else { s });
            }
            // Along an outer axis, each output adds one element per row: in
            // `f64`, rounded to `f32` once (the mean divided first), so that
            // millions of rows lose no more than the final rounding. Adding
            // rows in `f32` lost 8.8 % of `full([10_000_000, 2], 0.1).mean(0)`.
            Reduce::Sum | Reduce::Mean => {
                acc.clear();
                acc.resize(inner, 0.0);
                // (`inner == 0` leaves no element to add.)
                for row in block.chunks_exact(inner.max(1)) {
                    for (a, &v) in acc.iter_mut().zip(row) {
                        *a += f64::from(v);
                    }
                }
                if how == Reduce::Mean {
                    // 0 / 0 = NaN for an empty axis, as before.
                    let count = n as f64;
                    out.extend(acc.iter().map(|&s| (s / count) as f32));
                } else {
                    out.extend(acc.iter().map(|&s| s as f32));
                }
            }
            Reduce::Max | Reduce::Min => {
                let start = out.len();
                out.extend_from_slice(&block[..inner]);
                for j in 1..n {
                    let row = &block[j * inner..(j + 1) * inner];
                    for (acc, &v) in out[start..].iter_mut().zip(row) {
                        let better = if how == Reduce::Max {
                            v > *acc
                        } else {
                            v < *acc
                        };
                        if better || v.is_nan() {
                            *acc = v;
                        }
                    }
                }
            }
            Reduce::ArgMax => {
                // NaN never wins, as in TensorFlow: start below every number.
                for i in 0..inner {
                    let mut best = 0;
                    let mut best_v = f32::NEG_INFINITY;
                    for j in 0..n {
                        let v = block[j * inner + i];
                        if v > best_v {
                            best = j;
                            best_v = v;
                        }
                    }
                    out.push(best as f32);
                }
            }
        }
    }
    out
}
