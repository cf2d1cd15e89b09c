//! [`Flatten`]: `[batch, d1, d2, ...] -> [batch, d1 · d2 · ...]`.

use hebb_autograd::{GradientTape, Var};
use hebb_tensor::{Device, Tensor};
use rand::RngCore;
use serde_json::{Value, json};

use crate::Result;
use crate::base::{LayerBase, base_builders, layer_base_methods};
use crate::keras::channels_last;
use crate::layer::{Layer, Pass, reuse};

const CLASS: &str = "Flatten";

/// Flattens each sample, keeping the batch axis (Keras `Flatten`,
/// `keras/src/layers/reshaping/flatten.py`, with the default
/// `data_format="channels_last"`): `[batch, d1, .., dn] -> [batch, d1 · .. · dn]`,
/// in row-major order. Lecture 13 uses it to turn `[batch, 28, 28]` MNIST
/// images into `[batch, 784]` rows for a `Dense` layer.
///
/// It has no weights; on the tape it is a reshape, whose gradient is the
/// incoming gradient reshaped back.
///
/// ```
/// use hebb_layers::{Flatten, Layer};
///
/// let flatten = Flatten::new().input_shape(&[28, 28]);
/// assert_eq!(flatten.compute_output_shape(&[28, 28])?, vec![784]);
/// assert_eq!(flatten.output_shape(&[28, 28]), vec![784]);
/// # Ok::<(), hebb_layers::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Flatten {
    base: LayerBase,
    out: Tensor,
}

impl Default for Flatten {
    fn default() -> Self {
        Self::new()
    }
}

impl Flatten {
    /// A `Flatten` layer, named by the model (`flatten`, `flatten_1`, ...).
    pub fn new() -> Self {
        Self {
            base: LayerBase::new(CLASS),
            out: Tensor::zeros(&[0]),
        }
    }

    /// The per-sample output shape for a per-sample input shape (both
    /// without the batch axis; Keras' `compute_output_shape` less the batch):
    /// `[d1, .., dn] -> [d1 · .. · dn]`, and `[] -> [1]` (saturating).
    pub fn output_shape(&self, input_shape: &[usize]) -> Vec<usize> {
        vec![input_shape.iter().fold(1usize, |n, &d| n.saturating_mul(d))]
    }

    /// The batched output shape `[batch, d1 · .. · dn]` of a batched input shape.
    fn batched_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        match shape.split_first() {
            Some((&batch, rest)) => Ok(vec![batch, rest.iter().product()]),
            None => Err(self.base.shape_error(
                "Flatten needs an input of rank >= 1 ([batch, ...]), got a scalar []".to_string(),
            )),
        }
    }

    /// Makes a `Flatten` from its Keras configuration (`data_format` and the
    /// base keys every layer reads: `name`, `trainable`, `dtype` (float32
    /// only), `batch_input_shape` or `batch_shape`); the
    /// [`Registry`](crate::Registry) entry of `"Flatten"`.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for `data_format` other than
    /// `"channels_last"`, or a bad base key.
    pub fn from_config(config: &Value) -> Result<Box<dyn Layer>> {
        let (base, map) = LayerBase::from_config(CLASS, config)?;
        channels_last(CLASS, map)?;
        Ok(Box::new(Flatten {
            base,
            ..Flatten::new()
        }))
    }
}

base_builders!(Flatten, base);

impl Layer for Flatten {
    layer_base_methods!(base);

    fn config(&self) -> Value {
        let mut c = self.base.config();
        c.insert("data_format".into(), json!("channels_last"));
        Value::Object(c)
    }

    fn compute_output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        match input_shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
        {
            Some(n) => Ok(vec![n]),
            None => {
                let dims: Vec<String> = input_shape.iter().map(usize::to_string).collect();
                Err(self.base.shape_error(format!(
                    "Flatten of (None, {}) would have more features than usize can count",
                    dims.join(", ")
                )))
            }
        }
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut dyn RngCore) -> Result<()> {
        self.compute_output_shape(input_shape).map(|_| ())
    }

    fn forward(&mut self, x: &Tensor, _pass: Pass) -> Result<&Tensor> {
        let shape = self.batched_shape(x.shape())?;
        if x.device() == Device::Cpu {
            reuse(&mut self.out, &shape)?.copy_from_slice(x.as_slice());
        } else {
            self.out = x.reshape(&shape)?;
        }
        Ok(&self.out)
    }

    fn backward(
        &mut self,
        x: &Tensor,
        grad_out: &mut Tensor,
        grad_in: Option<&mut Tensor>,
        _pass: Pass,
    ) -> Result<()> {
        let Some(grad_in) = grad_in else {
            return Ok(());
        };
        if grad_out.len() != x.len() {
            return Err(self.base.shape_error(format!(
                "backward: output gradient {:?} for input {:?}",
                grad_out.shape(),
                x.shape()
            )));
        }
        if x.device() == Device::Cpu {
            reuse(grad_in, x.shape())?.copy_from_slice(grad_out.as_slice());
        } else {
            *grad_in = grad_out.reshape(x.shape())?;
        }
        Ok(())
    }

    fn call<'t>(&self, _tape: &'t GradientTape, x: Var<'t>, _training: bool) -> Result<Var<'t>> {
        let shape = self.batched_shape(&x.shape())?;
        Ok(x.reshape(&shape)?)
    }

    fn supports(&self, _device: Device) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{run_step, tape_reference};

    #[test]
    fn shapes_like_keras() {
        let mut f = Flatten::new().name("f1");
        assert_eq!(Layer::name(&f), "f1");
        let x = Tensor::from_vec((0..24).map(|v| v as f32).collect(), &[2, 3, 4]).unwrap();
        let y = f.forward(&x, Pass::INFER).unwrap().clone();
        assert_eq!(y.shape(), &[2, 12]);
        assert_eq!(y.to_vec(), x.to_vec());
        assert_eq!(
            f.forward(&Tensor::zeros(&[5]), Pass::INFER)
                .unwrap()
                .shape(),
            &[5, 1]
        );
        assert_eq!(f.output_shape(&[28, 28]), vec![784]);
        assert_eq!(f.output_shape(&[]), vec![1]);
        let err = f
            .forward(&Tensor::scalar(1.0), Pass::INFER)
            .unwrap_err()
            .to_string();
        assert!(err.contains("f1") && err.contains("rank >= 1"), "{err}");
        assert!(f.compute_output_shape(&[1 << 40, 1 << 40]).is_err());
    }

    #[test]
    fn backward_reshapes_and_the_tape_agrees() {
        let mut f = Flatten::new();
        let x = Tensor::from_vec((0..12).map(|v| v as f32).collect(), &[2, 2, 3]).unwrap();
        let g = Tensor::from_vec((0..12).map(|v| v as f32 * 0.5).collect(), &[2, 6]).unwrap();
        let (y, gi) = run_step(&mut f, &x, &g, Pass::TRAIN).unwrap();
        assert_eq!(gi.shape(), &[2, 2, 3]);

        let want = tape_reference(&f, &x, &g, true).unwrap();
        assert_eq!(want.y, y);
        assert_eq!(want.y.shape(), &[2, 6]);
        assert_eq!(want.dx, gi);
        let tape = GradientTape::new();
        assert!(
            f.call(&tape, tape.constant(Tensor::scalar(0.0)), false)
                .is_err()
        );
    }

    #[test]
    fn config_round_trips() {
        let f = Flatten::new().name("flat");
        let back = Flatten::from_config(&f.config()).unwrap();
        assert_eq!(back.config(), f.config());
        assert!(Flatten::from_config(&json!({"data_format": "channels_first"})).is_err());
    }
}
