//! Loss functions, recorded on the tape.
//!
//! Per-sample losses return `[batch]` (like `tf.keras.losses.*`); the
//! lecture then takes `tf.reduce_mean` of them ([`Var::mean_all`]).
//!
//! - [`categorical_crossentropy`] (tf.keras semantics, lecture 12.2):
//!   `p = y_pred / Σ y_pred`, clipped to `[ε, 1 - ε]` with `ε = 1e-7`, then
//!   `-Σ y_true · log(p)` over the last axis. The gradient flows through
//!   exactly that computation; the clip passes none where it clips. A row
//!   of `y_pred` that sums to 0 (all zeros), where Keras divides 0 by 0 and
//!   returns NaN, is clipped first and normalised after, as the sparse loss
//!   treats every row: `Σ y_true · ln k` for `k` classes (`ln 3 = 1.0986123`
//!   for a one-hot label, the sparse loss's value), with a zero gradient.
//! - [`binary_crossentropy`] (Keras 3, `keras/src/backend/tensorflow/nn.py`):
//!   `p` clipped to `[ε, 1 - ε]`, then `-(y log p + (1 - y) log(1 - p))`,
//!   averaged over the last axis.
//! - [`mean_squared_error`] (tf.keras `mse`): `mean((y_true - y_pred)²)` over the last axis.
//! - [`half_squared_error`] (lecture 12.4, 13.1): `1/2 Σ (y - ŷ)²` over all
//!   elements, a scalar.
//!
//! Added with Keras 3 semantics (`keras/src/losses/losses.py` and the
//! TensorFlow backend, `keras/src/backend/tensorflow/nn.py`), all per sample,
//! reducing the last axis:
//!
//! - [`sparse_categorical_crossentropy`]: integer labels `y` (as `f32`
//!   class indices) and probabilities `p`: `p` is clipped to `[ε, 1 - ε]`
//!   (not normalised first), `z = log p`, and the loss is
//!   `-log_softmax(z)[y] = -log p_y + log Σ_j p_j`, which is what
//!   `tf.nn.sparse_softmax_cross_entropy_with_logits(y, log(clip(p)))` computes.
//! - `*_from_logits` ([`categorical_crossentropy_from_logits`],
//!   [`sparse_categorical_crossentropy_from_logits`],
//!   [`binary_crossentropy_from_logits`]): `-Σ y · log_softmax(z)` with
//!   `log_softmax(z) = (z - m) - log Σ exp(z - m)`, `m = max z` taken as a
//!   constant (exact for the gradient, softmax being shift-invariant), as
//!   `tf.nn.softmax_cross_entropy_with_logits` computes it; and
//!   `max(x, 0) - x z + log1p(exp(-|x|))`, averaged over the last axis, as
//!   `tf.nn.sigmoid_cross_entropy_with_logits` computes it (so that a small
//!   loss such as `2.0611537e-9` at `x = 20`, `z = 1` is not lost to `1 + ·`
//!   rounding to 1).
//! - [`mean_absolute_error`] `mean(|y - p|)`, [`mean_absolute_percentage_error`]
//!   `100 · mean(|(y - p) / max(|y|, ε)|)`, [`hinge`]
//!   `mean(max(1 - y p, 0))` (labels in `{0, 1}` become `{-1, 1}`) and
//!   [`categorical_hinge`] `max(max_j((1 - y_j) p_j) - Σ y p + 1, 0)`.
//! - [`Loss`]: the losses by Keras name (`"mse"`, `"sparse_categorical_crossentropy"`, ...)
//!   with a `from_logits` flag, as `model.compile(loss=...)` takes them.
//!
//! ```
//! use hebb_autograd::GradientTape;
//! use hebb_layers::losses::Loss;
//! use hebb_tensor::Tensor;
//!
//! // keras.losses.sparse_categorical_crossentropy([1, 2], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]])
//! let tape = GradientTape::new();
//! let y = tape.constant(Tensor::from_vec(vec![1.0, 2.0], &[2])?);
//! let p = tape.watch_tensor(Tensor::from_vec(vec![0.05, 0.95, 0.0, 0.1, 0.8, 0.1], &[2, 3])?);
//! let loss = Loss::from_name("sparse_categorical_crossentropy")?.call(y, p)?;
//! let l = loss.value().to_vec();
//! assert!((l[0] - 0.0513).abs() < 1e-4 && (l[1] - 2.3026).abs() < 1e-4);
//! let grads = tape.gradient(loss.mean_all(), &[p])?;
//! assert_eq!(grads[0].shape(), &[2, 3]);
//! # Ok::<(), hebb_layers::Error>(())
//! ```

