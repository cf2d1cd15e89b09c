//! CUDA kernels of the 2-D convolution (`conv.cu`): im2col into a device
//! column matrix and col2im back, both one thread per output element. The
//! products `cols · K`, `colsᵀ · dY` and `dY · Kᵀ` are cuBLAS `sgemm`s
//! through [`Tensor::matmul_with`] (see the module docs of `conv`).
//!
//! col2im is a gather (each input element sums the column entries copied
//! from it, in the CPU's order), so it is deterministic and bit-identical to
//! the CPU's col2im of the same columns; im2col copies, so it is exact.
#![allow(unsafe_code)]

use cudarc::driver::PushKernelArg;

use super::Conv2dGeometry;
use crate::cuda::{CudaSource, CudaStorage, fail, grid};
use crate::{Result, Tensor};

pub(crate) const SOURCE: CudaSource = CudaSource {
    name: "hebb-tensor/conv.cu",
    code: include_str!("conv.cu"),
};

/// The kernels' geometry arguments after `total`, in their order:
/// `h, w, c, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl`.
fn geometry_args(g: &Conv2dGeometry) -> [u64; 13] {
    let [h, w, c] = g.input;
    let [oh, ow] = g.out;
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.strides;
    let [dh, dw] = g.dilation;
    let [pt, pl] = g.pad;
    [h, w, c, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl].map(|v| v as u64)
}

/// Whether the 32-bit form of the kernels can run: every element count and
/// every padded coordinate (`oy · sh + i · dh` and `iy + pt` along each
/// axis, below the padded extent) fits in 32 bits, so no index the kernels
/// form overflows `unsigned int`.
fn narrow(g: &Conv2dGeometry, batch: usize) -> bool {
    let [h, w, c] = g.input;
    let span = |axis: usize| {
        (g.out[axis] - 1) * g.strides[axis]
            + (g.kernel[axis] - 1) * g.dilation[axis]
            + 1
            + g.input[axis]
            + g.pad[axis]
    };
    let limit = u32::MAX as usize;
    [
        batch * h * w * c,
        g.columns_len(batch),
        g.patch_len(),
        span(0),
        span(1),
    ]
    .iter()
    .all(|&n| n <= limit)
}

/// Launches `kernel_u32` or `kernel_u64` of `conv.cu` over `total` output
/// elements: `out` (`total` f32, fully written) from `input`.
fn launch(
    g: &Conv2dGeometry,
    batch: usize,
    kernel: &str,
    total: usize,
    out: &mut cudarc::driver::CudaSlice<f32>,
    input: &CudaStorage,
) -> Result<()> {
    if total == 0 {
        return Ok(());
    }
    let backend = &input.backend;
    let name = format!("{kernel}_{}", if narrow(g, batch) { "u32" } else { "u64" });
    let f = backend.function(&SOURCE, &name)?;
    let n = total as u64;
    let dims = geometry_args(g);
    let mut launch = backend.stream.launch_builder(&f);
    launch.arg(&n);
    for d in &dims {
        launch.arg(d);
    }
    launch.arg(out).arg(input.data.as_ref());
    // SAFETY: both kernels take (size_t total, size_t h, w, c, oh, ow, kh,
    // kw, sh, sw, dh, dw, pt, pl, float *out, const float *in), as pushed.
    // im2col: `out` holds total = batch·oh·ow·patch f32 and is written at
    // indices below total; `in` (the tensor [batch, h, w, c] checked by the
    // caller) is read at ((n·h + iy)·w + ix)·c + ch only for n < batch,
    // iy < h, ix < w, ch < c. col2im: `out` holds total = batch·h·w·c f32,
    // written below total; `in` (the columns, batch·oh·ow·patch f32 checked
    // by the caller) is read at (row·patch + q) with row < batch·oh·ow and
    // q < patch. The `_u32` forms run only when `narrow` says every index
    // fits in 32 bits.
    unsafe { launch.launch(grid(total)) }.map_err(fail("conv2d"))?;
    Ok(())
}

/// The column matrix `[batch · out_h · out_w, patch]` of the device images
/// `x` (`[batch, h, w, c]`, checked by the caller), on `x`'s device.
pub(super) fn im2col(g: &Conv2dGeometry, batch: usize, x: &CudaStorage) -> Result<Tensor> {
    let backend = x.backend.clone();
    let total = g.columns_len(batch);
    let mut out = backend.output(total)?;
    launch(g, batch, "im2col", total, &mut out, x)?;
    Ok(Tensor::from_cuda(
        out,
        vec![g.out_rows(batch), g.patch_len()],
        backend,
    ))
}

/// The images `[batch, h, w, c]` whose elements are the sums of the device
/// columns `cols` (`[batch · out_h · out_w, patch]`, checked by the caller)
/// copied from them, on `cols`' device.
pub(super) fn col2im(g: &Conv2dGeometry, batch: usize, cols: &CudaStorage) -> Result<Tensor> {
    let backend = cols.backend.clone();
    let [h, w, c] = g.input;
    let total = batch * h * w * c;
    let mut out = backend.output(total)?;
    launch(g, batch, "col2im", total, &mut out, cols)?;
    Ok(Tensor::from_cuda(out, vec![batch, h, w, c], backend))
}
