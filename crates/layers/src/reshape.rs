//! [`Reshape`]: `[rows, ..input] -> [rows, ..target_shape]` (Keras `Reshape`).

use hebb_autograd::{GradientTape, Var};
use hebb_tensor::{Device, Tensor};
use rand::RngCore;
use serde_json::{Value, json};

use crate::base::{LayerBase, base_builders, layer_base_methods};
use crate::keras::{config_error, keras_shape};
use crate::layer::{Layer, Pass, reuse};
use crate::{Error, Result};

const CLASS: &str = "Reshape";

/// Reshapes each sample to `target_shape`, keeping the batch axis (Keras
/// `keras.layers.Reshape(target_shape)`, row-major order as NumPy's
/// `reshape`). One entry may be `-1`: it is inferred from the input's
/// element count. MNIST's `(28, 28)` images go into a `Conv2D` through
/// `Reshape::new(&[28, 28, 1])`.
///
/// On the CPU the step's [`forward`](Layer::forward) and
/// [`backward`](Layer::backward) copy into buffers the layer owns rather
/// than returning a reshaped clone of the input: a clone would share the
/// previous layer's output buffer, so that layer's next
/// [`reuse`] would have to copy it (a hidden allocation every step). On a
/// GPU (feature `cuda`) layers make new device tensors every step instead
/// of reusing buffers, so there the output is the input reshaped, sharing
/// its device memory (no copy, no launch), and the input's gradient is the
/// output's gradient reshaped back.
///
/// ```
/// use hebb_layers::{Layer, Reshape};
///
/// assert_eq!(Reshape::new(&[28, 28, 1]).compute_output_shape(&[784])?, vec![28, 28, 1]);
/// assert_eq!(Reshape::new(&[-1, 2, 2]).compute_output_shape(&[12])?, vec![3, 2, 2]);
/// assert!(Reshape::new(&[5, 5]).compute_output_shape(&[784]).is_err());
/// # Ok::<(), hebb_layers::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Reshape {
    base: LayerBase,
    target_shape: Vec<i64>,
    /// (input, output) per-sample shapes once built.
    built: Option<(Vec<usize>, Vec<usize>)>,
    /// The step's batched output shape `[rows, ..output]`, kept to avoid
    /// allocating it at every pass.
    batched: Vec<usize>,
    out: Tensor,
}

impl Reshape {
    /// A layer reshaping each sample to `target_shape` (one `-1` allowed);
    /// an invalid target is refused by [`validate`](Self::validate) and
    /// when the layer is added or built.
    pub fn new(target_shape: &[i64]) -> Self {
        Self {
            base: LayerBase::new(CLASS),
            target_shape: target_shape.to_vec(),
            built: None,
            batched: Vec::new(),
            out: Tensor::zeros(&[0]),
        }
    }

    /// The target shape as given (with its `-1`, if any).
    pub fn target_shape(&self) -> &[i64] {
        &self.target_shape
    }

    fn target_text(&self) -> String {
        let dims: Vec<String> = self.target_shape.iter().map(i64::to_string).collect();
        if dims.len() == 1 {
            format!("({},)", dims[0])
        } else {
            format!("({})", dims.join(", "))
        }
    }

    /// Checks the target shape: every entry positive, except at most one `-1`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the layer and the target shape.
    pub fn validate(&self) -> Result<()> {
        let unknown = self.target_shape.iter().filter(|&&d| d == -1).count();
        let bad = self.target_shape.iter().any(|&d| d != -1 && d <= 0);
        if unknown > 1 || bad {
            return Err(Error::InvalidArgument {
                what: "Reshape",
                detail: format!(
                    "layer {}: target_shape {} must have positive entries and at most one -1",
                    self.base.label(),
                    self.target_text()
                ),
            });
        }
        Ok(())
    }