use hebb_autograd::Var;
use hebb_tensor::Tensor;

use crate::{Error, Result};

/// Keras' fuzz factor `ε` (`tf.keras.backend.epsilon()`).
pub const EPSILON: f32 = 1e-7;

fn same_shape(what: &'static str, y_true: Var<'_>, y_pred: Var<'_>) -> Result<usize> {
    let (a, b) = (y_true.shape(), y_pred.shape());
    if a != b || a.is_empty() {
        return Err(Error::InvalidArgument {
            what,
            detail: format!("y_true {a:?} and y_pred {b:?} must have the same shape of rank >= 1"),
        });
    }
    Ok(a.len() - 1)
}

/// Categorical cross-entropy per sample, tf.keras semantics (see module docs).
/// `y_true` is one-hot `[batch, classes]`, `y_pred` probabilities of the same
/// shape; returns `[batch]`.
///
/// `p = clip(y_pred / Σ y_pred, ε, 1 - ε)` and the loss `-Σ y_true · log p`,
/// as `keras.losses.categorical_crossentropy`. A row that sums to 0 has no
/// such `p` (Keras returns NaN there, value and gradient); here it is
/// clipped first and normalised after, `p = clip(y_pred) / Σ clip(y_pred)`,
/// which is what [`sparse_categorical_crossentropy`] does with every row:
/// an all-zero row gives `Σ y_true · ln k` for `k` classes (1.0986123 for a
/// one-hot label and 3 classes, as the sparse loss gives) and, every element
/// being clipped, no gradient to `y_pred`. Other rows are computed as before,
/// bit for bit.
///
/// # Errors
/// [`Error::InvalidArgument`] naming both shapes if they differ.
pub fn categorical_crossentropy<'t>(y_true: Var<'t>, y_pred: Var<'t>) -> Result<Var<'t>> {
    let last = same_shape("categorical_crossentropy", y_true, y_pred)?;
    let tape = y_pred.tape();
    let sum = y_pred.sum(last, true)?;
    // 1 on rows that sum to 0, else 0: such rows are divided by 1 (their
    // zeros are clipped to ε) and then by the sum of the clipped row; every
    // other row by its sum, then by 1 (exact).
    let zero = sum.value().equal(&Tensor::scalar(0.0))?;
    let p = y_pred
        .div(sum.add(tape.constant(zero.clone()))?)?
        .clip(EPSILON, 1.0 - EPSILON)?;
    let keep = tape.constant(zero.neg().add_scalar(1.0));
    let scale = p.sum(last, true)?.mul(tape.constant(zero))?.add(keep)?;
    let p = p.div(scale)?;
    Ok(y_true.mul(p.log())?.sum(last, false)?.neg())
}

/// Binary cross-entropy per sample, tf.keras semantics: `y_pred` are
/// probabilities, `[batch, k]` -> `[batch]`.
///
/// # Errors
/// [`Error::InvalidArgument`] naming both shapes if they differ.
pub fn binary_crossentropy<'t>(y_true: Var<'t>, y_pred: Var<'t>) -> Result<Var<'t>> {
    let last = same_shape("binary_crossentropy", y_true, y_pred)?;
    let p = y_pred.clip(EPSILON, 1.0 - EPSILON)?;
    let pos = y_true.mul(p.log())?;
    let neg = y_true
        .neg()
        .add_scalar(1.0)
        .mul(p.neg().add_scalar(1.0).log())?;
    Ok(pos.add(neg)?.neg().mean(last, false)?)
}

/// Mean squared error per sample (`tf.keras.losses.mse`): `[batch, k]` -> `[batch]`.
///
/// # Errors
/// [`Error::InvalidArgument`] naming both shapes if they differ.
pub fn mean_squared_error<'t>(y_true: Var<'t>, y_pred: Var<'t>) -> Result<Var<'t>> {
    let last = same_shape("mean_squared_error", y_true, y_pred)?;
    Ok(y_pred.sub(y_true)?.square().mean(last, false)?)
}

/// The lecture's `1/2 Σ (y - ŷ)²` over all elements, a scalar (lecture 12.4
/// for one sample; 13.1 sums it over the data set).
///
/// # Errors
/// [`Error::InvalidArgument`] naming both shapes if they differ.
pub fn half_squared_error<'t>(y_true: Var<'t>, y_pred: Var<'t>) -> Result<Var<'t>> {
    if y_true.shape() != y_pred.shape() {
        return Err(Error::InvalidArgument {
            what: "half_squared_error",
            detail: format!(
                "y_true {:?} and y_pred {:?} must have the same shape",
                y_true.shape(),
                y_pred.shape()
            ),
        });
    }
    Ok(y_true.sub(y_pred)?.square().sum_all().mul_scalar(0.5))
}

