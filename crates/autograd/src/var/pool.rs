//! Pooling on the tape: [`Var::max_pool2d`], [`Var::avg_pool2d`],
//! [`Var::global_avg_pool2d`], [`Var::global_max_pool2d`], on channels-last
//! images `[n, h, w, c]` (see `hebb_tensor::ops::pool` for the formulas).
//!
//! Backward rules (TensorFlow's `MaxPoolGrad`, `AvgPoolGrad` and
//! `reduce_mean`'s): max pooling sends each output's gradient to its
//! window's maximum (the first one in scan order at ties), average pooling
//! gives each cell of a window inside the image `g / |window ∩ image|`;
//! the global average gives every cell `g / (h · w)`.

use hebb_tensor::ops::Padding;
use hebb_tensor::ops::pool::{self, Pool2d};
use hebb_tensor::{Device, Tensor};

use super::Var;
use crate::Result;

/// The error for a tensor on a GPU: pooling has no GPU kernels yet, and a
/// silent copy to the host would hide that.
fn expect_cpu(x: &Tensor, op: &'static str) -> Result<()> {
    if x.device() == Device::Cpu {
        return Ok(());
    }
    Err(hebb_tensor::Error::InvalidArgument {
        op,
        reason: format!(
            "{op} has no GPU kernel yet; the tensor is on {} (move it with to_device(Device::Cpu))",
            x.device()
        ),
    }
    .into())
}

impl<'t> Var<'t> {
    /// Max pooling of `[n, h, w, c]` to `[n, out_h, out_w, c]`
    /// (`tf.nn.max_pool2d`); the gradient goes to each window's maximum,
    /// the first one in scan order at ties.
    ///
    /// # Errors
    /// As [`Pool2d::new`] (rank, pool or stride of 0, a pool larger than the
    /// image with `valid` padding); a tensor on a GPU.
    pub fn max_pool2d(
        self,
        pool: [usize; 2],
        strides: [usize; 2],
        padding: Padding,
    ) -> Result<Var<'t>> {
        let x = self.value();
        expect_cpu(&x, "max_pool2d")?;
        let geometry = Pool2d::new(x.shape(), pool, strides, padding)?;
        self.max_pool_with(&x, geometry, &geometry.output_shape())
    }

    /// Global max pooling `[n, h, w, c] -> [n, c]` (Keras
    /// `GlobalMaxPooling2D`); the gradient goes to each channel's maximum.
    ///
    /// # Errors
    /// Rank other than 4, an image without cells, a tensor on a GPU.
    pub fn global_max_pool2d(self) -> Result<Var<'t>> {
        let x = self.value();
        expect_cpu(&x, "global_max_pool2d")?;
        let geometry = Pool2d::global(x.shape())?;
        let [n, _, _, c] = geometry.output_shape();
        self.max_pool_with(&x, geometry, &[n, c])
    }

    fn max_pool_with(self, x: &Tensor, geometry: Pool2d, shape: &[usize]) -> Result<Var<'t>> {
        let mut out = vec![0.0; geometry.output_len()];
        let mut argmax = vec![0; geometry.output_len()];
        geometry.max_forward(x.as_slice(), &mut out, &mut argmax)?;
        let value = Tensor::from_vec(out, shape)?;
        Ok(self.unary(value, move |g| {
            let mut grad = vec![0.0; geometry.input_len()];
            geometry.max_backward(g.as_slice(), &argmax, &mut grad)?;
            Ok(Tensor::from_vec(grad, &geometry.input_shape())?)
        }))
    }

    /// Average pooling of `[n, h, w, c]` to `[n, out_h, out_w, c]`
    /// (`tf.nn.avg_pool2d`; 'same' averages only the cells inside the
    /// image); each window cell gets `g / count`.
    ///
    /// # Errors
    /// As [`max_pool2d`](Self::max_pool2d).
    pub fn avg_pool2d(
        self,
        pool: [usize; 2],
        strides: [usize; 2],
        padding: Padding,
    ) -> Result<Var<'t>> {
        let x = self.value();
        expect_cpu(&x, "avg_pool2d")?;
        let geometry = Pool2d::new(x.shape(), pool, strides, padding)?;
        let mut out = vec![0.0; geometry.output_len()];
        geometry.avg_forward(x.as_slice(), &mut out)?;
        let value = Tensor::from_vec(out, &geometry.output_shape())?;
        Ok(self.unary(value, move |g| {
            let mut grad = vec![0.0; geometry.input_len()];
            geometry.avg_backward(g.as_slice(), &mut grad)?;
            Ok(Tensor::from_vec(grad, &geometry.input_shape())?)
        }))
    }

    /// Global average pooling `[n, h, w, c] -> [n, c]` (Keras
    /// `GlobalAveragePooling2D`; summed in `f64`); every cell gets
    /// `g / (h · w)`.
    ///
    /// # Errors
    /// Rank other than 4, an image without cells, a tensor on a GPU.
    pub fn global_avg_pool2d(self) -> Result<Var<'t>> {
        let x = self.value();
        expect_cpu(&x, "global_avg_pool2d")?;
        let value = x.global_avg_pool2d()?;
        let shape = x.shape().to_vec();
        Ok(self.unary(value, move |g| {
            let mut grad = vec![0.0; shape.iter().product()];
            pool::global_avg_pool2d_backward(&shape, g.as_slice(), &mut grad)?;
            Ok(Tensor::from_vec(grad, &shape)?)
        }))
    }
}
