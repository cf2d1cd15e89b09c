//! The fused training step of [`Sequential`](super::Sequential) for stacks of
//! `Flatten`, `Dense` and activation layers: forward, loss, backward and the
//! optimiser update on buffers that are allocated once per batch size and
//! then reused, with no tape.
//!
//! The layers are the same maths as on the tape. For each `Dense` stage with
//! input `X` `[rows, in]`, kernel `W` `[in, units]` and bias `b`:
//!
//! ```text
//! forward   Z = X·W + b,  Y = f(Z)
//! backward  G ← G ⊙ f'(·) (from Y),  dW = Xᵀ·G,  db = Σ_rows G,  G ← G·Wᵀ
//! ```
//!
//! The loss meets the last layer as Keras' TensorFlow backend has it meet
//! (`_get_logits` in `keras/src/backend/tensorflow/nn.py`): a softmax output
//! with a categorical cross-entropy, or a sigmoid output with the binary one,
//! is computed from the logits `Z` of that layer, with or without
//! `from_logits` (with it, Keras warns that the output is not logits and
//! still takes `Z`; `fit` and `evaluate` give the same warning), so the loss is
//! `log Σ exp(z) - z_y` (no clipping) and its gradient is `(softmax(z) - y) / rows`
//! (`tf.nn.sparse_softmax_cross_entropy_with_logits`). The mean squared error
//! is taken on the outputs and back-propagated through the last activation.
//! Other losses go through the tape.

use hebb_layers::Activation;
use hebb_layers::losses::Loss;
use hebb_tensor::Tensor;
use hebb_tensor::ops::matmul::{MatRef, gemm};
use hebb_tensor::ops::softmax::softmax_row_in_place;
use hebb_tensor::ops::unary::sigmoid;

use super::{Node, Op};
use crate::{Error, Result};

/// How the loss meets the last stage.
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
}

/// One layer of the plan: a `Dense` (by node index) or an activation layer.
#[derive(Debug, Clone)]
pub(super) struct Stage {
    pub(super) dense: Option<usize>,
    pub(super) activation: Activation,
    pub(super) in_width: usize,
    pub(super) out_width: usize,
}

/// Buffers for one batch size, reused from step to step.
#[derive(Debug)]
struct Buffers {
    x: Vec<f32>,
    y: Tensor,
    /// Each stage's output `[rows, out_width]`; the last stage's holds its
    /// logits when the head is fused with its activation.
    outs: Vec<Vec<f32>>,
    /// The model's outputs `[rows, ...]` (probabilities), for the metrics.
    pred: Tensor,
    delta: Vec<f32>,
    next: Vec<f32>,
    losses: Vec<f32>,
}

/// A fused step for one model and loss; see the module docs.
#[derive(Debug)]
pub(super) struct FusedStep {
    pub(super) stages: Vec<Stage>,
    pub(super) head: Head,
    /// The head computes the last stage's activation itself (from logits).
    pub(super) fused: bool,
    pub(super) in_width: usize,
    pub(super) y_width: usize,
    pub(super) output_shape: Vec<usize>,
    /// Gradients in `trainable_variables` order: `[dW, db]` per `Dense`.
    grads: Vec<Tensor>,
    /// The bias gradients' column sums over the batch, in `f64` (rounded once
    /// into `db`, as the reductions of hebb-tensor do), as wide as the widest `Dense`.
    bias_sums: Vec<f64>,
    /// Buffers for the full batch and for a short last batch.
    buffers: Vec<(usize, Buffers)>,
}

