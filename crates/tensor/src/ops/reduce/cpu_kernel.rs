//! Host kernels for reductions over the middle axis of `[outer, n, inner]`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reduce {
    Sum,
    Mean,
    Max,
    Min,
    ArgMax,
}

pub(super) fn reduce(how: Reduce, x: &[f32], (outer, n, inner): (usize, usize, usize)) -> Vec<f32> {
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        let block = &x[o * n * inner..(o + 1) * n * inner];
        match how {
            Reduce::Sum | Reduce::Mean => {
                let start = out.len();
                out.extend_from_slice(&block[..inner.min(block.len())]);
                if n == 0 {
                    out.resize(start + inner, 0.0);
                }
                for j in 1..n {
                    let row = &block[j * inner..(j + 1) * inner];
                    for (acc, &v) in out[start..].iter_mut().zip(row) {
                        *acc += v;
                    }
                }
                if how == Reduce::Mean {
                    let count = n as f32;
                    for acc in &mut out[start..] {
                        *acc /= count;
                    }
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
                for i in 0..inner {
                    let mut best = 0;
                    let mut best_v = block[i];
                    for j in 1..n {
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
