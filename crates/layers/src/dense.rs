//! [`Dense`]: the fully connected layer `Y = f(X W + B)`.
//!
//! For input `X` `[rows, in]`, kernel `W` `[in, units]` and bias `b` `[units]`:
//!
//! ```text
//! forward   Z = X·W + b,  Y = f(Z)
//! backward  G ← G ⊙ f'(·) (from Y),  dW = Xᵀ·G (+ regulariser),  db = Σ_rows G,  dX = G·Wᵀ
//! ```
//!
//! The step's forward and backward run on the CPU on the layer's own
//! buffers with hebb-tensor's GEMM (`db` summed in `f64` and rounded once),
//! and on a GPU with tensor ops (cuBLAS products).

use hebb_autograd::{GradientTape, Var, Variable};
use hebb_tensor::ops::matmul::{MatRef, gemm};
use hebb_tensor::{Device, Tensor};
use rand::RngCore;
use serde_json::{Value, json};

use crate::base::{LayerBase, base_builders, layer_base_methods};
use crate::keras::{
    activation_from_config, activation_to_config, bool_key, config_error, initializer_field,
    initializer_to_keras,
};
use crate::layer::{Layer, Pass, reuse};
use crate::weights::make_weight;
use crate::{Activation, Error, Initializer, Regularizer, Result};

const CLASS: &str = "Dense";

/// A fully connected layer (lecture 12.2, 12.6; Keras `Dense`):
/// `Y = activation(X · kernel + bias)`.
///
/// Shapes: input `[batch, in]`, kernel `[in, units]`, bias `[units]`
/// (broadcast over the batch), output `[batch, units]`. The variables are
/// named `{name}/kernel` and `{name}/bias`, as in Keras. Its input is
/// `(None, in)`; put a [`Flatten`](crate::Flatten) before it for images.
///
/// Made as Keras makes it, then built by the model once the input shape is
/// known (kernel drawn from `kernel_initializer`, Keras' default
/// `glorot_uniform`; bias from `bias_initializer`, `zeros`):
///
/// ```
/// use hebb_layers::{Activation, Dense, Layer, Regularizer};
///
/// let mut layer = Dense::new(64)
///     .activation(Activation::Relu)
///     .kernel_regularizer(Regularizer::l2(0.01))
///     .input_shape(&[784]);
/// assert_eq!(layer.compute_output_shape(&[784])?, vec![64]);
/// layer.set_name("hidden");
/// layer.build(&[784], &mut hebb_tensor::random::chacha(0))?;
/// assert_eq!(layer.weights()[0].name(), "hidden/kernel");
/// assert_eq!(layer.weights()[0].shape(), &[784, 64]);
/// # Ok::<(), hebb_layers::Error>(())
/// ```
///
/// [`Dense::from_weights`] makes a built layer from given weights (chapter
/// 12's low-level code, with [`Layer::call`] on the tape).
#[derive(Debug, Clone)]
pub struct Dense {
    units: usize,
    activation: Activation,
    use_bias: bool,
    kernel_initializer: Initializer,
    bias_initializer: Initializer,
    kernel_regularizer: Option<Regularizer>,
    base: LayerBase,
    kernel: Option<Variable>,
    bias: Option<Variable>,
    /// The step's output `[rows, units]` (the logits under [`Pass::logits`]).
    out: Tensor,
    /// `[dW, db]` (or `[dW]` without bias) of the last backward pass.
    grads: Vec<Tensor>,
    /// The bias gradient's column sums, in `f64`.
    bias_sums: Vec<f64>,
}

impl Dense {
    /// A layer of `units` outputs, linear activation, Keras' default
    /// initialisers, with a bias, trainable; named by the model.
    pub fn new(units: usize) -> Self {
        Self {
            units,
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            base: LayerBase::new(CLASS),
            kernel: None,
            bias: None,
            out: Tensor::zeros(&[0]),
            grads: Vec::new(),
            bias_sums: Vec::new(),
        }
    }

