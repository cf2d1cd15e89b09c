//! Matrix product of rank-2 tensors: `C = op(A) · op(B)`, where `op` is the
//! identity or the transpose (`tf.matmul(a, b, transpose_a, transpose_b)`).
//!
//! Shapes: `[m, k] · [k, n] -> [m, n]`. The CPU kernel is nalgebra's GEMM
//! (which hands matrices above 5×5 to `matrixmultiply`) over strided views of
//! the row-major buffers, so transposes cost no copy. On a GPU (feature
//! `cuda`) products go through cuBLAS `sgemm` and the transpose is a kernel;
//! the slice-level [`gemm`] and [`MatRef`] are host-only.

mod cpu_kernel;
#[cfg(feature = "cuda")]
pub(crate) mod cuda_kernel;

use crate::{Error, Result, Tensor};

/// A borrowed row-major `[rows, cols]` matrix `X`, used as `op(X)`: `X`
/// itself or, after [`t`](Self::t), `Xᵀ` (no copy). The operand of [`gemm`].
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    transpose: bool,
}

impl<'a> MatRef<'a> {
    /// `data` read as a row-major `[rows, cols]` matrix.
    ///
    /// # Errors
    /// [`Error::ElementCount`] if `data.len() != rows * cols`.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Result<Self> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::ElementCount {
                op: "MatRef::new",
                shape: vec![rows, cols],
                len: data.len(),
            });
        }
        Ok(Self {
            data,
            rows,
            cols,
            transpose: false,
        })
    }

    /// A rank-2 tensor as an operand.
    ///
    /// # Errors
    /// [`Error::Rank`] if `t` is not rank 2.
    pub fn of(t: &'a Tensor) -> Result<Self> {
        t.expect_rank(2, "matmul")?;
        Ok(Self {
            data: t.as_slice(),
            rows: t.shape[0],
            cols: t.shape[1],
            transpose: false,
        })
    }

    /// The transpose `Xᵀ` (`[cols, rows]`), as a view.
    pub fn t(self) -> Self {
        Self {
            transpose: !self.transpose,
            ..self
        }
    }

    /// The shape of `op(X)`: `[rows, cols]`, swapped if transposed.
    pub fn shape(&self) -> [usize; 2] {
        if self.transpose {
            [self.cols, self.rows]
        } else {
            [self.rows, self.cols]
        }
    }
}

/// `out = op(A) · op(B)` into a caller-owned row-major `[m, n]` buffer, for
/// `op(A)` `[m, k]` and `op(B)` `[k, n]`: the kernel of [`Tensor::matmul_with`]
/// (same results, bit for bit) for code that reuses its buffers, such as a
/// fused training step. Large products use every thread of rayon's pool.
///
/// # Errors
/// [`Error::ShapeMismatch`] if the inner dimensions differ or `out` does not
/// hold `m * n` elements.
pub fn gemm(out: &mut [f32], a: MatRef<'_>, b: MatRef<'_>) -> Result<()> {
    let (m, k, n) = check_gemm(out, a, b)?;
    cpu_kernel::gemm_into(out, a, b, (m, k, n));
    Ok(())
}

/// [`gemm`] on the calling thread only (the same bits), for kernels that
/// run many products in parallel themselves.
pub(crate) fn gemm_serial(out: &mut [f32], a: MatRef<'_>, b: MatRef<'_>) -> Result<()> {
    let (m, k, n) = check_gemm(out, a, b)?;
    cpu_kernel::gemm_into_serial(out, a, b, (m, k, n));
    Ok(())
}

/// `(m, k, n)` of `out = op(A) · op(B)`, checked.
fn check_gemm(out: &[f32], a: MatRef<'_>, b: MatRef<'_>) -> Result<(usize, usize, usize)> {
    let ([m, ka], [kb, n]) = (a.shape(), b.shape());
    if ka != kb || out.len() != m * n {
        return Err(Error::ShapeMismatch {
            op: "gemm",
            lhs: a.shape().to_vec(),
            rhs: b.shape().to_vec(),
            detail: if ka != kb {
                format!("inner dimensions {ka} and {kb} differ")
            } else {
                format!("output holds {} elements, not {m}×{n}", out.len())
            },
        });
    }
    Ok((m, ka, n))
}

