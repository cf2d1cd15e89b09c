//! Activation functions (lecture 12.5), on plain tensors and on the tape.
//!
//! | name | `f(z)` | `f'(z)` |
//! |---|---|---|
//! | step | `1` if `z >= 0`, else `0` | `0` (undefined at 0) |
//! | logistic | `σ(z) = 1/(1+e^-z)` | `σ(z)(1-σ(z))` |
//! | tanh | `(e^z - e^-z)/(e^z + e^-z)` | `1 - tanh²(z)` |
//! | ReLU | `max(0, z)` | `1` if `z > 0`, else `0` |
//! | Leaky-ReLU | `z` if `z >= 0`, else `z/a`, `a > 1` | `1` if `z > 0`, else `1/a` |
//! | softmax | `e^{z_i} / Σ_j e^{z_j}` over the last axis | Jacobian `y_i(δ_ij - y_j)` |
//!
//! At a kink the derivative is TensorFlow's choice (the right-hand one only
//! where `z > 0`). PReLU and RReLU have state and are the layers
//! [`PRelu`](crate::PRelu) and [`RRelu`](crate::RRelu).

use hebb_autograd::Var;
use hebb_tensor::Tensor;

use crate::{Error, Result};

/// A stateless activation function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// The identity (`activation=None` in Keras).
    Linear,
    /// The M-P neuron's step function (lecture 12.1); its gradient is zero.
    Step,
    /// The logistic function `σ(z)` (`"sigmoid"` in Keras).
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// `max(0, z)`.
    Relu,
    /// The lecture's Leaky-ReLU: `z/a` for `z < 0`, with `a > 1`
    /// (Keras' `LeakyReLU(alpha)` is `a = 1/alpha`).
    LeakyRelu {
        /// The divisor `a ∈ (1, ∞)` of negative inputs.
        a: f32,
    },
    /// Softmax over the last axis (output layers of classifiers).
    Softmax,
}

impl Activation {
    /// The Keras-style name: `linear`, `step`, `sigmoid`, `tanh`, `relu`, `leaky_relu`, `softmax`.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Step => "step",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Softmax => "softmax",
        }
    }

    /// Checks the hyperparameters (Leaky-ReLU's `a > 1`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the activation and the bad value.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Activation::LeakyRelu { a } if a.is_nan() || a <= 1.0 => Err(Error::InvalidArgument {
                what: "leaky_relu",
                detail: format!("the lecture's divisor a must be > 1, got {a}"),
            }),
            _ => Ok(()),
        }
    }

    /// `f(z)` elementwise (softmax: over the last axis). Shape preserved.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for Leaky-ReLU with `a <= 1`; softmax of a scalar.
    pub fn call(&self, z: &Tensor) -> Result<Tensor> {
        self.validate()?;
        Ok(match *self {
            Activation::Linear => z.clone(),
            Activation::Step => z.step(),
            Activation::Sigmoid => z.sigmoid(),
            Activation::Tanh => z.tanh(),
            Activation::Relu => z.relu(),
            Activation::LeakyRelu { a } => z.leaky_relu(1.0 / a),
            Activation::Softmax => z.softmax()?,
        })
    }

    /// `f'(z)` elementwise, the factor the chain rule multiplies by (lecture
    /// 12.4, 12.5). For softmax it is the Jacobian's diagonal `y(1 - y)`.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub fn derivative(&self, z: &Tensor) -> Result<Tensor> {
        self.validate()?;
        let ones = z.ones_like();
        Ok(match *self {
            Activation::Linear => ones,
            Activation::Step => z.zeros_like(),
            Activation::Sigmoid | Activation::Softmax => {
                let y = self.call(z)?;
                y.mul(&ones.sub(&y)?)?
            }
            Activation::Tanh => ones.sub(&z.tanh().square())?,
            Activation::Relu => z.greater(&Tensor::scalar(0.0))?,
            Activation::LeakyRelu { a } => {
                let pos = z.greater(&Tensor::scalar(0.0))?;
                pos.add(&ones.sub(&pos)?.mul_scalar(1.0 / a))?
            }
        })
    }

    /// `f(z)` recorded on `z`'s tape. The step function breaks the chain
    /// (its gradient is zero almost everywhere).
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub fn apply<'t>(&self, z: Var<'t>) -> Result<Var<'t>> {
        self.validate()?;
        Ok(match *self {
            Activation::Linear => z,
            Activation::Step => z.tape().constant(z.value().step()),
            Activation::Sigmoid => z.sigmoid(),
            Activation::Tanh => z.tanh(),
            Activation::Relu => z.relu(),
            Activation::LeakyRelu { a } => z.leaky_relu(1.0 / a),
            Activation::Softmax => z.softmax()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivative_matches_lecture_formulas() {
        let z = Tensor::from_vec(vec![-2., -1., 0., 1., 2.], &[5]).unwrap();
        let d = Activation::Sigmoid.derivative(&z).unwrap().to_vec();
        assert!((d[2] - 0.25).abs() < 1e-7);
        let d = Activation::Tanh.derivative(&z).unwrap().to_vec();
        assert!((d[2] - 1.0).abs() < 1e-7 && (d[3] - 0.419_974_3).abs() < 1e-6);
        assert_eq!(
            Activation::Relu.derivative(&z).unwrap().to_vec(),
            vec![0., 0., 0., 1., 1.]
        );
        let lr = Activation::LeakyRelu { a: 4.0 };
        assert_eq!(lr.call(&z).unwrap().to_vec(), vec![-0.5, -0.25, 0., 1., 2.]);
        assert_eq!(
            lr.derivative(&z).unwrap().to_vec(),
            vec![0.25, 0.25, 0.25, 1., 1.]
        );
        assert!(Activation::LeakyRelu { a: 0.5 }.call(&z).is_err());
        assert_eq!(
            Activation::Step.derivative(&z).unwrap().to_vec(),
            vec![0.; 5]
        );
    }
}
