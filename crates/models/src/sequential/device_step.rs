//! The training step of [`Sequential`](super::Sequential) on a GPU: the
//! fused step's plan and maths ([`fast`](super::fast)) written with tensor
//! ops, so that every buffer stays on the model's device and each op is one
//! kernel (cuBLAS for the products, one fused kernel for softmax and
//! cross-entropy).
//!
//! For each `Dense` stage with input `X` `[rows, in]`, kernel `W` and bias `b`:
//!
//! ```text
//! forward   Z = X·W + b,  Y = f(Z)
//! backward  G ← f'(Y)·G,  dW = Xᵀ·G,  db = Σ_rows G,  G ← G·Wᵀ
//! ```
//!
//! The head is the fused step's: softmax or sigmoid cross-entropy from the
//! logits (`tf.nn.softmax_cross_entropy_with_logits`), or the mean squared
//! error on the outputs. A step reads one number back to the host, the
//! batch's summed loss; `fit` hands the batch's outputs to the metrics when
//! the epoch ends.
//!
//! The same code runs on the CPU, which is how it is tested against
//! [`FusedStep`](super::fast::FusedStep) on machines without a GPU.

use hebb_tensor::Tensor;

use super::Node;
use super::fast::{FusedStep, Head, Stage, class_index, dense, lost_buffers, targets_fit};
use crate::Result;

/// A training step on tensor ops for one model and loss; see the module docs.
#[derive(Debug)]
pub(super) struct DeviceStep {
    stages: Vec<Stage>,
    head: Head,
    fused: bool,
    in_width: usize,
    y_width: usize,
    output_shape: Vec<usize>,
    /// Gradients of the last `train_batch`, `[dW, db]` per `Dense`.
    grads: Vec<Tensor>,
    /// The last batch's outputs and targets.
    last: Option<(Tensor, Tensor)>,
    /// Each stage's input for the last forward pass (the backward pass needs them).
    inputs: Vec<Tensor>,
    /// The last stage's output, and the loss gradient with respect to it.
    top: Option<(Tensor, Tensor)>,
}

impl DeviceStep {
    /// The plan of [`FusedStep::plan`] (same layers, same losses).
    pub(super) fn from_plan(plan: FusedStep) -> Self {
        Self {
            stages: plan.stages,
            head: plan.head,
            fused: plan.fused,
            in_width: plan.in_width,
            y_width: plan.y_width,
            output_shape: plan.output_shape,
            grads: Vec::new(),
            last: None,
            inputs: Vec::new(),
            top: None,
        }
    }

    /// Whether targets `y` `[n, ...]` have the layout this step reads.
    pub(super) fn accepts_targets(&self, y: &Tensor) -> bool {
        targets_fit(y, self.y_width)
    }

    /// Whether the targets are class indices (sparse categorical cross-entropy).
    pub(super) fn sparse_targets(&self) -> Option<usize> {
        match self.head {
            Head::SoftmaxCrossEntropy { sparse: true } => {
                Some(self.stages.last().map_or(self.in_width, |s| s.out_width))
            }
            _ => None,
        }
    }

    /// The gradients of the last [`train_batch`](Self::train_batch), in
    /// `trainable_variables` order.
    pub(super) fn gradients(&self) -> &[Tensor] {
        &self.grads
    }

    /// The model's outputs for the last batch `[rows, ...]` and its targets.
    pub(super) fn outputs(&self) -> Option<(&Tensor, &Tensor)> {
        self.last.as_ref().map(|(p, y)| (p, y))
    }

