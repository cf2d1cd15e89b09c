//! [`ActivationLayer`]: an activation as a layer of its own (Keras `Activation`).

use hebb_autograd::{GradientTape, Var};
use hebb_tensor::{Device, Tensor};
use rand::RngCore;
use serde_json::Value;

use crate::base::{LayerBase, base_builders, layer_base_methods};
use crate::keras::{activation_from_config, activation_to_config};
use crate::layer::{Layer, Pass, reuse};
use crate::{Activation, Result};

const CLASS: &str = "Activation";

/// Applies an [`Activation`] elementwise (softmax: over the last axis), as
/// Keras' `Activation("relu")` layer; no weights, output shape = input shape.
///
/// ```
/// use hebb_layers::{Activation, ActivationLayer, Layer};
///
/// let layer = ActivationLayer::new(Activation::Softmax);
/// assert_eq!(layer.class_name(), "Activation");
/// assert_eq!(layer.compute_output_shape(&[10])?, vec![10]);
/// # Ok::<(), hebb_layers::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ActivationLayer {
    activation: Activation,
    base: LayerBase,
    out: Tensor,
}

impl ActivationLayer {
    /// A layer applying `activation`; named by the model (`activation`, `activation_1`, ...).
    pub fn new(activation: Activation) -> Self {
        Self {
            activation,
            base: LayerBase::new(CLASS),
            out: Tensor::zeros(&[0]),
        }
    }

    /// Makes the layer from its Keras configuration (`activation` and the
    /// base keys every layer reads: `name`, `trainable`, `dtype` (float32
    /// only), `batch_input_shape` or `batch_shape`); the
    /// [`Registry`](crate::Registry) entry of `"Activation"`.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for an activation hebb does
    /// not have, or a bad base key.
    pub fn from_config(config: &Value) -> Result<Box<dyn Layer>> {
        let (base, map) = LayerBase::from_config(CLASS, config)?;
        let activation =
            activation_from_config(CLASS, map.get("activation").unwrap_or(&Value::Null))?;
        Ok(Box::new(ActivationLayer {
            base,
            ..ActivationLayer::new(activation)
        }))
    }

    /// The width of the rows the activation works on (the last axis).
    fn width(x: &Tensor) -> usize {
        x.shape().last().copied().unwrap_or(1).max(1)
    }
}

base_builders!(ActivationLayer, base);

impl Layer for ActivationLayer {
    layer_base_methods!(base);

    fn activation(&self) -> Activation {
        self.activation
    }

    fn config(&self) -> Value {
        let mut c = self.base.config();
        c.insert("activation".into(), activation_to_config(self.activation));
        Value::Object(c)
    }

    fn compute_output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        self.activation.validate()?;
        Ok(input_shape.to_vec())
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut dyn RngCore) -> Result<()> {
        self.compute_output_shape(input_shape).map(|_| ())
    }

    fn forward(&mut self, x: &Tensor, pass: Pass) -> Result<&Tensor> {
        if x.rank() == 0 {
            return Err(self.base.shape_error(
                "an input of rank >= 1 ([batch, ...]) is needed, got a scalar".into(),
            ));
        }
        if x.device() == Device::Cpu {
            let out = reuse(&mut self.out, x.shape())?;
            out.copy_from_slice(x.as_slice());
            if !pass.logits {
                self.activation.apply_in_place(out, Self::width(x))?;
            }
        } else {
            self.out = if pass.logits {
                x.clone()
            } else {
                self.activation.call(x)?
            };
        }
        Ok(&self.out)
    }

    fn backward(
        &mut self,
        x: &Tensor,
        grad_out: &mut Tensor,
        grad_in: Option<&mut Tensor>,
        pass: Pass,
    ) -> Result<()> {
        let Some(grad_in) = grad_in else {
            return Ok(());
        };
        if grad_out.shape() != x.shape() || self.out.shape() != x.shape() {
            return Err(self.base.shape_error(format!(
                "backward: output gradient {:?} and last output {:?} for input {:?}",
                grad_out.shape(),
                self.out.shape(),
                x.shape()
            )));
        }
        if x.device() == Device::Cpu {
            if !pass.logits {
                self.activation.backprop_in_place(
                    self.out.as_slice(),
                    grad_out.as_mut_slice(),
                    Self::width(x),
                )?;
            }
            reuse(grad_in, x.shape())?.copy_from_slice(grad_out.as_slice());
        } else {
            *grad_in = if pass.logits {
                grad_out.clone()
            } else {
                self.activation.backprop(&self.out, grad_out)?
            };
        }
        Ok(())
    }

    fn call<'t>(&self, _tape: &'t GradientTape, x: Var<'t>, _training: bool) -> Result<Var<'t>> {
        self.activation.apply(x)
    }

    fn supports(&self, _device: Device) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, run_step, tape_reference};

    #[test]
    fn forward_backward_match_the_tape() {
        for a in [Activation::Softmax, Activation::Tanh, Activation::Relu] {
            let mut layer = ActivationLayer::new(a).name("act");
            let x = Tensor::from_vec(vec![0.5, -1.0, 2.0, 0.1, 0.3, -0.7], &[2, 3]).unwrap();
            let g = Tensor::from_vec(vec![1.0, 0.5, -0.2, 0.3, -1.0, 0.25], &[2, 3]).unwrap();
            let (y, dx) = run_step(&mut layer, &x, &g, Pass::TRAIN).unwrap();
            let want = tape_reference(&layer, &x, &g, true).unwrap();
            assert_close(&format!("{a:?} y"), &y, &want.y, 1e-6);
            assert_close(&format!("{a:?} dx"), &dx, &want.dx, 1e-6);
        }
    }

    #[test]
    fn logits_pass_leaves_the_activation_out_and_config_round_trips() {
        let mut layer = ActivationLayer::new(Activation::Softmax);
        let x = Tensor::from_vec(vec![1.0, 2.0], &[1, 2]).unwrap();
        let pass = Pass {
            training: true,
            logits: true,
            ..Pass::default()
        };
        assert_eq!(layer.forward(&x, pass).unwrap().to_vec(), vec![1.0, 2.0]);
        let back = ActivationLayer::from_config(&layer.config()).unwrap();
        assert_eq!(back.activation(), Activation::Softmax);
        assert_eq!(back.config(), layer.config());
    }
}
