//! CUDA kernels of the unary ops (`unary.cu`), compiled once per device.
#![allow(unsafe_code)]

use cudarc::driver::PushKernelArg;

use super::UnaryOp;
use crate::cuda::{CudaSource, CudaStorage, backend, fail, grid};
use crate::tensor::element_count;
use crate::{Device, Error, Result, Tensor};

pub(crate) const SOURCE: CudaSource = CudaSource {
    name: "hebb-tensor/unary.cu",
    code: include_str!("unary.cu"),
};

/// A tensor of `shape` filled with `value` on the CUDA `device`.
pub(crate) fn full(shape: &[usize], value: f32, device: Device) -> Result<Tensor> {
    let Device::Cuda(ordinal) = device else {
        return Ok(Tensor::full(shape, value));
    };
    let n = element_count(shape).ok_or_else(|| Error::ElementCount {
        op: "full_on",
        shape: shape.to_vec(),
        len: 0,
    })?;
    let b = backend(ordinal)?;
    let mut out = b.zeros(n)?;
    if value != 0.0 || value.is_sign_negative() {
        let f = b.function(&SOURCE, "fill")?;
        let len = n as u64;
        let mut launch = b.stream.launch_builder(&f);
        launch.arg(&len).arg(&mut out).arg(&value);
        // SAFETY: `out` holds max(n, 1) f32 and the kernel writes indices below n.
        unsafe { launch.launch(grid(n)) }.map_err(fail("full"))?;
    }
    Ok(Tensor::from_cuda(out, shape.to_vec(), b))
}

/// The op code of `unary.cu` (its `U_*` defines) and the op's two scalars.
fn code(op: UnaryOp) -> (i32, f32, f32) {
    match op {
        UnaryOp::Neg => (0, 0.0, 0.0),
        UnaryOp::Exp => (1, 0.0, 0.0),
        UnaryOp::Log => (2, 0.0, 0.0),
        UnaryOp::Sqrt => (3, 0.0, 0.0),
        UnaryOp::Square => (4, 0.0, 0.0),
        UnaryOp::Abs => (5, 0.0, 0.0),
        UnaryOp::Reciprocal => (6, 0.0, 0.0),
        UnaryOp::Sigmoid => (7, 0.0, 0.0),
        UnaryOp::Tanh => (8, 0.0, 0.0),
        UnaryOp::Relu => (9, 0.0, 0.0),
        UnaryOp::Step => (10, 0.0, 0.0),
        UnaryOp::Sign => (11, 0.0, 0.0),
        UnaryOp::AddScalar(c) => (12, c, 0.0),
        UnaryOp::MulScalar(c) => (13, c, 0.0),
        UnaryOp::Powf(p) => (14, p, 0.0),
        UnaryOp::Clip(lo, hi) => (15, lo, hi),
        UnaryOp::LeakyRelu(s) => (16, s, 0.0),
        UnaryOp::Log1p => (17, 0.0, 0.0),
    }
}

/// `op` applied to the `shape.iter().product()` elements of `x`, on `x`'s device.
pub(super) fn unary(op: UnaryOp, x: &CudaStorage, shape: &[usize]) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let b = x.backend.clone();
    let mut out = b.output(n)?;
    if n > 0 {
        let (code, p, q) = code(op);
        let f = b.function(&SOURCE, "unary")?;
        let len = n as u64;
        let mut launch = b.stream.launch_builder(&f);
        launch
            .arg(&len)
            .arg(&code)
            .arg(&mut out)
            .arg(x.data.as_ref())
            .arg(&p)
            .arg(&q);
        // SAFETY: `x` holds the tensor's n elements and `out` n (both at
        // least n); the grid-stride loop touches indices below n only, and the
        // arguments follow `unary(size_t, int, float *, const float *, float, float)`.
        unsafe { launch.launch(grid(n)) }.map_err(fail("unary"))?;
    }
    Ok(Tensor::from_cuda(out, shape.to_vec(), b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_codes_are_distinct() {
        let ops = [
            UnaryOp::Neg,
            UnaryOp::Exp,
            UnaryOp::Log,
            UnaryOp::Sqrt,
            UnaryOp::Square,
            UnaryOp::Abs,
            UnaryOp::Reciprocal,
            UnaryOp::Sigmoid,
            UnaryOp::Tanh,
            UnaryOp::Relu,
            UnaryOp::Step,
            UnaryOp::Sign,
            UnaryOp::AddScalar(1.0),
            UnaryOp::MulScalar(1.0),
            UnaryOp::Powf(1.0),
            UnaryOp::Clip(0.0, 1.0),
            UnaryOp::LeakyRelu(0.1),
            UnaryOp::Log1p,
        ];
        let codes: Vec<i32> = ops.iter().map(|&op| code(op).0).collect();
        assert_eq!(codes, (0..18).collect::<Vec<_>>());
    }
}