    /// The layer from its Keras configuration (`target_shape`).
    ///
    /// # Errors
    /// [`Error::Config`] for a missing or invalid `target_shape`, or a dtype
    /// other than float32.
    pub fn from_config(config: &Value) -> Result<Box<dyn Layer>> {
        let (base, map) = LayerBase::from_config(CLASS, config)?;
        let target = map
            .get("target_shape")
            .and_then(Value::as_array)
            .and_then(|dims| dims.iter().map(Value::as_i64).collect::<Option<Vec<_>>>())
            .ok_or_else(|| {
                config_error(
                    CLASS,
                    format!(
                        "target_shape must be a list of integers, got {}",
                        map.get("target_shape").unwrap_or(&Value::Null)
                    ),
                )
            })?;
        let mut layer = Reshape::new(&target);
        layer.base = base;
        layer
            .validate()
            .map_err(|e| config_error(CLASS, e.to_string()))?;
        Ok(Box::new(layer))
    }

    /// The batched output shape for a batched input, built or not.
    fn batched_output(&self, x_shape: &[usize]) -> Result<Vec<usize>> {
        let (&rows, per_sample) = x_shape.split_first().ok_or_else(|| {
            self.base
                .shape_error("Reshape needs an input [rows, ..], got a scalar".into())
        })?;
        let out = match &self.built {
            Some((input, output)) if input == per_sample => output.clone(),
            Some((input, _)) => {
                return Err(self.base.shape_error(format!(
                    "built for inputs {}, got {}",
                    keras_shape(input),
                    keras_shape(per_sample)
                )));
            }
            None => self.compute_output_shape(per_sample)?,
        };
        let mut shape = Vec::with_capacity(out.len() + 1);
        shape.push(rows);
        shape.extend_from_slice(&out);
        Ok(shape)
    }
}

impl Reshape {
    /// Sets [`batched`](Self::batched) for a batched input, allocating only
    /// when the batch size or the input shape changes.
    fn step_shape(&mut self, x_shape: &[usize]) -> Result<()> {
        let same = matches!(
            (&self.built, x_shape.split_first(), self.batched.split_first()),
            (Some((input, _)), Some((rows, rest)), Some((r, _))) if rest == input.as_slice() && rows == r
        );
        if !same {
            self.batched = self.batched_output(x_shape)?;
        }
        Ok(())
    }
}

base_builders!(Reshape, base);

impl Layer for Reshape {
    layer_base_methods!(base);

    fn config(&self) -> Value {
        let mut map = self.base.config();
        map.insert("target_shape".into(), json!(self.target_shape));
        Value::Object(map)
    }

