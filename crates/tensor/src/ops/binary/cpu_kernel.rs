//! Host kernels for broadcasting binary ops.

use super::BinaryOp;

#[inline(always)]
fn apply(op: BinaryOp, a: f32, b: f32) -> f32 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        // NaN propagates, as in tf.maximum / tf.minimum.
        BinaryOp::Maximum => {
            if a.is_nan() || a >= b {
                a
            } else {
                b
            }
        }
        BinaryOp::Minimum => {
            if a.is_nan() || a <= b {
                a
            } else {
                b
            }
        }
        BinaryOp::Equal => f32::from(u8::from(a == b)),
        BinaryOp::Greater => f32::from(u8::from(a > b)),
        BinaryOp::GreaterEqual => f32::from(u8::from(a >= b)),
        BinaryOp::Less => f32::from(u8::from(a < b)),
        BinaryOp::LessEqual => f32::from(u8::from(a <= b)),
    }
}

/// Row-major strides of `shape` aligned to `rank` dims, 0 where broadcast.
fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let offset = out.len() - shape.len();
    let mut strides = vec![0; out.len()];
    let mut s = 1;
    for i in (0..shape.len()).rev() {
        strides[offset + i] = if shape[i] == 1 { 0 } else { s };
        s *= shape[i];
    }
    strides
}

fn zip_with(op: BinaryOp, out: &mut Vec<f32>, a: &[f32], b: &[f32]) {
    // One loop per op so that each is a tight, vectorisable loop.
    macro_rules! lanes {
        ($f:expr) => {
            out.extend(a.iter().zip(b).map(|(&x, &y)| $f(x, y)))
        };
    }
    match op {
        BinaryOp::Add => lanes!(|x: f32, y: f32| x + y),
        BinaryOp::Sub => lanes!(|x: f32, y: f32| x - y),
        BinaryOp::Mul => lanes!(|x: f32, y: f32| x * y),
        BinaryOp::Div => lanes!(|x: f32, y: f32| x / y),
        _ => lanes!(|x, y| apply(op, x, y)),
    }
}

pub(super) fn binary(
    op: BinaryOp,
    a: &[f32],
    a_shape: &[usize],
    b: &[f32],
    b_shape: &[usize],
    out_shape: &[usize],
) -> Vec<f32> {
    let n: usize = out_shape.iter().product();
    let mut out = Vec::with_capacity(n);
    if a_shape == b_shape {
        zip_with(op, &mut out, a, b);
        return out;
    }
    if b.len() == 1 {
        let y = b[0];
        out.extend(a.iter().map(|&x| apply(op, x, y)));
        if out.len() == n {
            return out;
        }
        out.clear();
    }
    if a.len() == 1 && b.len() == n {
        let x = a[0];
        out.extend(b.iter().map(|&y| apply(op, x, y)));
        return out;
    }
    // General case: walk the output row by row; the innermost dimension is a
    // contiguous run (stride 1) or a repeated element (stride 0) on each side.
    let rank = out_shape.len();
    let sa = broadcast_strides(a_shape, out_shape);
    let sb = broadcast_strides(b_shape, out_shape);
    let inner = out_shape[rank - 1];
    let (ia, ib) = (sa[rank - 1], sb[rank - 1]);
    let outer = n.checked_div(inner).unwrap_or(0);
    let mut index = vec![0usize; rank.saturating_sub(1)];
    for _ in 0..outer {
        let oa: usize = index.iter().zip(&sa).map(|(i, s)| i * s).sum();
        let ob: usize = index.iter().zip(&sb).map(|(i, s)| i * s).sum();
        match (ia, ib) {
            (1, 1) => zip_with(op, &mut out, &a[oa..oa + inner], &b[ob..ob + inner]),
            _ => out.extend((0..inner).map(|j| apply(op, a[oa + j * ia], b[ob + j * ib]))),
        }
        for d in (0..rank - 1).rev() {
            index[d] += 1;
            if index[d] < out_shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out
}

/// Sums `src` (of `src_shape`) over the broadcast dimensions of `dst_shape`.
///
/// A run along the last axis that is summed away is added as `packet_sum`
/// does (TensorFlow's order); the rows that meet in one output (a bias
/// gradient gathers one row per sample) accumulate in `f64` and are rounded
/// to `f32` once, as the reductions along an outer axis are.
pub(super) fn sum_to_shape(src: &[f32], src_shape: &[usize], dst_shape: &[usize]) -> Vec<f32> {
    let dst_len: usize = dst_shape.iter().product();
    let rank = src_shape.len();
    if rank == 0 {
        return vec![src[0]; dst_len];
    }
    let mut out = vec![0.0f64; dst_len];
    let strides = broadcast_strides(dst_shape, src_shape);
    let inner = src_shape[rank - 1];
    let is = strides[rank - 1];
    let outer = src.len().checked_div(inner).unwrap_or(0);
    let mut index = vec![0usize; rank - 1];
    for row in 0..outer {
        let o: usize = index.iter().zip(&strides).map(|(i, s)| i * s).sum();
        let run = &src[row * inner..(row + 1) * inner];
        if is == 1 {
            for (d, &v) in out[o..o + inner].iter_mut().zip(run) {
                *d += f64::from(v);
            }
        } else {
            out[o] += f64::from(crate::ops::reduce::packet_sum(run));
        }
        for d in (0..rank - 1).rev() {
            index[d] += 1;
            if index[d] < src_shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out.into_iter().map(|s| s as f32).collect()
}