/// `log_softmax` over the last axis, `(z - m) - log Σ exp(z - m)` with the
/// row maximum `m` recorded as a constant (TensorFlow's
/// `softmax_cross_entropy_with_logits` kernel shifts by the maximum the
/// same way). The gradient is exact: the shift cancels in `z - log Σ exp z`.
fn log_softmax<'t>(what: &'static str, z: Var<'t>) -> Result<Var<'t>> {
    let shape = z.shape();
    let Some(last) = shape.len().checked_sub(1) else {
        return Err(Error::InvalidArgument {
            what,
            detail: "y_pred must have rank >= 1 (the last axis holds the classes), got []"
                .to_string(),
        });
    };
    let m = z.value().max(last, true)?;
    let shifted = z.sub(z.tape().constant(m))?;
    let lse = shifted.exp().sum(last, true)?.log();
    Ok(shifted.sub(lse)?)
}

/// The one-hot encoding, with `y_pred`'s shape, of the class indices in
/// `y_true` (shape `y_pred.shape[..last]`, or that with a trailing 1, which
/// Keras squeezes).
fn sparse_one_hot(what: &'static str, y_true: &Tensor, y_pred: &[usize]) -> Result<Tensor> {
    let Some((&classes, lead)) = y_pred.split_last() else {
        return Err(Error::InvalidArgument {
            what,
            detail: "y_pred must have rank >= 1 (the last axis holds the classes), got []"
                .to_string(),
        });
    };
    let t = y_true.shape();
    let fits =
        t == lead || (t.len() == lead.len() + 1 && t.starts_with(lead) && t.last() == Some(&1));
    if !fits {
        return Err(Error::InvalidArgument {
            what,
            detail: format!(
                "y_true {t:?} must hold one class index per row of y_pred {y_pred:?}, \
                 i.e. have shape {lead:?} or {:?}",
                [lead, &[1]].concat()
            ),
        });
    }
    let labels = class_indices(what, y_true, classes)?;
    let mut data = vec![0.0f32; labels.len() * classes];
    for (row, &label) in labels.iter().enumerate() {
        data[row * classes + label] = 1.0;
    }
    Ok(Tensor::from_vec(data, y_pred)?.to_device(y_true.device())?)
}

/// The `f32` class indices of `labels` as `usize`, each checked to be an
/// integer in `0..classes`.
fn class_indices(what: &'static str, labels: &Tensor, classes: usize) -> Result<Vec<usize>> {
    labels
        .as_slice()
        .iter()
        .enumerate()
        .map(|(i, &v)| class_index(what, i, v, classes))
        .collect()
}

/// The class index `v` (an `f32` label at `position`) as `usize`.
///
/// # Errors
/// [`Error::InvalidArgument`] naming the label and its position unless it
/// is an integer in `0..classes`.
pub(crate) fn class_index(
    what: &'static str,
    position: usize,
    v: f32,
    classes: usize,
) -> Result<usize> {
    if v.fract() == 0.0 && v >= 0.0 && (v as usize) < classes {
        Ok(v as usize)
    } else {
        Err(Error::InvalidArgument {
            what,
            detail: format!(
                "label {v} at position {position} is not a class index (an integer in 0..{classes})"
            ),
        })
    }
}

/// Sparse categorical cross-entropy per row, Keras 3 semantics (see the
/// module docs): `y_true` holds class indices as `f32`, shape `[batch]` or
/// `[batch, 1]` (Keras accepts both); `y_pred` probabilities `[batch, classes]`
/// (more generally `[..., classes]` with `y_true` `[...]`); returns `[batch]`.
///
/// `p = clip(y_pred, ε, 1 - ε)`, loss `= -log p_y + log Σ_j p_j`
/// (`keras/src/backend/tensorflow/nn.py`, `sparse_categorical_crossentropy`:
/// clip, log, then `sparse_softmax_cross_entropy_with_logits`). For rows
/// that sum to 1 and lie inside the clip range this is `-log p_y`. The
/// gradient flows to `y_pred` only; clipped elements pass none.
///
/// # Errors
/// [`Error::InvalidArgument`] if the shapes do not fit (naming both) or a
/// label is not an integer in `0..classes` (naming the label and its position).
pub fn sparse_categorical_crossentropy<'t>(y_true: Var<'t>, y_pred: Var<'t>) -> Result<Var<'t>> {
    const WHAT: &str = "sparse_categorical_crossentropy";
    let onehot = sparse_one_hot(WHAT, &y_true.value(), &y_pred.shape())?;
    let last = onehot.rank() - 1;
    let logits = y_pred.clip(EPSILON, 1.0 - EPSILON)?.log();
    let lsm = log_softmax(WHAT, logits)?;
    Ok(y_pred
        .tape()
        .constant(onehot)
        .mul(lsm)?
        .sum(last, false)?
        .neg())
}