    /// Forward pass and loss for the samples `rows` of `x` `[n, ...]` and
    /// `y`, both on the model's device: returns the mean loss over the rows.
    ///
    /// # Errors
    /// Tensor errors (shapes, devices); on the CPU, a label that is not a
    /// class index. On a GPU such a label gives a NaN loss, which `fit`
    /// reports; `fit` checks the labels once before uploading them.
    pub(super) fn forward(
        &mut self,
        nodes: &[Node],
        x: &Tensor,
        y: &Tensor,
        rows: &[usize],
    ) -> Result<f32> {
        let r = rows.len();
        let mut h = x.gather_rows(rows)?.reshape(&[r, self.in_width])?;
        let yb = y.gather_rows(rows)?;
        let yb = match self.head {
            Head::SoftmaxCrossEntropy { sparse: true } => yb.reshape(&[r])?,
            _ => yb.reshape(&[r, self.y_width])?,
        };
        self.inputs.clear();
        for (s, stage) in self.stages.iter().enumerate() {
            self.inputs.push(h.clone());
            if let Some(node) = stage.dense {
                let d = dense(nodes, node)?;
                h = h.matmul(d.kernel().value())?.add(d.bias().value())?;
            }
            if !(s + 1 == self.stages.len() && self.fused) {
                h = stage.activation.call(&h)?;
            }
        }
        let width = self.stages.last().map_or(self.in_width, |s| s.out_width);
        let scale = 1.0 / r as f32;
        let (losses, grad, pred) = match self.head {
            Head::SoftmaxCrossEntropy { .. } => {
                let (losses, g) = h.softmax_cross_entropy(&yb)?;
                let pred = if self.fused { h.softmax()? } else { h.clone() };
                (losses, g.mul_scalar(scale), pred)
            }
            Head::SigmoidCrossEntropy => {
                let (losses, g) = h.sigmoid_cross_entropy(&yb)?;
                let pred = if self.fused { h.sigmoid() } else { h.clone() };
                (losses, g.mul_scalar(scale), pred)
            }
            Head::MeanSquaredError => {
                let e = h.sub(&yb)?;
                let losses = e.square().mean(1, false)?;
                (losses, e.mul_scalar(2.0 * scale / width as f32), h.clone())
            }
        };
        let mut shape = vec![r];
        shape.extend(&self.output_shape);
        self.last = Some((pred.reshape(&shape)?, yb));
        self.top = Some((h, grad));
        // Keras' sum_over_batch_size reduction; the one value read back.
        Ok(losses.sum_all().item()? * scale)
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
        let (mut out, mut delta) = self.top.take().ok_or_else(lost_buffers)?;
        let first_dense = self.stages.iter().position(|s| s.dense.is_some());
        let mut grads = Vec::with_capacity(self.grads.len());
        for (s, stage) in self.stages.iter().enumerate().rev() {
            if first_dense.is_none_or(|f| s < f) {
                break;
            }
            if !(s + 1 == self.stages.len() && self.fused) {
                delta = stage.activation.backprop(&out, &delta)?;
            }
            let input = self.inputs.get(s).ok_or_else(lost_buffers)?;
            if let Some(node) = stage.dense {
                let d = dense(nodes, node)?;
                let db = delta.sum(0, false)?;
                let dw = input.matmul_with(&delta, true, false)?;
                grads.push(db);
                grads.push(dw);
                if first_dense.is_some_and(|f| s > f) {
                    delta = delta.matmul_with(d.kernel().value(), false, true)?;
                }
            }
            out = input.clone();
        }
        grads.reverse();
        self.grads = grads;
        Ok(loss)
    }
}

/// The step `fit` and `evaluate` take when a plan applies: the fused CPU
/// step, or the tensor-op step on a GPU.
#[derive(Debug)]
pub(super) enum Step {
    /// Buffers in host memory ([`FusedStep`]).
    Fused(FusedStep),
    /// Tensors on the model's device ([`DeviceStep`]).
    Device(DeviceStep),
}

impl Step {
    /// Whether targets `y` have the layout the step reads.
    pub(super) fn accepts_targets(&self, y: &Tensor) -> bool {
        match self {
            Step::Fused(f) => f.accepts_targets(y),
            Step::Device(d) => d.accepts_targets(y),
        }
    }

    /// Checks class-index targets on the host before they go to a GPU,
    /// whose kernels cannot report a bad label (the CPU step checks each
    /// batch itself).
    ///
    /// # Errors
    /// A label that is not a class index, naming it and its sample.
    pub(super) fn check_labels(&self, y: &Tensor) -> Result<()> {
        let Step::Device(d) = self else {
            return Ok(());
        };
        if let Some(classes) = d.sparse_targets() {
            for (sample, &label) in y.try_to_vec()?.iter().enumerate() {
                class_index(label, classes, sample)?;
            }
        }
        Ok(())
    }

    /// Forward pass and mean loss for the samples `rows`.
    pub(super) fn forward(
        &mut self,
        nodes: &[Node],
        x: &Tensor,
        y: &Tensor,
        rows: &[usize],
    ) -> Result<f32> {
        match self {
            Step::Fused(f) => f.forward(nodes, x, y, rows),
            Step::Device(d) => d.forward(nodes, x, y, rows),
        }
    }

    /// Forward and backward passes; returns the mean loss.
    pub(super) fn train_batch(
        &mut self,
        nodes: &[Node],
        x: &Tensor,
        y: &Tensor,
        rows: &[usize],
    ) -> Result<f32> {
        match self {
            Step::Fused(f) => f.train_batch(nodes, x, y, rows),
            Step::Device(d) => d.train_batch(nodes, x, y, rows),
        }
    }

