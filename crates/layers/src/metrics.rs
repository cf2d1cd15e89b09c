//! Metrics computed outside the tape.
//!
//! Two kinds:
//!
//! - the free functions [`accuracy`] and [`binary_accuracy`], one batch at a
//!   time, as the lecture's training loops compute them;
//! - Keras-style stateful metrics, the [`Metric`] trait: `update_state`
//!   with each batch, `result` for the value over everything seen since
//!   `reset_state` (what Keras prints per epoch and records in `History`).
//!
//! The stateful metrics (Keras 3, `keras/src/metrics/`):
//!
//! | name | type | per sample / state |
//! |---|---|---|
//! | `accuracy`, `acc` | [`AutoAccuracy`] | binary, categorical or sparse categorical accuracy, chosen by shape |
//! | `binary_accuracy` | [`MeanFn::BinaryAccuracy`] | `y == (p > 0.5)` |
//! | `categorical_accuracy` | [`MeanFn::CategoricalAccuracy`] | `argmax y == argmax p` |
//! | `sparse_categorical_accuracy` | [`MeanFn::SparseCategoricalAccuracy`] | `y == argmax p` |
//! | `top_k_categorical_accuracy` | [`MeanFn::TopKCategoricalAccuracy`] | `argmax y` in the top 5 of `p` |
//! | `sparse_top_k_categorical_accuracy` | [`MeanFn::SparseTopKCategoricalAccuracy`] | `y` in the top 5 of `p` |
//! | `mse`, `mae`, `mape`, `hinge`, `categorical_hinge`, the cross-entropies | [`MeanFn::Loss`] | the loss, [`Loss::call`] |
//! | `precision`, `recall` | [`Precision`], [`Recall`] | true/false positives and false negatives at threshold 0.5 |
//! | `auc` | [`Auc`] | ROC AUC over 200 thresholds |
//!
//! The mean metrics ([`MeanMetricWrapper`]) keep the sum of the per-sample
//! values and the number of samples, so the result is the mean over all
//! samples seen, whatever the batch sizes.
//!
//! ```
//! use hebb_layers::metrics::{self, Metric};
//! use hebb_tensor::Tensor;
//!
//! // model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
//! let mut acc = metrics::from_name("accuracy", Some("sparse_categorical_crossentropy"))?;
//! let y = Tensor::from_vec(vec![1.0, 0.0], &[2])?;
//! acc.update_state(&y, &Tensor::from_vec(vec![0.2, 0.8, 0.3, 0.7], &[2, 2])?)?;
//! acc.update_state(&Tensor::from_vec(vec![0.0], &[1])?, &Tensor::from_vec(vec![0.9, 0.1], &[1, 2])?)?;
//! assert_eq!(acc.result(), 2.0 / 3.0);
//! assert_eq!(acc.name(), "accuracy");
//! acc.reset_state();
//! assert_eq!(acc.result(), 0.0);
//! # Ok::<(), hebb_layers::Error>(())
//! ```

mod confusion;
mod mean;

pub use confusion::{Auc, Precision, Recall};
pub use mean::{AutoAccuracy, MeanFn, MeanMetricWrapper};

use hebb_tensor::Tensor;

use crate::losses::Loss;
use crate::{Error, Result};

/// A stateful metric (Keras `keras.metrics.Metric`,
/// `keras/src/metrics/metric.py`): it accumulates statistics over batches
/// with [`update_state`](Self::update_state) and reports them with
/// [`result`](Self::result) until [`reset_state`](Self::reset_state).
///
/// Every implementation here takes `y_true` and `y_pred` as `f32`
/// tensors, `y_pred` `[batch, ...]`; sparse metrics take class indices
/// as `f32` in `y_true`, `[batch]` or `[batch, 1]`.
pub trait Metric: std::fmt::Debug + Send {
    /// The metric's name: the key Keras uses in its logs and `History`
    /// (`"accuracy"`, `"val_"` prefixed for validation by the caller).
    fn name(&self) -> &str;

    /// Accumulates one batch.
    ///
    /// # Errors
    /// An error naming the metric and both shapes when they do not fit, or
    /// an invalid label; the state is then unchanged.
    fn update_state(&mut self, y_true: &Tensor, y_pred: &Tensor) -> Result<()>;

    /// The value over all batches since the last reset (0 before any).
    fn result(&self) -> f32;

