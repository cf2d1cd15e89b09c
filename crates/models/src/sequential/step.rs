//! The training step of [`Sequential`](super::Sequential), one for every
//! model: gather a batch, run each layer's [`Layer::forward`] on the
//! buffers it owns, compute the loss and its gradient, run each layer's
//! [`Layer::backward`] in reverse, and hand the trainable layers'
//! gradients to the optimiser. No tape, and on the CPU no allocation while
//! the batch size stays the same (each layer reuses its buffers, and so
//! does the step: the gathered batch, the outputs, one gradient buffer per
//! layer boundary). On a GPU the same step runs: the layers compute on the
//! batch's device with tensor ops, and so does the loss.
//!
//! The loss meets the last layer as Keras' TensorFlow backend has it meet
//! (`_get_logits` in `keras/src/backend/tensorflow/nn.py`): a softmax output
//! with a categorical cross-entropy, or a sigmoid output with the binary one,
//! is computed from the logits `Z` of that layer ([`Pass::logits`]), with or
//! without `from_logits` (with it, Keras warns that the output is not logits
//! and still takes `Z`), so the loss is `log Σ exp(z) - z_y` (no clipping)
//! and its gradient `(softmax(z) - y) / rows`
//! (`tf.nn.sparse_softmax_cross_entropy_with_logits`). The mean squared
//! error is taken on the outputs. Every other loss (hinge, MAE, a
//! cross-entropy on a ReLU output, targets of another layout) is computed on
//! the tape from the outputs alone, which gives its gradient with respect to
//! them; the layers' backward passes do the rest. The layers'
//! regularisation penalties are added to the loss (Keras' `model.losses`),
//! and their gradients by the layers.

use hebb_autograd::GradientTape;
use hebb_layers::losses::Loss;
use hebb_layers::{Activation, Layer, Pass, reuse};
use hebb_tensor::ops::softmax::softmax_row_in_place;
use hebb_tensor::ops::unary::sigmoid;
use hebb_tensor::{Device, Tensor};

use crate::{Error, Result};

/// How the loss meets the last layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Head {
    /// (Sparse) categorical cross-entropy on the logits of a softmax (or
    /// `from_logits`) output.
    SoftmaxCrossEntropy {
        /// Targets are class indices `[rows]` rather than `[rows, classes]`.
        sparse: bool,
    },
    /// Binary cross-entropy on the logits of a sigmoid (or `from_logits`) output.
    SigmoidCrossEntropy,
    /// Mean squared error on the outputs.
    MeanSquaredError,
    /// Any loss, with its gradient from the tape (on the outputs only).
    Tape,
}

/// The step for one model, loss and target layout; see the module docs.
#[derive(Debug)]
pub(super) struct Step {
    pub(super) head: Head,
    /// The last layer outputs its logits and the head applies its activation.
    pub(super) logits: bool,
    /// The last layer's activation (the outputs of logits).
    activation: Activation,
    loss: Loss,
    /// Values per sample of the targets the fused heads read.
    y_width: usize,
    /// The per-sample input and output shapes of the model.
    input_shape: Vec<usize>,
    output_shape: Vec<usize>,
    /// The loss's head on tensor ops (a GPU's; on the CPU in tests).
    pub(super) tensor_ops: bool,
    /// The first layer with weights to train: layers before it need no
    /// backward pass, and it needs no gradient of its input.
    first_trainable: Option<usize>,
    /// Each layer's input for the last forward pass, then the model's
    /// output: the batch buffer and clones of the layers' outputs, dropped
    /// before the next batch so that the layers reuse their buffers.
    inputs: Vec<Tensor>,
    /// The gathered batch, its targets, the model's outputs for the metrics.
    x: Tensor,
    y: Tensor,
    pred: Tensor,
    /// `grads_io[i]`: the loss's gradient with respect to layer `i`'s input
    /// (`grads_io[L]`: with respect to the model's output, or the logits).
    grads_io: Vec<Tensor>,
    losses: Vec<f32>,
    /// The trainable layers' gradients for the optimiser (clones, dropped after the update).
    pub(super) grads: Vec<Tensor>,
    /// Data-parallel: the index of the batch's first row in the global
    /// batch ([`Pass::first_row`]); 0 in a single process.
    pub(super) first_row: usize,
    /// Data-parallel: the fused buffer a step all-reduces and the whole
    /// batch's gradients unpacked from it, kept from step to step.
    pub(super) fused: Option<Tensor>,
    pub(super) reduced: Vec<Tensor>,
}

/// Whether targets `y` `[n, ...]` hold `y_width` values per sample.
pub(super) fn targets_fit(y: &Tensor, y_width: usize) -> bool {
    let per_sample: usize = y.shape().iter().skip(1).product();
    y.rank() >= 1 && per_sample == y_width
}

/// The error for a step used with other layers than it was made for (a bug, not bad input).
pub(super) fn lost_buffers() -> Error {
    Error::Data {
        detail: "training step: its buffers or layers changed under it".into(),
    }
}

/// Whether `layer` has weights the optimiser updates.
pub(super) fn trains(layer: &dyn Layer) -> bool {
    layer.trainable() && layer.weights().len() > layer.non_trainable_weight_count()
}

/// Whether `loss` is a `from_logits` cross-entropy meeting a softmax
/// (categorical) or sigmoid (binary) output (see `Sequential::loss_reads_logits`).
pub(super) fn reads_logits(loss: Loss, activation: Activation) -> bool {
    loss.from_logits()
        && matches!(
            (loss, activation),
            (
                Loss::CategoricalCrossentropy { .. } | Loss::SparseCategoricalCrossentropy { .. },
                Activation::Softmax
            ) | (Loss::BinaryCrossentropy { .. }, Activation::Sigmoid)
        )
}