    /// A built layer with the given kernel `[in, units]` and bias `[units]`
    /// (lecture 12's networks, whose weights come from NumPy's generator).
    ///
    /// # Errors
    /// [`Error::Shape`] naming the layer if the kernel is not rank 2 or the
    /// bias length differs from the kernel's `units`.
    pub fn from_weights(
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
        let mut layer = Self::new(ks[1]).activation(activation);
        layer.base.input_shape = Some(vec![ks[0]]);
        layer.base.name = name;
        layer.kernel = Some(Variable::new(layer.base.weight_name("kernel"), kernel));
        layer.bias = Some(Variable::new(layer.base.weight_name("bias"), bias));
        Ok(layer)
    }

    /// The activation applied to `x · kernel + bias` (Keras
    /// `activation="relu"`); checked when the layer is added to a model
    /// (e.g. Leaky-ReLU's `a > 1`, see [`Activation::LeakyRelu`]).
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// How the kernel is initialised (Keras `kernel_initializer`).
    pub fn kernel_initializer(mut self, init: Initializer) -> Self {
        self.kernel_initializer = init;
        self
    }

    /// How the bias is initialised (Keras `bias_initializer`).
    pub fn bias_initializer(mut self, init: Initializer) -> Self {
        self.bias_initializer = init;
        self
    }

    /// Whether the layer has a bias (Keras `use_bias`, default `true`);
    /// without, its only weight is the kernel.
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// A penalty on the kernel added to the loss (Keras `kernel_regularizer`).
    pub fn kernel_regularizer(mut self, regularizer: Regularizer) -> Self {
        self.kernel_regularizer = Some(regularizer);
        self
    }

    /// Number of outputs `units`.
    pub fn units(&self) -> usize {
        self.units
    }

    /// The weight matrix `W`, `[in, units]`, named `{name}/kernel`, once built.
    pub fn kernel(&self) -> Option<&Variable> {
        self.kernel.as_ref()
    }

    /// The bias vector `B`, `[units]`, named `{name}/bias`, once built
    /// (never with `use_bias(false)`).
    pub fn bias(&self) -> Option<&Variable> {
        self.bias.as_ref()
    }

    /// Number of inputs `in`, once built.
    pub fn input_dim(&self) -> Option<usize> {
        self.kernel.as_ref().map(|k| k.shape()[0])
    }

    /// `[kernel, bias]`, in Keras' order (`layer.trainable_variables`);
    /// empty before `build`.
    pub fn trainable_variables(&self) -> Vec<&Variable> {
        self.kernel.iter().chain(self.bias.iter()).collect()
    }

    /// Mutable `[kernel, bias]`, for optimiser updates.
    pub fn trainable_variables_mut(&mut self) -> Vec<&mut Variable> {
        self.kernel.iter_mut().chain(self.bias.iter_mut()).collect()
    }

    fn kernel_or_err(&self) -> Result<&Variable> {
        self.kernel.as_ref().ok_or_else(|| {
            self.base
                .shape_error("the layer is not built yet (its input shape is not known)".into())
        })
    }

    fn check_input(&self, shape: &[usize]) -> Result<usize> {
        let in_dim = self.kernel_or_err()?.shape()[0];
        if shape.len() != 2 || shape[1] != in_dim {
            return Err(self
                .base
                .shape_error(format!("expected input [batch, {in_dim}], got {shape:?}")));
        }
        Ok(shape[0])
    }

    /// The logits `x · kernel + bias`, before the activation, recorded on
    /// `tape` (kernel and bias watched): what a cross-entropy reads from a
    /// softmax or sigmoid layer, as Keras' TensorFlow backend takes them
    /// (`_keras_logits`). `[batch, in]` -> `[batch, units]`.
    ///
    /// # Errors
    /// [`Error::Shape`] naming the layer if `x` is not `[batch, in]`, or
    /// the layer is not built.
    pub fn forward_logits<'t>(&self, tape: &'t GradientTape, x: Var<'t>) -> Result<Var<'t>> {
        self.check_input(&x.shape())?;
        let z = x.matmul(tape.watch(self.kernel_or_err()?))?;
        Ok(match &self.bias {
            Some(b) => z.add(tape.watch(b))?,
            None => z,
        })
    }

    /// `activation(x · kernel + bias)` on plain tensors (inference).
    ///
    /// # Errors
    /// [`Error::Shape`] naming the layer if `x` is not `[batch, in]`.
    pub fn predict(&self, x: &Tensor) -> Result<Tensor> {
        self.check_input(x.shape())?;
        let z = x.matmul(self.kernel_or_err()?.value())?;
        let z = match &self.bias {
            Some(b) => z.add(b.value())?,
            None => z,
        };
        self.activation.call(&z)
    }

