//! Reductions along one axis (`sum`, `mean`, `max`, `min`, `argmax`) and
//! over all elements (`sum_all`, `mean_all`).
//!
//! For a tensor of shape `[d0, .., dk, .., dn]` reduced along axis `k`, the
//! result has shape `[d0, .., dn]` without `dk`, or with `dk` replaced by 1
//! when `keepdims` is true (TensorFlow's `reduce_*(x, axis, keepdims)`).
//! Sums and means along the inner-most axis (and over all elements)
//! accumulate in `f32` in the order of Eigen's vectorised reducer, as
//! TensorFlow's CPU kernels do (see `packet_sum`): bit for bit TensorFlow's
//! result, and pairwise above 1024 elements, so the error grows with the
//! logarithm of the length. Along any other axis each output gathers one
//! element per row; those sums accumulate in `f64` and are rounded to `f32`
//! once (a mean is divided before the rounding), so that a sum over
//! millions of rows (a bias gradient over a large batch) is the exact sum
//! correctly rounded, give or take an `f64` rounding per row:
//! `full(&[10_000_000, 2], 0.1).mean(0, false)` is `0.1` to within `1e-7`
//! relative, where adding the rows in `f32` gave `0.1087937`.
//! On a GPU (feature `cuda`) the result stays on the device; every sum
//! there accumulates in `f64` and rounds once, so it may differ from the
//! CPU's inner-most-axis sums in the last bits; max, min and argmax agree
//! exactly.

mod cpu_kernel;
#[cfg(feature = "cuda")]
pub(crate) mod cuda_kernel;

pub(crate) use cpu_kernel::{Reduce, packet_sum};

use crate::{Error, Result, Tensor};

impl Tensor {
    /// Splits the shape around `axis` into `(outer, n, inner)` and the output shape.
    fn reduce_dims(
        &self,
        axis: usize,
        keepdims: bool,
        op: &'static str,
    ) -> Result<((usize, usize, usize), Vec<usize>)> {
        if axis >= self.rank() {
            return Err(Error::Axis {
                op,
                axis,
                shape: self.shape.clone(),
            });
        }
        let outer = self.shape[..axis].iter().product();
        let inner = self.shape[axis + 1..].iter().product();
        let mut shape = self.shape.clone();
        if keepdims {
            shape[axis] = 1;
        } else {
            shape.remove(axis);
        }
        Ok(((outer, self.shape[axis], inner), shape))
    }

    fn reduce(&self, axis: usize, keepdims: bool, how: Reduce, op: &'static str) -> Result<Tensor> {
        let (dims, shape) = self.reduce_dims(axis, keepdims, op)?;
        if dims.1 == 0 && matches!(how, Reduce::Max | Reduce::Min | Reduce::ArgMax) {
            return Err(Error::EmptyReduction {
                op,
                shape: self.shape.clone(),
            });
        }
        #[cfg(feature = "cuda")]
        if let Some(c) = self.cuda() {
            return cuda_kernel::reduce(how, c, dims, shape);
        }
        Ok(Tensor::from_parts(
            cpu_kernel::reduce(how, self.as_slice(), dims),
            shape,
        ))
    }

    /// `how` over all elements as a scalar tensor, on the tensor's device.
    ///
    /// # Panics
    /// On a GPU, with the error's message, if the CUDA driver fails.
    fn reduce_all(&self, how: Reduce) -> Tensor {
        #[cfg(feature = "cuda")]
        if let Some(c) = self.cuda() {
            return cuda_kernel::reduce(how, c, (1, self.len(), 1), Vec::new())
                .unwrap_or_else(|e| panic!("{e}"));
        }
        Tensor::scalar(cpu_kernel::reduce(how, self.as_slice(), (1, self.len(), 1))[0])
    }

