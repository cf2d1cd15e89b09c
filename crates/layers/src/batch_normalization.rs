//! [`BatchNormalization`] (Ioffe and Szegedy 2015) with Keras 3's semantics
//! (`keras/src/layers/normalization/batch_normalization.py`).
//!
//! For an input `[rows, .., C]` the statistics run over every axis but the
//! last (`N = rows · ..` values per feature `c`):
//!
//! ```text
//! training (fit, layer trainable):   μ_c = Σ x / N,  σ²_c = Σ (x - μ_c)² / N   (biased)
//!     moving_mean     ← moving_mean · momentum + μ_c · (1 - momentum)
//!     moving_variance ← moving_variance · momentum + σ²_c · (1 - momentum)
//! otherwise (evaluate, predict, or a frozen layer):   μ_c = moving_mean, σ²_c = moving_variance
//! y = x · a_c + (β_c - μ_c · a_c),   a_c = γ_c / sqrt(σ²_c + ε)
//! ```
//!
//! Keras 3 computes the batch moments with `ops.moments` (TensorFlow:
//! `tf.nn.moments`, the biased variance, mean of squared differences) and
//! feeds that same biased variance into the moving variance (no Bessel
//! correction, unlike Keras 2's fused kernel or PyTorch); the output is
//! `tf.nn.batch_normalization`'s `x · a + (β - μ · a)`. hebb does the same.
//! `γ` is 1 without `scale`, `β` is 0 without `center`.
//!
//! Backward of the training pass (through the batch statistics), with
//! `x̂ = (x - μ) / sqrt(σ² + ε)` and `dy` the output's gradient:
//! `dγ = Σ dy · x̂`, `dβ = Σ dy`,
//! `dx = γ / sqrt(σ² + ε) · (dy - dβ / N - x̂ · dγ / N)`;
//! of the inference pass (an affine map): `dx = dy · a`, same `dγ`, `dβ`.
//!
//! The step's forward and backward are hebb-tensor's
//! [`ops::batch_norm`](hebb_tensor::ops::batch_norm) op, on the input's
//! device: the sums run in `f64` over blocks of
//! [`ROWS_PER_BLOCK`](hebb_tensor::ops::batch_norm::ROWS_PER_BLOCK) rows (of
//! `C` values each) and the block sums are added in block order, so the
//! result is the same bits for any number of threads, and the same bits on
//! the CPU and on a GPU. On a GPU the statistics, the moving statistics'
//! update and the gradients stay in device memory: nothing is copied to
//! the host.

use hebb_autograd::{GradientTape, Var, Variable};
use hebb_tensor::ops::batch_norm::{BatchNorm, BatchNormStats, Gradients, Statistics};
use hebb_tensor::{Device, Tensor};
use rand::RngCore;
use serde_json::{Value, json};

use crate::base::{LayerBase, base_builders, layer_base_methods};
use crate::keras::{self, config_error, initializer_to_keras, keras_shape};
use crate::layer::{Layer, Pass};
use crate::weights::make_weight;
use crate::{Error, Initializer, Regularizer, Result};

const CLASS: &str = "BatchNormalization";

/// Normalises the last axis with batch statistics in training and moving
/// statistics otherwise (Keras `keras.layers.BatchNormalization`: `axis=-1`,
/// `momentum=0.99`, `epsilon=1e-3`, `center=True`, `scale=True`); see the
/// module docs for the formulas. Shapes: `[rows, .., C] -> [rows, .., C]`,
/// any per-sample rank `>= 1`.
///
/// Weights, in Keras' order: `gamma` (with `scale`), `beta` (with
/// `center`), both trainable, then `moving_mean` and `moving_variance`,
/// non-trainable (`non_trainable_weight_count() == 2`), each `[C]`. A frozen
/// layer (`trainable(false)`) runs in inference mode even in `fit`, as in
/// Keras 2.1+.
///
/// The step runs on its input's device (the CPU or a CUDA GPU, with the
/// weights on the same device), with the same results on both.
///
/// On the tape ([`Layer::call`], which takes `&self`), `training = true`
/// normalises with the batch statistics but does not update the moving
/// statistics (they are not on the tape); the step's
/// [`forward`](Layer::forward) does.
///
/// ```
/// use hebb_layers::{BatchNormalization, Layer, Pass};
/// use hebb_tensor::{Tensor, random::chacha};
///
/// let mut bn = BatchNormalization::new();
/// bn.set_name("bn");
/// bn.build(&[2], &mut chacha(0))?;
/// let x = Tensor::from_vec(vec![1.0, 10.0, 3.0, 30.0], &[2, 2])?;
/// let y = bn.forward(&x, Pass::TRAIN)?.to_vec();
/// // Each column has mean 0 and variance 1 / (1 + ε / σ²).
/// assert!((y[0] + 1.0).abs() < 1e-3 && (y[2] - 1.0).abs() < 1e-3);
/// // The moving mean moved 1% of the way to the batch mean [2, 20].
/// let moving_mean = bn.weights()[2].value().to_vec();
/// assert!((moving_mean[0] - 0.02).abs() < 1e-7 && (moving_mean[1] - 0.2).abs() < 1e-7);
/// # Ok::<(), hebb_layers::Error>(())
/// ```
#[derive(Debug)]
pub struct BatchNormalization {
    base: LayerBase,
    axis: i64,
    momentum: f64,
    epsilon: f64,
    center: bool,
    scale: bool,
    synchronized: bool,
    /// Keras 3's `renorm_momentum`, kept for the configuration only (hebb
    /// refuses `renorm: true`, so it never enters the computation).
    renorm_momentum: f64,
    beta_initializer: Initializer,
    gamma_initializer: Initializer,
    moving_mean_initializer: Initializer,
    moving_variance_initializer: Initializer,
    beta_regularizer: Option<Regularizer>,
    gamma_regularizer: Option<Regularizer>,
    built: Option<Vec<usize>>,
    /// `[gamma?, beta?, moving_mean, moving_variance]`.
    weights: Vec<Variable>,
    grads: Vec<Tensor>,
    out: Tensor,
    /// What the last forward pass computed per feature (on its device),
    /// for the backward pass.
    stats: BatchNormStats,
}