impl Step {
    /// The step for `layers` (built, for per-sample `input_shape`, ending
    /// in `output_shape`), `loss` and targets shaped as `y`.
    pub(super) fn new(
        layers: &[Box<dyn Layer>],
        input_shape: &[usize],
        output_shape: &[usize],
        loss: Loss,
        y: &Tensor,
        tensor_ops: bool,
    ) -> Self {
        let activation = layers.last().map_or(Activation::Linear, |l| l.activation());
        let width: usize = output_shape.iter().product();
        let (mut head, mut logits) = match loss {
            Loss::SparseCategoricalCrossentropy { from_logits }
            | Loss::CategoricalCrossentropy { from_logits } => {
                let sparse = loss.is_sparse();
                match (from_logits, activation) {
                    (_, Activation::Softmax) => (Head::SoftmaxCrossEntropy { sparse }, true),
                    (true, Activation::Linear) => (Head::SoftmaxCrossEntropy { sparse }, false),
                    _ => (Head::Tape, false),
                }
            }
            Loss::BinaryCrossentropy { from_logits } => match (from_logits, activation) {
                (_, Activation::Sigmoid) => (Head::SigmoidCrossEntropy, true),
                (true, Activation::Linear) => (Head::SigmoidCrossEntropy, false),
                _ => (Head::Tape, false),
            },
            Loss::MeanSquaredError => (Head::MeanSquaredError, false),
            _ => (Head::Tape, false),
        };
        let y_width = match head {
            Head::SoftmaxCrossEntropy { sparse: true } => 1,
            _ => width,
        };
        if head != Head::Tape && (output_shape.len() != 1 || !targets_fit(y, y_width)) {
            head = Head::Tape;
        }
        if head == Head::Tape {
            logits = reads_logits(loss, activation);
        }
        let first_trainable = layers.iter().position(|l| trains(l.as_ref()));
        Self {
            head,
            logits,
            activation,
            loss,
            y_width,
            input_shape: input_shape.to_vec(),
            output_shape: output_shape.to_vec(),
            tensor_ops,
            first_trainable,
            inputs: Vec::with_capacity(layers.len() + 1),
            x: Tensor::zeros(&[0]),
            y: Tensor::zeros(&[0]),
            pred: Tensor::zeros(&[0]),
            grads_io: (0..=layers.len()).map(|_| Tensor::zeros(&[0])).collect(),
            losses: Vec::new(),
            grads: Vec::new(),
            first_row: 0,
            fused: None,
            reduced: Vec::new(),
        }
    }

    /// Class-index targets the head reads (sparse cross-entropy): the number of classes.
    pub(super) fn sparse_classes(&self) -> Option<usize> {
        match self.head {
            Head::SoftmaxCrossEntropy { sparse: true } => Some(self.output_shape.iter().product()),
            _ => None,
        }
    }

    /// Checks class-index targets on the host before they go to a GPU,
    /// whose kernels cannot report a bad label (the CPU head checks each
    /// batch itself).
    ///
    /// # Errors
    /// A label that is not a class index, naming it and its sample.
    pub(super) fn check_labels(&self, y: &Tensor, device: Device) -> Result<()> {
        if !(device.is_cuda() || self.tensor_ops) {
            return Ok(());
        }
        if let Some(classes) = self.sparse_classes() {
            for (sample, &label) in y.try_to_vec()?.iter().enumerate() {
                class_index(label, classes, sample)?;
            }
        }
        Ok(())
    }

    /// The model's outputs for the last batch `[rows, ...]` and its targets.
    pub(super) fn outputs(&self) -> (&Tensor, &Tensor) {
        (&self.pred, &self.y)
    }

    /// Sets the outputs and targets (the tape reference of the tests).
    #[cfg(test)]
    pub(super) fn set_outputs(&mut self, pred: Tensor, y: Tensor) {
        self.pred = pred;
        self.y = y;
    }

    /// Gathers rows `rows` of `x` and `y` into the step's batch buffers.
    fn gather(&mut self, x: &Tensor, y: &Tensor, rows: &[usize]) -> Result<()> {
        let r = rows.len();
        let mut x_shape = vec![r];
        x_shape.extend(&self.input_shape);
        let y_shape: Vec<usize> = match self.head {
            Head::Tape => std::iter::once(r)
                .chain(y.shape()[1..].iter().copied())
                .collect(),
            Head::SoftmaxCrossEntropy { sparse: true } => vec![r],
            _ => vec![r, self.y_width],
        };
        if x.device() == Device::Cpu {
            let width = x.len() / x.shape()[0].max(1);
            gather_rows(reuse(&mut self.x, &x_shape)?, x.as_slice(), rows, width)?;
        } else {
            self.x = x.gather_rows(rows)?.reshape(&x_shape)?;
        }
        if y.device() == Device::Cpu {
            let width = y.len() / y.shape()[0].max(1);
            gather_rows(reuse(&mut self.y, &y_shape)?, y.as_slice(), rows, width)?;
        } else {
            self.y = y.gather_rows(rows)?.reshape(&y_shape)?;
        }
        Ok(())
    }

    /// Forward pass and loss for the samples `rows` of `x` `[n, ...]` and
    /// `y` (on the model's device): fills the outputs (see
    /// [`outputs`](Self::outputs)) and returns the mean loss over the rows
    /// plus the layers' regularisation penalties.
    ///
    /// # Errors
    /// A label that is not a class index (naming it and its data row);
    /// layer and tensor errors.
    pub(super) fn forward(
        &mut self,
        layers: &mut [Box<dyn Layer>],
        x: &Tensor,
        y: &Tensor,
        rows: &[usize],
        training: bool,
    ) -> Result<f32> {
        // The clones of the last batch go first, so the buffers are reused.
        self.inputs.clear();
        self.gather(x, y, rows)?;
        self.inputs.push(self.x.clone());
        let last = layers.len().saturating_sub(1);
        for (i, layer) in layers.iter_mut().enumerate() {
            let pass = Pass {
                training,
                logits: self.logits && i == last,
                first_row: self.first_row,
            };
            let out = layer.forward(&self.inputs[i], pass)?.clone();
            self.inputs.push(out);
        }
        let z = self.inputs.last().ok_or_else(lost_buffers)?.clone();
        let loss = if self.head == Head::Tape {
            self.tape_head(&z)?
        } else if self.tensor_ops || z.device() != Device::Cpu {
            self.ops_head(&z)?
        } else {
            self.cpu_head(&z, rows)?
        };
        drop(z);
        let mut penalty = 0.0f32;
        for layer in layers.iter() {
            penalty += layer.regularization_loss()?;
        }
        Ok(loss + penalty)
    }