    /// Sum along `axis` (`tf.reduce_sum(x, axis, keepdims)`).
    ///
    /// # Errors
    /// [`Error::Axis`] if `axis >= rank`; [`Error::Cuda`] if the CUDA driver fails on a GPU.
    pub fn sum(&self, axis: usize, keepdims: bool) -> Result<Tensor> {
        self.reduce(axis, keepdims, Reduce::Sum, "sum")
    }

    /// Mean along `axis` (`tf.reduce_mean(x, axis, keepdims)`): the sum divided by the axis length.
    ///
    /// # Errors
    /// [`Error::Axis`] if `axis >= rank`; [`Error::Cuda`] if the CUDA driver fails on a GPU.
    pub fn mean(&self, axis: usize, keepdims: bool) -> Result<Tensor> {
        self.reduce(axis, keepdims, Reduce::Mean, "mean")
    }

    /// Maximum along `axis` (`tf.reduce_max`).
    ///
    /// # Errors
    /// [`Error::Axis`] if `axis >= rank`; [`Error::EmptyReduction`] if the axis is empty;
    /// [`Error::Cuda`] if the CUDA driver fails on a GPU.
    pub fn max(&self, axis: usize, keepdims: bool) -> Result<Tensor> {
        self.reduce(axis, keepdims, Reduce::Max, "max")
    }

    /// Minimum along `axis` (`tf.reduce_min`).
    ///
    /// # Errors
    /// [`Error::Axis`] if `axis >= rank`; [`Error::EmptyReduction`] if the axis is empty;
    /// [`Error::Cuda`] if the CUDA driver fails on a GPU.
    pub fn min(&self, axis: usize, keepdims: bool) -> Result<Tensor> {
        self.reduce(axis, keepdims, Reduce::Min, "min")
    }

    /// Index of the largest element along `axis`, as `f32` values (`tf.argmax`);
    /// the first one wins ties. The axis is removed from the shape.
    ///
    /// # Errors
    /// [`Error::Axis`] if `axis >= rank`; [`Error::EmptyReduction`] if the axis is empty;
    /// [`Error::Cuda`] if the CUDA driver fails on a GPU.
    pub fn argmax(&self, axis: usize) -> Result<Tensor> {
        self.reduce(axis, false, Reduce::ArgMax, "argmax")
    }

    /// Sum of all elements, as a scalar tensor (`tf.reduce_sum(x)`).
    ///
    /// # Panics
    /// On a GPU, with the error's message, if the CUDA driver fails (out of
    /// device memory, a failed launch).
    pub fn sum_all(&self) -> Tensor {
        self.reduce_all(Reduce::Sum)
    }

