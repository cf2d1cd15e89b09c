//! Elementwise binary ops with NumPy broadcasting: `add`, `sub`, `mul`,
//! `div`, `maximum`, `minimum`, and comparisons returning `1.0`/`0.0`.
//!
//! Broadcasting follows NumPy (and TensorFlow): shapes are aligned at their
//! last dimension; a dimension of 1 (or a missing leading one) stretches to
//! the other operand's. `[120, 3] + [3] -> [120, 3]`, `[120, 3] / [120, 1] -> [120, 3]`.
//!
//! Both operands must be on one device ([`Error::DeviceMismatch`] otherwise);
//! the result stays there. On a GPU (feature `cuda`) the kernel handles up to
//! 8 dimensions once dimensions of 1 are dropped and runs that both operands
//! walk alike are merged ([`Error::InvalidArgument`] beyond), and driver
//! failures are [`Error::Cuda`].

mod cpu_kernel;
#[cfg(feature = "cuda")]
pub(crate) mod cuda_kernel;

use crate::{Error, Result, Tensor};

/// The binary elementwise ops. Kernels dispatch on this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
    Minimum,
    Equal,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
}

impl BinaryOp {
    fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::Equal => "equal",
            BinaryOp::Greater => "greater",
            BinaryOp::GreaterEqual => "greater_equal",
            BinaryOp::Less => "less",
            BinaryOp::LessEqual => "less_equal",
        }
    }
}

/// The broadcast shape of `lhs` and `rhs` (NumPy rules).
///
/// # Errors
/// [`Error::ShapeMismatch`] naming `op` and both shapes when a dimension
/// pair is neither equal nor contains a 1.
pub fn broadcast_shapes(op: &'static str, lhs: &[usize], rhs: &[usize]) -> Result<Vec<usize>> {
    let rank = lhs.len().max(rhs.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let a = if i < rank - lhs.len() {
            1
        } else {
            lhs[i - (rank - lhs.len())]
        };
        let b = if i < rank - rhs.len() {
            1
        } else {
            rhs[i - (rank - rhs.len())]
        };
        out[i] = match (a, b) {
            (a, b) if a == b => a,
            (1, b) => b,
            (a, 1) => a,
            _ => {
                return Err(Error::ShapeMismatch {
                    op,
                    lhs: lhs.to_vec(),
                    rhs: rhs.to_vec(),
                    detail: format!("dimension {i}: {a} vs {b} cannot broadcast"),
                });
            }
        };
    }
    Ok(out)
}

impl Tensor {
    fn binary(&self, rhs: &Tensor, op: BinaryOp) -> Result<Tensor> {
        let shape = broadcast_shapes(op.name(), &self.shape, &rhs.shape)?;
        #[cfg(feature = "cuda")]
        if self.device() != rhs.device() {
            // As in PyTorch, a rank-0 host tensor (a scalar such as
            // `Tensor::scalar(0.0)`) meets a GPU tensor on the GPU.
            if self.rank() == 0 && !self.device().is_cuda() {
                return self.to_device(rhs.device())?.binary(rhs, op);
            }
            if rhs.rank() == 0 && !rhs.device().is_cuda() {
                return self.binary(&rhs.to_device(self.device())?, op);
            }
        }
        self.same_device(rhs, op.name())?;
        #[cfg(feature = "cuda")]
        if let (Some(a), Some(b)) = (self.cuda(), rhs.cuda()) {
            return cuda_kernel::binary(op, (a, &self.shape), (b, &rhs.shape), shape);
        }
        let data = cpu_kernel::binary(
            op,
            self.as_slice(),
            &self.shape,
            rhs.as_slice(),
            &rhs.shape,
            &shape,
        );
        Ok(Tensor::from_parts(data, shape))
    }

