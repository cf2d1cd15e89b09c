//! [`Flatten`]: `[batch, d1, d2, ...] -> [batch, d1 · d2 · ...]`.

use hebb_autograd::Var;
use hebb_tensor::Tensor;

use crate::{Error, Result};

/// Flattens each sample, keeping the batch axis (Keras `Flatten`,
/// `keras/src/layers/reshaping/flatten.py`, with the default
/// `data_format="channels_last"`): `[batch, d1, .., dn] -> [batch, d1 · .. · dn]`,
/// in row-major order. A rank-1 input `[batch]` becomes `[batch, 1]`, as in
/// Keras. Lecture 13 uses it to turn `[batch, 28, 28]` MNIST images into
/// `[batch, 784]` rows for a `Dense` layer.
///
/// It has no weights; [`forward`](Self::forward) is a reshape on the tape,
/// whose gradient is the incoming gradient reshaped back.
///
/// ```
/// use hebb_layers::Flatten;
/// use hebb_tensor::Tensor;
///
/// let flatten = Flatten::default();
/// let images = Tensor::zeros(&[32, 28, 28]);
/// assert_eq!(flatten.call(&images)?.shape(), &[32, 784]);
/// assert_eq!(flatten.output_shape(&[28, 28]), vec![784]);
/// # Ok::<(), hebb_layers::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flatten {
    name: String,
}

impl Default for Flatten {
    /// A `Flatten` named `"flatten"`, Keras' default name.
    fn default() -> Self {
        Self::new("flatten")
    }
}

impl Flatten {
    /// A `Flatten` layer called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }

    /// The layer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The per-sample output shape for a per-sample input shape (both
    /// without the batch axis; Keras' `compute_output_shape` less the batch):
    /// `[d1, .., dn] -> [d1 · .. · dn]`, and `[] -> [1]`.
    pub fn output_shape(&self, input_shape: &[usize]) -> Vec<usize> {
        vec![input_shape.iter().product()]
    }

    /// The batched output shape `[batch, d1 · .. · dn]` of a batched input shape.
    fn batched_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        match shape.split_first() {
            Some((&batch, rest)) => Ok(vec![batch, rest.iter().product()]),
            None => Err(Error::Shape {
                layer: self.name.clone(),
                detail: "Flatten needs an input of rank >= 1 ([batch, ...]), got a scalar []"
                    .to_string(),
            }),
        }
    }

    /// Flattens a plain tensor: `[batch, d1, ..] -> [batch, d1 · ..]`.
    ///
    /// # Errors
    /// [`Error::Shape`] naming the layer for a scalar (rank 0) input.
    pub fn call(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.reshape(&self.batched_shape(x.shape())?)?)
    }

    /// Flattens `x` on its tape (a reshape; the gradient is reshaped back).
    ///
    /// # Errors
    /// [`Error::Shape`] naming the layer for a scalar (rank 0) input.
    pub fn forward<'t>(&self, x: Var<'t>) -> Result<Var<'t>> {
        let shape = self.batched_shape(&x.shape())?;
        Ok(x.reshape(&shape)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hebb_autograd::GradientTape;

    #[test]
    fn shapes_like_keras() {
        let f = Flatten::default();
        assert_eq!(f.name(), "flatten");
        let x = Tensor::from_vec((0..24).map(|v| v as f32).collect(), &[2, 3, 4]).unwrap();
        let y = f.call(&x).unwrap();
        assert_eq!(y.shape(), &[2, 12]);
        assert_eq!(y.to_vec(), x.to_vec());
        assert_eq!(f.call(&Tensor::zeros(&[5])).unwrap().shape(), &[5, 1]);
        assert_eq!(f.call(&Tensor::zeros(&[5, 3])).unwrap().shape(), &[5, 3]);
        assert_eq!(f.call(&Tensor::zeros(&[0, 3, 2])).unwrap().shape(), &[0, 6]);
        assert_eq!(f.output_shape(&[28, 28]), vec![784]);
        assert_eq!(f.output_shape(&[]), vec![1]);
        let err = Flatten::new("f1")
            .call(&Tensor::scalar(1.0))
            .unwrap_err()
            .to_string();
        assert!(err.contains("f1") && err.contains("rank >= 1"), "{err}");
    }

    #[test]
    fn forward_reshapes_value_and_gradient() {
        let tape = GradientTape::new();
        let x = tape.watch_tensor(
            Tensor::from_vec((0..12).map(|v| v as f32).collect(), &[2, 2, 3]).unwrap(),
        );
        let y = Flatten::default().forward(x).unwrap();
        assert_eq!(y.shape(), vec![2, 6]);
        let w = tape.constant(
            Tensor::from_vec((0..12).map(|v| v as f32 * 0.5).collect(), &[2, 6]).unwrap(),
        );
        let g = tape.gradient(y.mul(w).unwrap().sum_all(), &[x]).unwrap();
        assert_eq!(g[0].shape(), &[2, 2, 3]);
        assert_eq!(
            g[0].to_vec(),
            (0..12).map(|v| v as f32 * 0.5).collect::<Vec<_>>()
        );
        assert!(
            Flatten::default()
                .forward(tape.constant(Tensor::scalar(0.0)))
                .is_err()
        );
    }
}
