//! Loss functions, recorded on the tape.
//!
//! Per-sample losses return `[batch]` (like `tf.keras.losses.*`); the
//! lecture then takes `tf.reduce_mean` of them ([`Var::mean_all`]).
//!
//! - [`categorical_crossentropy`] (tf.keras semantics, lecture 12.2):
//!   `p = y_pred / Σ y_pred`, clipped to `[ε, 1 - ε]` with `ε = 1e-7`, then
//!   `-Σ y_true · log(p)` over the last axis. The gradient flows through
//!   exactly that computation; the clip passes none where it clips.
//! - [`binary_crossentropy`] (tf.keras): `p` clipped to `[ε, 1 - ε]`, then
//!   `-(y log p + (1 - y) log(1 - p))`, averaged over the last axis.
//! - [`mean_squared_error`] (tf.keras `mse`): `mean((y_true - y_pred)²)` over the last axis.
//! - [`half_squared_error`] (lecture 12.4, 13.1): `1/2 Σ (y - ŷ)²` over all
//!   elements, a scalar.

use hebb_autograd::Var;

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
/// # Errors
/// [`Error::InvalidArgument`] naming both shapes if they differ.
pub fn categorical_crossentropy<'t>(y_true: Var<'t>, y_pred: Var<'t>) -> Result<Var<'t>> {
    let last = same_shape("categorical_crossentropy", y_true, y_pred)?;
    let p = y_pred
        .div(y_pred.sum(last, true)?)?
        .clip(EPSILON, 1.0 - EPSILON)?;
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
    let pos = y_true.mul(p.add_scalar(EPSILON).log())?;
    let neg = y_true
        .neg()
        .add_scalar(1.0)
        .mul(p.neg().add_scalar(1.0).add_scalar(EPSILON).log())?;
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
