//! Pooling on the tape: [`Var::max_pool2d`], [`Var::avg_pool2d`],
//! [`Var::global_avg_pool2d`], [`Var::global_max_pool2d`], on channels-last
//! images `[n, h, w, c]` (see `hebb_tensor::ops::pool` for the formulas).
//!
//! Backward rules (TensorFlow's `MaxPoolGrad`, `AvgPoolGrad` and
//! `reduce_mean`'s): max pooling sends each output's gradient to its
//! window's maximum (the first one in scan order at ties), average pooling
//! gives each cell of a window inside the image `g / |window ∩ image|`;
//! the global average gives every cell `g / (h · w)`. Forward and backward
//! run on the value's device (the GPU kernels of `hebb_tensor::ops::pool`
//! with feature `cuda`), the gradients staying there.

use hebb_tensor::ops::Padding;

use super::Var;
use crate::Result;

impl<'t> Var<'t> {
    /// Max pooling of `[n, h, w, c]` to `[n, out_h, out_w, c]`
    /// (`tf.nn.max_pool2d`) on the value's device; the gradient goes to each
    /// window's maximum, the first one in scan order at ties
    /// ([`Tensor::max_pool2d_backward`](hebb_tensor::Tensor::max_pool2d_backward)
    /// with the forward pass's arg-max indices, kept on the device).
    ///
    /// # Errors
    /// As `Pool2d::new` (rank, pool or stride of 0, a pool larger than the
    /// image with `valid` padding); [`hebb_tensor::Error::Cuda`] if a
    /// launch fails on a GPU.
    pub fn max_pool2d(
        self,
        pool: [usize; 2],
        strides: [usize; 2],
        padding: Padding,
    ) -> Result<Var<'t>> {
        let x = self.value();
        let (value, argmax) = x.max_pool2d_with_argmax(pool, strides, padding)?;
        Ok(self.unary(value, move |g| Ok(x.max_pool2d_backward(g, &argmax)?)))
    }

    /// Global max pooling `[n, h, w, c] -> [n, c]` (Keras
    /// `GlobalMaxPooling2D`) on the value's device; the gradient goes to
    /// each channel's maximum.
    ///
    /// # Errors
    /// Rank other than 4, an image without cells, a failed launch on a GPU.
    pub fn global_max_pool2d(self) -> Result<Var<'t>> {
        let x = self.value();
        let (value, argmax) = x.global_max_pool2d_with_argmax()?;
        Ok(self.unary(value, move |g| Ok(x.max_pool2d_backward(g, &argmax)?)))
    }

    /// Average pooling of `[n, h, w, c]` to `[n, out_h, out_w, c]`
    /// (`tf.nn.avg_pool2d`; 'same' averages only the cells inside the
    /// image) on the value's device; each window cell gets `g / count`.
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
        let value = x.avg_pool2d(pool, strides, padding)?;
        Ok(self.unary(value, move |g| {
            Ok(x.avg_pool2d_backward(g, pool, strides, padding)?)
        }))
    }

    /// Global average pooling `[n, h, w, c] -> [n, c]` (Keras
    /// `GlobalAveragePooling2D`; summed in `f64`) on the value's device;
    /// every cell gets `g / (h · w)`.
    ///
    /// # Errors
    /// Rank other than 4, an image without cells, a failed launch on a GPU.
    pub fn global_avg_pool2d(self) -> Result<Var<'t>> {
        let x = self.value();
        let value = x.global_avg_pool2d()?;
        Ok(self.unary(value, move |g| Ok(x.global_avg_pool2d_backward(g)?)))
    }
}