/// Sparse categorical cross-entropy from logits (`from_logits=True`):
/// `-log_softmax(y_pred)[y]` per row (`tf.nn.sparse_softmax_cross_entropy_with_logits`).
/// Shapes and labels as [`sparse_categorical_crossentropy`].
///
/// # Errors
/// As [`sparse_categorical_crossentropy`].
pub fn sparse_categorical_crossentropy_from_logits<'t>(
    y_true: Var<'t>,
    y_pred: Var<'t>,
) -> Result<Var<'t>> {
    const WHAT: &str = "sparse_categorical_crossentropy";
    let onehot = sparse_one_hot(WHAT, &y_true.value(), &y_pred.shape())?;
    let last = onehot.rank() - 1;
    let lsm = log_softmax(WHAT, y_pred)?;
    Ok(y_pred
        .tape()
        .constant(onehot)
        .mul(lsm)?
        .sum(last, false)?
        .neg())
}

/// Categorical cross-entropy from logits (`from_logits=True`):
/// `-Σ y_true · log_softmax(y_pred)` over the last axis
/// (`tf.nn.softmax_cross_entropy_with_logits`); `[batch, classes]` -> `[batch]`.
/// The gradient flows to both `y_true` and `y_pred`.
///
/// # Errors
/// [`Error::InvalidArgument`] naming both shapes if they differ.
pub fn categorical_crossentropy_from_logits<'t>(
    y_true: Var<'t>,
    y_pred: Var<'t>,
) -> Result<Var<'t>> {
    const WHAT: &str = "categorical_crossentropy";
    let last = same_shape(WHAT, y_true, y_pred)?;
    let lsm = log_softmax(WHAT, y_pred)?;
    Ok(y_true.mul(lsm)?.sum(last, false)?.neg())
}

/// Binary cross-entropy from logits (`from_logits=True`), averaged over the
/// last axis: `[batch, k]` -> `[batch]`. Per element, with `x` the logit and
/// `z` the label, `max(x, 0) - x z + log1p(exp(-|x|))`, the numerically
/// stable form of `-(z log σ(x) + (1 - z) log(1 - σ(x)))` that
/// `tf.nn.sigmoid_cross_entropy_with_logits` uses, including its choice of
/// branch at `x = 0` (`x >= 0` takes `max(x, 0) = x`, `-|x| = -x`), so the
/// gradient there is `σ(0) - z`. The first two terms are taken as one
/// product `x ([x >= 0] - z)` (the same value for labels 0 and 1, within an
/// ulp for soft labels), so that the gradient `σ(x) - z` of a confident
/// right prediction is not rounded away: `x = 20`, `z = 1` gives the loss
/// `2.0611537e-9` and the gradient `-2.0611537e-9`.
///
/// # Errors
/// [`Error::InvalidArgument`] naming both shapes if they differ.
pub fn binary_crossentropy_from_logits<'t>(y_true: Var<'t>, y_pred: Var<'t>) -> Result<Var<'t>> {
    let last = same_shape("binary_crossentropy", y_true, y_pred)?;
    let tape = y_pred.tape();
    let nonneg = y_pred.value().greater_equal(&Tensor::scalar(0.0))?;
    // -|x| = x (1 - 2 [x >= 0]); max(x, 0) - x z = x ([x >= 0] - z), one
    // product, so that its gradient [x >= 0] - z is exact (0 at x = 20,
    // z = 1) and does not swallow the softplus term's -2e-9.
    let sign = tape.constant(nonneg.mul_scalar(-2.0).add_scalar(1.0));
    let linear = y_pred.mul(tape.constant(nonneg).sub(y_true)?)?;
    let neg_abs = y_pred.mul(sign)?;
    let softplus = neg_abs.exp().log1p();
    Ok(linear.add(softplus)?.mean(last, false)?)
}

