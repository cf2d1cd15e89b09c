//! CUDA kernels of softmax and the fused cross-entropies (`softmax.cu`),
//! compiled once per device.
//!
//! `softmax` runs one warp per row (rows may be long); the cross-entropies
//! run one thread per row (a row is a sample's few classes), each writing
//! the row's loss and its gradient row in one pass.
#![allow(unsafe_code)]

use cudarc::driver::{LaunchConfig, PushKernelArg};

use crate::cuda::{BLOCK, CudaSource, CudaStorage, fail, grid};
use crate::{Result, Tensor};

pub(crate) const SOURCE: CudaSource = CudaSource {
    name: "hebb-tensor/softmax.cu",
    code: include_str!("softmax.cu"),
};

/// Threads per warp: `softmax_rows` gives each row one warp.
const WARP: u32 = 32;

/// At most this many blocks; the kernels' grid-stride loops cover the rest.
const MAX_BLOCKS: usize = 1 << 20;

/// Softmax along the last axis of the device tensor `x` (`rows` rows of
/// `classes > 0` elements), as a tensor of `shape`.
pub(crate) fn softmax(
    x: &CudaStorage,
    shape: &[usize],
    (rows, classes): (usize, usize),
) -> Result<Tensor> {
    let backend = x.backend.clone();
    let mut out = backend.output(rows * classes)?;
    if rows > 0 {
        let f = backend.function(&SOURCE, "softmax_rows")?;
        let warps_per_block = (BLOCK / WARP) as usize;
        let blocks = rows.div_ceil(warps_per_block).min(MAX_BLOCKS);
        let cfg = LaunchConfig {
            grid_dim: (blocks as u32, 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        let (r, c) = (rows as u64, classes as u64);
        let mut launch = backend.stream.launch_builder(&f);
        launch.arg(&r).arg(&c).arg(&mut out).arg(x.data.as_ref());
        // SAFETY: `x` and `out` hold `rows * classes` f32; the kernel
        // (size_t, size_t, float *, const float *) touches row `r < rows`
        // at indices `r * classes + j`, `j < classes`, only. BLOCK is a
        // multiple of 32, so every warp is full and its shuffles are defined.
        unsafe { launch.launch(cfg) }.map_err(fail("softmax"))?;
    }
    Ok(Tensor::from_cuda(out, shape.to_vec(), backend))
}

/// Runs the per-row loss kernel `kernel` (`softmax_xent_sparse`,
/// `softmax_xent_dense` or `sigmoid_xent`) over logits `z`
/// (`[rows, classes]`) and `labels` (`[rows]` for the sparse kernel, else
/// `[rows, classes]`), all on one device: `(loss [rows], grad [rows, classes])`.
pub(crate) fn cross_entropy(
    kernel: &'static str,
    z: &CudaStorage,
    labels: &CudaStorage,
    (rows, classes): (usize, usize),
) -> Result<(Tensor, Tensor)> {
    let backend = z.backend.clone();
    let mut loss = backend.output(rows)?;
    let mut grad = backend.output(rows * classes)?;
    if rows > 0 {
        let f = backend.function(&SOURCE, kernel)?;
        let (r, c) = (rows as u64, classes as u64);
        let mut launch = backend.stream.launch_builder(&f);
        launch
            .arg(&r)
            .arg(&c)
            .arg(&mut loss)
            .arg(&mut grad)
            .arg(z.data.as_ref())
            .arg(labels.data.as_ref());
        // SAFETY: the kernels take (size_t rows, size_t classes, float *loss,
        // float *grad, const float *z, const float *labels); thread `r <
        // rows` writes loss[r] (`loss` holds `rows` f32) and grad[r *
        // classes + j], j < classes (`grad` holds `rows * classes`), reads
        // `z` at the same indices, and `labels` at `r` (sparse, `rows`
        // elements, checked by the caller) or `r * classes + j` (dense,
        // `rows * classes` elements).
        unsafe { launch.launch(grid(rows)) }.map_err(fail(kernel))?;
    }
    Ok((
        Tensor::from_cuda(loss, vec![rows], backend.clone()),
        Tensor::from_cuda(grad, vec![rows, classes], backend),
    ))
}
