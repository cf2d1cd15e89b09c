//! CUDA kernels of the broadcasting binary ops (`binary.cu`), compiled once
//! per device, and `sum_to_shape` composed from the reduction kernels.
#![allow(unsafe_code)]

use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

use super::BinaryOp;
use crate::cuda::{CudaSource, CudaStorage, fail, grid};
use crate::ops::reduce::{Reduce, cuda_kernel::reduce_slice};
use crate::tensor::Storage;
use crate::{Error, Result, Tensor};

pub(crate) const SOURCE: CudaSource = CudaSource {
    name: "hebb-tensor/binary.cu",
    code: include_str!("binary.cu"),
};

/// The most dimensions the kernel indexes (`MAX_RANK` in `binary.cu`),
/// counted after dimensions of 1 are dropped and runs that both operands
/// walk alike are merged.
pub(crate) const MAX_RANK: usize = 8;

/// The kernel's view of a broadcast: the output's dimensions, outermost
/// first, and each operand's element stride per dimension (0 where it is
/// broadcast). `struct Layout` in `binary.cu`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Layout {
    rank: u64,
    shape: [u64; MAX_RANK],
    a: [u64; MAX_RANK],
    b: [u64; MAX_RANK],
}

// SAFETY: `#[repr(C)]` with only `u64` fields (no padding, no pointers, any
// bits valid), the same layout as `struct Layout` of `binary.cu`, whose
// fields are all `unsigned long long`; it is passed to the kernel by value.
unsafe impl DeviceRepr for Layout {}

/// Row-major strides of `shape` aligned to the end of `out`, 0 where broadcast
/// (the CPU kernel's `broadcast_strides`).
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

/// The layout of `a_shape op b_shape -> out_shape` (the broadcast shape, with
/// no zero dimension): dimensions of 1 dropped, and a dimension merged into
/// the one before it when both operands step across the pair as across one
/// dimension (`stride[d - 1] == stride[d] * shape[d]` for both), so equal
/// shapes give rank 1 and `[4, 1] op [1, 5]` rank 2.
///
/// # Errors
/// [`Error::InvalidArgument`] if more than [`MAX_RANK`] dimensions remain.
pub(super) fn layout(
    op: &'static str,
    out_shape: &[usize],
    a_shape: &[usize],
    b_shape: &[usize],
) -> Result<Layout> {
    let sa = broadcast_strides(a_shape, out_shape);
    let sb = broadcast_strides(b_shape, out_shape);
    // (dimension, stride in a, stride in b), outermost first.
    let mut dims: Vec<(usize, usize, usize)> = Vec::with_capacity(out_shape.len());
    for (d, &size) in out_shape.iter().enumerate() {
        if size == 1 {
            continue;
        }
        if let Some(last) = dims.last_mut()
            && last.1 == sa[d] * size
            && last.2 == sb[d] * size
        {
            *last = (last.0 * size, sa[d], sb[d]);
        } else {
            dims.push((size, sa[d], sb[d]));
        }
    }
    if dims.len() > MAX_RANK {
        return Err(Error::InvalidArgument {
            op,
            reason: format!(
                "broadcasting {a_shape:?} with {b_shape:?} on the GPU needs {} dimensions after merging, more than the kernel's {MAX_RANK}",
                dims.len()
            ),
        });
    }
    let mut l = Layout {
        rank: dims.len() as u64,
        shape: [1; MAX_RANK],
        a: [0; MAX_RANK],
        b: [0; MAX_RANK],
    };
    for (k, &(size, a, b)) in dims.iter().enumerate() {
        l.shape[k] = size as u64;
        l.a[k] = a as u64;
        l.b[k] = b as u64;
    }
    Ok(l)
}

/// The op code of `binary.cu` (its `B_*` defines).
fn code(op: BinaryOp) -> i32 {
    match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
        BinaryOp::Maximum => 4,
        BinaryOp::Minimum => 5,
        BinaryOp::Equal => 6,
        BinaryOp::Greater => 7,
        BinaryOp::GreaterEqual => 8,
        BinaryOp::Less => 9,
        BinaryOp::LessEqual => 10,
    }
}

