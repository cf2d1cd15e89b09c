//! CUDA kernel of the dropout mask (`dropout.cu`): one thread per element,
//! the same 64-bit hash as the CPU's.
#![allow(unsafe_code)]

use cudarc::driver::{CudaSlice, PushKernelArg};

use super::DropoutMask;
use crate::Result;
use crate::cuda::{Backend, CudaSource, fail, grid};

pub(crate) const SOURCE: CudaSource = CudaSource {
    name: "hebb-tensor/dropout.cu",
    code: include_str!("dropout.cu"),
};

/// `y[i] = x[i] · mask.value(i)` for `i < n` on `backend`'s stream.
pub(crate) fn apply(
    backend: &Backend,
    y: &mut CudaSlice<f32>,
    x: &CudaSlice<f32>,
    n: usize,
    mask: &DropoutMask,
) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let f = backend.function(&SOURCE, "dropout")?;
    let len = n as u64;
    let mut launch = backend.stream.launch_builder(&f);
    launch
        .arg(&len)
        .arg(y)
        .arg(x)
        .arg(&mask.key)
        .arg(&mask.first)
        .arg(&mask.threshold)
        .arg(&mask.scale);
    // SAFETY: the kernel takes (size_t n, float *y, const float *x,
    // unsigned long long key, unsigned long long first, unsigned int
    // threshold, float scale) and touches y[i] and x[i] for i < n only; the
    // caller passes buffers of at least n f32 each (`x`'s tensor and an
    // output of its shape), which are distinct allocations.
    unsafe { launch.launch(grid(n)) }.map_err(fail("dropout"))?;
    Ok(())
}
