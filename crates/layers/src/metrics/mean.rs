//! Mean metrics: a per-sample function averaged over every sample seen
//! (Keras `MeanMetricWrapper`, `keras/src/metrics/reduction_metrics.py`),
//! the accuracies of `keras/src/metrics/accuracy_metrics.py`, and the
//! `"accuracy"` that `compile` resolves by shape
//! (`keras/src/trainers/compile_utils.py`, `get_metric`).

use hebb_autograd::GradientTape;
use hebb_tensor::Tensor;

use super::Metric;
use crate::losses::{Loss, class_index};
use crate::{Error, Result};

/// The per-sample function of a [`MeanMetricWrapper`].
///
/// Shapes: `y_pred` is `[batch, ...]`; for the sparse functions `y_true`
/// holds class indices as `f32` with `y_pred`'s shape less the class axis
/// (`[batch]` for `[batch, classes]`), or that with a trailing 1; for the
/// others `y_true` has `y_pred`'s shape, where `[batch]` and `[batch, 1]`
/// are interchangeable (Keras' `squeeze_or_expand_to_same_rank`). A rank-1
/// `y_pred` `[batch]` is taken as `[batch, 1]`: one value per sample.
/// (Keras would average a rank-1 batch into a single value and count the
/// batch as one sample; hebb counts samples.)
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MeanFn {
    /// Keras `accuracy`: the fraction of elements with `y_pred == y_true` exactly.
    Accuracy,
    /// Keras `binary_accuracy`: the fraction of elements with
    /// `y_true == (y_pred > threshold ? 1 : 0)` (exact equality, so labels
    /// must be 0 or 1). Keras' default threshold is `0.5`.
    BinaryAccuracy {
        /// Predictions strictly above it count as 1.
        threshold: f32,
    },
    /// Keras `categorical_accuracy`: `argmax(y_true) == argmax(y_pred)` over
    /// the last axis (the first maximum wins ties, as `tf.argmax`).
    CategoricalAccuracy,
    /// Keras `sparse_categorical_accuracy`: `y_true == argmax(y_pred)`.
    SparseCategoricalAccuracy,
    /// Keras `top_k_categorical_accuracy` (default `k = 5`): the class
    /// `argmax(y_true)` is among the top `k` of `y_pred`, with
    /// `tf.math.in_top_k`'s ties: the target counts when its prediction is
    /// finite and fewer than `k` predictions are strictly larger, so all
    /// classes tied at the boundary are in.
    TopKCategoricalAccuracy {
        /// How many top predictions count.
        k: usize,
    },
    /// Keras `sparse_top_k_categorical_accuracy` (default `k = 5`): as
    /// [`TopKCategoricalAccuracy`](Self::TopKCategoricalAccuracy) with the
    /// class index `y_true`.
    SparseTopKCategoricalAccuracy {
        /// How many top predictions count.
        k: usize,
    },
    /// A loss as a metric (Keras' regression, hinge and probabilistic
    /// metrics wrap the loss functions): its per-sample values, see
    /// [`Loss::call`].
    Loss(Loss),
}