    /// Mean of all elements, as a scalar tensor (`tf.reduce_mean(x)`); NaN when empty.
    ///
    /// # Panics
    /// On a GPU, with the error's message, if the CUDA driver fails (out of
    /// device memory, a failed launch).
    pub fn mean_all(&self) -> Tensor {
        self.reduce_all(Reduce::Mean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x() -> Tensor {
        Tensor::from_vec(vec![1., 5., 3., 4., 2., 6.], &[2, 3]).unwrap()
    }

    #[test]
    fn along_each_axis() {
        assert_eq!(x().sum(0, false).unwrap().to_vec(), vec![5., 7., 9.]);
        assert_eq!(x().sum(1, true).unwrap().shape(), &[2, 1]);
        assert_eq!(x().mean(1, false).unwrap().to_vec(), vec![3., 4.]);
        assert_eq!(x().max(0, false).unwrap().to_vec(), vec![4., 5., 6.]);
        assert_eq!(x().min(1, false).unwrap().to_vec(), vec![1., 2.]);
        assert_eq!(x().argmax(1).unwrap().to_vec(), vec![1., 2.]);
        assert_eq!(x().argmax(0).unwrap().to_vec(), vec![1., 0., 1.]);
        assert_eq!(x().sum_all().item().unwrap(), 21.0);
        assert_eq!(x().mean_all().item().unwrap(), 3.5);
    }

    /// Relative error of `got` against `want`.
    fn rel(got: f32, want: f64) -> f64 {
        ((f64::from(got) - want) / want).abs()
    }

    /// Issue 11: sums along a non-last axis added rows in `f32`, so that a
    /// long axis lost the small addends (`0.1087937` for the mean below,
    /// `77149.2` for the sum). Every reduction that accumulates, along the
    /// first axis, a middle axis and the last one, is within `1e-6`.
    #[test]
    fn long_axes_sum_to_within_1e_6() {
        let x = Tensor::full(&[10_000_000, 2], 0.1);
        let want = f64::from(0.1f32);
        for v in x.mean(0, false).unwrap().to_vec() {
            assert!(rel(v, want) < 1e-6, "mean(0) = {v}");
        }
        for v in x.sum(0, true).unwrap().to_vec() {
            assert!(rel(v, want * 1e7) < 1e-6, "sum(0) = {v}");
        }
        assert!(rel(x.mean_all().item().unwrap(), want) < 1e-6);
        let y = Tensor::full(&[62_500, 2], 1.23456);
        for v in y.sum(0, false).unwrap().to_vec() {
            assert!(rel(v, 77160.0) < 1e-6, "sum(0) = {v}");
        }
        // A middle axis of [2, 62_500, 3], and the last axis of [2, 62_500].
        let z = Tensor::full(&[2, 62_500, 3], 1.23456);
        for v in z.sum(1, false).unwrap().to_vec() {
            assert!(rel(v, 77160.0) < 1e-6, "sum(1) = {v}");
        }
        for v in z.mean(1, false).unwrap().to_vec() {
            assert!(rel(v, f64::from(1.23456f32)) < 1e-6, "mean(1) = {v}");
        }
        let w = Tensor::full(&[2, 62_500], 1.23456);
        for v in w.sum(1, false).unwrap().to_vec() {
            assert!(rel(v, 77160.0) < 1e-6, "sum(1) = {v}");
        }
        // Empty axes: a sum of nothing is 0 and a mean NaN, as before.
        let e = Tensor::zeros(&[0, 3]);
        assert_eq!(e.sum(0, false).unwrap().to_vec(), vec![0.0; 3]);
        assert!(
            e.mean(0, false)
                .unwrap()
                .to_vec()
                .iter()
                .all(|v| v.is_nan())
        );
        assert_eq!(Tensor::zeros(&[3, 0]).sum(0, false).unwrap().shape(), &[0]);
    }

    /// Short outer axes keep their exact values (small integers add exactly
    /// in either precision) and the order of the outputs.
    #[test]
    fn outer_axis_sums_of_a_3d_tensor() {
        let t = Tensor::from_vec((0..24).map(|v| v as f32).collect(), &[2, 3, 4]).unwrap();
        assert_eq!(
            t.sum(1, false).unwrap().to_vec(),
            vec![12., 15., 18., 21., 48., 51., 54., 57.]
        );
        assert_eq!(
            t.sum(0, false).unwrap().to_vec(),
            (12..24).map(|v| (2 * v - 12) as f32).collect::<Vec<_>>()
        );
        assert_eq!(t.mean(1, true).unwrap().shape(), &[2, 1, 4]);
        assert_eq!(t.mean(1, true).unwrap().to_vec()[..2], [4., 5.]);
    }

    #[test]
    fn argmax_first_of_ties_and_errors() {
        let t = Tensor::from_vec(vec![2., 2., 1.], &[3]).unwrap();
        assert_eq!(t.argmax(0).unwrap().to_vec(), vec![0.]);
        assert!(matches!(t.sum(1, false), Err(Error::Axis { axis: 1, .. })));
        let empty = Tensor::zeros(&[2, 0]);
        assert!(matches!(
            empty.max(1, false),
            Err(Error::EmptyReduction { .. })
        ));
        assert_eq!(empty.sum(1, false).unwrap().to_vec(), vec![0., 0.]);
    }
}