impl FusedStep {
    /// The plan for `nodes` (built) and `loss`, or `None` when some layer or
    /// the loss needs the tape.
    pub(super) fn plan(nodes: &[Node], input_shape: &[usize], loss: Loss) -> Option<Self> {
        let mut width: usize = input_shape.iter().product();
        let in_width = width;
        let mut stages = Vec::new();
        let mut grads = Vec::new();
        let mut widest_dense = 0;
        for (i, node) in nodes.iter().enumerate() {
            let out_width: usize = node.output_shape.iter().product();
            match &node.op {
                Op::Flatten => {}
                Op::Dense(d) => {
                    if node.output_shape.len() != 1 || d.input_dim() != width {
                        return None;
                    }
                    grads.push(Tensor::zeros(d.kernel().shape()));
                    grads.push(Tensor::zeros(d.bias().shape()));
                    widest_dense = widest_dense.max(out_width);
                    stages.push(Stage {
                        dense: Some(i),
                        activation: d.activation(),
                        in_width: width,
                        out_width,
                    });
                }
                Op::Activation(a) => stages.push(Stage {
                    dense: None,
                    activation: *a,
                    in_width: width,
                    out_width,
                }),
            }
            width = out_width;
        }
        let last = stages.last()?.activation;
        let (head, fused) = match loss {
            Loss::SparseCategoricalCrossentropy { from_logits }
            | Loss::CategoricalCrossentropy { from_logits } => {
                let sparse = loss.is_sparse();
                // A softmax output meets the loss through its logits, with
                // `from_logits` too (Keras warns and does the same; the
                // softmax is not applied twice).
                match (from_logits, last) {
                    (_, Activation::Softmax) => (Head::SoftmaxCrossEntropy { sparse }, true),
                    (true, Activation::Linear) => (Head::SoftmaxCrossEntropy { sparse }, false),
                    _ => return None,
                }
            }
            Loss::BinaryCrossentropy { from_logits } => match (from_logits, last) {
                (_, Activation::Sigmoid) => (Head::SigmoidCrossEntropy, true),
                (true, Activation::Linear) => (Head::SigmoidCrossEntropy, false),
                _ => return None,
            },
            Loss::MeanSquaredError => (Head::MeanSquaredError, false),
            _ => return None,
        };
        let y_width = match head {
            Head::SoftmaxCrossEntropy { sparse: true } => 1,
            _ => width,
        };
        Some(Self {
            stages,
            head,
            fused,
            in_width,
            y_width,
            output_shape: nodes.last()?.output_shape.clone(),
            grads,
            bias_sums: vec![0.0; widest_dense],
            buffers: Vec::new(),
        })
    }

    /// Whether targets `y` `[n, ...]` have the layout this step reads; other
    /// layouts (Keras' rank adjustments) go through the tape.
    pub(super) fn accepts_targets(&self, y: &Tensor) -> bool {
        targets_fit(y, self.y_width)
    }

    /// The gradients of the last [`train_batch`](Self::train_batch), in
    /// `trainable_variables` order.
    pub(super) fn gradients(&self) -> &[Tensor] {
        &self.grads
    }

    /// The model's outputs for the last batch `[rows, ...]` and its targets.
    pub(super) fn outputs(&self, rows: usize) -> Option<(&Tensor, &Tensor)> {
        self.buffers
            .iter()
            .find(|(r, _)| *r == rows)
            .map(|(_, b)| (&b.pred, &b.y))
    }

    fn buffers(&mut self, rows: usize) -> Result<&mut Buffers> {
        if let Some(i) = self.buffers.iter().position(|(r, _)| *r == rows) {
            return Ok(&mut self.buffers[i].1);
        }
        let widest = self
            .stages
            .iter()
            .map(|s| s.out_width.max(s.in_width))
            .max()
            .unwrap_or(0);
        let mut y_shape = vec![rows];
        if self.y_width > 1 || self.head != (Head::SoftmaxCrossEntropy { sparse: true }) {
            y_shape.push(self.y_width);
        }
        let mut pred_shape = vec![rows];
        pred_shape.extend(&self.output_shape);
        let b = Buffers {
            x: vec![0.0; rows * self.in_width],
            y: Tensor::zeros(&y_shape),
            outs: self
                .stages
                .iter()
                .map(|s| vec![0.0; rows * s.out_width])
                .collect(),
            pred: Tensor::zeros(&pred_shape),
            delta: vec![0.0; rows * widest],
            next: vec![0.0; rows * widest],
            losses: vec![0.0; rows],
        };
        // At most two sizes in a fit: full batches and a short last one.
        if self.buffers.len() >= 2 {
            self.buffers.remove(0);
        }
        self.buffers.push((rows, b));
        let last = self.buffers.len() - 1;
        Ok(&mut self.buffers[last].1)
    }

