//! Metrics computed outside the tape.

use hebb_tensor::Tensor;

use crate::{Error, Result};

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