    /// Makes a `Dense` from its Keras configuration (`units`, `activation`,
    /// `use_bias`, `kernel_initializer`, `bias_initializer`,
    /// `kernel_regularizer`, `name`, `trainable`); the [`Registry`](crate::Registry)
    /// entry of `"Dense"`, with the base keys every layer reads (`dtype`
    /// float32 only, the input shape of `batch_input_shape`/`batch_shape`). Keys
    /// Keras writes that hebb does not use (`bias_regularizer`,
    /// constraints) are left to the caller; an initialiser hebb lacks reads
    /// as the default (a model file's weights replace it).
    ///
    /// # Errors
    /// [`Error::Config`] for a missing or bad `units`, an activation hebb
    /// does not have, a LoRA or quantised layer, another dtype; regulariser
    /// errors.
    pub fn from_config(config: &Value) -> Result<Box<dyn Layer>> {
        let (base, map) = LayerBase::from_config(CLASS, config)?;
        let name = &base.name;
        let bad = |detail: String| config_error(CLASS, detail);
        let units = config
            .get("units")
            .and_then(Value::as_u64)
            .filter(|&u| (1..=1 << 31).contains(&u))
            .ok_or_else(|| bad(format!("layer {name}: units {:?}", config.get("units"))))?;
        for key in ["lora_rank", "quantization_config"] {
            if config.get(key).is_some_and(|v| !v.is_null()) {
                return Err(bad(format!("layer {name}: {key} is not supported")));
            }
        }
        let activation =
            activation_from_config(CLASS, config.get("activation").unwrap_or(&Value::Null))?;
        let use_bias = bool_key(CLASS, map, "use_bias", true)?;
        let mut layer = Dense::new(units as usize)
            .activation(activation)
            .use_bias(use_bias)
            .kernel_initializer(initializer_field(
                config,
                "kernel_initializer",
                Initializer::GlorotUniform,
            ))
            .bias_initializer(initializer_field(
                config,
                "bias_initializer",
                Initializer::Zeros,
            ));
        layer.kernel_regularizer =
            Regularizer::from_keras(config.get("kernel_regularizer").unwrap_or(&Value::Null))?;
        layer.base = base;
        Ok(Box::new(layer))
    }

    /// The CPU forward pass on the layer's buffers.
    fn forward_cpu(&mut self, x: &Tensor, rows: usize, logits: bool) -> Result<()> {
        self.kernel_or_err()?;
        let Some(kernel) = self.kernel.as_ref().map(Variable::value) else {
            return Ok(());
        };
        let in_dim = kernel.shape()[0];
        let out = reuse(&mut self.out, &[rows, self.units])?;
        gemm(
            out,
            MatRef::new(x.as_slice(), rows, in_dim)?,
            MatRef::of(kernel)?,
        )?;
        if let Some(b) = &self.bias {
            let bias = b.value().as_slice();
            for row in out.chunks_exact_mut(bias.len()) {
                row.iter_mut().zip(bias).for_each(|(z, &b)| *z += b);
            }
        }
        if !logits {
            self.activation.apply_in_place(out, self.units)?;
        }
        Ok(())
    }

