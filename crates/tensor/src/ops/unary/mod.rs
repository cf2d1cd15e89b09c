//! Elementwise unary ops: `neg`, `exp`, `log`, `log1p`, `sqrt`, `square`, `abs`,
//! `reciprocal`, the activations `sigmoid`, `tanh`, `relu`, `step`,
//! `leaky_relu`, and scalar arithmetic and `clip`.
//!
//! All are applied independently to every element; the output has the
//! input's shape, on the input's device. They cannot fail, except `clip`
//! with `min > max` (and, on a GPU, a CUDA driver failure: a panic, or
//! [`Error::Cuda`] from `clip`).

mod cpu_kernel;
#[cfg(feature = "cuda")]
pub(crate) mod cuda_kernel;

use crate::{Error, Result, Tensor};

/// The logistic function `σ(x) = 1 / (1 + e^-x)` of one value, as
/// [`Tensor::sigmoid`] computes it (for code that keeps its own buffers).
/// Two branches keep `e^x` from overflowing for either sign.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// The unary elementwise ops. Kernels dispatch on this.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum UnaryOp {
    Neg,
    Exp,
    Log,
    /// `ln(1 + x)`, accurate for small `x`.
    Log1p,
    Sqrt,
    Square,
    Abs,
    Reciprocal,
    Sigmoid,
    Tanh,
    Relu,
    Step,
    Sign,
    AddScalar(f32),
    MulScalar(f32),
    Powf(f32),
    Clip(f32, f32),
    /// `z >= 0 ? z : z * slope`.
    LeakyRelu(f32),
}

impl Tensor {
    /// `op` on every element, on the tensor's device.
    ///
    /// # Panics
    /// On a GPU, with the error's message, if the CUDA driver fails (out of
    /// device memory, a failed launch); see [`try_unary`](Self::try_unary).
    fn unary(&self, op: UnaryOp) -> Tensor {
        self.try_unary(op).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `op` on every element, on the tensor's device; only a GPU can fail
    /// ([`Error::Cuda`]).
    fn try_unary(&self, op: UnaryOp) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        if let Some(c) = self.cuda() {
            return cuda_kernel::unary(op, c, &self.shape);
        }
        Ok(Tensor::from_parts(
            cpu_kernel::unary(op, self.as_slice()),
            self.shape.clone(),
        ))
    }

    /// `-x`.
    ///
    /// # Panics
    /// On a GPU, with the error's message, if the CUDA driver fails (out of
    /// device memory, a failed launch).
    pub fn neg(&self) -> Tensor {
        self.unary(UnaryOp::Neg)
    }

    /// `e^x` (`tf.exp`).
    ///
    /// # Panics
    /// On a GPU, with the error's message, if the CUDA driver fails (out of
    /// device memory, a failed launch).
    pub fn exp(&self) -> Tensor {
        self.unary(UnaryOp::Exp)
    }

    /// Natural logarithm (`tf.math.log`); `-inf` at 0, NaN below.
    ///
    /// # Panics
    /// On a GPU, with the error's message, if the CUDA driver fails (out of
    /// device memory, a failed launch).
    pub fn log(&self) -> Tensor {
        self.unary(UnaryOp::Log)
    }

    /// `ln(1 + x)` (`tf.math.log1p`), accurate where `x` is so small that
    /// `1 + x` rounds to 1 (`log1p(1e-9)` is `1e-9`, `(1 + 1e-9).ln()` is 0);
    /// `-inf` at -1, NaN below.
    ///
    /// # Panics
    /// On a GPU, with the error's message, if the CUDA driver fails (out of
    /// device memory, a failed launch).
    pub fn log1p(&self) -> Tensor {
        self.unary(UnaryOp::Log1p)
    }

    /// Square root; NaN below 0.
    ///
    /// # Panics
    /// On a GPU, with the error's message, if the CUDA driver fails (out of
    /// device memory, a failed launch).
    pub fn sqrt(&self) -> Tensor {
        self.unary(UnaryOp::Sqrt)
    }

    /// `x * x`.
    ///
    /// # Panics
    /// On a GPU, with the error's message, if the CUDA driver fails (out of
    /// device memory, a failed launch).
    pub fn square(&self) -> Tensor {
        self.unary(UnaryOp::Square)
    }

    /// `|x|`.
    ///
    /// # Panics
    /// On a GPU, with the error's message, if the CUDA driver fails (out of
    /// device memory, a failed launch).
    pub fn abs(&self) -> Tensor {
        self.unary(UnaryOp::Abs)
    }

    /// `1 / x` (`tf.math.reciprocal`).
    ///
    /// # Panics
    /// On a GPU, with the error's message, if the CUDA driver fails (out of
    /// device memory, a failed launch).
    pub fn reciprocal(&self) -> Tensor {
        self.unary(UnaryOp::Reciprocal)
    }

    /// `-1`, `0` or `1` by the sign of `x` (`tf.sign`).
    ///
    /// # Panics
    /// On a GPU, with the error's message, if the CUDA driver fails (out of
    /// device memory, a failed launch).
    pub fn sign(&self) -> Tensor {
        self.unary(UnaryOp::Sign)
    }