impl Default for BatchNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchNormalization {
    /// A layer with Keras' defaults.
    pub fn new() -> Self {
        Self {
            base: LayerBase::new(CLASS),
            axis: -1,
            momentum: 0.99,
            epsilon: 1e-3,
            center: true,
            scale: true,
            synchronized: false,
            renorm_momentum: 0.99,
            beta_initializer: Initializer::Zeros,
            gamma_initializer: Initializer::Ones,
            moving_mean_initializer: Initializer::Zeros,
            moving_variance_initializer: Initializer::Ones,
            beta_regularizer: None,
            gamma_regularizer: None,
            built: None,
            weights: Vec::new(),
            grads: Vec::new(),
            out: Tensor::zeros(&[0]),
            stats: BatchNormStats::new(),
        }
    }

    /// The normalised axis (Keras `axis=`); only the last axis (`-1`, or
    /// its positive index in the batched input) is supported, others are
    /// refused when the layer is added or built.
    pub fn axis(mut self, axis: i64) -> Self {
        self.axis = axis;
        self
    }

    /// Keras `momentum=` (default 0.99): the weight of the old moving value.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Keras `epsilon=` (default 1e-3), added to the variance.
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Keras `center=` (default true): add the trainable offset `beta`.
    pub fn center(mut self, center: bool) -> Self {
        self.center = center;
        self
    }

    /// Keras `scale=` (default true): multiply by the trainable `gamma`.
    pub fn scale(mut self, scale: bool) -> Self {
        self.scale = scale;
        self
    }

    /// Keras `beta_initializer=` (default zeros).
    pub fn beta_initializer(mut self, init: Initializer) -> Self {
        self.beta_initializer = init;
        self
    }

    /// Keras `gamma_initializer=` (default ones).
    pub fn gamma_initializer(mut self, init: Initializer) -> Self {
        self.gamma_initializer = init;
        self
    }

    /// Keras `moving_mean_initializer=` (default zeros).
    pub fn moving_mean_initializer(mut self, init: Initializer) -> Self {
        self.moving_mean_initializer = init;
        self
    }

    /// Keras `moving_variance_initializer=` (default ones).
    pub fn moving_variance_initializer(mut self, init: Initializer) -> Self {
        self.moving_variance_initializer = init;
        self
    }

    /// Keras `beta_regularizer=`.
    pub fn beta_regularizer(mut self, r: Regularizer) -> Self {
        self.beta_regularizer = Some(r);
        self
    }

    /// Keras `gamma_regularizer=`.
    pub fn gamma_regularizer(mut self, r: Regularizer) -> Self {
        self.gamma_regularizer = Some(r);
        self
    }

    fn invalid(&self, detail: String) -> Error {
        Error::InvalidArgument {
            what: "BatchNormalization",
            detail: format!("layer {}: {detail}", self.base.label()),
        }
    }

    /// Checks momentum, epsilon and the regularisers.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the layer for a non-finite
    /// momentum, a negative or non-finite epsilon, or a bad regulariser.
    pub fn validate(&self) -> Result<()> {
        if !self.momentum.is_finite() {
            return Err(self.invalid(format!("momentum must be finite, got {}", self.momentum)));
        }
        if !(self.epsilon.is_finite() && self.epsilon >= 0.0) {
            return Err(self.invalid(format!(
                "epsilon must be finite and >= 0, got {}",
                self.epsilon
            )));
        }
        for r in [self.beta_regularizer, self.gamma_regularizer]
            .into_iter()
            .flatten()
        {
            r.validate()?;
        }
        Ok(())
    }