    /// The fused heads on host buffers.
    fn cpu_head(&mut self, z: &Tensor, rows: &[usize]) -> Result<f32> {
        let r = rows.len();
        let width: usize = self.output_shape.iter().product();
        let mut pred_shape = vec![r];
        pred_shape.extend(&self.output_shape);
        let pred = reuse(&mut self.pred, &pred_shape)?;
        pred.copy_from_slice(z.as_slice());
        if self.head == (Head::SoftmaxCrossEntropy { sparse: true }) {
            for (&label, &row) in self.y.as_slice().iter().zip(rows) {
                class_index(label, width, row)?;
            }
        }
        self.losses.resize(r, 0.0);
        let grads = self.grads_io.last_mut().ok_or_else(lost_buffers)?;
        let delta = reuse(grads, &[r, width])?;
        head_forward(
            self.head,
            self.logits,
            pred,
            self.y.as_slice(),
            &mut self.losses,
            delta,
            width,
        )?;
        // Keras' sum_over_batch_size reduction.
        let sum: f64 = self.losses.iter().map(|&l| f64::from(l)).sum();
        Ok((sum / r as f64) as f32)
    }

    /// The fused heads on tensor ops (on the outputs' device).
    fn ops_head(&mut self, h: &Tensor) -> Result<f32> {
        let r = h.shape()[0];
        let width: usize = self.output_shape.iter().product();
        let scale = 1.0 / r as f32;
        let h = h.reshape(&[r, width])?;
        let (losses, grad, pred) = match self.head {
            Head::SoftmaxCrossEntropy { .. } => {
                let (losses, g) = h.softmax_cross_entropy(&self.y)?;
                let pred = if self.logits { h.softmax()? } else { h.clone() };
                (losses, g.mul_scalar(scale), pred)
            }
            Head::SigmoidCrossEntropy => {
                let (losses, g) = h.sigmoid_cross_entropy(&self.y)?;
                let pred = if self.logits { h.sigmoid() } else { h.clone() };
                (losses, g.mul_scalar(scale), pred)
            }
            Head::MeanSquaredError | Head::Tape => {
                let e = h.sub(&self.y)?;
                let losses = e.square().mean(1, false)?;
                (losses, e.mul_scalar(2.0 * scale / width as f32), h.clone())
            }
        };
        let mut shape = vec![r];
        shape.extend(&self.output_shape);
        self.pred = pred.reshape(&shape)?;
        *self.grads_io.last_mut().ok_or_else(lost_buffers)? = grad;
        // Keras' sum_over_batch_size reduction; the one value read back.
        Ok(losses.sum_all().item()? * scale)
    }

    /// Any loss on the tape: its value and its gradient with respect to the
    /// model's outputs (or logits).
    fn tape_head(&mut self, z: &Tensor) -> Result<f32> {
        let tape = GradientTape::new();
        let out = tape.watch_tensor(z.clone());
        let loss = self
            .loss
            .call(tape.constant(self.y.clone()), out)?
            .mean_all();
        let value = loss.value().item()?;
        let grad = tape.gradient(loss, &[out])?.remove(0);
        self.pred = if self.logits {
            self.activation.call(z)?
        } else {
            z.clone()
        };
        *self.grads_io.last_mut().ok_or_else(lost_buffers)? = grad;
        Ok(value)
    }

    /// [`forward`](Self::forward) in training mode, then the backward pass;
    /// the trainable layers' gradients are then in their
    /// [`Layer::gradients`]. Returns the loss.
    ///
    /// # Errors
    /// As [`forward`](Self::forward).
    pub(super) fn train_batch(
        &mut self,
        layers: &mut [Box<dyn Layer>],
        x: &Tensor,
        y: &Tensor,
        rows: &[usize],
    ) -> Result<f32> {
        let loss = self.forward(layers, x, y, rows, true)?;
        let Some(first) = self.first_trainable else {
            return Ok(loss);
        };
        let last = layers.len().saturating_sub(1);
        for i in (first..layers.len()).rev() {
            let pass = Pass {
                training: true,
                logits: self.logits && i == last,
                first_row: self.first_row,
            };
            let (below, above) = self.grads_io.split_at_mut(i + 1);
            let grad_in = (i > first).then_some(&mut below[i]);
            layers[i].backward(&self.inputs[i], &mut above[0], grad_in, pass)?;
        }
        Ok(loss)
    }

    /// Collects the trainable layers' gradients in `trainable_variables`
    /// order into [`grads`](Self::grads) (clones, to be cleared after the
    /// update).
    ///
    /// # Errors
    /// A layer that gives another number of gradients than it has
    /// trainable weights (a layer's bug), naming it.
    pub(super) fn collect_gradients(&mut self, layers: &[Box<dyn Layer>]) -> Result<()> {
        self.grads.clear();
        for layer in layers.iter().filter(|l| l.trainable()) {
            let n = layer.weights().len() - layer.non_trainable_weight_count();
            let g = layer.gradients();
            if g.len() != n {
                return Err(Error::Layers(hebb_layers::Error::Shape {
                    layer: layer.name().to_string(),
                    detail: format!(
                        "the layer gave {} gradients for {n} trainable weights",
                        g.len()
                    ),
                }));
            }
            self.grads.extend(g.iter().cloned());
        }
        Ok(())
    }
}

/// Copies rows `rows` of `src` (rows of `width`) into `dst`, in order.
fn gather_rows(dst: &mut [f32], src: &[f32], rows: &[usize], width: usize) -> Result<()> {
    if dst.len() != rows.len() * width {
        return Err(lost_buffers());
    }
    for (d, &r) in dst.chunks_exact_mut(width.max(1)).zip(rows) {
        let s = src
            .get(r * width..(r + 1) * width)
            .ok_or_else(|| Error::Data {
                detail: format!("row {r} is beyond the data"),
            })?;
        d.copy_from_slice(s);
    }
    Ok(())
}