    /// Forgets all batches (Keras calls it at the start of each epoch).
    fn reset_state(&mut self);
}

/// The metric names [`from_name`] accepts: Keras' class names, their
/// snake_case forms and its aliases (`keras/src/metrics/__init__.py`), plus
/// `accuracy`/`acc` in any case, which `compile` resolves.
pub const NAMES: &[&str] = &[
    "accuracy",
    "acc",
    "binary_accuracy",
    "BinaryAccuracy",
    "categorical_accuracy",
    "CategoricalAccuracy",
    "sparse_categorical_accuracy",
    "SparseCategoricalAccuracy",
    "top_k_categorical_accuracy",
    "TopKCategoricalAccuracy",
    "sparse_top_k_categorical_accuracy",
    "SparseTopKCategoricalAccuracy",
    "mean_squared_error",
    "MeanSquaredError",
    "mse",
    "MSE",
    "mean_absolute_error",
    "MeanAbsoluteError",
    "mae",
    "MAE",
    "mean_absolute_percentage_error",
    "MeanAbsolutePercentageError",
    "mape",
    "MAPE",
    "hinge",
    "Hinge",
    "categorical_hinge",
    "CategoricalHinge",
    "binary_crossentropy",
    "BinaryCrossentropy",
    "bce",
    "BCE",
    "categorical_crossentropy",
    "CategoricalCrossentropy",
    "sparse_categorical_crossentropy",
    "SparseCategoricalCrossentropy",
    "precision",
    "Precision",
    "recall",
    "Recall",
    "auc",
    "AUC",
];

/// The metric that `model.compile(loss=loss_name, metrics=[name])` builds in
/// Keras 3 (`keras/src/trainers/compile_utils.py`, `get_metric`), with Keras'
/// defaults (threshold 0.5, `k = 5`, 200 AUC thresholds, `from_logits=False`).
///
/// Its [`name`](Metric::name) is `name` as given, as Keras names compiled
/// metrics after their string identifier: `"acc"` is reported as `acc`,
/// `"mse"` as `mse`, and `"accuracy"` stays `accuracy` whichever accuracy
/// it resolves to.
///
/// `"accuracy"` and `"acc"` (in any case, as Keras compares
/// `identifier.lower()`) give an [`AutoAccuracy`]: Keras 3 picks binary,
/// sparse categorical or categorical accuracy from the shapes of `y_true`
/// and `y_pred`, here at the first `update_state`. `loss_name` is a hint
/// that fixes the choice before that batch: `binary_crossentropy` ->
/// `binary_accuracy`, `categorical_crossentropy` -> `categorical_accuracy`,
/// `sparse_categorical_crossentropy` -> `sparse_categorical_accuracy`; an
/// unknown or other loss name gives no hint. Keras' exact-equality
/// `Accuracy` is [`MeanFn::Accuracy`], which `compile` never picks from a
/// string.
///
/// Other names are case-sensitive, as in Keras.
///
/// # Errors
/// [`Error::InvalidArgument`] for an unknown name, listing [`NAMES`].
pub fn from_name(name: &str, loss_name: Option<&str>) -> Result<Box<dyn Metric>> {
    if matches!(name.to_lowercase().as_str(), "accuracy" | "acc") {
        let hint = loss_name.and_then(|l| Loss::from_name(l).ok());
        return Ok(Box::new(AutoAccuracy::new(name, hint)));
    }
    let mean =
        |f: MeanFn| -> Box<dyn Metric> { Box::new(MeanMetricWrapper::new(f).with_name(name)) };
    let loss = |l: &str| Loss::from_name(l).map(|l| mean(MeanFn::Loss(l)));
    Ok(match name {
        "binary_accuracy" | "BinaryAccuracy" => mean(MeanFn::BinaryAccuracy { threshold: 0.5 }),
        "categorical_accuracy" | "CategoricalAccuracy" => mean(MeanFn::CategoricalAccuracy),
        "sparse_categorical_accuracy" | "SparseCategoricalAccuracy" => {
            mean(MeanFn::SparseCategoricalAccuracy)
        }
        "top_k_categorical_accuracy" | "TopKCategoricalAccuracy" => {
            mean(MeanFn::TopKCategoricalAccuracy { k: 5 })
        }
        "sparse_top_k_categorical_accuracy" | "SparseTopKCategoricalAccuracy" => {
            mean(MeanFn::SparseTopKCategoricalAccuracy { k: 5 })
        }
        "mean_squared_error"
        | "MeanSquaredError"
        | "mse"
        | "MSE"
        | "mean_absolute_error"
        | "MeanAbsoluteError"
        | "mae"
        | "MAE"
        | "mean_absolute_percentage_error"
        | "MeanAbsolutePercentageError"
        | "mape"
        | "MAPE"
        | "hinge"
        | "Hinge"
        | "categorical_hinge"
        | "CategoricalHinge"
        | "binary_crossentropy"
        | "BinaryCrossentropy"
        | "bce"
        | "BCE"
        | "categorical_crossentropy"
        | "CategoricalCrossentropy"
        | "sparse_categorical_crossentropy"
        | "SparseCategoricalCrossentropy" => loss(name)?,
        "precision" | "Precision" => Box::new(Precision::new().with_name(name)),
        "recall" | "Recall" => Box::new(Recall::new().with_name(name)),
        "auc" | "AUC" => Box::new(Auc::new().with_name(name)),
        _ => {
            return Err(Error::InvalidArgument {
                what: "metric",
                detail: format!("unknown metric {name:?}; known names: {}", NAMES.join(", ")),
            });
        }
    })
}

