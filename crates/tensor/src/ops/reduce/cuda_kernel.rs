//! CUDA kernels of the reductions (`reduce.cu`), compiled once per device.
//!
//! Sums accumulate in `f64` and round to `f32` once, so they are at least
//! as accurate as the CPU's `f32` sums (whose order they do not follow);
//! max, min and argmax give the CPU's results exactly.
#![allow(unsafe_code)]

use std::sync::Arc;

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};

use super::Reduce;
use crate::cuda::{BLOCK, Backend, CudaSource, CudaStorage, fail, grid};
use crate::{Result, Tensor};

pub(crate) const SOURCE: CudaSource = CudaSource {
    name: "hebb-tensor/reduce.cu",
    code: include_str!("reduce.cu"),
};

/// `reduce_block` runs `RB = 256` threads per block (`reduce.cu`).
const RB: u32 = 256;
const _: () = assert!(
    BLOCK == RB,
    "reduce_thread and reduce_block share the block size"
);

/// The op code of `reduce.cu` (its `R_*` defines).
fn code(how: Reduce) -> i32 {
    match how {
        Reduce::Sum => 0,
        Reduce::Mean => 1,
        Reduce::Max => 2,
        Reduce::Min => 3,
        Reduce::ArgMax => 4,
    }
}

/// Reduces the first `outer * n * inner` elements of `x`, seen as
/// `[outer, n, inner]`, along the middle axis: a new buffer holding the
/// `outer * inner` results (at least one element). Max, min and argmax need
/// `n > 0`; an empty sum is 0 and an empty mean NaN.
pub(crate) fn reduce_slice(
    b: &Arc<Backend>,
    how: Reduce,
    x: &CudaSlice<f32>,
    (outer, n, inner): (usize, usize, usize),
) -> Result<CudaSlice<f32>> {
    let m = outer * inner;
    // The kernels write every output, an empty axis included.
    let mut out = b.output(m)?;
    if m == 0 {
        return Ok(out);
    }
    // A block per output where a thread per output would leave the GPU idle
    // (few outputs) or read rows with a stride (inner == 1); a thread per
    // output for short axes and for many outputs with inner > 1 (coalesced).
    let per_block = if inner == 1 {
        n >= 32
    } else {
        m < 4096 && n >= 256
    };
    let (kernel, cfg) = if per_block {
        let blocks = u32::try_from(m).unwrap_or(u32::MAX).min(1 << 20);
        let cfg = LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (RB, 1, 1),
            shared_mem_bytes: 0,
        };
        ("reduce_block", cfg)
    } else {
        ("reduce_thread", grid(m))
    };
    let f = b.function(&SOURCE, kernel)?;
    let (outer_, n_, inner_, how_) = (outer as u64, n as u64, inner as u64, code(how));
    let mut launch = b.stream.launch_builder(&f);
    launch
        .arg(&outer_)
        .arg(&n_)
        .arg(&inner_)
        .arg(&how_)
        .arg(&mut out)
        .arg(x);
    // SAFETY: `x` holds at least outer * n * inner f32 (the caller's tensor)
    // and `out` max(m, 1) >= m; both kernels read x[(o * n + j) * inner + i]
    // with o < outer, j < n, i < inner and write out[r] with r < m only;
    // `reduce_block` runs with its RB threads per block (static shared
    // memory); the arguments follow
    // `(size_t, size_t, size_t, int, float *, const float *)`.
    unsafe { launch.launch(cfg) }.map_err(fail("reduce"))?;
    Ok(out)
}

/// `how` along the middle axis of `x` seen as `dims`, as a tensor of `shape`
/// on `x`'s device.
pub(super) fn reduce(
    how: Reduce,
    x: &CudaStorage,
    dims: (usize, usize, usize),
    shape: Vec<usize>,
) -> Result<Tensor> {
    let out = reduce_slice(&x.backend, how, &x.data, dims)?;
    Ok(Tensor::from_cuda(out, shape, x.backend.clone()))
}
