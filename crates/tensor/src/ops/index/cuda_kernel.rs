//! CUDA kernel of `gather_rows` (`index.cu`), compiled once per device.
#![allow(unsafe_code)]

use cudarc::driver::PushKernelArg;

use crate::cuda::{CudaSource, CudaStorage, fail, grid};
use crate::{Result, Tensor};

pub(crate) const SOURCE: CudaSource = CudaSource {
    name: "hebb-tensor/index.cu",
    code: include_str!("index.cu"),
};

/// The rows `indices` (each already checked to be below the row count) of
/// the device tensor `x`, whose rows hold `row` elements, as a tensor of
/// `shape` (`[indices.len(), ..]`) on the same device.
pub(crate) fn gather_rows(
    x: &CudaStorage,
    indices: &[usize],
    row: usize,
    shape: Vec<usize>,
) -> Result<Tensor> {
    let backend = x.backend.clone();
    let total = indices.len() * row;
    let mut out = backend.output(total)?;
    if total > 0 {
        let idx: Vec<u64> = indices.iter().map(|&i| i as u64).collect();
        let idx = backend.upload(&idx)?;
        let f = backend.function(&SOURCE, "gather_rows")?;
        let (count, len) = (indices.len() as u64, row as u64);
        let mut launch = backend.stream.launch_builder(&f);
        launch
            .arg(&count)
            .arg(&len)
            .arg(&mut out)
            .arg(x.data.as_ref())
            .arg(&idx);
        // SAFETY: the kernel takes (size_t count, size_t row, float *out,
        // const float *x, const unsigned long long *indices); `out` holds
        // `count * row` f32 and is written below that, `indices` holds
        // `count` u64, each checked by the caller to be below the number of
        // rows of `x`, so `indices[r] * row + j` (j < row) is inside `x`.
        unsafe { launch.launch(grid(total)) }.map_err(fail("gather_rows"))?;
    }
    Ok(Tensor::from_cuda(out, shape, backend))
}