impl Tensor {
    /// `self · rhs` for `[m, k]` and `[k, n]` tensors, giving `[m, n]` (`tf.matmul`).
    ///
    /// # Errors
    /// [`Error::Rank`] if either operand is not rank 2;
    /// [`Error::ShapeMismatch`] if the inner dimensions differ.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.matmul_with(rhs, false, false)
    }

    /// `op(self) · op(rhs)`, where `op` transposes its operand when the flag
    /// is set (`tf.matmul(a, b, transpose_a=.., transpose_b=..)`). The backward
    /// pass of `Y = X W` uses `dX = dY · Wᵀ` and `dW = Xᵀ · dY`.
    ///
    /// On a GPU this is one cuBLAS `sgemm` (FP32, no copy for the
    /// transposes); with an empty dimension the result is zeros.
    ///
    /// # Errors
    /// [`Error::Rank`] if either operand is not rank 2;
    /// [`Error::DeviceMismatch`] if the operands are on different devices;
    /// [`Error::ShapeMismatch`] if the inner dimensions differ;
    /// [`Error::Cuda`] if cuBLAS fails.
    pub fn matmul_with(
        &self,
        rhs: &Tensor,
        transpose_a: bool,
        transpose_b: bool,
    ) -> Result<Tensor> {
        self.expect_rank(2, "matmul")?;
        rhs.expect_rank(2, "matmul")?;
        self.same_device(rhs, "matmul")?;
        let (m, ka) = if transpose_a {
            (self.shape[1], self.shape[0])
        } else {
            (self.shape[0], self.shape[1])
        };
        let (kb, n) = if transpose_b {
            (rhs.shape[1], rhs.shape[0])
        } else {
            (rhs.shape[0], rhs.shape[1])
        };
        if ka != kb {
            return Err(Error::ShapeMismatch {
                op: "matmul",
                lhs: self.shape.clone(),
                rhs: rhs.shape.clone(),
                detail: format!(
                    "inner dimensions {ka} and {kb} differ{}",
                    match (transpose_a, transpose_b) {
                        (false, false) => "",
                        (true, false) => ", lhs transposed",
                        (false, true) => ", rhs transposed",
                        (true, true) => ", both transposed",
                    }
                ),
            });
        }
        #[cfg(feature = "cuda")]
        if let (Some(a), Some(b)) = (self.cuda(), rhs.cuda()) {
            return cuda_kernel::matmul(
                a,
                &self.shape,
                b,
                &rhs.shape,
                (transpose_a, transpose_b),
                (m, ka, n),
            );
        }
        fn operand(t: &Tensor, transpose: bool) -> MatRef<'_> {
            MatRef {
                data: t.as_slice(),
                rows: t.shape[0],
                cols: t.shape[1],
                transpose,
            }
        }
        let data = cpu_kernel::gemm(
            operand(self, transpose_a),
            operand(rhs, transpose_b),
            (m, ka, n),
        );
        Ok(Tensor::from_parts(data, vec![m, n]))
    }

    /// The transpose of a rank-2 tensor: `[m, n] -> [n, m]`.
    ///
    /// # Errors
    /// [`Error::Rank`] if the tensor is not rank 2; [`Error::Cuda`] if the
    /// kernel fails on a GPU.
    pub fn transpose(&self) -> Result<Tensor> {
        self.expect_rank(2, "transpose")?;
        let (m, n) = (self.shape[0], self.shape[1]);
        #[cfg(feature = "cuda")]
        if let Some(x) = self.cuda() {
            return cuda_kernel::transpose(x, (m, n));
        }
        let x = self.as_slice();
        let mut out = Vec::with_capacity(m * n);
        for j in 0..n {
            out.extend((0..m).map(|i| x[i * n + j]));
        }
        Ok(Tensor::from_parts(out, vec![n, m]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(data: Vec<f32>, shape: &[usize]) -> Tensor {
        Tensor::from_vec(data, shape).unwrap()
    }

    /// Reference product in f64.
    fn naive(a: &Tensor, b: &Tensor) -> Vec<f32> {
        let (m, k, n) = (a.shape()[0], a.shape()[1], b.shape()[1]);
        let (a, b) = (a.to_vec(), b.to_vec());
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|p| f64::from(a[i * k + p]) * f64::from(b[p * n + j]))
                    .sum::<f64>() as f32;
            }
        }
        c
    }

    #[test]
    fn small_and_large_agree_with_reference() {
        for &(m, k, n) in &[(2, 3, 4), (1, 1, 1), (7, 9, 11), (33, 20, 17), (120, 4, 3)] {
            let a = t(
                (0..m * k)
                    .map(|i| ((i * 37 % 11) as f32 - 5.0) / 4.0)
                    .collect(),
                &[m, k],
            );
            let b = t(
                (0..k * n)
                    .map(|i| ((i * 13 % 7) as f32 - 3.0) / 8.0)
                    .collect(),
                &[k, n],
            );
            let c = a.matmul(&b).unwrap();
            assert_eq!(c.shape(), &[m, n]);
            for (x, y) in c.to_vec().iter().zip(naive(&a, &b)) {
                assert!(
                    (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                    "{m}x{k}x{n}: {x} vs {y}"
                );
            }
            // Transposed operands give the same product.
            let at = a.transpose().unwrap();
            let bt = b.transpose().unwrap();
            assert_eq!(
                at.matmul_with(&b, true, false).unwrap().to_vec(),
                c.to_vec()
            );
            assert_eq!(
                a.matmul_with(&bt, false, true).unwrap().to_vec(),
                c.to_vec()
            );
            assert_eq!(
                at.matmul_with(&bt, true, true).unwrap().to_vec(),
                c.to_vec()
            );
        }
    }

    #[test]
    fn errors_name_shapes() {
        let a = Tensor::zeros(&[120, 4]);
        let msg = a.matmul(&Tensor::zeros(&[3, 16])).unwrap_err().to_string();
        assert_eq!(
            msg,
            "matmul: shapes [120, 4] and [3, 16] are incompatible (inner dimensions 4 and 3 differ)"
        );
        assert!(matches!(
            a.matmul(&Tensor::zeros(&[4])),
            Err(Error::Rank { .. })
        ));
        assert_eq!(
            Tensor::zeros(&[0, 4])
                .matmul(&Tensor::zeros(&[4, 2]))
                .unwrap()
                .shape(),
            &[0, 2]
        );
        assert_eq!(
            Tensor::zeros(&[3, 0])
                .matmul(&Tensor::zeros(&[0, 2]))
                .unwrap()
                .to_vec(),
            vec![0.0; 6]
        );
    }

    /// The product split between threads is bit-identical to one thread's,
    /// for both directions of split and odd sizes.
    #[test]
    fn threads_do_not_change_the_bits() {
        let pool = |n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
        };
        for &(m, k, n, ta) in &[
            (64, 784, 128, false),
            (784, 64, 128, true),
            (97, 301, 203, false),
        ] {
            let a_shape = if ta { [k, m] } else { [m, k] };
            let a = t(
                (0..m * k)
                    .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 97.0)
                    .collect(),
                &a_shape,
            );
            let b = t(
                (0..k * n)
                    .map(|i| ((i * 104_729 % 887) as f32 - 443.0) / 61.0)
                    .collect(),
                &[k, n],
            );
            let one = pool(1).install(|| a.matmul_with(&b, ta, false).unwrap());
            for threads in [2, 3, 4] {
                let many = pool(threads).install(|| a.matmul_with(&b, ta, false).unwrap());
                let same = one
                    .as_slice()
                    .iter()
                    .zip(many.as_slice())
                    .all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{m}x{k}x{n} on {threads} threads");
            }
        }
    }

    #[test]
    fn gemm_into_a_buffer_equals_matmul_and_checks_shapes() {
        let a = t((0..6 * 9).map(|i| (i % 5) as f32 - 2.0).collect(), &[6, 9]);
        let b = t((0..6 * 8).map(|i| (i % 7) as f32 * 0.5).collect(), &[6, 8]);
        let mut out = vec![f32::NAN; 9 * 8];
        gemm(
            &mut out,
            MatRef::of(&a).unwrap().t(),
            MatRef::of(&b).unwrap(),
        )
        .unwrap();
        assert_eq!(out, a.matmul_with(&b, true, false).unwrap().to_vec());
        let err = gemm(&mut out, MatRef::of(&a).unwrap(), MatRef::of(&b).unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("[6, 9]") && err.to_string().contains("[6, 8]"),
            "{err}"
        );
        let err = gemm(
            &mut out[1..],
            MatRef::of(&a).unwrap().t(),
            MatRef::of(&b).unwrap(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("71"), "{err}");
        assert!(MatRef::new(&out, 5, 5).is_err());
        assert_eq!(MatRef::new(&out, 8, 9).unwrap().t().shape(), [9, 8]);
    }
}