/// Mean absolute error per sample (Keras `mean_absolute_error`, `"mae"`):
/// `mean(|y_true - y_pred|)` over the last axis, `[batch, k]` -> `[batch]`.
/// The gradient of `|x|` is `sign(x)` (0 at 0, as TensorFlow's).
///
/// # Errors
/// [`Error::InvalidArgument`] naming both shapes if they differ.
pub fn mean_absolute_error<'t>(y_true: Var<'t>, y_pred: Var<'t>) -> Result<Var<'t>> {
    let last = same_shape("mean_absolute_error", y_true, y_pred)?;
    Ok(y_true.sub(y_pred)?.abs().mean(last, false)?)
}

/// Mean absolute percentage error per sample (Keras
/// `mean_absolute_percentage_error`, `"mape"`):
/// `100 · mean(|(y_true - y_pred) / max(|y_true|, ε)|)` over the last axis,
/// `[batch, k]` -> `[batch]`.
///
/// # Errors
/// [`Error::InvalidArgument`] naming both shapes if they differ.
pub fn mean_absolute_percentage_error<'t>(y_true: Var<'t>, y_pred: Var<'t>) -> Result<Var<'t>> {
    let last = same_shape("mean_absolute_percentage_error", y_true, y_pred)?;
    let eps = y_true.tape().constant(Tensor::scalar(EPSILON));
    let diff = y_true.sub(y_pred)?.div(y_true.abs().maximum(eps)?)?.abs();
    Ok(diff.mean(last, false)?.mul_scalar(100.0))
}

/// Hinge loss per sample (Keras `hinge`): `mean(max(1 - y_true · y_pred, 0))`
/// over the last axis, `[batch, k]` -> `[batch]`. Labels are expected in
/// `{-1, 1}`; if every label is 0 or 1 they are first mapped to `2 y - 1`,
/// as Keras' `convert_binary_labels_to_hinge` does. At the kink the
/// gradient is that of `1 - y p` (TensorFlow's `maximum` rule).
///
/// # Errors
/// [`Error::InvalidArgument`] naming both shapes if they differ.
pub fn hinge<'t>(y_true: Var<'t>, y_pred: Var<'t>) -> Result<Var<'t>> {
    let last = same_shape("hinge", y_true, y_pred)?;
    let binary = y_true
        .value()
        .to_vec()
        .iter()
        .all(|&v| v == 0.0 || v == 1.0);
    let y = if binary {
        y_true.mul_scalar(2.0).add_scalar(-1.0)
    } else {
        y_true
    };
    let zero = y_pred.tape().constant(Tensor::scalar(0.0));
    let margin = y.mul(y_pred)?.neg().add_scalar(1.0);
    Ok(margin.maximum(zero)?.mean(last, false)?)
}

/// The maximum over the last axis, with TensorFlow's `reduce_max` gradient:
/// the incoming gradient is shared equally among the elements equal to the
/// maximum. The value is the exact maximum.
fn max_last<'t>(x: Var<'t>) -> Result<Var<'t>> {
    let tape = x.tape();
    let v = x.value();
    let last = v.rank() - 1;
    let m = v.max(last, true)?;
    let hits = v.equal(&m)?;
    let share = hits.div(&hits.sum(last, true)?)?;
    let weighted = x.mul(tape.constant(share))?.sum(last, false)?;
    // `weighted` equals the maximum up to rounding; add back the difference
    // as a constant so that the value is the maximum itself.
    let m = m.reshape(weighted.value().shape())?;
    let fix = m.sub(&weighted.value())?;
    Ok(weighted.add(tape.constant(fix))?)
}

/// Categorical hinge loss per sample (Keras `categorical_hinge`):
/// `max(neg - pos + 1, 0)` with `pos = Σ y_true · y_pred` and
/// `neg = max((1 - y_true) · y_pred)` over the last axis, `[batch, k]` -> `[batch]`.
/// At ties of the inner maximum the gradient is shared (TensorFlow's `reduce_max` rule).
///
/// # Errors
/// [`Error::InvalidArgument`] naming both shapes if they differ.
pub fn categorical_hinge<'t>(y_true: Var<'t>, y_pred: Var<'t>) -> Result<Var<'t>> {
    let last = same_shape("categorical_hinge", y_true, y_pred)?;
    if y_pred.shape()[last] == 0 {
        return Err(Error::InvalidArgument {
            what: "categorical_hinge",
            detail: format!("y_pred {:?} has an empty last axis", y_pred.shape()),
        });
    }
    let pos = y_true.mul(y_pred)?.sum(last, false)?;
    let neg = max_last(y_true.neg().add_scalar(1.0).mul(y_pred)?)?;
    let zero = y_pred.tape().constant(Tensor::scalar(0.0));
    Ok(neg.sub(pos)?.add_scalar(1.0).maximum(zero)?)
}