    /// The logistic function `1 / (1 + e^-x)` (lecture 12.5).
    ///
    /// # Panics
    /// On a GPU, with the error's message, if the CUDA driver fails (out of
    /// device memory, a failed launch).
    pub fn sigmoid(&self) -> Tensor {
        self.unary(UnaryOp::Sigmoid)
    }

    /// Hyperbolic tangent `(e^x - e^-x) / (e^x + e^-x)` (lecture 12.5).
    ///
    /// # Panics
    /// On a GPU, with the error's message, if the CUDA driver fails (out of
    /// device memory, a failed launch).
    pub fn tanh(&self) -> Tensor {
        self.unary(UnaryOp::Tanh)
    }

    /// `max(0, x)` (lecture 12.5, `tf.nn.relu`).
    ///
    /// # Panics
    /// On a GPU, with the error's message, if the CUDA driver fails (out of
    /// device memory, a failed launch).
    pub fn relu(&self) -> Tensor {
        self.unary(UnaryOp::Relu)
    }

    /// The M-P neuron's step function: `1` for `x >= 0`, else `0` (lecture 12.1).
    ///
    /// # Panics
    /// On a GPU, with the error's message, if the CUDA driver fails (out of
    /// device memory, a failed launch).
    pub fn step(&self) -> Tensor {
        self.unary(UnaryOp::Step)
    }

    /// `x >= 0 ? x : slope * x` (Leaky-ReLU and PReLU with a scalar slope).
    ///
    /// # Panics
    /// On a GPU, with the error's message, if the CUDA driver fails (out of
    /// device memory, a failed launch).
    pub fn leaky_relu(&self, slope: f32) -> Tensor {
        self.unary(UnaryOp::LeakyRelu(slope))
    }

    /// `x + c`.
    ///
    /// # Panics
    /// On a GPU, with the error's message, if the CUDA driver fails (out of
    /// device memory, a failed launch).
    pub fn add_scalar(&self, c: f32) -> Tensor {
        self.unary(UnaryOp::AddScalar(c))
    }

    /// `x * c`.
    ///
    /// # Panics
    /// On a GPU, with the error's message, if the CUDA driver fails (out of
    /// device memory, a failed launch).
    pub fn mul_scalar(&self, c: f32) -> Tensor {
        self.unary(UnaryOp::MulScalar(c))
    }

    /// `x^p` (`f32::powf`).
    ///
    /// # Panics
    /// On a GPU, with the error's message, if the CUDA driver fails (out of
    /// device memory, a failed launch).
    pub fn powf(&self, p: f32) -> Tensor {
        self.unary(UnaryOp::Powf(p))
    }

    /// Clamps each element to `[min, max]` (`tf.clip_by_value`); NaN stays NaN.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `min > max` or either bound is NaN;
    /// [`Error::Cuda`] if the CUDA driver fails on a GPU.
    pub fn clip(&self, min: f32, max: f32) -> Result<Tensor> {
        if min.is_nan() || max.is_nan() || min > max {
            return Err(Error::InvalidArgument {
                op: "clip",
                reason: format!("bounds must satisfy min <= max, got min={min}, max={max}"),
            });
        }
        self.try_unary(UnaryOp::Clip(min, max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_at_known_points() {
        let z = Tensor::from_vec(vec![-2., -1., 0., 1., 2.], &[5]).unwrap();
        assert_eq!(z.step().to_vec(), vec![0., 0., 1., 1., 1.]);
        assert_eq!(z.relu().to_vec(), vec![0., 0., 0., 1., 2.]);
        assert_eq!(z.leaky_relu(0.5).to_vec(), vec![-1., -0.5, 0., 1., 2.]);
        let s = z.sigmoid().to_vec();
        assert!((s[2] - 0.5).abs() < 1e-7 && (s[3] - 0.731_058_6).abs() < 1e-6);
        let t = z.tanh().to_vec();
        assert!((t[4] - 0.964_027_6).abs() < 1e-6 && t[2] == 0.0);
        // Large negative inputs do not overflow.
        let big = Tensor::from_vec(vec![-100.0, 100.0], &[2])
            .unwrap()
            .sigmoid()
            .to_vec();
        assert!(big[0] >= 0.0 && big[0] < 1e-40 && big[1] == 1.0);
    }

    #[test]
    fn log1p_keeps_small_arguments() {
        let x = Tensor::from_vec(vec![2.061_153_6e-9, 0.0, -0.5, 1.0, -1.0, -2.0], &[6]).unwrap();
        let y = x.log1p().to_vec();
        // ln(1 + x) = x - x²/2 + ...: exactly x in f32 for x this small.
        assert_eq!(y[0], 2.061_153_6e-9);
        assert_eq!(y[1], 0.0);
        assert!((y[2] - 0.5f32.ln()).abs() < 1e-7 && (y[3] - 2f32.ln()).abs() < 1e-7);
        assert_eq!(y[4], f32::NEG_INFINITY);
        assert!(y[5].is_nan());
    }

    #[test]
    fn clip_checks_bounds() {
        let z = Tensor::from_vec(vec![-2., 0.5, 2.], &[3]).unwrap();
        assert_eq!(z.clip(0.0, 1.0).unwrap().to_vec(), vec![0., 0.5, 1.]);
        assert!(z.clip(1.0, 0.0).is_err());
    }
}