    fn compute_output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        self.validate()?;
        let count: usize = input_shape.iter().product();
        let known: usize = self
            .target_shape
            .iter()
            .filter(|&&d| d != -1)
            .map(|&d| d as usize)
            .product();
        let mismatch = || {
            self.base.shape_error(format!(
                "cannot reshape an input {} ({count} values per sample) to target_shape {}",
                keras_shape(input_shape),
                self.target_text()
            ))
        };
        let has_unknown = self.target_shape.contains(&-1);
        if (has_unknown && !count.is_multiple_of(known)) || (!has_unknown && count != known) {
            return Err(mismatch());
        }
        Ok(self
            .target_shape
            .iter()
            .map(|&d| if d == -1 { count / known } else { d as usize })
            .collect())
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut dyn RngCore) -> Result<()> {
        let output = self.compute_output_shape(input_shape)?;
        self.built = Some((input_shape.to_vec(), output));
        Ok(())
    }

    fn forward(&mut self, x: &Tensor, _pass: Pass) -> Result<&Tensor> {
        self.step_shape(x.shape())?;
        if x.device() == Device::Cpu {
            reuse(&mut self.out, &self.batched)?.copy_from_slice(x.as_slice());
        } else {
            self.out = x.reshape(&self.batched)?;
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
        self.step_shape(x.shape())?;
        if grad_out.shape() != self.batched.as_slice() || grad_out.device() != x.device() {
            return Err(self.base.shape_error(format!(
                "backward: gradient {:?} on {} does not match the output {:?} on {}",
                grad_out.shape(),
                grad_out.device(),
                self.batched,
                x.device()
            )));
        }
        match grad_in {
            Some(grad_in) if x.device() == Device::Cpu => {
                reuse(grad_in, x.shape())?.copy_from_slice(grad_out.as_slice());
            }
            Some(grad_in) => *grad_in = grad_out.reshape(x.shape())?,
            None => {}
        }
        Ok(())
    }

    fn call<'t>(&self, _tape: &'t GradientTape, x: Var<'t>, _training: bool) -> Result<Var<'t>> {
        let shape = self.batched_output(&x.shape())?;
        Ok(x.reshape(&shape)?)
    }

    /// Every device: a copy on the CPU, a reshape sharing the storage on a GPU.
    fn supports(&self, _device: Device) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{run_step, tape_reference};
    use hebb_tensor::random::chacha;

    fn ramp(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_vec((0..n).map(|i| i as f32 - 5.0).collect(), shape).unwrap()
    }

    #[test]
    fn output_shapes_as_keras() {
        let r = |t: &[i64], i: &[usize]| Reshape::new(t).compute_output_shape(i).unwrap();
        assert_eq!(r(&[28, 28, 1], &[28, 28]), vec![28, 28, 1]);
        assert_eq!(r(&[3, 4], &[12]), vec![3, 4]);
        assert_eq!(r(&[-1, 2, 2], &[12]), vec![3, 2, 2]);
        assert_eq!(r(&[2, -1], &[3, 4]), vec![2, 6]);
        assert_eq!(r(&[-1], &[2, 3, 4]), vec![24]);
    }

    #[test]
    fn forward_backward_copy_and_match_the_tape() {
        let mut r = Reshape::new(&[2, -1]).name("r");
        r.build(&[3, 4], &mut chacha(0)).unwrap();
        let x = ramp(&[5, 3, 4]);
        let w = ramp(&[5, 2, 6]).mul_scalar(0.5);
        let (y, gi) = run_step(&mut r, &x, &w, Pass::TRAIN).unwrap();
        assert_eq!(y.shape(), &[5, 2, 6]);
        assert_eq!(y.to_vec(), x.to_vec());
        assert_eq!(gi.shape(), &[5, 3, 4]);

        let want = tape_reference(&r, &x, &w, true).unwrap();
        assert_eq!(want.y, y);
        assert_eq!(want.dx, gi);

        // The output buffer is reused for the same batch size.
        let before = r.forward(&x, Pass::INFER).unwrap().as_slice().as_ptr();
        let after = r.forward(&x, Pass::INFER).unwrap().as_slice().as_ptr();
        assert_eq!(before, after);
    }

    #[test]
    fn errors_name_layer_and_shapes() {
        let e = Reshape::new(&[5, 5])
            .name("rs")
            .compute_output_shape(&[28, 28])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("rs") && e.contains("(None, 28, 28)") && e.contains("(5, 5)"),
            "{e}"
        );
        let e = Reshape::new(&[-1, 5])
            .compute_output_shape(&[12])
            .unwrap_err()
            .to_string();
        assert!(e.contains("(-1, 5)") && e.contains("12"), "{e}");
        for bad in [&[-1, -1][..], &[0, 4], &[-2, 6]] {
            let e = Reshape::new(bad).compute_output_shape(&[12]).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
        }
        let mut r = Reshape::new(&[4]).name("rs");
        r.build(&[2, 2], &mut chacha(0)).unwrap();
        let e = r
            .forward(&Tensor::zeros(&[3, 4]), Pass::TRAIN)
            .unwrap_err()
            .to_string();
        assert!(e.contains("(None, 2, 2)") && e.contains("(None, 4)"), "{e}");
    }

    #[test]
    fn config_round_trip() {
        let r = Reshape::new(&[28, 28, 1]).name("reshape_2");
        let c = r.config();
        assert_eq!(
            c,
            json!({"name": "reshape_2", "trainable": true, "dtype": "float32",
                   "target_shape": [28, 28, 1]})
        );
        assert_eq!(Reshape::from_config(&c).unwrap().config(), c);
        let keras = json!({"name": "reshape", "trainable": true, "dtype": "float32",
            "target_shape": [-1, 2], "batch_input_shape": [null, 8]});
        let l = Reshape::from_config(&keras).unwrap();
        assert_eq!(l.input_shape(), Some(&[8usize][..]));
        assert_eq!(l.compute_output_shape(&[8]).unwrap(), vec![4, 2]);
        for bad in [
            json!({"target_shape": "28x28"}),
            json!({}),
            json!({"target_shape": [-1, -1]}),
        ] {
            let e = Reshape::from_config(&bad).unwrap_err();
            assert!(matches!(e, Error::Config { .. }), "{e:?}");
        }
    }
}