impl MeanFn {
    /// The name Keras gives the metric by default (`"binary_accuracy"`,
    /// `"mean_squared_error"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Accuracy => "accuracy",
            Self::BinaryAccuracy { .. } => "binary_accuracy",
            Self::CategoricalAccuracy => "categorical_accuracy",
            Self::SparseCategoricalAccuracy => "sparse_categorical_accuracy",
            Self::TopKCategoricalAccuracy { .. } => "top_k_categorical_accuracy",
            Self::SparseTopKCategoricalAccuracy { .. } => "sparse_top_k_categorical_accuracy",
            Self::Loss(loss) => loss.name(),
        }
    }

    fn is_sparse(&self) -> bool {
        match self {
            Self::SparseCategoricalAccuracy | Self::SparseTopKCategoricalAccuracy { .. } => true,
            Self::Loss(loss) => loss.is_sparse(),
            _ => false,
        }
    }

    /// `(Σ per-sample values, samples)` for one batch.
    fn batch(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<(f32, usize)> {
        let what = self.name();
        // A rank-1 `y_pred` holds one value per sample.
        let (y_true, y_pred) = if y_pred.rank() == 1 && !self.is_sparse() {
            let n = y_pred.len();
            let t = if y_true.shape() == [n] {
                y_true.reshape(&[n, 1])?
            } else {
                y_true.clone()
            };
            (t, y_pred.reshape(&[n, 1])?)
        } else {
            (y_true.clone(), y_pred.clone())
        };
        match *self {
            Self::Accuracy | Self::BinaryAccuracy { .. } => {
                let (batch, k) = elementwise(what, y_true.shape(), y_pred.shape())?;
                let (t, p) = (y_true.as_slice(), y_pred.as_slice());
                let hits = match *self {
                    Self::BinaryAccuracy { threshold } => t
                        .iter()
                        .zip(p)
                        .filter(|&(&t, &p)| t == if p > threshold { 1.0 } else { 0.0 })
                        .count(),
                    _ => t.iter().zip(p).filter(|&(&t, &p)| t == p).count(),
                };
                Ok((mean_of_hits(hits, k), batch))
            }
            Self::CategoricalAccuracy | Self::TopKCategoricalAccuracy { .. } => {
                let (batch, rows, classes) = categorical(what, y_true.shape(), y_pred.shape())?;
                let (t, p) = (y_true.as_slice(), y_pred.as_slice());
                let hits = (0..rows)
                    .filter(|&r| {
                        let target = argmax(&t[r * classes..(r + 1) * classes]);
                        let row = &p[r * classes..(r + 1) * classes];
                        match *self {
                            Self::TopKCategoricalAccuracy { k } => in_top_k(row, target, k),
                            _ => argmax(row) == target,
                        }
                    })
                    .count();
                Ok((mean_of_hits(hits, rows / batch.max(1)), batch))
            }
            Self::SparseCategoricalAccuracy | Self::SparseTopKCategoricalAccuracy { .. } => {
                let (batch, classes) = sparse(what, y_true.shape(), y_pred.shape())?;
                let (t, p) = (y_true.as_slice(), y_pred.as_slice());
                let mut hits = 0;
                for (r, &v) in t.iter().enumerate() {
                    let label = class_index(what, r, v, classes)?;
                    let row = &p[r * classes..(r + 1) * classes];
                    hits += usize::from(match *self {
                        Self::SparseTopKCategoricalAccuracy { k } => in_top_k(row, label, k),
                        _ => argmax(row) == label,
                    });
                }
                Ok((mean_of_hits(hits, t.len() / batch.max(1)), batch))
            }
            Self::Loss(loss) => {
                let tape = GradientTape::new();
                let values = loss
                    .call(tape.constant(y_true), tape.constant(y_pred))?
                    .value();
                // Keras' `reduce_to_samplewise_values`: average any axes after the batch.
                let values = match values.shape() {
                    [] => return Ok((values.item()?, 1)),
                    [_] => values,
                    [batch, rest @ ..] => values
                        .reshape(&[*batch, rest.iter().product()])?
                        .mean(1, false)?,
                };
                Ok((values.sum_all().item()?, values.len()))
            }
        }
    }
}

/// `hits / per_sample` summed over the samples: the sum of the per-sample
/// means when every sample has `per_sample` elements (exact for one
/// element per sample; otherwise rounded once).
fn mean_of_hits(hits: usize, per_sample: usize) -> f32 {
    if per_sample == 1 {
        hits as f32
    } else {
        (hits as f64 / per_sample as f64) as f32
    }
}