/// `a op b` broadcast to `shape` (the broadcast of `a_shape` and `b_shape`),
/// on the device of `a` and `b` (the caller checked they share one).
pub(super) fn binary(
    op: BinaryOp,
    (a, a_shape): (&CudaStorage, &[usize]),
    (b, b_shape): (&CudaStorage, &[usize]),
    shape: Vec<usize>,
) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let backend = a.backend.clone();
    let mut out = backend.output(n)?;
    if n > 0 {
        let l = layout(op.name(), &shape, a_shape, b_shape)?;
        let f = backend.function(&SOURCE, "binary")?;
        let (len, code) = (n as u64, code(op));
        let mut launch = backend.stream.launch_builder(&f);
        launch
            .arg(&len)
            .arg(&code)
            .arg(&mut out)
            .arg(a.data.as_ref())
            .arg(b.data.as_ref())
            .arg(&l);
        // SAFETY: `out` holds max(n, 1) f32 and the grid-stride loop writes
        // indices below n. For i < n the kernel reads a at
        // sum(k_d * l.a[d]) <= sum((shape_d - 1) * l.a[d]) = a's length - 1
        // (strides from `broadcast_strides` of a's own shape, merged without
        // changing any offset), likewise b; `l.rank <= MAX_RANK`. The
        // arguments follow `binary(size_t, int, float *, const float *,
        // const float *, struct Layout)`.
        unsafe { launch.launch(grid(n)) }.map_err(fail(op.name()))?;
    }
    Ok(Tensor::from_cuda(out, shape, backend))
}

/// The reductions that sum a tensor of shape `src` down to `dst` (which
/// broadcasts to `src`), in order, as `(outer, n, inner)` splits of the
/// previous result: one per run of adjacent summed axes (missing in `dst`,
/// or 1 there and not in `src`), each keeping its axes as 1s.
fn sum_plan(src: &[usize], dst: &[usize]) -> Vec<(usize, usize, usize)> {
    let lead = src.len() - dst.len();
    let summed = |a: usize| src[a] != 1 && (a < lead || dst[a - lead] == 1);
    let mut cur = src.to_vec();
    let mut plan = Vec::new();
    let mut a = 0;
    while a < src.len() {
        if !summed(a) {
            a += 1;
            continue;
        }
        let start = a;
        while a < src.len() && summed(a) {
            a += 1;
        }
        let outer: usize = cur[..start].iter().product();
        let n: usize = cur[start..a].iter().product();
        let inner: usize = cur[a..].iter().product();
        plan.push((outer, n, inner));
        cur[start..a].fill(1);
    }
    plan
}

/// The kept and the summed axes of `src` (summing down to `dst`) as two
/// layouts of `binary.cu`'s `sum_axes` (row-major strides of `src` in `a`;
/// adjacent axes of a kind merged, axes of 1 dropped), or `None` when either
/// needs more than [`MAX_RANK`] dimensions.
fn sum_layouts(src: &[usize], dst: &[usize]) -> Option<(Layout, Layout)> {
    let lead = src.len() - dst.len();
    let summed = |a: usize| a < lead || dst[a - lead] == 1;
    let empty = Layout {
        rank: 0,
        shape: [1; MAX_RANK],
        a: [0; MAX_RANK],
        b: [0; MAX_RANK],
    };
    let (mut keep, mut sum) = (empty, empty);
    let mut stride = 1;
    let mut last: Option<bool> = None;
    // Innermost axis first, so a merged run keeps its inner stride.
    let mut rev: [Vec<(u64, u64)>; 2] = [Vec::new(), Vec::new()];
    for a in (0..src.len()).rev() {
        if src[a] == 1 {
            continue;
        }
        let kind = summed(a);
        let list = &mut rev[usize::from(kind)];
        match list.last_mut() {
            Some(d) if last == Some(kind) => d.0 *= src[a] as u64,
            _ => list.push((src[a] as u64, stride as u64)),
        }
        last = Some(kind);
        stride *= src[a];
    }
    for (l, dims) in [(&mut keep, &rev[0]), (&mut sum, &rev[1])] {
        if dims.len() > MAX_RANK {
            return None;
        }
        l.rank = dims.len() as u64;
        for (k, &(size, s)) in dims.iter().rev().enumerate() {
            l.shape[k] = size;
            l.a[k] = s;
        }
    }
    Some((keep, sum))
}

