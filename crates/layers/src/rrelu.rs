//! [`RRelu`]: leaky ReLU with a random slope while training.

use hebb_autograd::Var;
use hebb_tensor::Tensor;
use hebb_tensor::random::{ChaCha8Rng, chacha};
use rand::Rng;

use crate::{Error, Result};

/// Randomized leaky ReLU (Xu et al. 2015, "Empirical Evaluation of Rectified
/// Activations in Convolution Network"; lecture 12.5): `y = z` for `z >= 0`,
/// `y = α z` for `z < 0`.
///
/// In training each element draws its own `α ~ U(lower, upper)`; at
/// inference `α` is fixed to the mean of that distribution, `(lower + upper)/2`
/// (the lecture's "the average of the training slopes"; PyTorch's `RReLU`).
/// PyTorch uses `lower = 1/8`, `upper = 1/3` by default. The random slopes
/// come from a seeded ChaCha8 generator.
#[derive(Debug, Clone)]
pub struct RRelu {
    lower: f32,
    upper: f32,
    rng: ChaCha8Rng,
}

impl RRelu {
    /// An RReLU with slopes drawn from `U(lower, upper)`, seeded by `seed`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] unless `0 <= lower <= upper <= 1`.
    pub fn new(lower: f32, upper: f32, seed: u64) -> Result<Self> {
        if !(0.0..=1.0).contains(&lower) || !(lower..=1.0).contains(&upper) {
            return Err(Error::InvalidArgument {
                what: "rrelu",
                detail: format!("need 0 <= lower <= upper <= 1, got lower={lower}, upper={upper}"),
            });
        }
        Ok(Self {
            lower,
            upper,
            rng: chacha(seed),
        })
    }

    /// The slope used at inference, `(lower + upper) / 2`.
    pub fn inference_slope(&self) -> f32 {
        (self.lower + self.upper) / 2.0
    }

    /// Fresh random slopes, one per element of `shape`, drawn on the host
    /// (the same numbers on any device) and put on `device`.
    fn slopes(&mut self, shape: &[usize], device: hebb_tensor::Device) -> Result<Tensor> {
        let n = shape.iter().product();
        let (lo, hi) = (self.lower, self.upper);
        let data = (0..n)
            .map(|_| lo + (hi - lo) * self.rng.random::<f32>())
            .collect();
        Ok(Tensor::from_vec(data, shape)?.to_device(device)?)
    }

    /// `y` on plain tensors; `training` draws fresh slopes, otherwise the mean slope.
    ///
    /// # Errors
    /// Never for valid tensors (shapes always agree).
    pub fn call(&mut self, z: &Tensor, training: bool) -> Result<Tensor> {
        if !training {
            return Ok(z.leaky_relu(self.inference_slope()));
        }
        let pos = z.relu();
        Ok(pos.add(&z.sub(&pos)?.mul(&self.slopes(z.shape(), z.device())?)?)?)
    }

    /// `∂y/∂z` at inference: 1 where `z > 0`, else the mean slope.
    ///
    /// # Errors
    /// Never for valid tensors.
    pub fn derivative(&self, z: &Tensor) -> Result<Tensor> {
        let pos = z.greater(&Tensor::scalar(0.0))?;
        Ok(pos.add(&pos.neg().add_scalar(1.0).mul_scalar(self.inference_slope()))?)
    }

    /// `y` recorded on `z`'s tape; in training the drawn slopes are constants
    /// of the step, so the gradient is 1 or the drawn slope.
    ///
    /// # Errors
    /// Never for valid tensors.
    pub fn forward<'t>(&mut self, z: Var<'t>, training: bool) -> Result<Var<'t>> {
        if !training {
            return Ok(z.leaky_relu(self.inference_slope()));
        }
        let slopes = z
            .tape()
            .constant(self.slopes(&z.shape(), z.value().device())?);
        let pos = z.relu();
        Ok(pos.add(z.sub(pos)?.mul(slopes)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_slopes_lie_in_range_and_inference_uses_mean() {
        let mut r = RRelu::new(0.125, 1.0 / 3.0, 7).unwrap();
        let z = Tensor::full(&[1000], -1.0);
        let y = r.call(&z, true).unwrap().to_vec();
        assert!(y.iter().all(|&v| (-1.0 / 3.0..=-0.125).contains(&v)));
        let mean: f32 = y.iter().sum::<f32>() / 1000.0;
        assert!((mean + r.inference_slope()).abs() < 0.01, "{mean}");
        assert_eq!(r.call(&z, false).unwrap().to_vec()[0], -r.inference_slope());
        assert!(RRelu::new(0.5, 0.25, 0).is_err());
    }
}
