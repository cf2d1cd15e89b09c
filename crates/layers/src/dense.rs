//! [`Dense`]: the fully connected layer `Y = f(X W + B)`.

use hebb_autograd::{GradientTape, Var, Variable};
use hebb_tensor::Tensor;

use crate::{Activation, Error, Result};

/// A fully connected layer (lecture 12.2, 12.6; Keras `Dense`):
/// `Y = activation(X · kernel + bias)`.
///
/// Shapes: input `[batch, in]`, kernel `[in, units]`, bias `[units]`
/// (broadcast over the batch), output `[batch, units]`. The variables are
/// named `{name}/kernel` and `{name}/bias`, as in Keras.
#[derive(Debug, Clone)]
pub struct Dense {
    name: String,
    kernel: Variable,
    bias: Variable,
    activation: Activation,
}

impl Dense {
    /// A layer with the given initial kernel `[in, units]` and bias `[units]`.
    ///
    /// # Errors
    /// [`Error::Shape`] naming the layer if the kernel is not rank 2 or the
    /// bias length differs from the kernel's `units`.
    pub fn new(
        name: impl Into<String>,
        kernel: Tensor,
        bias: Tensor,
        activation: Activation,
    ) -> Result<Self> {
        let name = name.into();
        let ks = kernel.shape().to_vec();
        if ks.len() != 2 || bias.shape() != [ks[1]] {
            return Err(Error::Shape {
                layer: name,
                detail: format!(
                    "kernel must be [in, units] and bias [units]; got kernel {ks:?} and bias {:?}",
                    bias.shape()
                ),
            });
        }
        Ok(Self {
            kernel: Variable::new(format!("{name}/kernel"), kernel),
            bias: Variable::new(format!("{name}/bias"), bias),
            activation,
            name,
        })
    }

    /// The layer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The weight matrix `W`, `[in, units]`, named `{name}/kernel`.
    pub fn kernel(&self) -> &Variable {
        &self.kernel
    }

    /// The bias vector `B`, `[units]`, named `{name}/bias`.
    pub fn bias(&self) -> &Variable {
        &self.bias
    }

    /// The activation applied to `X W + B`.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Number of inputs `in`.
    pub fn input_dim(&self) -> usize {
        self.kernel.shape()[0]
    }

    /// Number of outputs `units`.
    pub fn units(&self) -> usize {
        self.kernel.shape()[1]
    }

    /// `[kernel, bias]`, in Keras' order (`model.trainable_variables`).
    pub fn trainable_variables(&self) -> Vec<&Variable> {
        vec![&self.kernel, &self.bias]
    }

    /// Mutable `[kernel, bias]`, for optimiser updates.
    pub fn trainable_variables_mut(&mut self) -> Vec<&mut Variable> {
        vec![&mut self.kernel, &mut self.bias]
    }

    fn check_input(&self, shape: &[usize]) -> Result<()> {
        if shape.len() != 2 || shape[1] != self.input_dim() {
            return Err(Error::Shape {
                layer: self.name.clone(),
                detail: format!(
                    "expected input [batch, {}], got {shape:?}",
                    self.input_dim()
                ),
            });
        }
        Ok(())
    }

    /// `activation(x · kernel + bias)` recorded on `tape` (the kernel and
    /// bias are watched, so their gradients can be asked for).
    ///
    /// # Errors
    /// [`Error::Shape`] naming the layer if `x` is not `[batch, in]`.
    pub fn forward<'t>(&self, tape: &'t GradientTape, x: Var<'t>) -> Result<Var<'t>> {
        self.activation.apply(self.forward_logits(tape, x)?)
    }

    /// The logits `x · kernel + bias`, before the activation, recorded on
    /// `tape` (kernel and bias watched): what a cross-entropy reads from a
    /// softmax or sigmoid layer, as Keras' TensorFlow backend takes them
    /// (`_keras_logits`). `[batch, in]` -> `[batch, units]`.
    ///
    /// # Errors
    /// [`Error::Shape`] naming the layer if `x` is not `[batch, in]`.
    pub fn forward_logits<'t>(&self, tape: &'t GradientTape, x: Var<'t>) -> Result<Var<'t>> {
        self.check_input(&x.shape())?;
        Ok(x.matmul(tape.watch(&self.kernel))?
            .add(tape.watch(&self.bias))?)
    }

    /// `activation(x · kernel + bias)` on plain tensors (inference).
    ///
    /// # Errors
    /// [`Error::Shape`] naming the layer if `x` is not `[batch, in]`.
    pub fn call(&self, x: &Tensor) -> Result<Tensor> {
        self.activation.call(&self.call_logits(x)?)
    }

    /// The logits `x · kernel + bias` on plain tensors, before the
    /// activation (see [`forward_logits`](Self::forward_logits)).
    ///
    /// # Errors
    /// [`Error::Shape`] naming the layer if `x` is not `[batch, in]`.
    pub fn call_logits(&self, x: &Tensor) -> Result<Tensor> {
        self.check_input(x.shape())?;
        Ok(x.matmul(self.kernel.value())?.add(self.bias.value())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_checked_and_named() {
        let err = Dense::new(
            "dense_1",
            Tensor::zeros(&[4, 3]),
            Tensor::zeros(&[4]),
            Activation::Relu,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("layer dense_1: kernel must be [in, units]"),
            "{err}"
        );
        let d = Dense::new(
            "dense",
            Tensor::ones(&[4, 3]),
            Tensor::zeros(&[3]),
            Activation::Linear,
        )
        .unwrap();
        let err = d.call(&Tensor::zeros(&[2, 5])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer dense: expected input [batch, 4], got [2, 5]"
        );
        assert_eq!(
            d.call(&Tensor::ones(&[2, 4])).unwrap().to_vec(),
            vec![4.0; 6]
        );
        assert_eq!(d.kernel.name(), "dense/kernel");
    }
}