    /// `self + rhs`, broadcasting. Errors: [`Error::ShapeMismatch`].
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Add)
    }

    /// `self - rhs`, broadcasting. Errors: [`Error::ShapeMismatch`].
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Sub)
    }

    /// `self * rhs` elementwise, broadcasting. Errors: [`Error::ShapeMismatch`].
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Mul)
    }

    /// `self / rhs` elementwise (IEEE division), broadcasting. Errors: [`Error::ShapeMismatch`].
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Div)
    }

    /// Elementwise maximum (`tf.maximum`), broadcasting. Errors: [`Error::ShapeMismatch`].
    pub fn maximum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Maximum)
    }

    /// Elementwise minimum (`tf.minimum`), broadcasting. Errors: [`Error::ShapeMismatch`].
    pub fn minimum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Minimum)
    }

    /// `1.0` where `self == rhs`, else `0.0` (`tf.math.equal` cast to float), broadcasting.
    /// (Whole-tensor equality is `==`.) Errors: [`Error::ShapeMismatch`].
    pub fn equal(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Equal)
    }

    /// `1.0` where `self > rhs`, else `0.0` (`tf.math.greater`). Errors: [`Error::ShapeMismatch`].
    pub fn greater(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Greater)
    }

    /// `1.0` where `self >= rhs`, else `0.0` (`tf.math.greater_equal`). Errors: [`Error::ShapeMismatch`].
    pub fn greater_equal(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::GreaterEqual)
    }

    /// `1.0` where `self < rhs`, else `0.0` (`tf.math.less`). Errors: [`Error::ShapeMismatch`].
    pub fn less(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Less)
    }

    /// `1.0` where `self <= rhs`, else `0.0` (`tf.math.less_equal`). Errors: [`Error::ShapeMismatch`].
    pub fn less_equal(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::LessEqual)
    }

    /// Sums `self` down to `shape`, the inverse of broadcasting `shape` up
    /// to `self.shape()`: the gradient of a broadcast operand.
    /// `[120, 3].sum_to_shape([3]) -> [3]`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `shape` does not broadcast to `self.shape()`;
    /// [`Error::Cuda`] if the CUDA driver fails on a GPU.
    pub fn sum_to_shape(&self, shape: &[usize]) -> Result<Tensor> {
        if self.shape == shape {
            return Ok(self.clone());
        }
        let full = broadcast_shapes("sum_to_shape", shape, &self.shape)?;
        if full != self.shape {
            return Err(Error::ShapeMismatch {
                op: "sum_to_shape",
                lhs: self.shape.clone(),
                rhs: shape.to_vec(),
                detail: "target does not broadcast to the source shape".into(),
            });
        }
        #[cfg(feature = "cuda")]
        if let Some(c) = self.cuda() {
            return cuda_kernel::sum_to_shape(c, &self.shape, shape);
        }
        let data = cpu_kernel::sum_to_shape(self.as_slice(), &self.shape, shape);
        Ok(Tensor::from_parts(data, shape.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(data: &[f32], shape: &[usize]) -> Tensor {
        Tensor::from_vec(data.to_vec(), shape).unwrap()
    }

    #[test]
    fn broadcast_row_and_column() {
        let a = t(&[1., 2., 3., 4., 5., 6.], &[2, 3]);
        let row = t(&[10., 20., 30.], &[3]);
        let col = t(&[100., 200.], &[2, 1]);
        assert_eq!(
            a.add(&row).unwrap().to_vec(),
            vec![11., 22., 33., 14., 25., 36.]
        );
        assert_eq!(
            a.add(&col).unwrap().to_vec(),
            vec![101., 102., 103., 204., 205., 206.]
        );
        assert_eq!(row.sub(&col).unwrap().shape(), &[2, 3]);
        assert_eq!(
            a.div(&Tensor::scalar(2.0)).unwrap().to_vec(),
            vec![0.5, 1., 1.5, 2., 2.5, 3.]
        );
    }

    #[test]
    fn comparisons_give_ones_and_zeros() {
        let a = t(&[1., 2., 3.], &[3]);
        let b = t(&[2., 2., 2.], &[3]);
        assert_eq!(a.greater(&b).unwrap().to_vec(), vec![0., 0., 1.]);
        assert_eq!(a.greater_equal(&b).unwrap().to_vec(), vec![0., 1., 1.]);
        assert_eq!(a.equal(&b).unwrap().to_vec(), vec![0., 1., 0.]);
        assert_eq!(a.less(&b).unwrap().to_vec(), vec![1., 0., 0.]);
        assert_eq!(a.less_equal(&b).unwrap().to_vec(), vec![1., 1., 0.]);
        assert_eq!(a.maximum(&b).unwrap().to_vec(), vec![2., 2., 3.]);
        assert_eq!(a.minimum(&b).unwrap().to_vec(), vec![1., 2., 2.]);
    }

    #[test]
    fn mismatch_names_op_and_shapes() {
        let err = t(&[0.; 6], &[2, 3]).mul(&t(&[0.; 4], &[4])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("mul: shapes [2, 3] and [4]"), "{msg}");
    }

    #[test]
    fn sum_to_shape_inverts_broadcast() {
        let g = t(&[1., 2., 3., 4., 5., 6.], &[2, 3]);
        assert_eq!(g.sum_to_shape(&[3]).unwrap().to_vec(), vec![5., 7., 9.]);
        assert_eq!(g.sum_to_shape(&[2, 1]).unwrap().to_vec(), vec![6., 15.]);
        assert_eq!(g.sum_to_shape(&[]).unwrap().to_vec(), vec![21.]);
        assert!(g.sum_to_shape(&[2]).is_err());
    }

    /// Issue 11: the gradient of a bias broadcast over 62,500 rows added the
    /// rows in `f32` (77149.2 for 77160); they accumulate in `f64` now.
    #[test]
    fn sum_to_shape_over_many_rows_is_within_1e_6() {
        let g = Tensor::full(&[62_500, 2], 1.23456);
        for shape in [&[2][..], &[1, 2]] {
            for v in g.sum_to_shape(shape).unwrap().to_vec() {
                assert!(((f64::from(v) - 77160.0) / 77160.0).abs() < 1e-6, "{v}");
            }
        }
        // Rows summed away in full, and one sum per row.
        let total = g.sum_to_shape(&[]).unwrap().item().unwrap();
        assert!(
            ((f64::from(total) - 154_320.0) / 154_320.0).abs() < 1e-6,
            "{total}"
        );
        let rows = g.sum_to_shape(&[62_500, 1]).unwrap().to_vec();
        assert!(rows.iter().all(|&v| v == 1.23456f32 + 1.23456f32));
    }
}