    /// Forward pass and loss for the samples `rows` of `x` `[n, ...]` and
    /// `y`: fills the outputs (see [`outputs`](Self::outputs)) and returns the
    /// mean loss over the rows.
    ///
    /// # Errors
    /// A label that is not a class index, naming it and its sample.
    pub(super) fn forward(
        &mut self,
        nodes: &[Node],
        x: &Tensor,
        y: &Tensor,
        rows: &[usize],
    ) -> Result<f32> {
        let (in_width, y_width) = (self.in_width, self.y_width);
        let (head, fused) = (self.head, self.fused);
        self.buffers(rows.len())?;
        let stages = std::mem::take(&mut self.stages);
        let result = (|| {
            let b = self.buffers(rows.len())?;
            gather(&mut b.x, x.as_slice(), rows, in_width);
            gather(b.y.as_mut_slice(), y.as_slice(), rows, y_width);
            for (s, stage) in stages.iter().enumerate() {
                let (before, rest) = b.outs.split_at_mut(s);
                let input = before.last().map_or(&b.x[..], |v| &v[..]);
                let out = &mut rest[0];
                match stage.dense {
                    Some(node) => {
                        dense_forward(dense(nodes, node)?, input, out, rows.len())?;
                    }
                    None => out.copy_from_slice(input),
                }
                let is_last = s + 1 == stages.len();
                if !(is_last && fused) {
                    stage.activation.apply_in_place(out, stage.out_width)?;
                }
            }
            let last = stages.last().map_or(in_width, |s| s.out_width);
            let z = b.outs.last().map_or(&b.x[..], |v| &v[..]);
            let pred = b.pred.as_mut_slice();
            pred.copy_from_slice(z);
            // Labels are checked here, where the batch's data rows are known.
            if head == (Head::SoftmaxCrossEntropy { sparse: true }) {
                for (&label, &row) in b.y.as_slice().iter().zip(rows) {
                    class_index(label, last, row)?;
                }
            }
            head_forward(
                head,
                fused,
                pred,
                b.y.as_slice(),
                &mut b.losses,
                &mut b.delta,
                last,
            )?;
            // Keras' sum_over_batch_size reduction.
            let sum: f64 = b.losses.iter().map(|&l| f64::from(l)).sum();
            Ok((sum / rows.len() as f64) as f32)
        })();
        self.stages = stages;
        result
    }

    /// [`forward`](Self::forward), then the backward pass into
    /// [`gradients`](Self::gradients). Returns the mean loss.
    ///
    /// # Errors
    /// As [`forward`](Self::forward).
    pub(super) fn train_batch(
        &mut self,
        nodes: &[Node],
        x: &Tensor,
        y: &Tensor,
        rows: &[usize],
    ) -> Result<f32> {
        let loss = self.forward(nodes, x, y, rows)?;
        let n = rows.len();
        let fused = self.fused;
        let first_dense = self.stages.iter().position(|s| s.dense.is_some());
        let i = self
            .buffers
            .iter()
            .position(|(r, _)| *r == n)
            .ok_or_else(lost_buffers)?;
        let b = &mut self.buffers[i].1;
        let mut grad_index = self.grads.len();
        for (s, stage) in self.stages.iter().enumerate().rev() {
            if first_dense.is_none_or(|f| s < f) {
                break;
            }
            let width = stage.out_width;
            let delta = &mut b.delta[..n * width];
            if !(s + 1 == self.stages.len() && fused) {
                stage
                    .activation
                    .backprop_in_place(&b.outs[s], delta, width)?;
            }
            let Some(node) = stage.dense else {
                continue;
            };
            let d = dense(nodes, node)?;
            let input = if s == 0 { &b.x[..] } else { &b.outs[s - 1][..] };
            grad_index -= 2;
            let (dw, db) = self.grads[grad_index..].split_at_mut(1);
            gemm(
                dw[0].as_mut_slice(),
                MatRef::new(input, n, stage.in_width)?.t(),
                MatRef::new(delta, n, width)?,
            )?;
            // db = Σ_rows G, accumulated in f64: a full-batch step (BGD on
            // 60,000 rows) would otherwise drift by f32's rounding per row.
            let sums = &mut self.bias_sums[..width];
            sums.fill(0.0);
            for row in delta.chunks_exact(width) {
                sums.iter_mut()
                    .zip(row)
                    .for_each(|(acc, &g)| *acc += f64::from(g));
            }
            for (d, &sum) in db[0].as_mut_slice().iter_mut().zip(sums.iter()) {
                *d = sum as f32;
            }
            if first_dense.is_some_and(|f| s > f) {
                gemm(
                    &mut b.next[..n * stage.in_width],
                    MatRef::new(delta, n, width)?,
                    MatRef::of(d.kernel().value())?.t(),
                )?;
                std::mem::swap(&mut b.delta, &mut b.next);
            }
        }
        Ok(loss)
    }
}

/// Whether targets `y` `[n, ...]` hold `y_width` values per sample, the
/// layout the fused steps read.
pub(super) fn targets_fit(y: &Tensor, y_width: usize) -> bool {
    let per_sample: usize = y.shape().iter().skip(1).product();
    y.rank() >= 1 && per_sample == y_width
}

/// The error for a plan used with other layers or buffers than it was made
/// for (a bug, not bad input).
pub(super) fn lost_buffers() -> Error {
    Error::Data {
        detail: "fused training step: its buffers or layers changed under it".into(),
    }
}

/// The `Dense` layer of node `node`.
pub(super) fn dense(nodes: &[Node], node: usize) -> Result<&hebb_layers::Dense> {
    match nodes.get(node).map(|n| &n.op) {
        Some(Op::Dense(d)) => Ok(d),
        _ => Err(lost_buffers()),
    }
}

