//! The 2-D convolution on the tape ([`Var::conv2d`]).

use hebb_tensor::ops::Padding;

use crate::{Result, Var};

impl<'t> Var<'t> {
    /// 2-D convolution (`tf.nn.conv2d`): `self` `[batch, h, w, c]`
    /// (channels-last) with `kernel` `[kh, kw, c, filters]` (HWIO, as Keras
    /// stores `Conv2D` kernels) gives `[batch, out_h, out_w, filters]`; see
    /// [`hebb_tensor::Tensor::conv2d`]. The backward pass
    /// ([`hebb_tensor::Tensor::conv2d_backward`], TensorFlow's
    /// `Conv2DBackpropInput` and `Conv2DBackpropFilter`) computes the
    /// input's gradient only when the input needs one (not for a network's
    /// input batch) and the kernel's only when it does.
    ///
    /// # Errors
    /// Rank, channel, stride, dilation or size errors naming the shapes (see
    /// [`hebb_tensor::Tensor::conv2d`]); foreign `Var`.
    pub fn conv2d(
        self,
        kernel: Var<'t>,
        strides: [usize; 2],
        padding: Padding,
        dilation: [usize; 2],
    ) -> Result<Var<'t>> {
        let (x, k) = self.binary_inputs(kernel, "conv2d")?;
        let value = x.conv2d(&k, strides, padding, dilation)?;
        Ok(self.record_binary(value, kernel, move |g, need| {
            let (dx, dk) = x.conv2d_backward(&k, g, strides, padding, dilation, need)?;
            Ok([dx, dk])
        }))
    }
}
