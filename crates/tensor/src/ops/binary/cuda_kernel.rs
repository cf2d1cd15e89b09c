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
    let mut out = backend.zeros(n)?;
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

/// Sums `x` (of shape `src`) down to `dst`, which broadcasts to `src` (the
/// caller checked), with the reduction kernels of `ops/reduce` (see
/// `sum_plan`); the result is read as `dst`.
pub(super) fn sum_to_shape(x: &CudaStorage, src: &[usize], dst: &[usize]) -> Result<Tensor> {
    let mut buf: Option<CudaSlice<f32>> = None;
    for dims in sum_plan(src, dst) {
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

    #[test]
    fn source_compiles_with_nvrtc() {
        match crate::cuda::compile_check(&SOURCE) {
            Ok(()) => {}
            Err(Error::NoCudaDevice { reason }) => eprintln!("skipped: {reason}"),
            Err(e) => panic!("{e}"),
        }
    }

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