/// Fraction of rows whose largest prediction is at the true label, as the
/// lecture computes it:
/// `tf.reduce_mean(tf.cast(tf.equal(tf.argmax(pred, axis=1), y), tf.float32))`
/// (Keras' `sparse_categorical_accuracy`). The mean is taken in `f32`.
///
/// `pred` is `[batch, classes]`, `labels` has `batch` entries.
///
/// # Errors
/// [`Error::InvalidArgument`] if `pred` is not rank 2 or the label count differs.
pub fn accuracy(pred: &Tensor, labels: &[usize]) -> Result<f32> {
    if pred.rank() != 2 || pred.shape()[0] != labels.len() {
        return Err(Error::InvalidArgument {
            what: "accuracy",
            detail: format!(
                "predictions {:?} do not fit {} labels",
                pred.shape(),
                labels.len()
            ),
        });
    }
    let classes = pred.shape()[1];
    if let Some((i, &y)) = labels.iter().enumerate().find(|&(_, &y)| y >= classes) {
        return Err(Error::InvalidArgument {
            what: "accuracy",
            detail: format!(
                "label {y} of sample {i} is not a class of predictions {:?}",
                pred.shape()
            ),
        });
    }
    let hits: Vec<f32> = pred
        .argmax(1)?
        .to_vec()
        .iter()
        .zip(labels)
        .map(|(&p, &y)| if p as usize == y { 1.0 } else { 0.0 })
        .collect();
    let n = hits.len();
    Ok(Tensor::from_vec(hits, &[n])?.mean_all().item()?)
}

/// Fraction of predictions `p` with `(p > threshold) == (y >= 0.5)`
/// (Keras' `binary_accuracy`), for `[batch, 1]` or `[batch]` probabilities.
///
/// # Errors
/// [`Error::InvalidArgument`] if the element counts differ.
pub fn binary_accuracy(pred: &Tensor, labels: &[f32], threshold: f32) -> Result<f32> {
    if !threshold.is_finite() {
        return Err(Error::InvalidArgument {
            what: "binary_accuracy",
            detail: format!("threshold must be a finite number, got {threshold}"),
        });
    }
    if pred.len() != labels.len() {
        return Err(Error::InvalidArgument {
            what: "binary_accuracy",
            detail: format!(
                "predictions {:?} do not fit {} labels",
                pred.shape(),
                labels.len()
            ),
        });
    }
    let hits: Vec<f32> = pred
        .to_vec()
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            if (p > threshold) == (y >= 0.5) {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let n = hits.len();
    Ok(Tensor::from_vec(hits, &[n])?.mean_all().item()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_counts_argmax_hits() {
        let p = Tensor::from_vec(vec![0.1, 0.9, 0.8, 0.2, 0.3, 0.7], &[3, 2]).unwrap();
        assert_eq!(accuracy(&p, &[1, 0, 0]).unwrap(), 2.0 / 3.0);
        assert!(accuracy(&p, &[1, 0]).is_err());
        let b = Tensor::from_vec(vec![0.2, 0.6], &[2, 1]).unwrap();
        assert_eq!(binary_accuracy(&b, &[0.0, 0.0], 0.5).unwrap(), 0.5);
    }
}