    /// The last batch's outputs and targets (`rows` samples).
    pub(super) fn outputs(&self, rows: usize) -> Option<(&Tensor, &Tensor)> {
        match self {
            Step::Fused(f) => f.outputs(rows),
            Step::Device(d) => d
                .outputs()
                .filter(|(p, _)| p.shape().first() == Some(&rows)),
        }
    }

    /// The last `train_batch`'s gradients, in `trainable_variables` order.
    pub(super) fn gradients(&self) -> &[Tensor] {
        match self {
            Step::Fused(f) => f.gradients(),
            Step::Device(d) => d.gradients(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The tensor-op step against the fused CPU step, on the CPU: the same
    //! plan must give the same losses, gradients and outputs.

    use hebb_layers::Activation;
    use hebb_layers::losses::Loss;
    use hebb_tensor::Tensor;
    use hebb_tensor::random::chacha;
    use rand::Rng;

    use super::DeviceStep;
    use crate::sequential::Sequential;
    use crate::sequential::fast::FusedStep;
    use crate::sequential::layers::{ActivationLayer, Dense, Flatten};

    fn close(what: &str, a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            let scale = x.abs().max(y.abs()).max(1.0);
            assert!((x - y).abs() <= tol * scale, "{what}[{i}]: {x} vs {y}");
        }
    }

    #[test]
    fn tensor_step_matches_the_fused_step() {
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
                Activation::Relu,
                Activation::Softmax,
                Loss::SparseCategoricalCrossentropy { from_logits: false },
                &sparse,
            ),
            (
                Activation::Tanh,
                Activation::Softmax,
                Loss::CategoricalCrossentropy { from_logits: false },
                &dense_y,
            ),
            (
                Activation::Sigmoid,
                Activation::Linear,
                Loss::SparseCategoricalCrossentropy { from_logits: true },
                &sparse,
            ),
            (
                Activation::LeakyRelu { a: 3.0 },
                Activation::Sigmoid,
                Loss::BinaryCrossentropy { from_logits: false },
                &dense_y,
            ),
            (
                Activation::Relu,
                Activation::Tanh,
                Loss::MeanSquaredError,
                &reg_y,
            ),
        ];
        for (hidden, out, loss, y) in cases {
            for separate in [false, true] {
                let mut m = Sequential::new().with_seed(5);
                m.add(Flatten::new().input_shape(&[2, 3])).unwrap();
                m.add(Dense::new(7).activation(hidden)).unwrap();
                if separate {
                    m.add(ActivationLayer::new(Activation::Softmax)).unwrap();
                }
                m.add(Dense::new(classes).activation(out)).unwrap();
                m.build(&[2, 3]).unwrap();
                let plan = || FusedStep::plan(&m.nodes, &[2, 3], loss).expect("a fused plan");
                let mut fused = plan();
                let mut step = DeviceStep::from_plan(plan());
                assert!(step.accepts_targets(y));
                let rows = [3, 0, 12, 5, 5, 9, 1];
                let a = fused.train_batch(&m.nodes, &x, y, &rows).unwrap();
                let b = step.train_batch(&m.nodes, &x, y, &rows).unwrap();
                let what = format!("{hidden:?}/{out:?}/{loss:?}/separate {separate}");
                close(&format!("{what} loss"), &[a], &[b], 1e-6);
                for (k, (g, h)) in fused.gradients().iter().zip(step.gradients()).enumerate() {
                    assert_eq!(g.shape(), h.shape(), "{what} grad {k}");
                    close(&format!("{what} grad {k}"), &g.to_vec(), &h.to_vec(), 1e-5);
                }
                let (p, t) = fused.outputs(rows.len()).unwrap();
                let (q, u) = step.outputs().unwrap();
                close(&format!("{what} outputs"), &p.to_vec(), &q.to_vec(), 1e-6);
                assert_eq!(t.to_vec(), u.to_vec(), "{what} targets");
            }
        }
    }

    /// A whole fit (shuffling, a short last batch, validation, Adam) through
    /// the tensor-op step gives the fused step's history and weights.
    #[test]
    fn fit_through_the_tensor_step_matches_the_fused_fit() {
        use hebb_optim::Adam;

        use crate::sequential::FitOptions;
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
            let adam: Box<dyn hebb_optim::Optimizer> = Box::new(Adam::new(0.01));
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
            let (a, b) = (h1.get(key).unwrap(), h2.get(key).unwrap());
            close(key, a, b, 1e-5);
        }
        for (a, b) in w1.iter().zip(&w2) {
            close("weights", &a.to_vec(), &b.to_vec(), 1e-5);
        }
        close("evaluate", &e1, &e2, 1e-5);
        // A bad label is refused naming its sample, the data row (shuffled
        // batches), before any step.
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
            let adam: Box<dyn hebb_optim::Optimizer> = Box::new(Adam::new(0.01));
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
}