/// Keras' `squeeze_or_expand_to_same_rank` (`keras/src/losses/loss.py`), as
/// `LossFunctionWrapper.call` applies it: if the ranks differ by one and the
/// longer shape ends in 1, a rank-1 operand gets a trailing 1, otherwise
/// the longer one loses its trailing 1. `[batch]` labels thus meet
/// `[batch, 1]` predictions as `[batch, 1]`.
fn squeeze_or_expand<'t>(y_true: Var<'t>, y_pred: Var<'t>) -> Result<(Var<'t>, Var<'t>)> {
    fn fit<'t>(long: Var<'t>, short: Var<'t>) -> Result<(Var<'t>, Var<'t>)> {
        let (ls, ss) = (long.shape(), short.shape());
        if ls.len() == ss.len() + 1 && ls.last() == Some(&1) {
            if ss.len() == 1 {
                return Ok((long, short.reshape(&[ss[0], 1])?));
            }
            return Ok((long.reshape(&ls[..ls.len() - 1])?, short));
        }
        Ok((long, short))
    }
    let (t, p) = (y_true.shape().len(), y_pred.shape().len());
    if t == p + 1 {
        fit(y_true, y_pred)
    } else if p == t + 1 {
        let (p, t) = fit(y_pred, y_true)?;
        Ok((t, p))
    } else {
        Ok((y_true, y_pred))
    }
}

/// A loss by Keras name, as `model.compile(loss=...)` takes it
/// (`keras/src/losses/__init__.py`, `keras/src/losses/losses.py`).
///
/// [`call`](Self::call) returns per-sample losses `[batch]`; training takes
/// their mean (Keras' default `"sum_over_batch_size"` reduction), e.g. with
/// [`Var::mean_all`]. The cross-entropies carry Keras' `from_logits` flag
/// (default `false`: `y_pred` are probabilities). [`call`](Self::call)
/// takes `y_pred` as given; a `Sequential` model (hebb-models) compiled
/// with `from_logits: true` on a softmax (or, for the binary loss, sigmoid)
/// output layer hands it that layer's logits, with Keras' warning, as
/// Keras' TensorFlow backend does, so that the activation is not applied twice.
///
/// | variant | Keras name | function |
/// |---|---|---|
/// | [`MeanSquaredError`](Self::MeanSquaredError) | `mean_squared_error`, `mse` | [`mean_squared_error`] |
/// | [`MeanAbsoluteError`](Self::MeanAbsoluteError) | `mean_absolute_error`, `mae` | [`mean_absolute_error`] |
/// | [`MeanAbsolutePercentageError`](Self::MeanAbsolutePercentageError) | `mean_absolute_percentage_error`, `mape` | [`mean_absolute_percentage_error`] |
/// | [`BinaryCrossentropy`](Self::BinaryCrossentropy) | `binary_crossentropy`, `bce` | [`binary_crossentropy`], [`binary_crossentropy_from_logits`] |
/// | [`CategoricalCrossentropy`](Self::CategoricalCrossentropy) | `categorical_crossentropy` | [`categorical_crossentropy`], [`categorical_crossentropy_from_logits`] |
/// | [`SparseCategoricalCrossentropy`](Self::SparseCategoricalCrossentropy) | `sparse_categorical_crossentropy` | [`sparse_categorical_crossentropy`], [`sparse_categorical_crossentropy_from_logits`] |
/// | [`Hinge`](Self::Hinge) | `hinge` | [`hinge`] |
/// | [`CategoricalHinge`](Self::CategoricalHinge) | `categorical_hinge` | [`categorical_hinge`] |
///
/// [`binary_crossentropy`] (probabilities) follows Keras 3, which no longer
/// adds `ε` inside the logarithms as tf.keras 2 did; the two agree except for
/// predictions at the clip bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Loss {
    /// Mean squared error.
    MeanSquaredError,
    /// Mean absolute error.
    MeanAbsoluteError,
    /// Mean absolute percentage error.
    MeanAbsolutePercentageError,
    /// Binary cross-entropy; `y_pred` logits if `from_logits`.
    BinaryCrossentropy {
        /// `y_pred` are logits rather than probabilities.
        from_logits: bool,
    },
    /// Categorical cross-entropy with one-hot (or soft) labels.
    CategoricalCrossentropy {
        /// `y_pred` are logits rather than probabilities.
        from_logits: bool,
    },
    /// Categorical cross-entropy with integer labels (class indices as `f32`).
    SparseCategoricalCrossentropy {
        /// `y_pred` are logits rather than probabilities.
        from_logits: bool,
    },
    /// Hinge loss.
    Hinge,
    /// Categorical hinge loss.
    CategoricalHinge,
}