    /// The layer from its Keras configuration (every key of Keras 3's
    /// `get_config`; Keras 2's `axis: [3]` too).
    ///
    /// # Errors
    /// [`Error::Config`] for unreadable values, constraints (hebb has none),
    /// `renorm: true` or a `renorm_clipping` (batch renormalisation, which
    /// hebb lacks), an unknown initialiser, or a dtype other than float32.
    pub fn from_config(config: &Value) -> Result<Box<dyn Layer>> {
        let (base, map) = LayerBase::from_config(CLASS, config)?;
        for key in ["beta_constraint", "gamma_constraint", "renorm_clipping"] {
            keras::refuse_non_null(CLASS, map, key)?;
        }
        let axis = match map.get("axis") {
            None | Some(Value::Null) => -1,
            Some(Value::Array(a)) if a.len() == 1 && a[0].is_i64() => a[0].as_i64().unwrap_or(-1),
            Some(v) => v
                .as_i64()
                .ok_or_else(|| config_error(CLASS, format!("axis must be one integer, got {v}")))?,
        };
        let f = |key, default| keras::f64_key(CLASS, map, key, default);
        let b = |key, default| keras::bool_key(CLASS, map, key, default);
        let init = |key, default| keras::initializer_key(CLASS, map, key, default);
        let reg = |key: &str| {
            Regularizer::from_keras(map.get(key).unwrap_or(&Value::Null))
                .map_err(|e| config_error(CLASS, format!("{key}: {e}")))
        };
        let mut layer = BatchNormalization::new()
            .axis(axis)
            .momentum(f("momentum", 0.99)?)
            .epsilon(f("epsilon", 1e-3)?)
            .center(b("center", true)?)
            .scale(b("scale", true)?)
            .beta_initializer(init("beta_initializer", Initializer::Zeros)?)
            .gamma_initializer(init("gamma_initializer", Initializer::Ones)?)
            .moving_mean_initializer(init("moving_mean_initializer", Initializer::Zeros)?)
            .moving_variance_initializer(init("moving_variance_initializer", Initializer::Ones)?);
        layer.beta_regularizer = reg("beta_regularizer")?;
        layer.gamma_regularizer = reg("gamma_regularizer")?;
        // One device: synchronised statistics are the local ones.
        layer.synchronized = b("synchronized", false)?;
        // Batch renormalisation (Keras 3.10+ `renorm`) is not implemented:
        // refused rather than silently trained as plain batch normalisation.
        if b("renorm", false)? {
            return Err(config_error(
                CLASS,
                "renorm = true (batch renormalization) is not supported by hebb (only false)"
                    .to_string(),
            ));
        }
        layer.renorm_momentum = f("renorm_momentum", 0.99)?;
        layer.base = base;
        layer
            .validate()
            .map_err(|e| config_error(CLASS, e.to_string()))?;
        Ok(Box::new(layer))
    }

    fn gamma_index(&self) -> Option<usize> {
        self.scale.then_some(0)
    }

    fn beta_index(&self) -> Option<usize> {
        self.center.then_some(usize::from(self.scale))
    }

    fn moving_index(&self) -> usize {
        usize::from(self.scale) + usize::from(self.center)
    }

    /// The number of features `C` of the built layer.
    fn channels(&self) -> Result<usize> {
        self.built
            .as_ref()
            .and_then(|s| s.last().copied())
            .ok_or_else(|| {
                self.base.shape_error(
                    "the layer is not built; add it to a model or call build first".into(),
                )
            })
    }

    /// Checks a batched input against the built shape; returns `(N, C)`.
    fn rows_and_channels(&self, shape: &[usize]) -> Result<(usize, usize)> {
        let c = self.channels()?;
        let built = self.built.as_deref().unwrap_or(&[]);
        if shape.get(1..) != Some(built) {
            return Err(self.base.shape_error(format!(
                "built for inputs {}, got a batch of shape {shape:?}",
                keras_shape(built)
            )));
        }
        Ok((shape.iter().product::<usize>() / c, c))
    }

    fn batch_mode(&self, training: bool) -> bool {
        training && self.base.trainable
    }
}

base_builders!(BatchNormalization, base);

impl Layer for BatchNormalization {
    layer_base_methods!(base);

    fn config(&self) -> Value {
        let mut map = self.base.config();
        let reg = |r: Option<Regularizer>| r.map_or(Value::Null, |r| r.to_keras());
        for (key, value) in [
            ("axis", json!(self.axis)),
            ("momentum", json!(self.momentum)),
            ("epsilon", json!(self.epsilon)),
            ("center", json!(self.center)),
            ("scale", json!(self.scale)),
            (
                "beta_initializer",
                initializer_to_keras(self.beta_initializer),
            ),
            (
                "gamma_initializer",
                initializer_to_keras(self.gamma_initializer),
            ),
            (
                "moving_mean_initializer",
                initializer_to_keras(self.moving_mean_initializer),
            ),
            (
                "moving_variance_initializer",
                initializer_to_keras(self.moving_variance_initializer),
            ),
            ("beta_regularizer", reg(self.beta_regularizer)),
            ("gamma_regularizer", reg(self.gamma_regularizer)),
            ("beta_constraint", Value::Null),
            ("gamma_constraint", Value::Null),
            ("synchronized", json!(self.synchronized)),
            ("renorm", json!(false)),
            ("renorm_clipping", Value::Null),
            ("renorm_momentum", json!(self.renorm_momentum)),
        ] {
            map.insert(key.into(), value);
        }
        Value::Object(map)
    }

