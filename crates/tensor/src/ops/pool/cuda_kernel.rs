//! CUDA kernels of the pooling ops (`pool.cu`), compiled once per device.
//!
//! One launch per op on the device's stream, no copy to or from the host:
//! max pooling keeps its arg-max indices in device memory
//! ([`DeviceIndices`]) for its backward pass. The kernels compute every
//! element with the CPU kernels' operations in the CPU kernels' order
//! (the backward passes gather in the order the CPU scatters), so results
//! agree bit for bit.
#![allow(unsafe_code)]

use std::sync::Arc;

use cudarc::driver::{CudaSlice, PushKernelArg};

use super::Pool2d;
use crate::cuda::{Backend, CudaSource, fail, grid};
use crate::{Error, Result};

pub(crate) const SOURCE: CudaSource = CudaSource {
    name: "hebb-tensor/pool.cu",
    code: include_str!("pool.cu"),
};

/// Max pooling's arg-max indices on a device (at least one element; the
/// geometry says how many are used).
pub(crate) struct DeviceIndices {
    pub(crate) data: CudaSlice<u32>,
    pub(crate) backend: Arc<Backend>,
}

impl Drop for DeviceIndices {
    /// As `CudaStorage`'s: cudarc frees without making the context current
    /// on the dropping thread, so bind it first.
    fn drop(&mut self) {
        // A failure here is recorded by cudarc's own free just after.
        let _ = self.backend.stream.context().bind_to_thread();
    }
}

impl DeviceIndices {
    /// The first `len` indices, copied to the host (waits for the stream).
    pub(crate) fn download(&self, len: usize) -> Result<Vec<u32>> {
        let mut host = self
            .backend
            .stream
            .clone_dtoh(&self.data)
            .map_err(fail("max_pool2d_argmax"))?;
        host.truncate(len);
        Ok(host)
    }
}

/// The geometry as `pool.cu` takes it: `n, h, w, c, oh, ow, ph, pw, sh,
/// sw, pt, pl`.
fn geometry_args(g: &Pool2d) -> [u64; 12] {
    [
        g.batch,
        g.height,
        g.width,
        g.channels,
        g.out_height,
        g.out_width,
        g.pool[0],
        g.pool[1],
        g.strides[0],
        g.strides[1],
        g.pad_top,
        g.pad_left,
    ]
    .map(|v| v as u64)
}

/// A `u32` buffer of `n` elements (at least one) that the next launch fills.
fn output_u32(backend: &Backend, n: usize) -> Result<CudaSlice<u32>> {
    // SAFETY: every bit pattern is a valid u32, and the launch that follows
    // writes each of the `n` elements before anything reads them.
    unsafe { backend.stream.alloc::<u32>(n.max(1)) }.map_err(|e| Error::Cuda {
        op: "alloc",
        message: format!(
            "could not allocate {n} u32 ({:.1} MiB) for max pooling's arg-max indices: {e:?}",
            n as f64 * 4.0 / (1024.0 * 1024.0)
        ),
    })
}

/// Max pooling forward of `x` (the geometry's input, on `backend`'s
/// device): the output (`output_len` elements) and the arg-max indices.
pub(crate) fn max_forward(
    backend: &Arc<Backend>,
    g: &Pool2d,
    x: &CudaSlice<f32>,
) -> Result<(CudaSlice<f32>, DeviceIndices)> {
    let total = g.output_len();
    let mut out = backend.output(total)?;
    let mut argmax = output_u32(backend, total)?;
    if total > 0 {
        let f = backend.function(&SOURCE, "max_pool_forward")?;
        let geometry = geometry_args(g);
        let mut launch = backend.stream.launch_builder(&f);
        for v in &geometry {
            launch.arg(v);
        }
        launch.arg(&mut out).arg(&mut argmax).arg(x);
        // SAFETY: the kernel takes (12 × size_t geometry, float *out,
        // unsigned int *argmax, const float *x). One thread per output
        // element o < n·oh·ow·c = `total`, which `out` and `argmax` hold;
        // it reads x at b·h·w·c + (iy·w + ix)·c + ch with b < n, and iy < h,
        // ix < w clipped to the image by `span`, so inside `x`'s
        // `input_len` elements (the caller checked `x` holds them). Every
        // window has an image cell (Pool2d), so the first read is inside.
        unsafe { launch.launch(grid(total)) }.map_err(fail("max_pool2d"))?;
    }
    Ok((
        out,
        DeviceIndices {
            data: argmax,
            backend: backend.clone(),
        },
    ))
}