/// Copies rows `rows` of `src` (rows of `width`) into `dst`, in order.
fn gather(dst: &mut [f32], src: &[f32], rows: &[usize], width: usize) {
    for (d, &r) in dst.chunks_exact_mut(width).zip(rows) {
        d.copy_from_slice(&src[r * width..(r + 1) * width]);
    }
}

/// `out = input · kernel + bias` for `rows` rows.
fn dense_forward(
    d: &hebb_layers::Dense,
    input: &[f32],
    out: &mut [f32],
    rows: usize,
) -> Result<()> {
    gemm(
        out,
        MatRef::new(input, rows, d.input_dim())?,
        MatRef::of(d.kernel().value())?,
    )?;
    let bias = d.bias().value().as_slice();
    for row in out.chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(z, &b)| *z += b);
    }
    Ok(())
}

/// The loss per row into `losses` and its gradient (with respect to the
/// logits when `fused`, else to the outputs) into `delta`, scaled for the
/// mean over the rows. `pred` holds the last stage's output (its logits when
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
        Head::MeanSquaredError => {
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
    //! The fused step against the tape: the same model trained both ways,
    //! where the tape computes the loss from the logits as the fused head
    //! does (`from_logits` on a linear output layer).

    use hebb_layers::Activation;
    use hebb_layers::losses::Loss;
    use hebb_optim::{Adam, Optimizer, Sgd};
    use hebb_tensor::Tensor;
    use hebb_tensor::random::chacha;
    use rand::Rng;

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
        let fy = fused.fused_step(y);
        assert!(fy.is_some(), "the fused step applies");
        assert!(tape.fused_step(y).is_none());
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
                m.force_tape = path == "tape";
                m.force_device_step = path == "tensor-op";
                assert_eq!(m.fused_step(&case.y).is_some(), path != "tape", "{what}");
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
                m.force_tape = tape;
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
        assert!(m.fused_step(&y).is_none(), "mae is not fused");
        m.compile("sgd", "categorical_crossentropy", Vec::<&str>::new())
            .unwrap();
        assert!(m.fused_step(&y).is_some());
        let sparse = Tensor::zeros(&[8]);
        assert!(
            m.fused_step(&sparse).is_none(),
            "[n] targets for a dense loss"
        );
        let mut linear = model(Activation::Relu, Activation::Relu, 2, false);
        linear
            .compile("sgd", "categorical_crossentropy", Vec::<&str>::new())
            .unwrap();
        assert!(
            linear.fused_step(&y).is_none(),
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

    /// Every buffer of the step, and the weights, keep their addresses
    /// from one step to the next: the steady state allocates no tensor.
    #[test]
    fn steps_reuse_every_buffer() {
        let (x, y) = data(16, 3, false);
        let mut m = model(Activation::Relu, Activation::Softmax, 3, true);
        m.compile("adam", "sparse_categorical_crossentropy", vec!["accuracy"])
            .unwrap();
        let Some(crate::sequential::device_step::Step::Fused(mut f)) = m.fused_step(&y) else {
            panic!("the CPU takes the fused step");
        };
        let mut compiled = m.compiled.take().unwrap();
        let addresses = |f: &super::FusedStep, m: &Sequential| {
            let mut a: Vec<usize> = f
                .grads
                .iter()
                .map(|t| t.as_slice().as_ptr() as usize)
                .chain(
                    m.trainable_variables()
                        .iter()
                        .map(|v| v.value().as_slice().as_ptr() as usize),
                )
                .collect();
            for (_, b) in &f.buffers {
                a.extend(
                    [
                        b.x.as_ptr(),
                        b.delta.as_ptr(),
                        b.next.as_ptr(),
                        b.losses.as_ptr(),
                    ]
                    .map(|p| p as usize),
                );
                a.extend([b.y.as_slice().as_ptr(), b.pred.as_slice().as_ptr()].map(|p| p as usize));
                a.extend(b.outs.iter().map(|o| o.as_ptr() as usize));
            }
            a.sort_unstable();
            a
        };
        let mut seen = Vec::new();
        for step in 0..4 {
            let rows: Vec<usize> = (step * 4..step * 4 + 8).map(|r| r % 16).collect();
            f.train_batch(&m.nodes, &x, &y, &rows).unwrap();
            let mut vars = m.trainable_variables_mut();
            compiled
                .optimizer
                .apply_gradients(&mut vars, f.gradients())
                .unwrap();
            if let Some((pred, yb)) = f.outputs(rows.len()) {
                for metric in &mut compiled.metrics {
                    metric.update_state(yb, pred).unwrap();
                }
            }
            seen.push(addresses(&f, &m));
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
    }
}