    /// The CPU backward pass (see the module docs).
    fn backward_cpu(
        &mut self,
        x: &Tensor,
        grad_out: &mut Tensor,
        grad_in: Option<&mut Tensor>,
        rows: usize,
        logits: bool,
    ) -> Result<()> {
        let width = self.units;
        let delta = grad_out.as_mut_slice();
        if !logits {
            self.activation
                .backprop_in_place(self.out.as_slice(), delta, width)?;
        }
        let kernel = self
            .kernel
            .as_ref()
            .ok_or_else(|| self.base.shape_error("the layer is not built yet".into()))?
            .value();
        let in_dim = kernel.shape()[0];
        if self.base.trainable {
            let shapes_fit = self.grads.first().map(Tensor::shape) == Some(kernel.shape())
                && self.grads.iter().all(|g| g.device() == Device::Cpu)
                && self.grads.len() == 1 + usize::from(self.bias.is_some());
            if !shapes_fit {
                self.grads = std::iter::once(Tensor::zeros(kernel.shape()))
                    .chain(self.bias.iter().map(|b| Tensor::zeros(b.shape())))
                    .collect();
            }
            let (dw, db) = self.grads.split_at_mut(1);
            let dw = dw[0].as_mut_slice();
            gemm(
                dw,
                MatRef::new(x.as_slice(), rows, in_dim)?.t(),
                MatRef::new(delta, rows, width)?,
            )?;
            if let Some(r) = &self.kernel_regularizer {
                r.add_gradient(kernel.as_slice(), dw);
            }
            if let Some(db) = db.first_mut() {
                // db = Σ_rows G, accumulated in f64: a full-batch step (BGD on
                // 60,000 rows) would otherwise drift by f32's rounding per row.
                self.bias_sums.resize(width, 0.0);
                let sums = &mut self.bias_sums[..width];
                sums.fill(0.0);
                for row in delta.chunks_exact(width) {
                    sums.iter_mut()
                        .zip(row)
                        .for_each(|(acc, &g)| *acc += f64::from(g));
                }
                for (d, &sum) in db.as_mut_slice().iter_mut().zip(sums.iter()) {
                    *d = sum as f32;
                }
            }
        }
        if let Some(grad_in) = grad_in {
            let gi = reuse(grad_in, &[rows, in_dim])?;
            gemm(
                gi,
                MatRef::new(delta, rows, width)?,
                MatRef::of(kernel)?.t(),
            )?;
        }
        Ok(())
    }

    /// The forward pass with tensor ops, on the input's device (GPUs).
    fn forward_ops(&mut self, x: &Tensor, logits: bool) -> Result<()> {
        let z = x.matmul(self.kernel_or_err()?.value())?;
        let z = match &self.bias {
            Some(b) => z.add(b.value())?,
            None => z,
        };
        self.out = if logits { z } else { self.activation.call(&z)? };
        Ok(())
    }

    /// The backward pass with tensor ops, on the input's device (GPUs).
    fn backward_ops(
        &mut self,
        x: &Tensor,
        grad_out: &Tensor,
        grad_in: Option<&mut Tensor>,
        logits: bool,
    ) -> Result<()> {
        let delta = if logits {
            grad_out.clone()
        } else {
            self.activation.backprop(&self.out, grad_out)?
        };
        let kernel = self.kernel_or_err()?.value().clone();
        if self.base.trainable {
            let mut dw = x.matmul_with(&delta, true, false)?;
            if let Some(r) = &self.kernel_regularizer {
                // l1 · sign(w) + 2 · l2 · w, as Regularizer::add_gradient.
                let reg = kernel
                    .sign()
                    .mul_scalar(r.l1)
                    .add(&kernel.mul_scalar(2.0 * r.l2))?;
                dw = dw.add(&reg)?;
            }
            let mut grads = vec![dw];
            if self.bias.is_some() {
                grads.push(delta.sum(0, false)?);
            }
            self.grads = grads;
        }
        if let Some(grad_in) = grad_in {
            *grad_in = delta.matmul_with(&kernel, false, true)?;
        }
        Ok(())
    }
}

base_builders!(Dense, base);

impl Layer for Dense {
    layer_base_methods!(base);

    fn activation(&self) -> Activation {
        self.activation
    }

    fn config(&self) -> Value {
        let mut c = self.base.config();
        c.insert("units".into(), json!(self.units));
        c.insert("activation".into(), activation_to_config(self.activation));
        c.insert("use_bias".into(), json!(self.use_bias));
        c.insert(
            "kernel_initializer".into(),
            initializer_to_keras(self.kernel_initializer),
        );
        c.insert(
            "bias_initializer".into(),
            initializer_to_keras(self.bias_initializer),
        );
        c.insert(
            "kernel_regularizer".into(),
            self.kernel_regularizer
                .map_or(Value::Null, |r| r.to_keras()),
        );
        for key in ["bias_regularizer", "kernel_constraint", "bias_constraint"] {
            c.insert(key.into(), Value::Null);
        }
        Value::Object(c)
    }