impl Loss {
    /// The names [`from_name`](Self::from_name) accepts: Keras' function
    /// names, class names and aliases.
    pub const NAMES: &'static [&'static str] = &[
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
        "binary_crossentropy",
        "BinaryCrossentropy",
        "bce",
        "BCE",
        "categorical_crossentropy",
        "CategoricalCrossentropy",
        "sparse_categorical_crossentropy",
        "SparseCategoricalCrossentropy",
        "hinge",
        "Hinge",
        "categorical_hinge",
        "CategoricalHinge",
    ];

    /// The loss `keras.losses.get(name)` returns, with `from_logits = false`.
    /// Names are case-sensitive, as in Keras.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown name, listing [`NAMES`](Self::NAMES).
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "mean_squared_error" | "MeanSquaredError" | "mse" | "MSE" => Self::MeanSquaredError,
            "mean_absolute_error" | "MeanAbsoluteError" | "mae" | "MAE" => Self::MeanAbsoluteError,
            "mean_absolute_percentage_error" | "MeanAbsolutePercentageError" | "mape" | "MAPE" => {
                Self::MeanAbsolutePercentageError
            }
            "binary_crossentropy" | "BinaryCrossentropy" | "bce" | "BCE" => {
                Self::BinaryCrossentropy { from_logits: false }
            }
            "categorical_crossentropy" | "CategoricalCrossentropy" => {
                Self::CategoricalCrossentropy { from_logits: false }
            }
            "sparse_categorical_crossentropy" | "SparseCategoricalCrossentropy" => {
                Self::SparseCategoricalCrossentropy { from_logits: false }
            }
            "hinge" | "Hinge" => Self::Hinge,
            "categorical_hinge" | "CategoricalHinge" => Self::CategoricalHinge,
            _ => {
                return Err(Error::InvalidArgument {
                    what: "loss",
                    detail: format!(
                        "unknown loss {name:?}; known names: {}",
                        Self::NAMES.join(", ")
                    ),
                });
            }
        })
    }

    /// Keras' function name of the loss (`"sparse_categorical_crossentropy"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::MeanSquaredError => "mean_squared_error",
            Self::MeanAbsoluteError => "mean_absolute_error",
            Self::MeanAbsolutePercentageError => "mean_absolute_percentage_error",
            Self::BinaryCrossentropy { .. } => "binary_crossentropy",
            Self::CategoricalCrossentropy { .. } => "categorical_crossentropy",
            Self::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
            Self::Hinge => "hinge",
            Self::CategoricalHinge => "categorical_hinge",
        }
    }

    /// Whether `y_pred` is taken as logits (always `false` for the
    /// non-cross-entropy losses).
    pub fn from_logits(&self) -> bool {
        match *self {
            Self::BinaryCrossentropy { from_logits }
            | Self::CategoricalCrossentropy { from_logits }
            | Self::SparseCategoricalCrossentropy { from_logits } => from_logits,
            _ => false,
        }
    }

    /// The same loss with `from_logits` set (Keras' `BinaryCrossentropy(from_logits=True)`, ...).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `from_logits` is `true` for a loss
    /// that has no such option (all but the cross-entropies).
    pub fn with_from_logits(self, from_logits: bool) -> Result<Self> {
        match self {
            Self::BinaryCrossentropy { .. } => Ok(Self::BinaryCrossentropy { from_logits }),
            Self::CategoricalCrossentropy { .. } => {
                Ok(Self::CategoricalCrossentropy { from_logits })
            }
            Self::SparseCategoricalCrossentropy { .. } => {
                Ok(Self::SparseCategoricalCrossentropy { from_logits })
            }
            _ if !from_logits => Ok(self),
            _ => Err(Error::InvalidArgument {
                what: "loss",
                detail: format!("{} has no from_logits option", self.name()),
            }),
        }
    }

    /// Whether `y_true` holds class indices rather than values shaped like `y_pred`.
    pub fn is_sparse(&self) -> bool {
        matches!(self, Self::SparseCategoricalCrossentropy { .. })
    }

    /// Per-sample losses `[batch]` (`loss_fn(y_true, y_pred)` without
    /// reduction), recorded on the tape.
    ///
    /// `y_true` and `y_pred` first go through Keras' rank adjustment (a
    /// `[batch]` operand meets a `[batch, 1]` one as `[batch, 1]`). For the
    /// sparse loss `y_true` holds class indices as `f32`, shape `[batch]`
    /// or `[batch, 1]`, and `y_pred` is `[batch, classes]`; otherwise both
    /// have one shape `[batch, k]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the shapes do not fit (naming both)
    /// or, for the sparse loss, when a label is not an integer in
    /// `0..classes` (naming the label and its position).
    pub fn call<'t>(&self, y_true: Var<'t>, y_pred: Var<'t>) -> Result<Var<'t>> {
        let (y_true, y_pred) = squeeze_or_expand(y_true, y_pred)?;
        match *self {
            Self::MeanSquaredError => mean_squared_error(y_true, y_pred),
            Self::MeanAbsoluteError => mean_absolute_error(y_true, y_pred),
            Self::MeanAbsolutePercentageError => mean_absolute_percentage_error(y_true, y_pred),
            Self::BinaryCrossentropy { from_logits: false } => binary_crossentropy(y_true, y_pred),
            Self::BinaryCrossentropy { from_logits: true } => {
                binary_crossentropy_from_logits(y_true, y_pred)
            }
            Self::CategoricalCrossentropy { from_logits: false } => {
                categorical_crossentropy(y_true, y_pred)
            }
            Self::CategoricalCrossentropy { from_logits: true } => {
                categorical_crossentropy_from_logits(y_true, y_pred)
            }
            Self::SparseCategoricalCrossentropy { from_logits: false } => {
                sparse_categorical_crossentropy(y_true, y_pred)
            }
            Self::SparseCategoricalCrossentropy { from_logits: true } => {
                sparse_categorical_crossentropy_from_logits(y_true, y_pred)
            }
            Self::Hinge => hinge(y_true, y_pred),
            Self::CategoricalHinge => categorical_hinge(y_true, y_pred),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hebb_autograd::GradientTape;
    use hebb_tensor::Tensor;

    fn t(v: &[f32], s: &[usize]) -> Tensor {
        Tensor::from_vec(v.to_vec(), s).unwrap()
    }

    #[test]
    fn categorical_crossentropy_follows_keras() {
        let tape = GradientTape::new();
        let y = tape.constant(t(&[0., 1., 0., 0., 0., 1.], &[2, 3]));
        // Unnormalised predictions are divided by their sum; zeros are clipped to 1e-7.
        let p = tape.watch_tensor(t(&[0.2, 0.6, 0.2, 1.0, 0.0, 0.0], &[2, 3]));
        let l = categorical_crossentropy(y, p).unwrap().value().to_vec();
        assert!((l[0] - 0.6f32.ln().abs()).abs() < 1e-6);
        assert!((l[1] - (-(1e-7f32).ln())).abs() < 1e-4, "{}", l[1]);
        // The clipped element passes no gradient.
        let loss = categorical_crossentropy(y, p).unwrap().mean_all();
        let g = tape.gradient(loss, &[p]).unwrap()[0].to_vec();
        assert_eq!(g[5], 0.0);
        assert!(g[1] < 0.0);
        let err = categorical_crossentropy(y, tape.constant(Tensor::zeros(&[2, 4]))).unwrap_err();
        assert!(err.to_string().contains("[2, 3]") && err.to_string().contains("[2, 4]"));
    }

    #[test]
    fn squared_errors() {
        let tape = GradientTape::new();
        let y = tape.constant(t(&[0.8], &[1, 1]));
        let p = tape.constant(t(&[0.59], &[1, 1]));
        let h = half_squared_error(y, p).unwrap().value().item().unwrap();
        assert!((h - 0.02205).abs() < 1e-7);
        let m = mean_squared_error(y, p).unwrap().value().to_vec();
        assert!((m[0] - 0.0441).abs() < 1e-7);
    }

    #[test]
    fn binary_crossentropy_known_value() {
        let tape = GradientTape::new();
        let y = tape.constant(t(&[1., 0.], &[1, 2]));
        let p = tape.constant(t(&[0.9, 0.2], &[1, 2]));
        let l = binary_crossentropy(y, p).unwrap().value().to_vec()[0];
        let want = (-(0.9f64.ln()) - 0.8f64.ln()) / 2.0;
        assert!((f64::from(l) - want).abs() < 1e-6, "{l} vs {want}");
    }
}