/// Sums `x` (of shape `src`) down to `dst`, which broadcasts to `src` (the
/// caller checked), with the reduction kernels of `ops/reduce` (see
/// `sum_plan`), or, when that takes more than one reduction, with
/// `sum_axes` in one pass (so the sum is rounded to f32 once); the result
/// is read as `dst`.
pub(super) fn sum_to_shape(x: &CudaStorage, src: &[usize], dst: &[usize]) -> Result<Tensor> {
    let plan = sum_plan(src, dst);
    let m: usize = dst.iter().product();
    let n = src.iter().product::<usize>().checked_div(m).unwrap_or(0);
    if plan.len() > 1
        && m > 0
        && let Some((keep, sum)) = sum_layouts(src, dst)
    {
        let backend = x.backend.clone();
        let mut out = backend.output(m)?;
        let f = backend.function(&SOURCE, "sum_axes")?;
        let (m_, n_) = (m as u64, n as u64);
        let mut launch = backend.stream.launch_builder(&f);
        launch
            .arg(&m_)
            .arg(&n_)
            .arg(&mut out)
            .arg(x.data.as_ref())
            .arg(&keep)
            .arg(&sum);
        // SAFETY: `out` holds m f32 and is written at r < m only; the offsets
        // of `keep` and `sum` are those of `src`'s row-major elements (each
        // axis's index times its stride), so they stay below `src`'s
        // element count, which `x` holds; the arguments follow
        // `sum_axes(size_t, size_t, float *, const float *, struct Layout,
        // struct Layout)`.
        unsafe { launch.launch(grid(m)) }.map_err(fail("sum_to_shape"))?;
        return Ok(Tensor::from_cuda(out, dst.to_vec(), backend));
    }
    let mut buf: Option<CudaSlice<f32>> = None;
    for dims in plan {
        let input = buf.as_ref().unwrap_or(x.data.as_ref());
        buf = Some(reduce_slice(&x.backend, Reduce::Sum, input, dims)?);
    }
    Ok(match buf {
        Some(data) => Tensor::from_cuda(data, dst.to_vec(), x.backend.clone()),
        // Only axes of 1 differ: the same elements, read as `dst`.
        None => Tensor {
            shape: dst.to_vec(),
            storage: Storage::Cuda(x.clone()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the kernel computes for `Add`, on the host: output element `i`
    /// decomposed along the layout's dimensions into offsets of a and b.
    fn emulate(l: &Layout, a: &[f32], b: &[f32], n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let (mut rest, mut ia, mut ib) = (i, 0, 0);
                for d in (0..l.rank as usize).rev() {
                    let dim = l.shape[d] as usize;
                    let k = rest % dim;
                    rest /= dim;
                    ia += k * l.a[d] as usize;
                    ib += k * l.b[d] as usize;
                }
                a[ia] + b[ib]
            })
            .collect()
    }

    #[test]
    fn layout_indexes_like_the_cpu_kernel() {
        let cases: &[(&[usize], &[usize])] = &[
            (&[2, 3], &[3]),
            (&[4, 1], &[1, 5]),
            (&[2, 3], &[]),
            (&[], &[2, 3]),
            (&[], &[]),
            (&[1000, 37], &[1000, 37]),
            (&[2, 3, 4], &[2, 1, 4]),
            (&[2, 1, 4], &[3, 1]),
            (&[5, 1, 1, 3], &[1, 4, 2, 1]),
            (&[1, 1, 6], &[6]),
            (&[3, 4, 5, 6], &[4, 1, 6]),
            (&[2, 1, 2, 1, 2, 1, 2, 1], &[1, 2, 1, 2, 1, 2, 1, 2]),
        ];
        for &(sa, sb) in cases {
            let out = crate::broadcast_shapes("add", sa, sb).unwrap();
            let n: usize = out.iter().product();
            let a: Vec<f32> = (0..sa.iter().product::<usize>())
                .map(|v| v as f32)
                .collect();
            let b: Vec<f32> = (0..sb.iter().product::<usize>())
                .map(|v| 1000.0 * v as f32)
                .collect();
            let l = layout("add", &out, sa, sb).unwrap();
            let want = Tensor::from_vec(a.clone(), sa)
                .unwrap()
                .add(&Tensor::from_vec(b.clone(), sb).unwrap())
                .unwrap();
            assert_eq!(emulate(&l, &a, &b, n), want.to_vec(), "{sa:?} + {sb:?}");
        }
        // Equal shapes and scalars collapse to one and zero dimensions.
        assert_eq!(layout("add", &[7, 9], &[7, 9], &[7, 9]).unwrap().rank, 1);
        assert_eq!(layout("add", &[7, 9], &[7, 9], &[]).unwrap().rank, 1);
        assert_eq!(layout("add", &[1, 1], &[1, 1], &[]).unwrap().rank, 0);
        assert_eq!(layout("add", &[4, 5], &[4, 1], &[1, 5]).unwrap().rank, 2);
    }

    #[test]
    fn too_many_dimensions_are_an_invalid_argument() {
        let sa = [2, 1, 2, 1, 2, 1, 2, 1, 2, 1];
        let sb = [1, 2, 1, 2, 1, 2, 1, 2, 1, 2];
        let out = crate::broadcast_shapes("mul", &sa, &sb).unwrap();
        let err = layout("mul", &out, &sa, &sb).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument { op: "mul", reason } if reason.contains("10 dimensions")),
            "{err}"
        );
    }

    /// `sum_axes` emulated on the host with `sum_layouts`' layouts gives the
    /// CPU's `sum_to_shape` (integer values: exact in any order).
    #[test]
    fn sum_layouts_index_like_the_cpu_kernel() {
        let cases: &[(&[usize], &[usize])] = &[
            (&[4, 5, 6, 7], &[1, 5, 1, 7]),
            (&[4, 5, 6, 7], &[6, 1]),
            (&[2, 1, 3, 4, 5], &[1, 1, 4, 1]),
            (&[3, 4, 5], &[4, 1]),
            (&[2, 3], &[3]),
        ];
        for &(src, dst) in cases {
            let len: usize = src.iter().product();
            let data: Vec<f32> = (0..len).map(|v| (v % 11) as f32).collect();
            let (keep, sum) = sum_layouts(src, dst).unwrap();
            let m: usize = dst.iter().product();
            let n = len / m;
            let offset = |l: &Layout, mut i: usize| {
                let mut off = 0;
                for d in (0..l.rank as usize).rev() {
                    off += (i % l.shape[d] as usize) * l.a[d] as usize;
                    i /= l.shape[d] as usize;
                }
                off
            };
            let got: Vec<f32> = (0..m)
                .map(|r| {
                    (0..n)
                        .map(|j| f64::from(data[offset(&keep, r) + offset(&sum, j)]))
                        .sum::<f64>() as f32
                })
                .collect();
            let want = Tensor::from_vec(data.clone(), src)
                .unwrap()
                .sum_to_shape(dst)
                .unwrap();
            assert_eq!(got, want.to_vec(), "{src:?} -> {dst:?}");
        }
    }

    #[test]
    fn sum_plan_reduces_like_the_cpu_kernel() {
        let cases: &[(&[usize], &[usize])] = &[
            (&[2, 3], &[3]),
            (&[2, 3], &[2, 1]),
            (&[2, 3], &[]),
            (&[2, 3], &[1, 1]),
            (&[1, 3], &[3]),
            (&[4, 5, 6], &[5, 1]),
            (&[4, 5, 6, 7], &[1, 5, 1, 7]),
            (&[3, 4, 5], &[4, 5]),
            (&[0, 3], &[3]),
            (&[2, 0], &[2, 1]),
        ];
        for &(src, dst) in cases {
            let len: usize = src.iter().product();
            let x = Tensor::from_vec((0..len).map(|v| (v % 7) as f32).collect(), src).unwrap();
            let mut t = x.clone();
            for (outer, n, inner) in sum_plan(src, dst) {
                t = t.reshape(&[outer, n, inner]).unwrap().sum(1, true).unwrap();
            }
            let got = t.reshape(dst).unwrap();
            assert_eq!(got, x.sum_to_shape(dst).unwrap(), "{src:?} -> {dst:?}");
        }
        assert!(sum_plan(&[1, 3], &[3]).is_empty());
        assert_eq!(sum_plan(&[4, 5, 6], &[5, 1]), vec![(1, 4, 30), (5, 6, 1)]);
        assert_eq!(sum_plan(&[3, 4, 5], &[]), vec![(1, 60, 1)]);
    }
}
