//! [`PRelu`]: ReLU with a trainable slope for negative inputs.

use hebb_autograd::{GradientTape, Var, Variable};
use hebb_tensor::Tensor;

use crate::Result;

/// Parametric ReLU (He et al. 2015, "Delving Deep into Rectifiers"; lecture
/// 12.5): `y = z` for `z >= 0`, `y = α z` for `z < 0`, with `α` trainable.
///
/// `alpha` has the shape of one sample (Keras `PReLU`: one slope per unit,
/// `[units]`) or `[]` for one shared slope; it broadcasts over the batch.
/// On the tape `y = relu(z) + α · (z - relu(z))`, so `∂y/∂α = min(z, 0)`.
#[derive(Debug, Clone)]
pub struct PRelu {
    /// The slopes `α`.
    pub alpha: Variable,
}

impl PRelu {
    /// A PReLU named `name` with every slope set to `alpha_init` (Keras
    /// initialises with zeros, PyTorch with 0.25).
    pub fn new(name: &str, shape: &[usize], alpha_init: f32) -> Self {
        Self {
            alpha: Variable::new(format!("{name}/alpha"), Tensor::full(shape, alpha_init)),
        }
    }

    /// `y` on plain tensors.
    ///
    /// # Errors
    /// If `alpha` does not broadcast against `z`.
    pub fn call(&self, z: &Tensor) -> Result<Tensor> {
        let pos = z.relu();
        Ok(pos.add(&z.sub(&pos)?.mul(self.alpha.value())?)?)
    }

    /// `∂y/∂z`: 1 where `z > 0`, else `α`.
    ///
    /// # Errors
    /// If `alpha` does not broadcast against `z`.
    pub fn derivative(&self, z: &Tensor) -> Result<Tensor> {
        let pos = z.greater(&Tensor::scalar(0.0))?;
        Ok(pos.add(&pos.neg().add_scalar(1.0).mul(self.alpha.value())?)?)
    }

    /// `y` recorded on `tape`, with `α` watched.
    ///
    /// # Errors
    /// If `alpha` does not broadcast against `z`.
    pub fn forward<'t>(&self, tape: &'t GradientTape, z: Var<'t>) -> Result<Var<'t>> {
        let pos = z.relu();
        Ok(pos.add(z.sub(pos)?.mul(tape.watch(&self.alpha))?)?)
    }
}