/// Max pooling backward: the input's gradient (`input_len` elements) from
/// `grad_out` (`output_len`) and the forward pass's `argmax`.
pub(crate) fn max_backward(
    backend: &Arc<Backend>,
    g: &Pool2d,
    grad_out: &CudaSlice<f32>,
    argmax: &CudaSlice<u32>,
) -> Result<CudaSlice<f32>> {
    let total = g.input_len();
    if total == 0 || g.output_len() == 0 {
        // Nothing to gather (an input without outputs has no cells): zeros.
        return backend.zeros(total);
    }
    let mut grad_in = backend.output(total)?;
    let f = backend.function(&SOURCE, "max_pool_backward")?;
    let geometry = geometry_args(g);
    let mut launch = backend.stream.launch_builder(&f);
    for v in &geometry {
        launch.arg(v);
    }
    launch.arg(&mut grad_in).arg(grad_out).arg(argmax);
    // SAFETY: the kernel takes (12 × size_t geometry, float *grad_in,
    // const float *grad_out, const unsigned int *argmax). One thread per
    // input element i < n·h·w·c = `total`, which `grad_in` holds; it
    // reads grad_out and argmax at ((b·oh + oy)·ow + ox)·c + ch with
    // b < n, oy < oh, ox < ow (`covering` clips to the output), inside
    // their `output_len` elements (checked by the caller).
    unsafe { launch.launch(grid(total)) }.map_err(fail("max_pool2d_backward"))?;
    Ok(grad_in)
}

/// Average pooling forward of `x` (the geometry's input).
pub(crate) fn avg_forward(
    backend: &Arc<Backend>,
    g: &Pool2d,
    x: &CudaSlice<f32>,
) -> Result<CudaSlice<f32>> {
    let total = g.output_len();
    let mut out = backend.output(total)?;
    if total > 0 {
        let f = backend.function(&SOURCE, "avg_pool_forward")?;
        let geometry = geometry_args(g);
        let mut launch = backend.stream.launch_builder(&f);
        for v in &geometry {
            launch.arg(v);
        }
        launch.arg(&mut out).arg(x);
        // SAFETY: the kernel takes (12 × size_t geometry, float *out,
        // const float *x); indices as in `max_forward`.
        unsafe { launch.launch(grid(total)) }.map_err(fail("avg_pool2d"))?;
    }
    Ok(out)
}

/// Average pooling backward: the input's gradient from `grad_out`.
pub(crate) fn avg_backward(
    backend: &Arc<Backend>,
    g: &Pool2d,
    grad_out: &CudaSlice<f32>,
) -> Result<CudaSlice<f32>> {
    let total = g.input_len();
    if total == 0 || g.output_len() == 0 {
        // Nothing to gather (an input without outputs has no cells): zeros.
        return backend.zeros(total);
    }
    let mut grad_in = backend.output(total)?;
    let f = backend.function(&SOURCE, "avg_pool_backward")?;
    let geometry = geometry_args(g);
    let mut launch = backend.stream.launch_builder(&f);
    for v in &geometry {
        launch.arg(v);
    }
    launch.arg(&mut grad_in).arg(grad_out);
    // SAFETY: the kernel takes (12 × size_t geometry, float *grad_in,
    // const float *grad_out); indices as in `max_backward`.
    unsafe { launch.launch(grid(total)) }.map_err(fail("avg_pool2d_backward"))?;
    Ok(grad_in)
}

/// Global average pooling forward of `x` `[n, h, w, c]` (`shape`, at
/// least one cell): `[n, c]`.
pub(crate) fn global_avg_forward(
    backend: &Arc<Backend>,
    shape: [usize; 4],
    x: &CudaSlice<f32>,
) -> Result<CudaSlice<f32>> {
    let [n, h, w, c] = shape;
    let total = n * c;
    let mut out = backend.output(total)?;
    if total > 0 {
        let f = backend.function(&SOURCE, "global_avg_forward")?;
        let (n_, cells, c_) = (n as u64, (h * w) as u64, c as u64);
        let mut launch = backend.stream.launch_builder(&f);
        launch.arg(&n_).arg(&cells).arg(&c_).arg(&mut out).arg(x);
        // SAFETY: the kernel takes (size_t n, size_t cells, size_t c,
        // float *out, const float *x). One thread per output o < n·c =
        // `total`, which `out` holds; it reads x at (b·cells + cell)·c + ch
        // with b < n, cell < cells, ch < c: inside its n·h·w·c elements.
        unsafe { launch.launch(grid(total)) }.map_err(fail("global_avg_pool2d"))?;
    }
    Ok(out)
}

/// Global average pooling backward: `[n, h, w, c]` from `grad_out` `[n, c]`.
pub(crate) fn global_avg_backward(
    backend: &Arc<Backend>,
    shape: [usize; 4],
    grad_out: &CudaSlice<f32>,
) -> Result<CudaSlice<f32>> {
    let [n, h, w, c] = shape;
    let total = n * h * w * c;
    let mut grad_in = backend.output(total)?;
    if total > 0 {
        let f = backend.function(&SOURCE, "global_avg_backward")?;
        let (n_, cells, c_) = (n as u64, (h * w) as u64, c as u64);
        let mut launch = backend.stream.launch_builder(&f);
        launch
            .arg(&n_)
            .arg(&cells)
            .arg(&c_)
            .arg(&mut grad_in)
            .arg(grad_out);
        // SAFETY: the kernel takes (size_t n, size_t cells, size_t c,
        // float *grad_in, const float *grad_out). One thread per element
        // i < n·cells·c = `total`, which `grad_in` holds; it reads grad_out
        // at b·c + ch with b < n, ch < c: inside its n·c elements.
        unsafe { launch.launch(grid(total)) }.map_err(fail("global_avg_pool2d_backward"))?;
    }
    Ok(grad_in)
}
