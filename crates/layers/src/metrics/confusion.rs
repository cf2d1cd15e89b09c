//! Confusion-matrix metrics: [`Precision`], [`Recall`] and [`Auc`]
//! (Keras `keras/src/metrics/confusion_metrics.py` and
//! `keras/src/metrics/metrics_utils.py`, `update_confusion_matrix_variables`).
//!
//! All flatten `y_true` and `y_pred` (same shape; `[batch]` and `[batch, 1]`
//! are interchangeable) and take each element as one binary decision: the
//! label is positive when `y_true != 0` (`cast(y_true, bool)`), the
//! prediction when `y_pred > threshold` (strictly). Counts are `f32`, as
//! Keras' variables.

use hebb_tensor::Tensor;

use super::Metric;
use super::mean::elementwise;
use crate::losses::EPSILON;
use crate::{Error, Result};

fn check_threshold(what: &'static str, threshold: f32) -> Result<()> {
    if (0.0..=1.0).contains(&threshold) {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            what,
            detail: format!("threshold must be in [0, 1], got {threshold}"),
        })
    }
}

/// `num / den`, or 0 when `den` is 0 (`divide_no_nan`).
fn divide_no_nan(num: f32, den: f32) -> f32 {
    if den == 0.0 { 0.0 } else { num / den }
}

/// The flattened labels and predictions of a batch, checked to have one shape.
fn flat<'a>(what: &str, y_true: &'a Tensor, y_pred: &'a Tensor) -> Result<(&'a [f32], &'a [f32])> {
    elementwise(what, y_true.shape(), y_pred.shape())?;
    Ok((y_true.as_slice(), y_pred.as_slice()))
}

/// Precision `TP / (TP + FP)` at one threshold (Keras `Precision()`,
/// default threshold 0.5), over all elements seen; 0 before any predicted
/// positive.
///
/// ```
/// use hebb_layers::metrics::{Metric, Precision};
/// use hebb_tensor::Tensor;
///
/// let mut m = Precision::new();
/// let t = Tensor::from_vec(vec![0.0, 1.0, 1.0, 1.0], &[4])?;
/// m.update_state(&t, &Tensor::from_vec(vec![1.0, 0.0, 1.0, 1.0], &[4])?)?;
/// assert!((m.result() - 2.0 / 3.0).abs() < 1e-7);
/// # Ok::<(), hebb_layers::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Precision {
    name: String,
    threshold: f32,
    true_positives: f32,
    false_positives: f32,
}

impl Default for Precision {
    fn default() -> Self {
        Self::new()
    }
}

impl Precision {
    /// Precision at threshold 0.5, named `"precision"`.
    pub fn new() -> Self {
        Self {
            name: "precision".to_string(),
            threshold: 0.5,
            true_positives: 0.0,
            false_positives: 0.0,
        }
    }

    /// The same metric at another threshold (`Precision(thresholds=t)`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] unless `0 <= threshold <= 1`.
    pub fn with_threshold(mut self, threshold: f32) -> Result<Self> {
        check_threshold("precision", threshold)?;
        self.threshold = threshold;
        Ok(self)
    }

    /// The same metric under another name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// `(true positives, false positives)` so far.
    pub fn counts(&self) -> (f32, f32) {
        (self.true_positives, self.false_positives)
    }
}

impl Metric for Precision {
    fn name(&self) -> &str {
        &self.name
    }

    /// Counts true and false positives.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming both shapes if they differ.
    fn update_state(&mut self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        let (t, p) = flat("precision", y_true, y_pred)?;
        let (mut tp, mut fp) = (0usize, 0usize);
        for (&t, &p) in t.iter().zip(p) {
            if p > self.threshold {
                if t != 0.0 {
                    tp += 1;
                } else {
                    fp += 1;
                }
            }
        }
        self.true_positives += tp as f32;
        self.false_positives += fp as f32;
        Ok(())
    }

