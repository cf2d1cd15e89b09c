//! Softmax along the last axis, computed as TensorFlow's CPU kernel does:
//! `e = exp(x - max(x))`, then `e * (1 / sum(e))`.
//!
//! `softmax(z)_i = e^{z_i} / Σ_j e^{z_j}` (lecture 12.1, `tf.nn.softmax`).
//! Subtracting the row maximum keeps `exp` from overflowing; multiplying by
//! the reciprocal of the sum (rather than dividing) matches TensorFlow's
//! rounding, so that the lecture's printed losses are reproduced exactly.
//!
//! The fused losses [`Tensor::softmax_cross_entropy`] and
//! [`Tensor::sigmoid_cross_entropy`] return each row's loss and the gradient
//! of the summed loss with respect to the logits in one pass, computed
//! stably (TensorFlow's `*_cross_entropy_with_logits`).
//!
//! On a GPU (feature `cuda`) the same formulas run as kernels: softmax with
//! one warp per row, the cross-entropies with one thread per row.

mod cpu_kernel;
#[cfg(feature = "cuda")]
pub(crate) mod cuda_kernel;

use cpu_kernel::Labels;

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
    /// On a GPU the same formula runs with one warp per row (the sum is
    /// added in another order, so results agree to rounding).
    ///
    /// # Errors
    /// [`Error::Rank`] for a scalar; [`Error::EmptyReduction`] if the last
    /// axis is empty; [`Error::Cuda`] if the kernel fails on a GPU.
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
        #[cfg(feature = "cuda")]
        if let Some(x) = self.cuda() {
            return cuda_kernel::softmax(x, &self.shape, (self.len() / classes, classes));
        }
        Ok(Tensor::from_parts(
            cpu_kernel::softmax(self.as_slice(), classes),
            self.shape.clone(),
        ))
    }

    /// Softmax cross-entropy of logits `[n, c]` (`self`) against `labels`,
    /// with the gradient: `(loss, grad)`, loss `[n]` per row and grad
    /// `[n, c]` the gradient of the **summed** loss `Σ_r loss_r` with
    /// respect to the logits (divide by `n` for the mean).
    ///
    /// `labels` is either
    /// - sparse, `[n]`: class indices stored as `f32`
    ///   (`tf.nn.sparse_softmax_cross_entropy_with_logits`), or
    /// - dense, `[n, c]`: target probabilities `y`
    ///   (`tf.nn.softmax_cross_entropy_with_logits`).
    ///
    /// For a row `z` with targets `y` (a sparse label `t` is the one-hot `y`):
    ///
    /// ```text
    /// loss = -Σ_j y_j · log softmax(z)_j = Σ_j y_j · (logsumexp(z) - z_j)
    ///      = logsumexp(z) - Σ_j y_j z_j          when Σ_j y_j = 1
    /// grad_j = softmax(z)_j · Σ_k y_k - y_j      (softmax(z) - onehot(t) when sparse)
    /// ```
    ///
    /// computed stably from the row maximum `m` and `s = Σ_j e^{z_j - m}`:
    /// `logsumexp(z) - z_j = (m - z_j) + ln s`, never forming `e^{z_j}`, so
    /// logits of any magnitude (say `1e4`) give finite results. Terms with
    /// `y_j = 0` are skipped. `softmax(z)` is [`softmax`](Self::softmax)'s
    /// (same rounding). On the CPU each row is one pass; on a GPU one fused
    /// kernel runs a thread per row.
    ///
    /// ```
    /// use hebb_tensor::Tensor;
    /// let z = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[1, 3])?;
    /// let (loss, grad) = z.softmax_cross_entropy(&Tensor::from_vec(vec![2.0], &[1])?)?;
    /// assert!((loss.to_vec()[0] - 0.407_606).abs() < 1e-6);
    /// assert!((grad.to_vec()[2] + 0.334_759).abs() < 1e-6); // softmax - 1
    /// # Ok::<(), hebb_tensor::Error>(())
    /// ```
    ///
    /// Sparse labels on a GPU are checked only if the tensor already has
    /// its host copy (checking would otherwise wait for the device): a
    /// device label that is not an integer in `0..c` gives that row a NaN
    /// loss and a NaN gradient row instead of an error.
    ///
    /// # Errors
    /// [`Error::Rank`] unless the logits are rank 2;
    /// [`Error::DeviceMismatch`] if the tensors are on different devices;
    /// [`Error::ShapeMismatch`] (naming both shapes) unless `labels` is `[n]`
    /// or `[n, c]`; [`Error::EmptyReduction`] if `c = 0`;
    /// [`Error::Index`] for a sparse label that is a whole number `>= c`,
    /// [`Error::InvalidArgument`] for one that is negative, fractional or
    /// not finite; [`Error::Cuda`] if the kernel fails on a GPU.
    pub fn softmax_cross_entropy(&self, labels: &Tensor) -> Result<(Tensor, Tensor)> {
        const OP: &str = "softmax_cross_entropy";
        self.expect_rank(2, OP)?;
        self.same_device(labels, OP)?;
        let (rows, classes) = (self.shape[0], self.shape[1]);
        let sparse = match *labels.shape() {
            [n] if n == rows => true,
            [n, c] if n == rows && c == classes => false,
            _ => {
                return Err(Error::ShapeMismatch {
                    op: OP,
                    lhs: self.shape.clone(),
                    rhs: labels.shape.clone(),
                    detail: format!(
                        "labels must be [{rows}] class indices or [{rows}, {classes}] probabilities"
                    ),
                });
            }
        };
        if classes == 0 {
            return Err(Error::EmptyReduction {
                op: OP,
                shape: self.shape.clone(),
            });
        }
        #[cfg(feature = "cuda")]
        if let (Some(z), Some(y)) = (self.cuda(), labels.cuda()) {
            let kernel = if sparse {
                // Free only when the host copy exists; else the kernel writes NaN.
                if let Some(host) = y.host.get() {
                    cpu_kernel::check_sparse(host, classes)?;
                }
                "softmax_xent_sparse"
            } else {
                "softmax_xent_dense"
            };
            return cuda_kernel::cross_entropy(kernel, z, y, (rows, classes));
        }
        let y = labels.as_slice();
        let y = if sparse {
            cpu_kernel::check_sparse(y, classes)?;
            Labels::Sparse(y)
        } else {
            Labels::Dense(y)
        };
        let (loss, grad) = cpu_kernel::softmax_cross_entropy(self.as_slice(), y, classes);
        Ok((
            Tensor::from_parts(loss, vec![rows]),
            Tensor::from_parts(grad, vec![rows, classes]),
        ))
    }

    /// Sigmoid (binary) cross-entropy of logits `[n, c]` (`self`) against
    /// targets `labels` `[n, c]` in `[0, 1]`, averaged over each row, with
    /// the gradient: `(loss, grad)`, loss `[n]` and grad `[n, c]` the
    /// gradient of the **summed** loss `Σ_r loss_r` with respect to the
    /// logits.
    ///
    /// Each element is TensorFlow's stable
    /// `tf.nn.sigmoid_cross_entropy_with_logits`,
    /// `max(z, 0) - z·y + ln(1 + e^{-|z|})` (which equals
    /// `-y·ln σ(z) - (1 - y)·ln(1 - σ(z))` without overflowing), and each row
    /// is their mean over the `c` columns, as Keras' `binary_crossentropy`
    /// takes it:
    ///
    /// ```text
    /// loss_r  = (1/c) Σ_j max(z_rj, 0) - z_rj·y_rj + ln(1 + e^{-|z_rj|})
    /// grad_rj = (σ(z_rj) - y_rj) / c
    /// ```
    ///
    /// with `σ` as [`sigmoid`](Self::sigmoid) computes it. On a GPU one
    /// fused kernel runs a thread per row.
    ///
    /// # Errors
    /// [`Error::Rank`] unless the logits are rank 2;
    /// [`Error::DeviceMismatch`] if the tensors are on different devices;
    /// [`Error::ShapeMismatch`] (naming both shapes) unless `labels` has the
    /// logits' shape; [`Error::EmptyReduction`] if `c = 0`;
    /// [`Error::Cuda`] if the kernel fails on a GPU.
    pub fn sigmoid_cross_entropy(&self, labels: &Tensor) -> Result<(Tensor, Tensor)> {
        const OP: &str = "sigmoid_cross_entropy";
        self.expect_rank(2, OP)?;
        self.same_device(labels, OP)?;
        if labels.shape != self.shape {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: self.shape.clone(),
                rhs: labels.shape.clone(),
                detail: "labels must have the logits' shape".into(),
            });
        }
        let (rows, classes) = (self.shape[0], self.shape[1]);
        if classes == 0 {
            return Err(Error::EmptyReduction {
                op: OP,
                shape: self.shape.clone(),
            });
        }
        #[cfg(feature = "cuda")]
        if let (Some(z), Some(y)) = (self.cuda(), labels.cuda()) {
            return cuda_kernel::cross_entropy("sigmoid_xent", z, y, (rows, classes));
        }
        let (loss, grad) =
            cpu_kernel::sigmoid_cross_entropy(self.as_slice(), labels.as_slice(), classes);
        Ok((
            Tensor::from_parts(loss, vec![rows]),
            Tensor::from_parts(grad, vec![rows, classes]),
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

    fn t(data: Vec<f32>, shape: &[usize]) -> Tensor {
        Tensor::from_vec(data, shape).unwrap()
    }

    fn assert_close(got: &[f32], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!(
                (f64::from(*g) - w).abs() <= tol * (1.0 + w.abs()),
                "{got:?} vs {want:?}"
            );
        }
    }

    /// Hand computation for z = [1, 2, 3]: logsumexp = 3 + ln(1 + e^-1 + e^-2)
    /// = 3.407_605_964, softmax = [0.090_030_573, 0.244_728_471, 0.665_240_956].
    #[test]
    fn softmax_cross_entropy_matches_a_hand_computation() {
        let lse = 3.0 + (1.0 + (-1.0f64).exp() + (-2.0f64).exp()).ln();
        let p = [1.0f64, 2.0, 3.0].map(|z| (z - lse).exp());
        let z = t(vec![1., 2., 3., 1., 2., 3., 1., 2., 3.], &[3, 3]);
        // Sparse labels 2, 0, 1.
        let (loss, grad) = z.softmax_cross_entropy(&t(vec![2., 0., 1.], &[3])).unwrap();
        assert_eq!(loss.shape(), &[3]);
        assert_eq!(grad.shape(), &[3, 3]);
        assert_close(&loss.to_vec(), &[lse - 3.0, lse - 1.0, lse - 2.0], 1e-6);
        assert_close(
            &grad.to_vec(),
            &[
                p[0],
                p[1],
                p[2] - 1.0,
                p[0] - 1.0,
                p[1],
                p[2],
                p[0],
                p[1] - 1.0,
                p[2],
            ],
            1e-6,
        );
        assert!((loss.to_vec()[0] - 0.407_606).abs() < 1e-6);
        // Dense: a distribution, a one-hot row, and targets summing to 2.
        let y = t(vec![0.2, 0.3, 0.5, 1., 0., 0., 0., 1., 1.], &[3, 3]);
        let (loss, grad) = z.softmax_cross_entropy(&y).unwrap();
        assert_close(
            &loss.to_vec(),
            &[lse - 2.3, lse - 1.0, 2.0 * lse - 5.0],
            1e-6,
        );
        assert_close(
            &grad.to_vec(),
            &[
                p[0] - 0.2,
                p[1] - 0.3,
                p[2] - 0.5,
                p[0] - 1.0,
                p[1],
                p[2],
                2.0 * p[0],
                2.0 * p[1] - 1.0,
                2.0 * p[2] - 1.0,
            ],
            1e-6,
        );
    }

    /// A sparse label and its one-hot row give the same bits, and the
    /// gradient is `softmax - onehot` exactly as `softmax` rounds it.
    #[test]
    fn sparse_equals_one_hot_dense_bit_for_bit() {
        let z = t(vec![0.3, -1.2, 2.5, 0.0, 7.0, -3.0, 1.0, 1.0], &[2, 4]);
        let sparse = z.softmax_cross_entropy(&t(vec![2., 1.], &[2])).unwrap();
        let dense = z
            .softmax_cross_entropy(&Tensor::one_hot(&[2, 1], 4).unwrap())
            .unwrap();
        assert_eq!(sparse, dense);
        let p = z.softmax().unwrap().to_vec();
        let mut want = p.clone();
        want[2] -= 1.0;
        want[5] -= 1.0;
        assert_eq!(sparse.1.to_vec(), want);
    }

    /// z = [0, 2, -3], y = [1, 0, 1]: the terms are ln 2, 2 + ln(1 + e^-2)
    /// and 3 + ln(1 + e^-3); the gradient is (σ(z) - y) / 3.
    #[test]
    fn sigmoid_cross_entropy_matches_a_hand_computation() {
        let (loss, grad) = t(vec![0., 2., -3.], &[1, 3])
            .sigmoid_cross_entropy(&t(vec![1., 0., 1.], &[1, 3]))
            .unwrap();
        let terms = 2f64.ln() + 2.0 + (-2f64).exp().ln_1p() + 3.0 + (-3f64).exp().ln_1p();
        assert_close(&loss.to_vec(), &[terms / 3.0], 1e-6);
        assert!((loss.to_vec()[0] - 1.956_220_8).abs() < 1e-6);
        let s = |x: f64| 1.0 / (1.0 + (-x).exp());
        assert_close(
            &grad.to_vec(),
            &[(0.5 - 1.0) / 3.0, s(2.0) / 3.0, (s(-3.0) - 1.0) / 3.0],
            1e-6,
        );
    }

    /// Logits of ±1e4 give finite losses and gradients (no e^{1e4}).
    #[test]
    fn large_logits_stay_finite() {
        let z = t(vec![1e4, 0.0, -1e4, -1e4, 1e4, 1e4], &[2, 3]);
        let (loss, grad) = z.softmax_cross_entropy(&t(vec![0., 0.], &[2])).unwrap();
        assert_eq!(loss.to_vec()[0], 0.0);
        assert_eq!(loss.to_vec()[1], 2e4 + 2f32.ln());
        assert!(grad.to_vec().iter().all(|g| g.is_finite()), "{grad:?}");
        assert_eq!(grad.to_vec()[..3], [0.0, 0.0, 0.0]);
        let y = t(vec![0.0, 0.5, 0.5, 0.25, 0.25, 0.5], &[2, 3]);
        let (loss, grad) = z.softmax_cross_entropy(&y).unwrap();
        // Row 0: logsumexp = 1e4, loss = 0.5·(1e4 - 0) + 0.5·(1e4 + 1e4);
        // row 1: logsumexp = 1e4 + ln 2, loss = 0.25·(2e4 + ln 2) + 0.75·ln 2.
        assert_close(&loss.to_vec(), &[1.5e4, 0.25 * 2e4 + 2f64.ln()], 1e-6);
        assert!(grad.to_vec().iter().all(|g| g.is_finite()), "{grad:?}");
        let (loss, grad) = z.sigmoid_cross_entropy(&y).unwrap();
        // Terms: 1e4 (z = 1e4, y = 0), 0 + ln 2 (z = 0), 1e4 * 0.5 (z = -1e4, y = 0.5), ...
        let row0 = (1e4 + 2f64.ln() + 0.5e4) / 3.0;
        let row1 = (0.25e4 + 0.75e4 + 0.5e4) / 3.0;
        assert_close(&loss.to_vec(), &[row0, row1], 1e-6);
        assert!(grad.to_vec().iter().all(|g| g.is_finite()), "{grad:?}");
    }

    #[test]
    fn cross_entropy_errors_name_the_shapes_and_labels() {
        let z = Tensor::zeros(&[2, 3]);
        let msg = z
            .softmax_cross_entropy(&Tensor::zeros(&[3]))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("[2, 3]") && msg.contains("[3]"), "{msg}");
        let msg = z
            .softmax_cross_entropy(&Tensor::zeros(&[2, 4]))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("[2, 3]") && msg.contains("[2, 4]"), "{msg}");
        let msg = z
            .sigmoid_cross_entropy(&Tensor::zeros(&[2]))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("[2, 3]") && msg.contains("[2]"), "{msg}");
        assert!(matches!(
            z.softmax_cross_entropy(&t(vec![0., 3.], &[2])),
            Err(Error::Index {
                index: 3,
                bound: 3,
                ..
            })
        ));
        for bad in [-1.0, 1.5, f32::NAN, f32::INFINITY] {
            assert!(
                matches!(
                    z.softmax_cross_entropy(&t(vec![0., bad], &[2])),
                    Err(Error::InvalidArgument { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            Tensor::zeros(&[6]).softmax_cross_entropy(&Tensor::zeros(&[6])),
            Err(Error::Rank { .. })
        ));
        assert!(matches!(
            Tensor::zeros(&[2, 0]).softmax_cross_entropy(&Tensor::zeros(&[2])),
            Err(Error::EmptyReduction { .. })
        ));
        assert!(matches!(
            Tensor::zeros(&[2, 0]).sigmoid_cross_entropy(&Tensor::zeros(&[2, 0])),
            Err(Error::EmptyReduction { .. })
        ));
    }

    #[test]
    fn empty_batches_give_empty_results() {
        let z = Tensor::zeros(&[0, 3]);
        for labels in [Tensor::zeros(&[0]), Tensor::zeros(&[0, 3])] {
            let (loss, grad) = z.softmax_cross_entropy(&labels).unwrap();
            assert_eq!((loss.shape(), grad.shape()), (&[0][..], &[0, 3][..]));
        }
        let (loss, grad) = z.sigmoid_cross_entropy(&Tensor::zeros(&[0, 3])).unwrap();
        assert_eq!((loss.shape(), grad.shape()), (&[0][..], &[0, 3][..]));
    }

    mod finite_differences {
        use super::*;
        use proptest::prelude::*;

        /// The step: `z ± H` is exact for |z| < 2 on a grid of 2^-10.
        const H: f32 = 1.0 / 128.0;

        /// Logits on a grid of 2^-10 in [-3, 3].
        fn logits(rows: usize, classes: usize) -> impl Strategy<Value = Vec<f32>> {
            prop::collection::vec(
                (-3072i32..=3072).prop_map(|k| k as f32 / 1024.0),
                rows * classes,
            )
        }

        /// Checks `grad` against central differences of `Σ_r loss_r(z)`.
        ///
        /// The truncation error is `H²/6 · |∂³L| <= 1e-5 · O(1)`; rounding
        /// `L` (a sum of a few terms of size <= ~10) in f32 costs about
        /// `1e-6 / (2H) ≈ 1e-4`: 1e-3 leaves a margin of ten.
        fn check(
            z: &[f32],
            shape: [usize; 2],
            grad: &[f32],
            loss: impl Fn(&Tensor) -> Tensor,
        ) -> std::result::Result<(), TestCaseError> {
            let total = |v: Vec<f32>| -> f64 {
                loss(&t(v, &shape))
                    .to_vec()
                    .iter()
                    .map(|&l| f64::from(l))
                    .sum()
            };
            for i in 0..z.len() {
                let (mut plus, mut minus) = (z.to_vec(), z.to_vec());
                plus[i] += H;
                minus[i] -= H;
                let fd = (total(plus) - total(minus)) / (2.0 * f64::from(H));
                let g = f64::from(grad[i]);
                prop_assert!(
                    (fd - g).abs() <= 1e-3 * (1.0 + g.abs()),
                    "element {}: finite difference {} vs gradient {}",
                    i,
                    fd,
                    g
                );
            }
            Ok(())
        }

        fn batch() -> impl Strategy<Value = (usize, usize)> {
            (1usize..=4, 1usize..=6)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn sparse_softmax_gradient((z, labels, rows, classes) in batch().prop_flat_map(|(r, c)| {
                (logits(r, c), prop::collection::vec(0..c, r), Just(r), Just(c))
            })) {
                let y = t(labels.iter().map(|&l| l as f32).collect(), &[rows]);
                let (_, grad) = t(z.clone(), &[rows, classes]).softmax_cross_entropy(&y).unwrap();
                check(&z, [rows, classes], &grad.to_vec(), |x| x.softmax_cross_entropy(&y).unwrap().0)?;
            }

            #[test]
            fn dense_softmax_gradient((z, y, rows, classes) in batch().prop_flat_map(|(r, c)| {
                // Targets in [0, 1], not normalised: the Σy factor is exercised.
                (logits(r, c), prop::collection::vec(0.0f32..=1.0, r * c), Just(r), Just(c))
            })) {
                let y = t(y, &[rows, classes]);
                let (_, grad) = t(z.clone(), &[rows, classes]).softmax_cross_entropy(&y).unwrap();
                check(&z, [rows, classes], &grad.to_vec(), |x| x.softmax_cross_entropy(&y).unwrap().0)?;
            }

            #[test]
            fn sigmoid_gradient((z, y, rows, classes) in batch().prop_flat_map(|(r, c)| {
                (logits(r, c), prop::collection::vec(0.0f32..=1.0, r * c), Just(r), Just(c))
            })) {
                let y = t(y, &[rows, classes]);
                let (_, grad) = t(z.clone(), &[rows, classes]).sigmoid_cross_entropy(&y).unwrap();
                check(&z, [rows, classes], &grad.to_vec(), |x| x.sigmoid_cross_entropy(&y).unwrap().0)?;
            }
        }
    }
}