/// Index of the largest element, the first of ties (`tf.argmax`, and
/// [`Tensor::argmax`]'s rule).
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate().skip(1) {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// `tf.math.in_top_k`: `row[target]` is finite and fewer than `k`
/// elements are strictly larger.
fn in_top_k(row: &[f32], target: usize, k: usize) -> bool {
    let v = row[target];
    v.is_finite() && row.iter().filter(|&&x| x > v).count() < k
}

/// Keras' `squeeze_or_expand_to_same_rank` on shapes: if the ranks differ
/// by one and the longer ends in 1, a rank-1 shape gains a trailing 1,
/// otherwise the longer loses it.
pub(crate) fn squeeze_or_expand(t: &[usize], p: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let fit = |long: &[usize], short: &[usize]| -> (Vec<usize>, Vec<usize>) {
        if long.len() == short.len() + 1 && long.last() == Some(&1) {
            if short.len() == 1 {
                return (long.to_vec(), vec![short[0], 1]);
            }
            return (long[..long.len() - 1].to_vec(), short.to_vec());
        }
        (long.to_vec(), short.to_vec())
    };
    if t.len() == p.len() + 1 {
        fit(t, p)
    } else if p.len() == t.len() + 1 {
        let (p, t) = fit(p, t);
        (t, p)
    } else {
        (t.to_vec(), p.to_vec())
    }
}

fn mismatch(what: &str, t: &[usize], p: &[usize], need: &str) -> Error {
    Error::InvalidArgument {
        what: "metric",
        detail: format!("{what}: y_true {t:?} and y_pred {p:?} do not fit: {need}"),
    }
}

/// `(batch, elements per sample)` for metrics comparing `y_true` and
/// `y_pred` element by element.
pub(crate) fn elementwise(what: &str, t: &[usize], p: &[usize]) -> Result<(usize, usize)> {
    let (ta, pa) = squeeze_or_expand(t, p);
    match pa.split_first() {
        Some((&batch, rest)) if ta == pa => Ok((batch, rest.iter().product())),
        _ => Err(mismatch(what, t, p, "need one shape [batch, ...]")),
    }
}

/// `(batch, rows, classes)` for the categorical metrics: one shape
/// `[batch, ..., classes]`, rows being all positions but the class axis.
fn categorical(what: &str, t: &[usize], p: &[usize]) -> Result<(usize, usize, usize)> {
    match p {
        [batch, .., classes] if t == p && *classes > 0 => {
            Ok((*batch, p.iter().product::<usize>() / classes, *classes))
        }
        _ => Err(mismatch(
            what,
            t,
            p,
            "need one shape [batch, ..., classes] with classes >= 1",
        )),
    }
}

/// `(batch, classes)` for the sparse metrics: `y_pred` `[batch, ..., classes]`
/// and `y_true` `[batch, ...]`, or that with a trailing 1.
fn sparse(what: &str, t: &[usize], p: &[usize]) -> Result<(usize, usize)> {
    if let [batch, .., classes] = p {
        let lead = &p[..p.len() - 1];
        let fits = t == lead || (t.len() == p.len() && t.starts_with(lead) && t.last() == Some(&1));
        if fits && *classes > 0 {
            return Ok((*batch, *classes));
        }
    }
    Err(mismatch(
        what,
        t,
        p,
        "need y_pred [batch, ..., classes] and class indices y_true [batch, ...] or [batch, ..., 1]",
    ))
}

/// A per-sample function averaged over all samples seen (Keras
/// `MeanMetricWrapper` over a `Mean`, `keras/src/metrics/reduction_metrics.py`).
///
/// State: `total`, the sum of the per-sample values, and `count`, the number
/// of samples, both `f32` like Keras' variables; [`result`](Metric::result)
/// is `total / count`, or 0 before any sample (`divide_no_nan`). Batches are
/// thus weighted by their size: a batch of 32 and a last batch of 16 give
/// the mean over 48 samples. Per batch, the values of the loss-based
/// functions are summed in TensorFlow's order (`Tensor::sum_all`); the
/// accuracies count hits, which is exact.
///
/// ```
/// use hebb_layers::metrics::{MeanFn, MeanMetricWrapper, Metric};
/// use hebb_tensor::Tensor;
///
/// let mut m = MeanMetricWrapper::new(MeanFn::SparseCategoricalAccuracy);
/// let p = Tensor::from_vec(vec![0.1, 0.6, 0.3, 0.05, 0.95, 0.0], &[2, 3])?;
/// m.update_state(&Tensor::from_vec(vec![2.0, 1.0], &[2])?, &p)?;
/// assert_eq!(m.result(), 0.5);
/// assert_eq!(m.name(), "sparse_categorical_accuracy");
/// # Ok::<(), hebb_layers::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MeanMetricWrapper {
    name: String,
    function: MeanFn,
    total: f32,
    count: f32,
}

impl MeanMetricWrapper {
    /// A metric of `function`, named as Keras names it by default ([`MeanFn::name`]).
    pub fn new(function: MeanFn) -> Self {
        Self {
            name: function.name().to_string(),
            function,
            total: 0.0,
            count: 0.0,
        }
    }

    /// The same metric under another name (`name=` in Keras).
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The per-sample function.
    pub fn function(&self) -> MeanFn {
        self.function
    }

    /// The sum of the per-sample values seen since the last reset.
    pub fn total(&self) -> f32 {
        self.total
    }

    /// The number of samples seen since the last reset.
    pub fn count(&self) -> f32 {
        self.count
    }
}

impl Metric for MeanMetricWrapper {
    fn name(&self) -> &str {
        &self.name
    }