    fn result(&self) -> f32 {
        divide_no_nan(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    fn reset_state(&mut self) {
        self.true_positives = 0.0;
        self.false_positives = 0.0;
    }
}

/// Recall `TP / (TP + FN)` at one threshold (Keras `Recall()`, default
/// threshold 0.5), over all elements seen; 0 before any positive label.
#[derive(Debug, Clone, PartialEq)]
pub struct Recall {
    name: String,
    threshold: f32,
    true_positives: f32,
    false_negatives: f32,
}

impl Default for Recall {
    fn default() -> Self {
        Self::new()
    }
}

impl Recall {
    /// Recall at threshold 0.5, named `"recall"`.
    pub fn new() -> Self {
        Self {
            name: "recall".to_string(),
            threshold: 0.5,
            true_positives: 0.0,
            false_negatives: 0.0,
        }
    }

    /// The same metric at another threshold (`Recall(thresholds=t)`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] unless `0 <= threshold <= 1`.
    pub fn with_threshold(mut self, threshold: f32) -> Result<Self> {
        check_threshold("recall", threshold)?;
        self.threshold = threshold;
        Ok(self)
    }

    /// The same metric under another name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// `(true positives, false negatives)` so far.
    pub fn counts(&self) -> (f32, f32) {
        (self.true_positives, self.false_negatives)
    }
}

impl Metric for Recall {
    fn name(&self) -> &str {
        &self.name
    }

    /// Counts true positives and false negatives.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming both shapes if they differ.
    fn update_state(&mut self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        let (t, p) = flat("recall", y_true, y_pred)?;
        let (mut tp, mut fn_) = (0usize, 0usize);
        for (&t, &p) in t.iter().zip(p) {
            if t != 0.0 {
                if p > self.threshold {
                    tp += 1;
                } else {
                    fn_ += 1;
                }
            }
        }
        self.true_positives += tp as f32;
        self.false_negatives += fn_ as f32;
        Ok(())
    }

    fn result(&self) -> f32 {
        divide_no_nan(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    fn reset_state(&mut self) {
        self.true_positives = 0.0;
        self.false_negatives = 0.0;
    }
}

/// Area under the ROC curve (Keras `AUC()`: `num_thresholds = 200`,
/// `curve="ROC"`, `summation_method="interpolation"`).
///
/// Thresholds, as Keras builds them: `[-ε, 1/(n-1), 2/(n-1), ..., (n-2)/(n-1), 1 + ε]`
/// (`ε = 1e-7`). Per batch, predictions are clipped to `[0, 1]` and each
/// lands in bucket `max(ceil(p (n - 1)) - 1, 0)`; the true and false
/// positives at threshold `i` are the positive and negative labels in
/// buckets `>= i` (Keras' `_update_confusion_matrix_variables_optimized`,
/// exact for `p > t_i`), the false and true negatives the rest. The
/// result sums trapezoids over the curve `(FPR, TPR)`, with
/// `TPR = TP / (TP + FN)` and `FPR = FP / (FP + TN)` (0 where undefined):
/// `Σ_i (FPR_i - FPR_{i+1}) · (TPR_i + TPR_{i+1}) / 2`.
///
/// ```
/// use hebb_layers::metrics::{Auc, Metric};
/// use hebb_tensor::Tensor;
///
/// // The example of Keras' AUC docstring.
/// let mut m = Auc::new().with_num_thresholds(3)?;
/// let t = Tensor::from_vec(vec![0.0, 0.0, 1.0, 1.0], &[4])?;
/// m.update_state(&t, &Tensor::from_vec(vec![0.0, 0.5, 0.3, 0.9], &[4])?)?;
/// assert_eq!(m.result(), 0.75);
/// # Ok::<(), hebb_layers::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Auc {
    name: String,
    from_logits: bool,
    thresholds: Vec<f32>,
    true_positives: Vec<f32>,
    false_positives: Vec<f32>,
    true_negatives: Vec<f32>,
    false_negatives: Vec<f32>,
    /// Per-batch bucket counts of positive and negative labels (reused).
    buckets: Vec<(u32, u32)>,
}

impl Default for Auc {
    fn default() -> Self {
        Self::new()
    }
}

impl Auc {
    /// ROC AUC with 200 thresholds, named `"auc"`.
    pub fn new() -> Self {
        Self::with_thresholds(200)
    }

    fn with_thresholds(n: usize) -> Self {
        let mut thresholds = Vec::with_capacity(n);
        thresholds.push(0.0 - EPSILON);
        thresholds
            .extend((0..n.saturating_sub(2)).map(|i| ((i + 1) as f64 / (n - 1) as f64) as f32));
        thresholds.push(1.0 + EPSILON);
        Self {
            name: "auc".to_string(),
            from_logits: false,
            thresholds,
            true_positives: vec![0.0; n],
            false_positives: vec![0.0; n],
            true_negatives: vec![0.0; n],
            false_negatives: vec![0.0; n],
            buckets: vec![(0, 0); n],
        }
    }

    /// The same metric with `n` thresholds (`AUC(num_thresholds=n)`); the state is reset.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] unless `n > 1`.
    pub fn with_num_thresholds(self, n: usize) -> Result<Self> {
        if n <= 1 {
            return Err(Error::InvalidArgument {
                what: "auc",
                detail: format!("num_thresholds must be > 1, got {n}"),
            });
        }
        Ok(Self {
            name: self.name,
            from_logits: self.from_logits,
            ..Self::with_thresholds(n)
        })
    }

    /// The same metric taking `y_pred` as logits (`AUC(from_logits=True)`:
    /// the sigmoid is applied first).
    #[must_use]
    pub fn with_from_logits(mut self, from_logits: bool) -> Self {
        self.from_logits = from_logits;
        self
    }

    /// The same metric under another name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The thresholds, ascending (Keras' `AUC.thresholds`).
    pub fn thresholds(&self) -> &[f32] {
        &self.thresholds
    }

    /// The confusion counts per threshold: `(TP, FP, TN, FN)`.
    pub fn counts(&self) -> (&[f32], &[f32], &[f32], &[f32]) {
        (
            &self.true_positives,
            &self.false_positives,
            &self.true_negatives,
            &self.false_negatives,
        )
    }
}

impl Metric for Auc {
    fn name(&self) -> &str {
        &self.name
    }

    /// Adds the batch's confusion counts at every threshold.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming both shapes if they differ.
    fn update_state(&mut self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        let (t, p) = flat("auc", y_true, y_pred)?;
        let n = self.thresholds.len();
        let scale = (n - 1) as f32;
        self.buckets.iter_mut().for_each(|b| *b = (0, 0));
        let (mut positives, mut negatives) = (0u32, 0u32);
        for (&t, &p) in t.iter().zip(p) {
            let positive = t != 0.0;
            if positive {
                positives += 1;
            } else {
                negatives += 1;
            }
            let p = if self.from_logits {
                1.0 / (1.0 + (-p).exp())
            } else {
                p
            };
            if p.is_nan() {
                // Keras' int cast of a NaN bucket drops the element from
                // every threshold's positives.
                continue;
            }
            let bucket = ((p.clamp(0.0, 1.0) * scale).ceil() - 1.0).max(0.0) as usize;
            let b = &mut self.buckets[bucket.min(n - 1)];
            if positive {
                b.0 += 1;
            } else {
                b.1 += 1;
            }
        }
        // Reverse cumulative sums: labels predicted above threshold i.
        let (mut tp, mut fp) = (0u32, 0u32);
        for i in (0..n).rev() {
            tp += self.buckets[i].0;
            fp += self.buckets[i].1;
            self.true_positives[i] += tp as f32;
            self.false_positives[i] += fp as f32;
            self.false_negatives[i] += (positives - tp) as f32;
            self.true_negatives[i] += (negatives - fp) as f32;
        }
        Ok(())
    }

    fn result(&self) -> f32 {
        let n = self.thresholds.len();
        let tpr = |i: usize| {
            divide_no_nan(
                self.true_positives[i],
                self.true_positives[i] + self.false_negatives[i],
            )
        };
        let fpr = |i: usize| {
            divide_no_nan(
                self.false_positives[i],
                self.false_positives[i] + self.true_negatives[i],
            )
        };
        let terms: Vec<f32> = (0..n - 1)
            .map(|i| (fpr(i) - fpr(i + 1)) * ((tpr(i) + tpr(i + 1)) / 2.0))
            .collect();
        Tensor::from_vec(terms, &[n - 1])
            .map(|t| t.sum_all().to_vec()[0])
            .unwrap_or(f32::NAN)
    }

    fn reset_state(&mut self) {
        for v in [
            &mut self.true_positives,
            &mut self.false_positives,
            &mut self.true_negatives,
            &mut self.false_negatives,
        ] {
            v.iter_mut().for_each(|x| *x = 0.0);
        }
    }
}