/// The loss per row into `losses` and its gradient (with respect to the
/// logits when `fused`, else to the outputs) into `delta`, scaled for the
/// mean over the rows. `pred` holds the last layer's output (its logits when
/// `fused`) and becomes the model's outputs.
fn head_forward(
    head: Head,
    fused: bool,
    pred: &mut [f32],
    y: &[f32],
    losses: &mut [f32],
    delta: &mut [f32],
    width: usize,
) -> Result<()> {
    let rows = losses.len();
    let delta = &mut delta[..rows * width];
    let inv_rows = 1.0 / rows as f32;
    match head {
        Head::SoftmaxCrossEntropy { sparse } => {
            let rows_iter = pred
                .chunks_exact_mut(width)
                .zip(delta.chunks_exact_mut(width))
                .zip(losses.iter_mut())
                .enumerate();
            for (i, ((z, g), loss)) in rows_iter {
                // Fused: `pred` becomes softmax(z) and `g` keeps the logits;
                // from_logits: `pred` keeps the logits and `g` gets softmax(z).
                g.copy_from_slice(z);
                let (max, sum) = softmax_row_in_place(if fused { &mut *z } else { &mut *g });
                let log_sum = sum.ln();
                let logits: &[f32] = if fused { g } else { z };
                *loss = if sparse {
                    let label = class_index(y[i], width, i)?;
                    log_sum - (logits[label] - max)
                } else {
                    let t = &y[i * width..(i + 1) * width];
                    t.iter()
                        .zip(logits)
                        .map(|(&t, &z)| t * (log_sum - (z - max)))
                        .sum()
                };
                if fused {
                    g.copy_from_slice(z);
                }
                // g = (softmax(z) - y) / rows.
                if sparse {
                    g[class_index(y[i], width, i)?] -= 1.0;
                } else {
                    let t = &y[i * width..(i + 1) * width];
                    g.iter_mut().zip(t).for_each(|(g, &t)| *g -= t);
                }
                g.iter_mut().for_each(|g| *g *= inv_rows);
            }
        }
        Head::SigmoidCrossEntropy => {
            let scale = inv_rows / width as f32;
            for (i, ((z, g), loss)) in pred
                .chunks_exact_mut(width)
                .zip(delta.chunks_exact_mut(width))
                .zip(losses.iter_mut())
                .enumerate()
            {
                let t = &y[i * width..(i + 1) * width];
                let mut sum = 0.0f32;
                for ((z, g), &t) in z.iter_mut().zip(g.iter_mut()).zip(t) {
                    // tf.nn.sigmoid_cross_entropy_with_logits.
                    sum += z.max(0.0) - *z * t + (-z.abs()).exp().ln_1p();
                    let p = sigmoid(*z);
                    *g = (p - t) * scale;
                    if fused {
                        *z = p;
                    }
                }
                *loss = sum / width as f32;
            }
        }
        Head::MeanSquaredError | Head::Tape => {
            let scale = 2.0 * inv_rows / width as f32;
            for (i, ((p, g), loss)) in pred
                .chunks_exact(width)
                .zip(delta.chunks_exact_mut(width))
                .zip(losses.iter_mut())
                .enumerate()
            {
                let t = &y[i * width..(i + 1) * width];
                let mut sum = 0.0f32;
                for ((&p, g), &t) in p.iter().zip(g.iter_mut()).zip(t) {
                    let e = p - t;
                    sum += e * e;
                    *g = e * scale;
                }
                *loss = sum / width as f32;
            }
        }
    }
    Ok(())
}

/// `label` as a class index in `0..classes`.
pub(super) fn class_index(label: f32, classes: usize, sample: usize) -> Result<usize> {
    if label >= 0.0 && label.fract() == 0.0 && (label as usize) < classes {
        Ok(label as usize)
    } else {
        Err(Error::Layers(hebb_layers::Error::InvalidArgument {
            what: "sparse_categorical_crossentropy",
            detail: format!(
                "label {label} of sample {sample} is not a class index in 0..{classes}"
            ),
        }))
    }
}

#[cfg(test)]
mod tests {
    //! The step against the tape: the same model trained both ways, where
    //! the tape (built from the layers' `call`) computes the loss from the
    //! logits as the fused head does (`from_logits` on a linear output
    //! layer); the heads against each other.

    use hebb_layers::Activation;
    use hebb_layers::losses::Loss;
    use hebb_optim::{Adam, Optimizer, Sgd};
    use hebb_tensor::Tensor;
    use hebb_tensor::random::chacha;
    use rand::Rng;

    use super::Head;
    use crate::sequential::layers::{ActivationLayer, Dense, Flatten};
    use crate::sequential::{FitOptions, Sequential};

    /// `n` samples `[n, 2, 3]` with labels `i % classes` (sparse) or one-hot.
    fn data(n: usize, classes: usize, one_hot: bool) -> (Tensor, Tensor) {
        let mut rng = chacha(7);
        let x: Vec<f32> = (0..n * 6).map(|_| rng.random_range(-1.0..1.0)).collect();
        let y: Vec<f32> = if one_hot {
            (0..n)
                .flat_map(|i| (0..classes).map(move |c| f32::from(u8::from(i % classes == c))))
                .collect()
        } else {
            (0..n).map(|i| (i % classes) as f32).collect()
        };
        let y_shape = if one_hot { vec![n, classes] } else { vec![n] };
        (
            Tensor::from_vec(x, &[n, 2, 3]).unwrap(),
            Tensor::from_vec(y, &y_shape).unwrap(),
        )
    }