    /// Adds the batch's per-sample values to `total` and its sample count to `count`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the metric and both shapes if they
    /// do not fit [`MeanFn`]'s shapes, or naming a label that is not a class
    /// index (sparse functions); the state is left unchanged.
    fn update_state(&mut self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        let (sum, n) = self.function.batch(y_true, y_pred)?;
        self.total += sum;
        self.count += n as f32;
        Ok(())
    }

    fn result(&self) -> f32 {
        if self.count == 0.0 {
            0.0
        } else {
            self.total / self.count
        }
    }

    fn reset_state(&mut self) {
        self.total = 0.0;
        self.count = 0.0;
    }
}

/// The `"accuracy"` (or `"acc"`) of `model.compile(metrics=[...])`: Keras 3
/// picks binary, sparse categorical or categorical accuracy from the shapes
/// of the first batch (`keras/src/trainers/compile_utils.py`,
/// `is_binary_or_sparse_categorical`), and keeps the name it was given:
///
/// - `y_pred`'s last axis is 1: [`MeanFn::BinaryAccuracy`] (threshold 0.5);
/// - else `y_true` has lower rank than `y_pred`, or its last axis is 1 while
///   `y_pred`'s is not: [`MeanFn::SparseCategoricalAccuracy`];
/// - else [`MeanFn::CategoricalAccuracy`].
///
/// A loss hint (see [`from_name`](super::from_name)) gives the choice before
/// the first batch, [`function`](Self::function): `binary_crossentropy` ->
/// binary, `categorical_crossentropy` -> categorical,
/// `sparse_categorical_crossentropy` -> sparse categorical accuracy (the
/// rule of tf.keras 1's `get_metric_function`). With the usual pairings
/// (sigmoid `[batch, 1]` outputs; one-hot labels; class-index labels) the
/// shapes agree with it; where they do not, the first batch's shapes decide,
/// as in Keras 3. The choice is kept across [`reset_state`](Metric::reset_state).
#[derive(Debug, Clone, PartialEq)]
pub struct AutoAccuracy {
    inner: MeanMetricWrapper,
    resolved: bool,
}

impl AutoAccuracy {
    /// An accuracy named `name`, to be resolved by the first batch's shapes,
    /// with an initial guess from a loss (`None`: categorical accuracy until
    /// the first batch).
    pub fn new(name: impl Into<String>, loss_hint: Option<Loss>) -> Self {
        let guess = match loss_hint {
            Some(Loss::BinaryCrossentropy { .. }) => MeanFn::BinaryAccuracy { threshold: 0.5 },
            Some(Loss::SparseCategoricalCrossentropy { .. }) => MeanFn::SparseCategoricalAccuracy,
            _ => MeanFn::CategoricalAccuracy,
        };
        Self {
            inner: MeanMetricWrapper::new(guess).with_name(name),
            resolved: false,
        }
    }

    /// The accuracy in use: the shapes' choice once a batch has been seen,
    /// the loss hint's before.
    pub fn function(&self) -> MeanFn {
        self.inner.function
    }

    /// Whether a batch has fixed the choice.
    pub fn is_resolved(&self) -> bool {
        self.resolved
    }

    /// Keras 3's choice for these shapes (see the type docs).
    pub fn resolve(y_true: &[usize], y_pred: &[usize]) -> MeanFn {
        let is_binary = y_pred.last() == Some(&1);
        let is_sparse = y_true.len() < y_pred.len()
            || (y_true.last() == Some(&1) && y_pred.last().is_some_and(|&c| c > 1));
        if is_binary {
            MeanFn::BinaryAccuracy { threshold: 0.5 }
        } else if is_sparse {
            MeanFn::SparseCategoricalAccuracy
        } else {
            MeanFn::CategoricalAccuracy
        }
    }
}

impl Metric for AutoAccuracy {
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// Resolves the accuracy on the first call, then as [`MeanMetricWrapper`].
    ///
    /// # Errors
    /// As [`MeanMetricWrapper`]'s `update_state`; a failed first batch
    /// leaves the choice open.
    fn update_state(&mut self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        if self.resolved {
            return self.inner.update_state(y_true, y_pred);
        }
        let previous = self.inner.function;
        self.inner.function = Self::resolve(y_true.shape(), y_pred.shape());
        match self.inner.update_state(y_true, y_pred) {
            Ok(()) => {
                self.resolved = true;
                Ok(())
            }
            Err(e) => {
                self.inner.function = previous;
                Err(e)
            }
        }
    }

    fn result(&self) -> f32 {
        self.inner.result()
    }

    fn reset_state(&mut self) {
        self.inner.reset_state();
    }
}
