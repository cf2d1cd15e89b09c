//! CUDA kernel of `pack_scaled` and `unpack_scaled` (`pack.cu`): one launch
//! per part, into (or from) its span of the packed buffer, and one copy of
//! the tail values.
#![allow(unsafe_code)]

use cudarc::driver::{CudaSlice, PushKernelArg};

use crate::Result;
use crate::cuda::{Backend, CudaSource, fail, grid};

pub(crate) const SOURCE: CudaSource = CudaSource {
    name: "hebb-tensor/pack.cu",
    code: include_str!("pack.cu"),
};

/// `packed[offset..offset + part.len()] = scale * part` on `backend`'s stream.
pub(crate) fn pack_part(
    backend: &Backend,
    packed: &mut CudaSlice<f32>,
    offset: usize,
    part: &CudaSlice<f32>,
    len: usize,
    scale: f32,
) -> Result<()> {
    if len == 0 {
        return Ok(());
    }
    let f = backend.function(&SOURCE, "scale_copy")?;
    let n = len as u64;
    let mut dst = packed
        .try_slice_mut(offset..offset + len)
        .ok_or_else(|| out_of_range(offset, len))?;
    let src = part.try_slice(..len).ok_or_else(|| out_of_range(0, len))?;
    let mut launch = backend.stream.launch_builder(&f);
    launch.arg(&n).arg(&mut dst).arg(&src).arg(&scale);
    // SAFETY: the kernel takes (size_t n, float *dst, const float *src,
    // float s) and touches elements below n; both views hold `len` f32.
    unsafe { launch.launch(grid(len)) }.map_err(fail("pack"))?;
    Ok(())
}

/// `part = scale * packed[offset..offset + len]` on `backend`'s stream.
pub(crate) fn unpack_part(
    backend: &Backend,
    packed: &CudaSlice<f32>,
    offset: usize,
    part: &mut CudaSlice<f32>,
    len: usize,
    scale: f32,
) -> Result<()> {
    if len == 0 {
        return Ok(());
    }
    let f = backend.function(&SOURCE, "scale_copy")?;
    let n = len as u64;
    let src = packed
        .try_slice(offset..offset + len)
        .ok_or_else(|| out_of_range(offset, len))?;
    let mut dst = part
        .try_slice_mut(..len)
        .ok_or_else(|| out_of_range(0, len))?;
    let mut launch = backend.stream.launch_builder(&f);
    launch.arg(&n).arg(&mut dst).arg(&src).arg(&scale);
    // SAFETY: as in `pack_part`.
    unsafe { launch.launch(grid(len)) }.map_err(fail("unpack"))?;
    Ok(())
}

/// Copies the host values `tail` to `packed[offset..]`.
pub(crate) fn write_tail(
    backend: &Backend,
    packed: &mut CudaSlice<f32>,
    offset: usize,
    tail: &[f32],
) -> Result<()> {
    if tail.is_empty() {
        return Ok(());
    }
    let mut dst = packed
        .try_slice_mut(offset..offset + tail.len())
        .ok_or_else(|| out_of_range(offset, tail.len()))?;
    backend
        .stream
        .memcpy_htod(tail, &mut dst)
        .map_err(fail("pack"))
}

/// Copies `packed[offset..offset + tail.len()]` to the host (waits for the stream).
pub(crate) fn read_tail(
    backend: &Backend,
    packed: &CudaSlice<f32>,
    offset: usize,
    tail: &mut [f32],
) -> Result<()> {
    if tail.is_empty() {
        return Ok(());
    }
    let src = packed
        .try_slice(offset..offset + tail.len())
        .ok_or_else(|| out_of_range(offset, tail.len()))?;
    backend
        .stream
        .memcpy_dtoh(&src, tail)
        .map_err(fail("unpack"))?;
    backend.stream.synchronize().map_err(fail("unpack"))
}

fn out_of_range(offset: usize, len: usize) -> crate::Error {
    crate::Error::Cuda {
        op: "pack",
        message: format!("span {offset}..{} outside the device buffer", offset + len),
    }
}