    /// Flatten-Dense(5, hidden)-[Activation(tanh)]-Dense(units, out) with seed 3.
    fn model(hidden: Activation, out: Activation, units: usize, separate: bool) -> Sequential {
        let mut m = Sequential::new().with_seed(3);
        m.add(Flatten::new().input_shape(&[2, 3])).unwrap();
        m.add(Dense::new(5).activation(hidden)).unwrap();
        if separate {
            m.add(ActivationLayer::new(Activation::Tanh)).unwrap();
        }
        if separate && out != Activation::Linear {
            m.add(Dense::new(units)).unwrap();
            m.add(ActivationLayer::new(out)).unwrap();
        } else {
            m.add(Dense::new(units).activation(out)).unwrap();
        }
        m
    }

    fn options() -> FitOptions {
        FitOptions {
            batch_size: 8,
            epochs: 3,
            verbose: 0,
            validation_split: 0.25,
            ..Default::default()
        }
    }

    fn assert_close(what: &str, a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            let scale = x.abs().max(y.abs()).max(1.0);
            assert!(
                (x - y).abs() <= tol * scale,
                "{what}[{i}]: fused {x} vs tape {y}"
            );
        }
    }

    /// Trains `fused` on the fused step and `tape` on the tape and compares
    /// History and weights.
    fn compare(mut fused: Sequential, mut tape: Sequential, x: &Tensor, y: &Tensor) {
        tape.force_tape = true;
        assert_ne!(fused.make_step(y).unwrap().head, Head::Tape, "a fused head");
        let hf = fused.fit(x, y, options()).unwrap();
        let ht = tape.fit(x, y, options()).unwrap();
        for key in ["loss", "val_loss"] {
            assert_close(key, hf.get(key).unwrap(), ht.get(key).unwrap(), 2e-6);
        }
        for (a, b) in fused.get_weights().iter().zip(tape.get_weights()) {
            assert_close("weights", a.as_slice(), b.as_slice(), 2e-6);
        }
        let ef = fused.evaluate(x, y, 8, 0).unwrap();
        let et = tape.evaluate(x, y, 8, 0).unwrap();
        assert_close("evaluate", &ef, &et, 2e-6);
    }

    /// The model with output `out` compiled with `loss` on the fused step,
    /// and the same model with a linear output compiled with `tape_loss`
    /// (or `loss`) on the tape, both with `optimizer()`.
    fn pair(
        (hidden, out, units, separate): (Activation, Activation, usize, bool),
        optimizer: fn() -> Box<dyn Optimizer>,
        loss: Loss,
        tape_loss: Option<Loss>,
        metrics: &[&str],
    ) -> (Sequential, Sequential) {
        let mut fused = model(hidden, out, units, separate);
        fused.compile(optimizer(), loss, metrics.to_vec()).unwrap();
        let tape_out = if tape_loss.is_some() {
            Activation::Linear
        } else {
            out
        };
        let mut tape = model(hidden, tape_out, units, separate);
        tape.compile(optimizer(), tape_loss.unwrap_or(loss), metrics.to_vec())
            .unwrap();
        (fused, tape)
    }

    #[test]
    fn softmax_sparse_cross_entropy_matches_the_tape_from_logits() {
        let (x, y) = data(40, 3, false);
        for (hidden, separate) in [
            (Activation::Relu, false),
            (Activation::Sigmoid, false),
            (Activation::LeakyRelu { a: 4.0 }, true),
        ] {
            let (fused, tape) = pair(
                (hidden, Activation::Softmax, 3, separate),
                || Box::new(Sgd::new(0.2)),
                Loss::SparseCategoricalCrossentropy { from_logits: false },
                Some(Loss::SparseCategoricalCrossentropy { from_logits: true }),
                &["sparse_categorical_accuracy"],
            );
            compare(fused, tape, &x, &y);
        }
    }

    #[test]
    fn softmax_categorical_cross_entropy_matches_the_tape_from_logits() {
        let (x, y) = data(40, 4, true);
        let (fused, tape) = pair(
            (Activation::Tanh, Activation::Softmax, 4, false),
            || Box::new(Adam::new(0.05)),
            Loss::CategoricalCrossentropy { from_logits: false },
            Some(Loss::CategoricalCrossentropy { from_logits: true }),
            &["accuracy"],
        );
        compare(fused, tape, &x, &y);
    }

    #[test]
    fn sigmoid_binary_cross_entropy_matches_the_tape_from_logits() {
        let (x, y) = data(40, 2, true);
        // (No binary_accuracy: on the tape's logits it would threshold at 0.5.)
        let (fused, tape) = pair(
            (Activation::Relu, Activation::Sigmoid, 2, true),
            || Box::new(Sgd::new(0.5)),
            Loss::BinaryCrossentropy { from_logits: false },
            Some(Loss::BinaryCrossentropy { from_logits: true }),
            &[],
        );
        compare(fused, tape, &x, &y);
    }

    #[test]
    fn mean_squared_error_matches_the_tape_on_the_same_model() {
        let (x, y) = data(40, 2, true);
        for out in [Activation::Linear, Activation::Sigmoid, Activation::Softmax] {
            let (fused, tape) = pair(
                (Activation::Tanh, out, 2, false),
                || Box::new(Sgd::new(0.3)),
                Loss::MeanSquaredError,
                None,
                &["mae"],
            );
            compare(fused, tape, &x, &y);
        }
    }

    /// Issue 11: `from_logits=true` on a softmax or sigmoid output applied
    /// the activation twice (0.80212092 and 0.32623914). Keras warns and
    /// reads the layer's logits: 0.41702995 and 0.04858735. Every path
    /// (the fused step, the tensor-op step of the GPUs, the tape) gives
    /// Keras' figure for fit's loss, the validation loss and evaluate;
    /// with the activation as a layer of its own too, and compiled before
    /// the last layer is added.
    #[test]
    fn from_logits_on_a_softmax_or_sigmoid_output_reads_the_logits() {
        use crate::warnings;

        struct Case {
            loss: Loss,
            activation: Activation,
            x: Tensor,
            y: Tensor,
            kernel: Tensor,
            want: f32,
            message: &'static str,
        }
        let eye = Tensor::from_vec(vec![1., 0., 0., 0., 1., 0., 0., 0., 1.], &[3, 3]).unwrap();
        let t = |v: Vec<f32>, s: &[usize]| Tensor::from_vec(v, s).unwrap();
        let cases = [
            Case {
                loss: Loss::SparseCategoricalCrossentropy { from_logits: true },
                activation: Activation::Softmax,
                x: t(vec![2., 1., 0.1], &[1, 3]),
                y: t(vec![0.], &[1]),
                kernel: eye.clone(),
                want: 0.417_029_95,
                message: "`sparse_categorical_crossentropy` received `from_logits=True`, but the \
                          `output` argument was produced by a Softmax activation and thus does \
                          not represent logits. Was this intended?",
            },
            Case {
                loss: Loss::CategoricalCrossentropy { from_logits: true },
                activation: Activation::Softmax,
                x: t(vec![2., 1., 0.1], &[1, 3]),
                y: t(vec![1., 0., 0.], &[1, 3]),
                kernel: eye,
                want: 0.417_029_95,
                message: "`categorical_crossentropy` received `from_logits=True`, but the \
                          `output` argument was produced by a Softmax activation",
            },
            Case {
                loss: Loss::BinaryCrossentropy { from_logits: true },
                activation: Activation::Sigmoid,
                x: t(vec![3.], &[1, 1]),
                y: t(vec![1.], &[1, 1]),
                kernel: t(vec![1.], &[1, 1]),
                want: 0.048_587_35,
                message: "`binary_crossentropy` received `from_logits=True`, but the `output` \
                          argument was produced by a Sigmoid activation",
            },
        ];
        for case in cases {
            let units = case.kernel.shape()[1];
            let inputs = case.x.shape()[1];
            for (path, separate, compile_first) in [
                ("fused", false, false),
                ("tensor-op", false, true),
                ("tape", false, false),
                ("fused", true, true),
                ("tensor-op", true, false),
                ("tape", true, true),
            ] {
                let what = format!("{:?} {path} separate {separate}", case.loss);
                let mut m = Sequential::new();
                let sgd: Box<dyn Optimizer> = Box::new(Sgd::new(0.0));
                if compile_first {
                    m.compile(sgd, case.loss, vec!["accuracy"]).unwrap();
                }
                if separate {
                    m.add(Dense::new(units).input_shape(&[inputs])).unwrap();
                    m.add(ActivationLayer::new(case.activation)).unwrap();
                } else {
                    m.add(
                        Dense::new(units)
                            .activation(case.activation)
                            .input_shape(&[inputs]),
                    )
                    .unwrap();
                }
                if !compile_first {
                    let sgd: Box<dyn Optimizer> = Box::new(Sgd::new(0.0));
                    m.compile(sgd, case.loss, vec!["accuracy"]).unwrap();
                }
                m.set_weights(&[case.kernel.clone(), Tensor::zeros(&[units])])
                    .unwrap();
                m.force_tape_head = path == "tape";
                m.force_device_step = path == "tensor-op";
                assert_eq!(
                    m.make_step(&case.y).unwrap().head == Head::Tape,
                    path == "tape",
                    "{what}"
                );
                let close = |v: f32, key: &str| {
                    assert!(
                        ((v - case.want) / case.want).abs() < 1e-6,
                        "{what} {key}: {v} vs Keras {}",
                        case.want
                    );
                };
                let h = m
                    .fit(
                        &case.x,
                        &case.y,
                        FitOptions {
                            verbose: 0,
                            validation_data: Some((case.x.clone(), case.y.clone())),
                            ..Default::default()
                        },
                    )
                    .unwrap();
                close(h.get("loss").unwrap()[0], "loss");
                close(h.get("val_loss").unwrap()[0], "val_loss");
                let e = m.evaluate(&case.x, &case.y, 32, 0).unwrap();
                close(e[0], "evaluate");
                // The metrics see the outputs (probabilities), and predict returns them.
                assert_eq!(e[1], 1.0, "{what} accuracy");
                let p = m.predict(&case.x, 32).unwrap().to_vec();
                assert!(p.iter().all(|v| (0.0..=1.0).contains(v)), "{what}: {p:?}");
                // Keras' warning, naming the layer whose logits are read,
                // given once however many fits and evaluations meet it.
                let layer = if separate { "activation" } else { "dense" };
                let said = warnings::emitted();
                let ours = said
                    .iter()
                    .filter(|w| w.starts_with(case.message))
                    .filter(|w| w.contains(&format!("the logits of layer {layer},")))
                    .count();
                assert_eq!(ours, 1, "{what}: {said:?}");
            }
        }
    }

    /// A linear output with `from_logits`, and a softmax output without it,
    /// give no warning and the figures they gave before.
    #[test]
    fn logits_and_probabilities_as_meant_give_no_warning() {
        let x = Tensor::from_vec(vec![2., 1., 0.1], &[1, 3]).unwrap();
        let y = Tensor::from_vec(vec![0.], &[1]).unwrap();
        let eye = Tensor::from_vec(vec![1., 0., 0., 0., 1., 0., 0., 0., 1.], &[3, 3]).unwrap();
        for (activation, from_logits) in [(Activation::Linear, true), (Activation::Softmax, false)]
        {
            let mut m = Sequential::new().with_name("no_warning_model");
            m.add(Dense::new(3).activation(activation).input_shape(&[3]))
                .unwrap();
            m.compile(
                "sgd",
                Loss::SparseCategoricalCrossentropy { from_logits },
                Vec::<&str>::new(),
            )
            .unwrap();
            m.set_weights(&[eye.clone(), Tensor::zeros(&[3])]).unwrap();
            for tape in [false, true] {
                m.force_tape_head = tape;
                let e = m.evaluate(&x, &y, 1, 0).unwrap();
                assert!((e[0] - 0.417_029_95).abs() < 1e-6, "{e:?}");
                assert!(!m.loss_reads_logits(m.compiled().unwrap().loss));
            }
        }
    }

    #[test]
    fn other_losses_and_layouts_use_the_tape() {
        let (x, y) = data(8, 2, true);
        let mut m = model(Activation::Relu, Activation::Softmax, 2, false);
        m.compile("sgd", "mae", Vec::<&str>::new()).unwrap();
        let head = |m: &Sequential, y: &Tensor| m.make_step(y).unwrap().head;
        assert_eq!(head(&m, &y), Head::Tape, "mae is not fused");
        m.compile("sgd", "categorical_crossentropy", Vec::<&str>::new())
            .unwrap();
        assert_ne!(head(&m, &y), Head::Tape);
        let sparse = Tensor::zeros(&[8]);
        assert_eq!(
            head(&m, &sparse),
            Head::Tape,
            "[n] targets for a dense loss"
        );
        let mut linear = model(Activation::Relu, Activation::Relu, 2, false);
        linear
            .compile("sgd", "categorical_crossentropy", Vec::<&str>::new())
            .unwrap();
        assert_eq!(
            head(&linear, &y),
            Head::Tape,
            "a relu output keeps the tape's clipping"
        );
        m.fit(
            &x,
            &y,
            FitOptions {
                verbose: 0,
                ..Default::default()
            },
        )
        .unwrap();
    }

    #[test]
    fn a_bad_label_is_an_error_naming_it() {
        let (x, _) = data(8, 3, false);
        let y = Tensor::from_vec(vec![0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 0.0], &[8]).unwrap();
        let mut m = model(Activation::Relu, Activation::Softmax, 3, false);
        m.compile("sgd", "sparse_categorical_crossentropy", Vec::<&str>::new())
            .unwrap();
        let err = m
            .fit(
                &x,
                &y,
                FitOptions {
                    verbose: 0,
                    shuffle: false,
                    ..Default::default()
                },
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("label 3 of sample 3"), "{err}");
    }

    /// Every buffer of the step and of the layers, and the weights, keep
    /// their addresses from one step to the next: the steady state
    /// allocates no tensor data.
    #[test]
    fn steps_reuse_every_buffer() {
        let (x, y) = data(16, 3, false);
        let mut m = model(Activation::Relu, Activation::Softmax, 3, true);
        m.compile("adam", "sparse_categorical_crossentropy", vec!["accuracy"])
            .unwrap();
        let mut step = m.make_step(&y).unwrap();
        let mut compiled = m.compiled.take().unwrap();
        let addresses = |step: &super::Step, m: &Sequential| {
            let ptr = |t: &Tensor| t.as_slice().as_ptr() as usize;
            let mut a: Vec<usize> = m
                .weights()
                .iter()
                .map(|v| ptr(v.value()))
                .chain(m.layers.iter().flat_map(|l| l.gradients().iter().map(ptr)))
                .chain(step.grads_io.iter().map(ptr))
                .chain([ptr(&step.x), ptr(&step.y), ptr(&step.pred)])
                .collect();
            a.sort_unstable();
            a
        };
        let mut seen = Vec::new();
        for s in 0..4 {
            let rows: Vec<usize> = (s * 4..s * 4 + 8).map(|r| r % 16).collect();
            step.train_batch(&mut m.layers, &x, &y, &rows).unwrap();
            step.collect_gradients(&m.layers).unwrap();
            let mut vars = m.trainable_variables_mut();
            compiled
                .optimizer
                .apply_gradients(&mut vars, &step.grads)
                .unwrap();
            step.grads.clear();
            let (pred, yb) = step.outputs();
            for metric in &mut compiled.metrics {
                metric.update_state(yb, pred).unwrap();
            }
            seen.push(addresses(&step, &m));
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
    }

    /// The loss's head on tensor ops (the GPUs') gives the CPU head's loss,
    /// gradients and outputs, for every fused head.
    #[test]
    fn tensor_op_head_matches_the_cpu_head() {
        let mut rng = chacha(11);
        let (n, classes) = (13, 4);
        let x: Vec<f32> = (0..n * 6).map(|_| rng.random_range(-1.0..1.0)).collect();
        let x = Tensor::from_vec(x, &[n, 2, 3]).unwrap();
        let sparse =
            Tensor::from_vec((0..n).map(|i| (i % classes) as f32).collect(), &[n]).unwrap();
        let dense_y =
            Tensor::one_hot(&(0..n).map(|i| i % classes).collect::<Vec<_>>(), classes).unwrap();
        let reg_y: Vec<f32> = (0..n * classes)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let reg_y = Tensor::from_vec(reg_y, &[n, classes]).unwrap();
        let cases = [
            (
                Activation::Softmax,
                Loss::SparseCategoricalCrossentropy { from_logits: false },
                &sparse,
            ),
            (
                Activation::Softmax,
                Loss::CategoricalCrossentropy { from_logits: false },
                &dense_y,
            ),
            (
                Activation::Linear,
                Loss::SparseCategoricalCrossentropy { from_logits: true },
                &sparse,
            ),
            (
                Activation::Sigmoid,
                Loss::BinaryCrossentropy { from_logits: false },
                &dense_y,
            ),
            (Activation::Tanh, Loss::MeanSquaredError, &reg_y),
        ];
        for (out, loss, y) in cases {
            let run = |tensor_ops: bool| {
                let mut m = Sequential::new().with_seed(5);
                m.add(Flatten::new().input_shape(&[2, 3])).unwrap();
                m.add(Dense::new(7).activation(Activation::Relu)).unwrap();
                m.add(Dense::new(classes).activation(out)).unwrap();
                m.compile("sgd", loss, Vec::<&str>::new()).unwrap();
                m.force_device_step = tensor_ops;
                let mut step = m.make_step(y).unwrap();
                assert_ne!(step.head, Head::Tape);
                let rows = [3, 0, 12, 5, 5, 9, 1];
                let l = step.train_batch(&mut m.layers, &x, y, &rows).unwrap();
                step.collect_gradients(&m.layers).unwrap();
                let (p, t) = step.outputs();
                (l, step.grads.clone(), p.to_vec(), t.to_vec())
            };
            let (a, b) = (run(false), run(true));
            let what = format!("{out:?}/{loss:?}");
            assert_close(&format!("{what} loss"), &[a.0], &[b.0], 1e-6);
            for (g, h) in a.1.iter().zip(&b.1) {
                assert_eq!(g.shape(), h.shape(), "{what}");
                assert_close(&what, g.as_slice(), h.as_slice(), 1e-5);
            }
            assert_close(&format!("{what} outputs"), &a.2, &b.2, 1e-6);
            assert_eq!(a.3, b.3, "{what} targets");
        }
    }

    /// A whole fit (shuffling, a short last batch, validation, Adam) with
    /// the tensor-op head gives the CPU head's history and weights.
    #[test]
    fn fit_with_the_tensor_op_head_matches() {
        let mut rng = chacha(3);
        let n = 50;
        let x: Vec<f32> = (0..n * 6).map(|_| rng.random_range(-1.0..1.0)).collect();
        let x = Tensor::from_vec(x, &[n, 2, 3]).unwrap();
        let y = Tensor::from_vec((0..n).map(|i| (i % 3) as f32).collect(), &[n]).unwrap();
        let run = |tensor_step: bool| {
            let mut m = Sequential::new().with_seed(9);
            m.add(Flatten::new().input_shape(&[2, 3])).unwrap();
            m.add(Dense::new(8).activation(Activation::Relu)).unwrap();
            m.add(Dense::new(3).activation(Activation::Softmax))
                .unwrap();
            let adam: Box<dyn Optimizer> = Box::new(Adam::new(0.01));
            m.compile(adam, "sparse_categorical_crossentropy", vec!["accuracy"])
                .unwrap();
            m.force_device_step = tensor_step;
            let options = FitOptions {
                batch_size: 16,
                epochs: 3,
                verbose: 0,
                validation_split: 0.2,
                ..Default::default()
            };
            let h = m.fit(&x, &y, options).unwrap();
            let eval = m.evaluate(&x, &y, 7, 0).unwrap();
            (h, m.get_weights(), eval)
        };
        let (h1, w1, e1) = run(false);
        let (h2, w2, e2) = run(true);
        for key in ["loss", "accuracy", "val_loss", "val_accuracy"] {
            assert_close(key, h1.get(key).unwrap(), h2.get(key).unwrap(), 1e-5);
        }
        for (a, b) in w1.iter().zip(&w2) {
            assert_close("weights", a.as_slice(), b.as_slice(), 1e-5);
        }
        assert_close("evaluate", &e1, &e2, 1e-5);
        // A bad label is refused naming its sample before any step.
        let bad = Tensor::from_vec(
            (0..n).map(|i| if i == 37 { 3.0 } else { 0.0 }).collect(),
            &[n],
        )
        .unwrap();
        for tensor_step in [true, false] {
            let mut m = Sequential::new().with_seed(9);
            m.add(
                Dense::new(3)
                    .activation(Activation::Softmax)
                    .input_shape(&[6]),
            )
            .unwrap();
            let adam: Box<dyn Optimizer> = Box::new(Adam::new(0.01));
            m.compile(adam, "sparse_categorical_crossentropy", Vec::<&str>::new())
                .unwrap();
            m.force_device_step = tensor_step;
            let err = m
                .fit(
                    &x.reshape(&[n, 6]).unwrap(),
                    &bad,
                    FitOptions {
                        verbose: 0,
                        batch_size: 8,
                        ..Default::default()
                    },
                )
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("label 3 of sample 37 is the first without an output"),
                "{err}"
            );
        }
    }

    /// Other losses take the tape head (the loss's gradient from the tape,
    /// the layers' backward passes): it trains as the whole-model tape does.
    #[test]
    fn the_tape_head_matches_the_tape() {
        let (x, y) = data(40, 2, true);
        for loss in ["mae", "hinge", "categorical_crossentropy"] {
            let mut a = model(Activation::Tanh, Activation::Relu, 2, false);
            let mut b = model(Activation::Tanh, Activation::Relu, 2, false);
            a.compile("sgd", loss, Vec::<&str>::new()).unwrap();
            b.compile("sgd", loss, Vec::<&str>::new()).unwrap();
            assert_eq!(a.make_step(&y).unwrap().head, Head::Tape, "{loss}");
            b.force_tape = true;
            let ha = a.fit(&x, &y, options()).unwrap();
            let hb = b.fit(&x, &y, options()).unwrap();
            assert_close(loss, ha.get("loss").unwrap(), hb.get("loss").unwrap(), 2e-6);
            for (p, q) in a.get_weights().iter().zip(b.get_weights()) {
                assert_close(loss, p.as_slice(), q.as_slice(), 2e-6);
            }
        }
    }

    /// Kernel regularisers: the penalty in the loss and its gradient in
    /// the step give the tape's training (loss history and weights).
    #[test]
    fn kernel_regularizers_match_the_tape() {
        use hebb_layers::Regularizer;
        let (x, y) = data(40, 3, true);
        let make = || {
            let mut m = Sequential::new().with_seed(8);
            m.add(Flatten::new().input_shape(&[2, 3])).unwrap();
            m.add(
                Dense::new(5)
                    .activation(Activation::Tanh)
                    .kernel_regularizer(Regularizer::l1_l2(0.01, 0.02)),
            )
            .unwrap();
            m.add(
                Dense::new(3)
                    .activation(Activation::Sigmoid)
                    .use_bias(false)
                    .kernel_regularizer(Regularizer::l2(0.05)),
            )
            .unwrap();
            m.compile("sgd", "mse", Vec::<&str>::new()).unwrap();
            m
        };
        let (mut a, mut b) = (make(), make());
        b.force_tape = true;
        let ha = a.fit(&x, &y, options()).unwrap();
        let hb = b.fit(&x, &y, options()).unwrap();
        for key in ["loss", "val_loss"] {
            assert_close(key, ha.get(key).unwrap(), hb.get(key).unwrap(), 2e-6);
        }
        for (p, q) in a.get_weights().iter().zip(b.get_weights()) {
            assert_close("weights", p.as_slice(), q.as_slice(), 2e-6);
        }
    }
}