    fn compute_output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        self.validate()?;
        let Some(&c) = input_shape.last() else {
            return Err(self.base.shape_error(
                "BatchNormalization needs inputs of rank >= 1 per sample ([rows, .., \
                 features]), got (None,)"
                    .into(),
            ));
        };
        if self.axis != -1 && self.axis != input_shape.len() as i64 {
            return Err(self.invalid(format!(
                "axis {} of input {} is not the last axis; hebb normalises the last \
                 (channels_last) axis only",
                self.axis,
                keras_shape(input_shape)
            )));
        }
        if c == 0 {
            return Err(self.base.shape_error(format!(
                "input {} has no features",
                keras_shape(input_shape)
            )));
        }
        Ok(input_shape.to_vec())
    }

    fn build(&mut self, input_shape: &[usize], rng: &mut dyn RngCore) -> Result<()> {
        self.compute_output_shape(input_shape)?;
        let c = input_shape[input_shape.len() - 1];
        let mut inits = Vec::new();
        if self.scale {
            inits.push(("gamma", self.gamma_initializer));
        }
        if self.center {
            inits.push(("beta", self.beta_initializer));
        }
        inits.push(("moving_mean", self.moving_mean_initializer));
        inits.push(("moving_variance", self.moving_variance_initializer));
        self.built = Some(input_shape.to_vec());
        let label = self.base.label();
        self.weights = inits
            .into_iter()
            .map(|(weight, init)| {
                let value = make_weight(&label, weight, &[c], init, rng)?;
                Ok(Variable::new(self.base.weight_name(weight), value))
            })
            .collect::<Result<_>>()?;
        self.grads = vec![Tensor::zeros(&[c]); self.moving_index()];
        self.stats = BatchNormStats::new();
        Ok(())
    }

    fn weights(&self) -> Vec<&Variable> {
        self.weights.iter().collect()
    }

    fn weights_mut(&mut self) -> Vec<&mut Variable> {
        self.weights.iter_mut().collect()
    }

    fn non_trainable_weight_count(&self) -> usize {
        if self.weights.is_empty() { 0 } else { 2 }
    }

    fn forward(&mut self, x: &Tensor, pass: Pass) -> Result<&Tensor> {
        self.rows_and_channels(x.shape())?;
        let batch = self.batch_mode(pass.training);
        let (gi, bi, m) = (self.gamma_index(), self.beta_index(), self.moving_index());
        let (params, moving) = self.weights.split_at_mut(m);
        let bn = BatchNorm {
            gamma: gi.map(|i| params[i].value()),
            beta: bi.map(|i| params[i].value()),
            epsilon: self.epsilon,
        };
        let (mm, mv) = moving.split_at_mut(1);
        let statistics = if batch {
            Statistics::Batch {
                moving_mean: mm[0].value_mut(),
                moving_variance: mv[0].value_mut(),
                momentum: self.momentum,
            }
        } else {
            Statistics::Moving {
                moving_mean: mm[0].value(),
                moving_variance: mv[0].value(),
            }
        };
        bn.forward(x, statistics, &mut self.out, &mut self.stats)?;
        Ok(&self.out)
    }

    fn backward(
        &mut self,
        x: &Tensor,
        grad_out: &mut Tensor,
        grad_in: Option<&mut Tensor>,
        _pass: Pass,
    ) -> Result<()> {
        self.rows_and_channels(x.shape())?;
        if grad_out.shape() != x.shape() {
            return Err(self.base.shape_error(format!(
                "backward: gradient {:?} does not match the input {:?}",
                grad_out.shape(),
                x.shape()
            )));
        }
        let trainable = self.base.trainable;
        let (gi, bi) = (self.gamma_index(), self.beta_index());
        let bn = BatchNorm {
            gamma: gi.map(|i| self.weights[i].value()),
            beta: bi.map(|i| self.weights[i].value()),
            epsilon: self.epsilon,
        };
        // `grads` is `[dγ?, dβ?]`; a frozen layer computes neither.
        let mut grads = self.grads.iter_mut().filter(|_| trainable);
        let dgamma = if self.scale { grads.next() } else { None };
        let dbeta = if self.center { grads.next() } else { None };
        let want = Gradients {
            dx: grad_in,
            dgamma,
            dbeta,
        };
        bn.backward(x, grad_out, &mut self.stats, want)?;
        if trainable {
            for (index, reg) in [(gi, self.gamma_regularizer), (bi, self.beta_regularizer)] {
                let (Some(i), Some(r)) = (index, reg) else {
                    continue;
                };
                let w = self.weights[i].value();
                if w.device() == Device::Cpu {
                    r.add_gradient(w.as_slice(), self.grads[i].as_mut_slice());
                } else {
                    // l1 · sign(w) + 2 · l2 · w, as Regularizer::add_gradient.
                    let penalty = w.sign().mul_scalar(r.l1).add(&w.mul_scalar(2.0 * r.l2))?;
                    self.grads[i] = self.grads[i].add(&penalty)?;
                }
            }
        }
        Ok(())
    }

    fn gradients(&self) -> &[Tensor] {
        &self.grads
    }

    fn regularization_loss(&self) -> Result<f32> {
        let mut total = 0.0;
        for (index, reg) in [
            (self.gamma_index(), self.gamma_regularizer),
            (self.beta_index(), self.beta_regularizer),
        ] {
            if let (Some(i), Some(r)) = (index, reg)
                && let Some(w) = self.weights.get(i)
            {
                total += r.penalty(w.value());
            }
        }
        Ok(total)
    }

    fn call<'t>(&self, tape: &'t GradientTape, x: Var<'t>, training: bool) -> Result<Var<'t>> {
        let shape = x.shape();
        let (n, c) = self.rows_and_channels(&shape)?;
        let device = x.value().device();
        let x2 = x.reshape(&[n, c])?;
        let eps = self.epsilon as f32;
        let y = if self.batch_mode(training) && n > 0 {
            let mean = x2.mean(0, true)?;
            let centered = x2.sub(mean)?;
            let var = centered.square().mean(0, true)?;
            centered.div(var.add_scalar(eps).sqrt())?
        } else {
            let m = self.moving_index();
            let moving = |k: usize| self.weights[k].value().reshape(&[1, c])?.to_device(device);
            let std = moving(m + 1)?.add_scalar(eps).sqrt();
            x2.sub(tape.constant(moving(m)?))?.div(tape.constant(std))?
        };
        let y = match self.gamma_index() {
            Some(i) => y.mul(tape.watch(&self.weights[i]))?,
            None => y,
        };
        let y = match self.beta_index() {
            Some(i) => y.add(tape.watch(&self.weights[i]))?,
            None => y,
        };
        Ok(y.reshape(&shape)?)
    }

    /// Every device: the step is hebb-tensor's batch-norm op.
    fn supports(&self, _device: Device) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{run_step, tape_reference, uniform};
    use hebb_autograd::gradcheck::GradCheck;
    use hebb_tensor::ops::batch_norm::ROWS_PER_BLOCK;
    use hebb_tensor::random::chacha;
    use proptest::prelude::*;

    fn random(shape: &[usize], seed: u64) -> Tensor {
        uniform(shape, seed, -2.0, 2.0)
    }

    /// A built layer whose gamma, beta and moving statistics are not the
    /// initial ones (so that a swapped weight shows).
    fn layer(per_sample: &[usize], scale: bool, center: bool) -> BatchNormalization {
        let mut bn = BatchNormalization::new().scale(scale).center(center);
        bn.set_name("bn");
        bn.build(per_sample, &mut chacha(0)).unwrap();
        let c = *per_sample.last().unwrap();
        for (k, w) in bn.weights_mut().into_iter().enumerate() {
            let v: Vec<f32> = (0..c).map(|j| 0.5 + 0.25 * (j + k) as f32).collect();
            w.assign(Tensor::from_vec(v, &[c]).unwrap()).unwrap();
        }
        bn
    }

    /// Plain per-feature reference in f64: (y, batch mean, biased variance).
    fn reference(
        x: &Tensor,
        gamma: &[f32],
        beta: &[f32],
        stats: Option<(&[f32], &[f32])>,
        eps: f64,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let c = gamma.len();
        let xs = x.as_slice();
        let n = xs.len() / c;
        let (mut mean, mut var) = (vec![0.0; c], vec![0.0; c]);
        for j in 0..c {
            let col: Vec<f64> = (0..n).map(|i| f64::from(xs[i * c + j])).collect();
            (mean[j], var[j]) = match stats {
                None => {
                    let m = col.iter().sum::<f64>() / n as f64;
                    (
                        m,
                        col.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n as f64,
                    )
                }
                Some((mm, mv)) => (f64::from(mm[j]), f64::from(mv[j])),
            };
        }
        let y = xs
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let j = i % c;
                (f64::from(v) - mean[j]) / (var[j] + eps).sqrt() * f64::from(gamma[j])
                    + f64::from(beta[j])
            })
            .collect();
        (y, mean, var)
    }

    fn values(bn: &BatchNormalization, i: usize) -> Vec<f32> {
        bn.weights()[i].value().to_vec()
    }

    fn close(a: &[f32], b: &[f64], tol: f64, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (&a, &b)) in a.iter().zip(b).enumerate() {
            assert!(
                (f64::from(a) - b).abs() <= tol * (1.0 + b.abs()),
                "{what}[{i}]: {a} vs {b}"
            );
        }
    }

    #[test]
    fn training_pass_matches_the_plain_reference_and_updates_moving_stats() {
        let mut bn = layer(&[3, 5], true, true);
        let x = random(&[4, 3, 5], 1);
        let (gamma, beta, mm0, mv0) = (
            values(&bn, 0),
            values(&bn, 1),
            values(&bn, 2),
            values(&bn, 3),
        );
        let y = bn.forward(&x, Pass::TRAIN).unwrap().to_vec();
        let (expect, mean, var) = reference(&x, &gamma, &beta, None, 1e-3);
        close(&y, &expect, 1e-5, "y");
        let mm: Vec<f64> = (0..5)
            .map(|j| f64::from(mm0[j]) * 0.99 + mean[j] * 0.01)
            .collect();
        let mv: Vec<f64> = (0..5)
            .map(|j| f64::from(mv0[j]) * 0.99 + var[j] * 0.01)
            .collect();
        close(&values(&bn, 2), &mm, 1e-6, "moving_mean");
        close(&values(&bn, 3), &mv, 1e-6, "moving_variance");
        // Inference uses the (updated) moving statistics and changes nothing.
        let (mm, mv) = (values(&bn, 2), values(&bn, 3));
        let y = bn.forward(&x, Pass::INFER).unwrap().to_vec();
        let (expect, _, _) = reference(&x, &gamma, &beta, Some((&mm, &mv)), 1e-3);
        close(&y, &expect, 1e-5, "inference y");
        assert_eq!((values(&bn, 2), values(&bn, 3)), (mm, mv));
    }

    #[test]
    fn frozen_layer_runs_in_inference_mode_even_in_training() {
        let mut bn = layer(&[4], true, true);
        bn.set_trainable(false);
        let x = random(&[6, 4], 2);
        let before: Vec<Vec<f32>> = (0..4).map(|i| values(&bn, i)).collect();
        let y = bn.forward(&x, Pass::TRAIN).unwrap().to_vec();
        let (expect, _, _) = reference(
            &x,
            &before[0],
            &before[1],
            Some((&before[2], &before[3])),
            1e-3,
        );
        close(&y, &expect, 1e-5, "frozen y");
        let after: Vec<Vec<f32>> = (0..4).map(|i| values(&bn, i)).collect();
        assert_eq!(before, after);
        let mut g = random(&[6, 4], 3);
        let mut gi = Tensor::zeros(&[0]);
        bn.backward(&x, &mut g, Some(&mut gi), Pass::TRAIN).unwrap();
        assert!(bn.gradients().iter().all(|g| g.to_vec() == vec![0.0; 4]));
        // The input gradient of the affine map: dy · γ / sqrt(mv + ε).
        let dx: Vec<f64> = g
            .as_slice()
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                let j = i % 4;
                f64::from(d) * f64::from(before[0][j]) / (f64::from(before[3][j]) + 1e-3).sqrt()
            })
            .collect();
        close(gi.as_slice(), &dx, 1e-6, "frozen dx");
    }

    /// The step's forward/backward against the tape `call` and its
    /// gradients, for `loss = Σ w · y`.
    fn step_matches_tape(
        mut bn: BatchNormalization,
        x: &Tensor,
        w: &Tensor,
        training: bool,
    ) -> std::result::Result<(), String> {
        let pass = Pass {
            training,
            logits: false,
            ..Pass::default()
        };
        // The tape first: the step's forward updates the moving statistics.
        let tape = tape_reference(&bn, x, w, training).map_err(|e| e.to_string())?;
        let (y, gi) = run_step(&mut bn, x, w, pass).map_err(|e| e.to_string())?;
        let cmp = |a: &Tensor, b: &Tensor, what: &str| -> std::result::Result<(), String> {
            let scale = b.as_slice().iter().fold(1.0f32, |m, v| m.max(v.abs()));
            for (i, (p, q)) in a.as_slice().iter().zip(b.as_slice()).enumerate() {
                if (p - q).abs() > 2e-4 * scale {
                    return Err(format!("{what}[{i}]: step {p} vs tape {q}"));
                }
            }
            Ok(())
        };
        cmp(&y, &tape.y, "y")?;
        cmp(&gi, &tape.dx, "dx")?;
        for (k, grad) in bn.gradients().iter().enumerate() {
            cmp(grad, &tape.dweights[k], "weight gradient")?;
        }
        Ok(())
    }

    #[test]
    fn backward_matches_the_tape_in_both_modes_and_all_weight_sets() {
        let x = random(&[5, 2, 3], 4);
        let w = random(&[5, 2, 3], 5);
        for (scale, center) in [(true, true), (false, true), (true, false), (false, false)] {
            for training in [true, false] {
                step_matches_tape(layer(&[2, 3], scale, center), &x, &w, training).unwrap_or_else(
                    |e| panic!("scale {scale} center {center} training {training}: {e}"),
                );
            }
        }
    }

    #[test]
    fn same_bits_for_any_thread_count() {
        let x = random(&[3 * ROWS_PER_BLOCK + 7, 6], 6);
        let w = random(&[3 * ROWS_PER_BLOCK + 7, 6], 7);
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    let mut bn = layer(&[6], true, true);
                    let y = bn.forward(&x, Pass::TRAIN).unwrap().clone();
                    let (mut g, mut gi) = (w.clone(), Tensor::zeros(&[0]));
                    bn.backward(&x, &mut g, Some(&mut gi), Pass::TRAIN).unwrap();
                    let mut all = vec![y, gi];
                    all.extend(bn.gradients().iter().cloned());
                    all.extend(bn.weights().iter().map(|w| w.value().clone()));
                    all
                })
        };
        assert_eq!(run(1), run(4));
    }

    #[test]
    fn weights_are_named_and_ordered_as_keras() {
        let bn = layer(&[7, 7, 3], true, true);
        let names: Vec<&str> = bn.weights().iter().map(|w| w.name()).collect();
        assert_eq!(
            names,
            [
                "bn/gamma",
                "bn/beta",
                "bn/moving_mean",
                "bn/moving_variance"
            ]
        );
        assert_eq!(bn.non_trainable_weight_count(), 2);
        assert_eq!(bn.gradients().len(), 2);
        let mut bn = layer(&[3], false, true);
        bn.set_name("bn_2");
        let names: Vec<&str> = bn.weights().iter().map(|w| w.name()).collect();
        assert_eq!(
            names,
            ["bn_2/beta", "bn_2/moving_mean", "bn_2/moving_variance"]
        );
        assert_eq!(
            values(&bn, 0),
            vec![0.5, 0.75, 1.0],
            "values survive a rename"
        );
        let mut fresh = BatchNormalization::new();
        fresh.build(&[2], &mut chacha(0)).unwrap();
        let init: Vec<Vec<f32>> = (0..4).map(|i| values(&fresh, i)).collect();
        assert_eq!(
            init,
            [vec![1.0; 2], vec![0.0; 2], vec![0.0; 2], vec![1.0; 2]]
        );
    }

    #[test]
    fn regularizers_add_penalty_and_gradient() {
        let mut bn = layer(&[2], true, true);
        bn.gamma_regularizer = Some(Regularizer::l2(0.1));
        bn.beta_regularizer = Some(Regularizer::l1(0.5));
        // gamma [0.5, 0.75], beta [0.75, 1.0].
        let expect = 0.1 * (0.25 + 0.5625) + 0.5 * (0.75 + 1.0);
        assert!((bn.regularization_loss().unwrap() - expect).abs() < 1e-6);
        let x = random(&[4, 2], 8);
        bn.forward(&x, Pass::TRAIN).unwrap();
        let (mut g, mut plain) = (Tensor::zeros(&[4, 2]), layer(&[2], true, true));
        bn.backward(&x, &mut g, None, Pass::TRAIN).unwrap();
        plain.forward(&x, Pass::TRAIN).unwrap();
        plain.backward(&x, &mut g, None, Pass::TRAIN).unwrap();
        // A zero output gradient leaves only the regulariser's.
        assert_eq!(bn.gradients()[0].to_vec(), vec![0.1, 0.15]);
        assert_eq!(bn.gradients()[1].to_vec(), vec![0.5, 0.5]);
        assert_eq!(plain.gradients()[0].to_vec(), vec![0.0, 0.0]);
    }

    #[test]
    fn batch_renormalization_is_refused_and_its_keys_kept() {
        // Keras 3.15 writes renorm, renorm_clipping and renorm_momentum.
        let mut c = BatchNormalization::new().name("bn").config();
        assert_eq!(c["renorm"], json!(false));
        assert_eq!(c["renorm_clipping"], json!(null));
        assert_eq!(c["renorm_momentum"], json!(0.99));
        c["renorm_momentum"] = json!(0.9);
        assert_eq!(
            BatchNormalization::from_config(&c).unwrap().config(),
            c,
            "renorm_momentum read and written back"
        );
        for (key, value) in [
            ("renorm", json!(true)),
            ("renorm_clipping", json!({"rmax": 3.0})),
        ] {
            let mut bad = c.clone();
            bad[key] = value;
            let e = BatchNormalization::from_config(&bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains(key) && e.contains("BatchNormalization"), "{e}");
        }
    }

    #[test]
    fn config_round_trip_and_keras_configs() {
        let bn = BatchNormalization::new()
            .name("batch_normalization_3")
            .momentum(0.9)
            .epsilon(1e-5)
            .center(false)
            .gamma_initializer(Initializer::Constant { value: 2.0 })
            .gamma_regularizer(Regularizer::l2(0.01));
        let c = bn.config();
        assert_eq!(c["axis"], json!(-1));
        assert_eq!(c["momentum"], json!(0.9));
        assert_eq!(c["epsilon"], json!(1e-5));
        assert_eq!(c["center"], json!(false));
        assert_eq!(c["dtype"], json!("float32"));
        assert_eq!(c["gamma_initializer"]["class_name"], json!("Constant"));
        assert_eq!(
            c["moving_variance_initializer"]["class_name"],
            json!("Ones")
        );
        assert_eq!(c["gamma_regularizer"]["class_name"], json!("L2"));
        assert_eq!(c["synchronized"], json!(false));
        let back = BatchNormalization::from_config(&c).unwrap();
        assert_eq!(back.config(), c);
        assert_eq!(back.class_name(), "BatchNormalization");
        let mut back = back;
        back.build(&[3], &mut chacha(0)).unwrap();
        assert_eq!(back.weights()[0].value().to_vec(), vec![2.0; 3]);
        assert_eq!(back.weights().len(), 3);

        // Keras 3's default config, as `get_config()` writes it.
        let keras = json!({"name": "batch_normalization", "trainable": true,
            "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
                      "registered_name": null},
            "axis": -1, "momentum": 0.99, "epsilon": 0.001, "center": true, "scale": true,
            "beta_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {},
                                 "registered_name": null},
            "gamma_initializer": {"module": "keras.initializers", "class_name": "Ones", "config": {},
                                  "registered_name": null},
            "moving_mean_initializer": {"module": "keras.initializers", "class_name": "Zeros",
                                        "config": {}, "registered_name": null},
            "moving_variance_initializer": {"module": "keras.initializers", "class_name": "Ones",
                                            "config": {}, "registered_name": null},
            "beta_regularizer": null, "gamma_regularizer": null, "beta_constraint": null,
            "gamma_constraint": null, "synchronized": false});
        let l = BatchNormalization::from_config(&keras).unwrap();
        let mut expect = BatchNormalization::new()
            .name("batch_normalization")
            .config();
        expect["dtype"] = json!("float32");
        assert_eq!(l.config(), expect);
        // Keras 2's axis list naming the last axis of a rank-4 input.
        let mut k2 = keras.clone();
        k2["axis"] = json!([3]);
        let l = BatchNormalization::from_config(&k2).unwrap();
        assert_eq!(
            l.compute_output_shape(&[26, 26, 32]).unwrap(),
            vec![26, 26, 32]
        );
        let e = l.compute_output_shape(&[26, 26]).unwrap_err().to_string();
        assert!(e.contains("axis 3") && e.contains("(None, 26, 26)"), "{e}");
        for (key, value) in [
            (
                "gamma_constraint",
                json!({"class_name": "NonNeg", "config": {}}),
            ),
            ("axis", json!("last")),
            ("momentum", json!("high")),
            ("beta_initializer", json!("orthogonal")),
            ("dtype", json!("float64")),
        ] {
            let mut bad = keras.clone();
            bad[key] = value;
            let e = BatchNormalization::from_config(&bad).unwrap_err();
            assert!(matches!(e, Error::Config { .. }), "{key}: {e:?}");
            assert!(e.to_string().contains(key) || key == "dtype", "{e}");
        }
    }

    #[test]
    fn bad_axes_shapes_and_arguments_are_errors() {
        let bn = BatchNormalization::new().name("bn_x").axis(1);
        let e = bn
            .compute_output_shape(&[28, 28, 1])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bn_x") && e.contains("axis 1") && e.contains("(None, 28, 28, 1)"),
            "{e}"
        );
        assert!(
            BatchNormalization::new()
                .axis(3)
                .compute_output_shape(&[28, 28, 1])
                .is_ok()
        );
        let e = BatchNormalization::new()
            .compute_output_shape(&[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("rank >= 1"), "{e}");
        assert!(
            BatchNormalization::new()
                .compute_output_shape(&[4, 0])
                .is_err()
        );
        assert!(
            BatchNormalization::new()
                .momentum(f64::NAN)
                .compute_output_shape(&[4])
                .is_err()
        );
        assert!(
            BatchNormalization::new()
                .epsilon(-1.0)
                .build(&[4], &mut chacha(0))
                .is_err()
        );
        let mut unbuilt = BatchNormalization::new().name("bn_u");
        let e = unbuilt
            .forward(&Tensor::zeros(&[2, 3]), Pass::TRAIN)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bn_u") && e.contains("not built"), "{e}");
        let mut bn = layer(&[3], true, true);
        let e = bn
            .forward(&Tensor::zeros(&[2, 4]), Pass::TRAIN)
            .unwrap_err()
            .to_string();
        assert!(e.contains("(None, 3)") && e.contains("[2, 4]"), "{e}");
        // An empty batch changes nothing.
        let before = values(&bn, 2);
        assert_eq!(
            bn.forward(&Tensor::zeros(&[0, 3]), Pass::TRAIN)
                .unwrap()
                .shape(),
            &[0, 3]
        );
        assert_eq!(values(&bn, 2), before);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The tape form of the training pass (through the batch
        /// statistics) against central differences.
        #[test]
        fn tape_call_gradcheck(
            rows in 2usize..=5, mid in 1usize..=2, c in 1usize..=3,
            seed in 0u64..1000, training in any::<bool>(),
        ) {
            let bn = layer(&[mid, c], true, true);
            let x = random(&[rows, mid, c], seed);
            // A small step: with 2 samples a channel's variance can be small,
            // and the normalisation curves sharply around it (2^-7 misses by 0.5%).
            let check = GradCheck { h: 1.0 / 1024.0, atol: 2e-3, rtol: 2e-3 };
            let mismatch = check
                .run(&[x], |_, v| {
                    bn.call(v[0].tape(), v[0], training).map_err(|e| match e {
                        Error::Autograd(a) => a,
                        other => panic!("{other}"),
                    })
                })
                .unwrap();
            prop_assert!(mismatch.is_none(), "{mismatch:?}");
        }

        /// The step's backward against the tape on random shapes.
        #[test]
        fn step_backward_matches_tape(
            rows in 1usize..=6, mid in 1usize..=3, c in 1usize..=4,
            seed in 0u64..1000, training in any::<bool>(),
            scale in any::<bool>(), center in any::<bool>(),
        ) {
            let x = random(&[rows, mid, c], seed);
            let w = random(&[rows, mid, c], seed + 1);
            let r = step_matches_tape(layer(&[mid, c], scale, center), &x, &w, training);
            prop_assert!(r.is_ok(), "{r:?}");
        }
    }
}
