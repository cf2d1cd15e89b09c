//! The M-P neuron (McCulloch & Pitts 1943; lecture 12.1).

use hebb_tensor::Tensor;

use crate::{Error, Result};

/// The McCulloch–Pitts neuron: `y = step(Σ_j w_j x_j - θ)`, where
/// `step(z) = 1` for `z >= 0`, else `0`. Its weights are fixed: it cannot
/// learn (lecture 12.1).
#[derive(Debug, Clone, PartialEq)]
pub struct McCullochPitts {
    /// Input weights `w_j`.
    pub weights: Vec<f32>,
    /// Threshold `θ`.
    pub theta: f32,
}

impl McCullochPitts {
    /// A neuron with the given weights and threshold.
    pub fn new(weights: Vec<f32>, theta: f32) -> Self {
        Self { weights, theta }
    }

    /// Two-input AND: `w = (1, 1)`, `θ = 2`.
    pub fn and() -> Self {
        Self::new(vec![1.0, 1.0], 2.0)
    }

    /// Two-input OR: `w = (1, 1)`, `θ = 1`.
    pub fn or() -> Self {
        Self::new(vec![1.0, 1.0], 1.0)
    }

    /// One-input NOT: `w = (-1)`, `θ = 0`.
    pub fn not() -> Self {
        Self::new(vec![-1.0], 0.0)
    }

    /// Two-input NAND: `w = (-1, -1)`, `θ = -1`.
    pub fn nand() -> Self {
        Self::new(vec![-1.0, -1.0], -1.0)
    }

    /// Two-input NOR: `w = (-1, -1)`, `θ = 0`.
    pub fn nor() -> Self {
        Self::new(vec![-1.0, -1.0], 0.0)
    }

    /// The weighted input `z = X w - θ` for `x` of shape `[n, m]`: `[n]`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` is not `[n, weights.len()]`.
    pub fn net_input(&self, x: &Tensor) -> Result<Tensor> {
        let m = self.weights.len();
        if x.rank() != 2 || x.shape()[1] != m {
            return Err(Error::Shape {
                model: "McCullochPitts",
                detail: format!("expected inputs [n, {m}], got {:?}", x.shape()),
            });
        }
        let w = Tensor::from_vec(self.weights.clone(), &[m, 1])?;
        Ok(x.matmul(&w)?
            .add_scalar(-self.theta)
            .reshape(&[x.shape()[0]])?)
    }

    /// The outputs `step(z)` for `x` of shape `[n, m]`: `[n]` zeros and ones.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` is not `[n, weights.len()]`.
    pub fn output(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.net_input(x)?.step())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logic_gates() {
        let x2 = Tensor::from_vec(vec![0., 0., 0., 1., 1., 0., 1., 1.], &[4, 2]).unwrap();
        let out = |n: McCullochPitts| n.output(&x2).unwrap().to_vec();
        assert_eq!(out(McCullochPitts::and()), vec![0., 0., 0., 1.]);
        assert_eq!(out(McCullochPitts::or()), vec![0., 1., 1., 1.]);
        assert_eq!(out(McCullochPitts::nand()), vec![1., 1., 1., 0.]);
        assert_eq!(out(McCullochPitts::nor()), vec![1., 0., 0., 0.]);
        let x1 = Tensor::from_vec(vec![0., 1.], &[2, 1]).unwrap();
        assert_eq!(
            McCullochPitts::not().output(&x1).unwrap().to_vec(),
            vec![1., 0.]
        );
        assert!(McCullochPitts::and().output(&x1).is_err());
    }
}
