//! Softmax along the last axis, computed as TensorFlow's CPU kernel does:
//! `e = exp(x - max(x))`, then `e * (1 / sum(e))`.
//!
//! `softmax(z)_i = e^{z_i} / Σ_j e^{z_j}` (lecture 12.1, `tf.nn.softmax`).
//! Subtracting the row maximum keeps `exp` from overflowing; multiplying by
//! the reciprocal of the sum (rather than dividing) matches TensorFlow's
//! rounding, so that the lecture's printed losses are reproduced exactly.

mod cpu_kernel;

use crate::{Error, Result, Tensor};

/// Softmax of one row of logits, in place: the kernel behind
/// [`Tensor::softmax`] (same rounding), for code that keeps its own buffers
/// (a fused training step). Returns the row's `(max, sum)` with
/// `sum = Σ exp(x - max)`, so `log Σ exp(x) = max + ln(sum)`, the parts
/// `tf.nn.sparse_softmax_cross_entropy_with_logits` computes its loss from.
/// An empty row returns `(-inf, 0)`.
pub fn softmax_row_in_place(row: &mut [f32]) -> (f32, f32) {
    cpu_kernel::softmax_row_in_place(row)
}

impl Tensor {
    /// Softmax over the last axis: each row of `[.., classes]` becomes a
    /// probability distribution.
    ///
    /// # Errors
    /// [`Error::Rank`] for a scalar; [`Error::EmptyReduction`] if the last axis is empty.
    pub fn softmax(&self) -> Result<Tensor> {
        let Some(&classes) = self.shape.last() else {
            return Err(Error::Rank {
                op: "softmax",
                expected: 1,
                shape: Vec::new(),
            });
        };
        if classes == 0 {
            return Err(Error::EmptyReduction {
                op: "softmax",
                shape: self.shape.clone(),
            });
        }
        Ok(Tensor::from_parts(
            cpu_kernel::softmax(self.as_slice(), classes),
            self.shape.clone(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_to_one_and_are_shift_invariant() {
        let z = Tensor::from_vec(vec![1., 2., 3., 1000., 1001., 1002.], &[2, 3]).unwrap();
        let p = z.softmax().unwrap().to_vec();
        assert!((p[0] - 0.090_030_57).abs() < 1e-7);
        assert!((p[2] - 0.665_240_9).abs() < 1e-6);
        assert_eq!(&p[0..3], &p[3..6]);
        assert!(Tensor::scalar(1.0).softmax().is_err());
    }
}