    fn compute_output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let fail = |detail: String| self.base.shape_error(detail);
        let dims: Vec<String> = input_shape.iter().map(usize::to_string).collect();
        let shown = format!("(None, {})", dims.join(", "));
        let [features] = input_shape else {
            return Err(fail(format!(
                "Dense expects a flat input (None, features), got {shown}; add a Flatten layer before it"
            )));
        };
        if self.units == 0 || *features == 0 {
            return Err(fail(format!(
                "Dense needs units >= 1 and inputs >= 1, got {shown} -> {}",
                self.units
            )));
        }
        self.activation.validate()?;
        if let Some(r) = &self.kernel_regularizer {
            r.validate()?;
        }
        Ok(vec![self.units])
    }

    fn build(&mut self, input_shape: &[usize], rng: &mut dyn RngCore) -> Result<()> {
        self.compute_output_shape(input_shape)?;
        let kernel_shape = [input_shape[0], self.units];
        let label = self.base.label();
        let kernel = make_weight(
            &label,
            "kernel",
            &kernel_shape,
            self.kernel_initializer,
            rng,
        )?;
        self.kernel = Some(Variable::new(self.base.weight_name("kernel"), kernel));
        self.bias = if self.use_bias {
            let bias = make_weight(&label, "bias", &[self.units], self.bias_initializer, rng)?;
            Some(Variable::new(self.base.weight_name("bias"), bias))
        } else {
            None
        };
        self.grads.clear();
        Ok(())
    }

    fn weights(&self) -> Vec<&Variable> {
        self.trainable_variables()
    }

    fn weights_mut(&mut self) -> Vec<&mut Variable> {
        self.trainable_variables_mut()
    }

    fn forward(&mut self, x: &Tensor, pass: Pass) -> Result<&Tensor> {
        let rows = self.check_input(x.shape())?;
        if x.device() == Device::Cpu {
            self.forward_cpu(x, rows, pass.logits)?;
        } else {
            self.forward_ops(x, pass.logits)?;
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
        let rows = self.check_input(x.shape())?;
        if grad_out.shape() != [rows, self.units] || self.out.shape() != [rows, self.units] {
            return Err(self.base.shape_error(format!(
                "backward: the output gradient is {:?}, the last output {:?}, for input {:?}",
                grad_out.shape(),
                self.out.shape(),
                x.shape()
            )));
        }
        if x.device() == Device::Cpu {
            self.backward_cpu(x, grad_out, grad_in, rows, pass.logits)
        } else {
            self.backward_ops(x, grad_out, grad_in, pass.logits)
        }
    }

    fn gradients(&self) -> &[Tensor] {
        &self.grads
    }

    fn regularization_loss(&self) -> Result<f32> {
        Ok(match (&self.kernel_regularizer, &self.kernel) {
            (Some(r), Some(k)) => r.penalty(k.value()),
            _ => 0.0,
        })
    }

    fn call<'t>(&self, tape: &'t GradientTape, x: Var<'t>, _training: bool) -> Result<Var<'t>> {
        self.activation.apply(self.forward_logits(tape, x)?)
    }

    fn supports(&self, _device: Device) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, random, run_step, tape_reference};
    use hebb_tensor::random::chacha;

    #[test]
    fn shapes_are_checked_and_named() {
        let err = Dense::from_weights(
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
        let d = Dense::from_weights(
            "dense",
            Tensor::ones(&[4, 3]),
            Tensor::zeros(&[3]),
            Activation::Linear,
        )
        .unwrap();
        let err = d.predict(&Tensor::zeros(&[2, 5])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer dense: expected input [batch, 4], got [2, 5]"
        );
        assert_eq!(
            d.predict(&Tensor::ones(&[2, 4])).unwrap().to_vec(),
            vec![4.0; 6]
        );
        assert_eq!(d.kernel().unwrap().name(), "dense/kernel");
        let e = Dense::new(3).compute_output_shape(&[2, 2]).unwrap_err();
        assert!(e.to_string().contains("add a Flatten"), "{e}");
    }

    /// The step's forward and backward give the tape's values and gradients
    /// (with a regulariser, without bias, with logits).
    #[test]
    fn step_matches_the_tape() {
        for (activation, use_bias, reg, logits) in [
            (Activation::Relu, true, None, false),
            (
                Activation::Tanh,
                false,
                Some(Regularizer::l1_l2(0.01, 0.02)),
                false,
            ),
            (Activation::Softmax, true, Some(Regularizer::l2(0.1)), true),
            (Activation::Sigmoid, true, None, false),
        ] {
            let mut layer = Dense::new(3).activation(activation).use_bias(use_bias);
            if let Some(r) = reg {
                layer = layer.kernel_regularizer(r);
            }
            layer.set_name("d");
            layer.build(&[4], &mut chacha(1)).unwrap();
            let x = random(&[5, 4], 2);
            let g = random(&[5, 3], 3);
            let pass = Pass {
                training: true,
                logits,
                ..Pass::default()
            };
            let (y, dx) = run_step(&mut layer, &x, &g, pass).unwrap();

            let mut probe = layer.clone();
            if logits {
                probe.activation = Activation::Linear;
            }
            let want = tape_reference(&probe, &x, &g, true).unwrap();
            let what = format!("{activation:?}");
            assert_close(&format!("output {what}"), &y, &want.y, 1e-5);
            assert_close(&format!("dx {what}"), &dx, &want.dx, 1e-5);
            assert_eq!(layer.gradients().len(), 1 + usize::from(use_bias));
            for (i, (mine, tape_grad)) in layer.gradients().iter().zip(&want.dweights).enumerate() {
                let mut tape_grad = tape_grad.clone();
                if i == 0
                    && let Some(r) = reg
                {
                    r.add_gradient(
                        layer.kernel().unwrap().value().as_slice(),
                        tape_grad.as_mut_slice(),
                    );
                }
                assert_close(&format!("weight gradient {what}"), mine, &tape_grad, 1e-5);
            }
        }
    }

    /// The tensor-op path (the GPUs') gives the CPU path's values.
    #[test]
    fn tensor_ops_match_the_cpu_path() {
        let mut a = Dense::new(4)
            .activation(Activation::Tanh)
            .kernel_regularizer(Regularizer::l1(0.05));
        a.set_name("d");
        a.build(&[3], &mut chacha(4)).unwrap();
        let mut b = a.clone();
        let x = random(&[6, 3], 5);
        let g = random(&[6, 4], 6);
        Layer::forward(&mut a, &x, Pass::TRAIN).unwrap();
        let mut ga = g.clone();
        let mut ia = Tensor::zeros(&[1]);
        a.backward(&x, &mut ga, Some(&mut ia), Pass::TRAIN).unwrap();
        b.forward_ops(&x, false).unwrap();
        let mut ib = Tensor::zeros(&[1]);
        b.backward_ops(&x, &g, Some(&mut ib), false).unwrap();
        let close = |p: &[f32], q: &[f32]| {
            for (p, q) in p.iter().zip(q) {
                assert!((p - q).abs() < 1e-5, "{p} vs {q}");
            }
        };
        close(a.out.as_slice(), b.out.as_slice());
        close(ia.as_slice(), ib.as_slice());
        for (p, q) in a.gradients().iter().zip(b.gradients()) {
            assert_eq!(p.shape(), q.shape());
            close(p.as_slice(), q.as_slice());
        }
    }

    #[test]
    fn config_round_trips() {
        let mut d = Dense::new(7)
            .activation(Activation::LeakyRelu { a: 4.0 })
            .use_bias(false)
            .kernel_initializer(Initializer::HeNormal)
            .kernel_regularizer(Regularizer::l2(0.5))
            .trainable(false);
        d.set_name("hidden");
        let c = d.config();
        assert_eq!(c["units"], 7);
        assert_eq!(c["use_bias"], false);
        assert_eq!(c["trainable"], false);
        assert_eq!(c["dtype"], "float32");
        let back = Dense::from_config(&c).unwrap();
        assert_eq!(back.config(), c);
        assert_eq!(back.name(), "hidden");
        assert!(!back.trainable());
        let e = Dense::from_config(&json!({"units": 0})).unwrap_err();
        assert!(e.to_string().contains("units"), "{e}");
    }

    #[test]
    fn set_name_renames_the_weights() {
        let mut d = Dense::new(2);
        d.build(&[3], &mut chacha(0)).unwrap();
        d.set_name("out");
        let names: Vec<&str> = d.weights().iter().map(|v| v.name()).collect();
        assert_eq!(names, ["out/kernel", "out/bias"]);
        assert_eq!(d.regularization_loss().unwrap(), 0.0);
    }
}
