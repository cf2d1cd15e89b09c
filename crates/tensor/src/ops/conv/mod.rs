//! 2-D convolution (`tf.nn.conv2d`, Keras `Conv2D`) of channels-last images
//! with HWIO kernels, as Keras stores them:
//!
//! ```text
//! y[b, oy, ox, f] = Σ_{i, j, ch} x[b, oy·sh - pt + i·dh, ox·sw - pl + j·dw, ch] · k[i, j, ch, f]
//! ```
//!
//! for input `x` `[batch, h, w, c]`, kernel `k` `[kh, kw, c, filters]`,
//! strides `(sh, sw)`, dilation `(dh, dw)` and padding `(pt, pl)` at the
//! top and left from [`Padding`] (TensorFlow's rule: `same` gives
//! `out = ceil(in / stride)` with the odd extra cell at the bottom/right);
//! taps outside the image read 0. The output is `[batch, out_h, out_w, filters]`.
//! As in TensorFlow this is a cross-correlation: the kernel is not flipped.
//!
//! The CPU kernel is im2col on the GEMM of [`matmul`](crate::ops::matmul):
//! every output pixel's receptive field is copied into one row of a
//! `[out_h · out_w, kh · kw · c]` column matrix per image, in the kernel's
//! HWIO order, so the output is the product `cols · K` with `K` the kernel
//! read as `[kh · kw · c, filters]`, both read contiguously. The backward
//! pass is two more products, `dK = colsᵀ · dY` and `dcols = dY · Kᵀ`, and
//! col2im, which adds each row of `dcols` back onto the pixels it was copied
//! from. The batch is cut into groups of images of about 512 output pixels
//! (a number fixed by the shapes, never by the thread count) that run in
//! parallel, each on one thread: its im2col, GEMM, bias and epilogue while
//! its columns are in cache, and in the backward pass its images' input
//! gradient and its share of the kernel and bias gradients, which are then
//! added in group order. So the results are bit-identical for any number of
//! threads.
//!
//! [`Conv2dGeometry`] checks the shapes once and runs the slice kernels on
//! buffers the caller owns ([`Conv2dScratch`] keeps the column matrix from
//! the forward to the backward pass); [`Tensor::conv2d`] and
//! [`Tensor::conv2d_backward`] are the allocating forms (the tape's).
//!
//! On a GPU (feature `cuda`) the same design runs on the whole batch at
//! once, on the device: [`Conv2dGeometry::im2col`] is a kernel with one
//! thread per column element (zeros for taps in the padding) writing the
//! `[batch · out_h · out_w, kh · kw · c]` column matrix, the three products
//! are cuBLAS `sgemm`s ([`Tensor::matmul_with`], transposes without copies),
//! and [`Conv2dGeometry::col2im`] is a gather with one thread per input
//! element, which sums the column entries copied from it in the CPU's order
//! (no atomics: the same bits on every run). The results stay on the
//! device; they match the CPU's to rounding (cuBLAS sums the products in
//! another order than the CPU's blocked GEMM). A pointwise convolution (1×1
//! kernel, strides 1) needs no im2col: its columns are the input itself.

mod cpu_kernel;
#[cfg(feature = "cuda")]
pub(crate) mod cuda_kernel;

use crate::ops::Padding;
use crate::{Error, Result, Tensor};

/// The shapes of one 2-D convolution, checked: input `[h, w, c]` per image,
/// kernel `[kh, kw, c, filters]`, strides, dilation and padding, and the
/// output `[out_h, out_w, filters]` and top/left padding they give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dGeometry {
    input: [usize; 3],
    kernel: [usize; 2],
    filters: usize,
    strides: [usize; 2],
    dilation: [usize; 2],
    padding: Padding,
    out: [usize; 2],
    pad: [usize; 2],
}

/// The gradients [`Conv2dGeometry::backward`] writes, each only when given:
/// with respect to the kernel (`[kh, kw, c, filters]`, overwritten), the bias
/// (`[filters]`, overwritten) and the input (`[batch, h, w, c]`, overwritten).
#[derive(Debug, Default)]
pub struct Conv2dGrads<'a> {
    /// `dL/dK`, `kh · kw · c · filters` elements.
    pub kernel: Option<&'a mut [f32]>,
    /// `dL/db = Σ_{b, oy, ox} dL/dy`, `filters` elements.
    pub bias: Option<&'a mut [f32]>,
    /// `dL/dx`, `batch · h · w · c` elements.
    pub input: Option<&'a mut [f32]>,
}

/// Buffers of a convolution kept from call to call (allocated at the first
/// call and again only when the batch size grows): the column matrix that
/// [`Conv2dGeometry::forward`] makes and [`Conv2dGeometry::backward`] reads,
/// and the bias gradient's per-block sums.
#[derive(Debug, Clone, Default)]
pub struct Conv2dScratch {
    cols: Vec<f32>,
    partials: Vec<f32>,
    /// The geometry and batch size whose columns `cols` holds, if it holds any.
    holds: Option<(Conv2dGeometry, usize)>,
}

impl Conv2dScratch {
    /// Empty scratch.
    pub fn new() -> Self {
        Self::default()
    }

    /// The column matrix of the last forward pass, `[batch · out_h · out_w,
    /// kh · kw · c]` row-major (one row per output pixel, HWIO order within
    /// the row), if the scratch still holds it.
    pub fn columns(&self) -> Option<&[f32]> {
        self.holds
            .map(|(g, batch)| &self.cols[..g.columns_len(batch)])
    }
}

fn invalid(reason: String) -> Error {
    Error::InvalidArgument {
        op: "conv2d",
        reason,
    }
}

impl Conv2dGeometry {
    /// The convolution of `[h, w, c]` images (`input_hwc`) with a
    /// `kernel_size` `[kh, kw]` kernel of `filters` filters, `strides`
    /// `[sh, sw]`, `dilation` `[dh, dw]` and `padding`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the shapes when a size, stride or
    /// dilation is 0, or, with `Padding::Valid`, when the dilated kernel is
    /// larger than the image.
    pub fn new(
        input_hwc: [usize; 3],
        kernel_size: [usize; 2],
        filters: usize,
        strides: [usize; 2],
        dilation: [usize; 2],
        padding: Padding,
    ) -> Result<Self> {
        let [h, w, c] = input_hwc;
        if h == 0 || w == 0 || c == 0 || filters == 0 {
            return Err(invalid(format!(
                "input [h, w, c] = {input_hwc:?} and filters {filters} must all be at least 1"
            )));
        }
        let size = |axis: usize| {
            padding
                .output_size(
                    input_hwc[axis],
                    kernel_size[axis],
                    strides[axis],
                    dilation[axis],
                )
                .map_err(|e| {
                    let detail = match e {
                        Error::InvalidArgument { reason, .. } => reason,
                        other => other.to_string(),
                    };
                    invalid(format!(
                        "input {input_hwc:?}, kernel {kernel_size:?}, strides {strides:?}, \
                         dilation {dilation:?}, padding {:?}: {} axis: {detail}",
                        padding.name(),
                        ["height", "width"][axis]
                    ))
                })
        };
        let (oh, pt) = size(0)?;
        let (ow, pl) = size(1)?;
        Ok(Self {
            input: input_hwc,
            kernel: kernel_size,
            filters,
            strides,
            dilation,
            padding,
            out: [oh, ow],
            pad: [pt, pl],
        })
    }

    /// The input shape of one image, `[h, w, c]`.
    pub fn input_hwc(&self) -> [usize; 3] {
        self.input
    }

    /// The output shape of one image, `[out_h, out_w, filters]`.
    pub fn output_hwc(&self) -> [usize; 3] {
        [self.out[0], self.out[1], self.filters]
    }

    /// The kernel's shape, HWIO: `[kh, kw, c, filters]`.
    pub fn kernel_shape(&self) -> [usize; 4] {
        [self.kernel[0], self.kernel[1], self.input[2], self.filters]
    }

    /// The strides `[sh, sw]`.
    pub fn strides(&self) -> [usize; 2] {
        self.strides
    }

    /// The dilation `[dh, dw]`.
    pub fn dilation(&self) -> [usize; 2] {
        self.dilation
    }

    /// The padding rule.
    pub fn padding(&self) -> Padding {
        self.padding
    }

    /// The zero rows and columns before the image, `[top, left]` (the
    /// bottom and right get what `same` needs beyond them).
    pub fn pad_top_left(&self) -> [usize; 2] {
        self.pad
    }

    /// The length of one row of the column matrix, `kh · kw · c`.
    pub fn patch_len(&self) -> usize {
        self.kernel[0] * self.kernel[1] * self.input[2]
    }

    /// Multiply-adds of the forward pass for `batch` images
    /// (`batch · out_h · out_w · kh · kw · c · filters`).
    pub fn forward_macs(&self, batch: usize) -> usize {
        self.out_rows(batch) * self.patch_len() * self.filters
    }

    /// A 1×1 kernel with strides 1 (and so no padding): the column matrix
    /// is the input itself, `[batch · h · w, c]`.
    fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.strides == [1, 1]
    }

    fn out_rows(&self, batch: usize) -> usize {
        batch * self.out[0] * self.out[1]
    }

    fn columns_len(&self, batch: usize) -> usize {
        self.out_rows(batch) * self.patch_len()
    }

    fn check_len(&self, what: &str, len: usize, shape: &[usize]) -> Result<()> {
        let want: usize = shape.iter().product();
        if len == want {
            Ok(())
        } else {
            Err(invalid(format!(
                "{what} holds {len} elements, not {want} (shape {shape:?}) for input {:?}, \
                 kernel {:?}",
                self.input,
                self.kernel_shape()
            )))
        }
    }

    fn check_kernel(&self, kernel: &[f32]) -> Result<()> {
        self.check_len("the kernel", kernel.len(), &self.kernel_shape())
    }

    fn check_output(&self, what: &str, len: usize, batch: usize) -> Result<()> {
        let [oh, ow, f] = self.output_hwc();
        self.check_len(what, len, &[batch, oh, ow, f])
    }

    /// The forward pass: `out` (`[batch, out_h, out_w, filters]`) = the
    /// convolution of `x` (`[batch, h, w, c]`) with `kernel`
    /// (`[kh, kw, c, filters]`), plus `bias` (`[filters]`) when given; then
    /// `epilogue(first_row, rows)` on each block of whole output rows
    /// (`rows` holds `[n, filters]` for the output pixels `first_row..first_row
    /// + n` of the batch, NHWC order) while they are in cache: a layer's
    /// activation, or `|_, _| {}`. The column matrix stays in `scratch` for
    /// [`backward`](Self::backward).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when a slice does not hold its shape's
    /// element count (naming it).
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        batch: usize,
        x: &[f32],
        kernel: &[f32],
        bias: Option<&[f32]>,
        out: &mut [f32],
        scratch: &mut Conv2dScratch,
        epilogue: impl Fn(usize, &mut [f32]) + Sync,
    ) -> Result<()> {
        let [h, w, c] = self.input;
        self.check_len("the input", x.len(), &[batch, h, w, c])?;
        self.check_kernel(kernel)?;
        self.check_output("the output", out.len(), batch)?;
        if let Some(b) = bias {
            self.check_len("the bias", b.len(), &[self.filters])?;
        }
        scratch.holds = None;
        let len = self.grow_columns(batch, scratch)?;
        cpu_kernel::forward(
            self,
            x,
            kernel,
            bias,
            out,
            &mut scratch.cols[..len],
            &epilogue,
        )?;
        scratch.holds = Some((*self, batch));
        Ok(())
    }

    /// Grows the im2col buffer to the columns of `batch` images (an
    /// allocation error rather than an abort); returns their length.
    fn grow_columns(&self, batch: usize, scratch: &mut Conv2dScratch) -> Result<usize> {
        let len = self.columns_len(batch);
        crate::tensor::try_grow(
            &mut scratch.cols,
            len,
            "conv2d",
            &[self.out_rows(batch), self.patch_len()],
        )?;
        Ok(len)
    }

    /// im2col of `x` (length checked by the caller) into `scratch`.
    fn fill_columns(&self, batch: usize, x: &[f32], scratch: &mut Conv2dScratch) -> Result<()> {
        let len = self.grow_columns(batch, scratch)?;
        cpu_kernel::im2col_batch(self, x, &mut scratch.cols[..len]);
        scratch.holds = Some((*self, batch));
        Ok(())
    }

    /// The backward pass of the last [`forward`](Self::forward) run with
    /// `scratch`: from `grad_out` = `dL/dy` (`[batch, out_h, out_w,
    /// filters]`) and the kernel, writes the gradients asked for in `grads`
    /// (see [`Conv2dGrads`]): `dK = colsᵀ · dL/dy`, `db = Σ dL/dy` over
    /// images and pixels, and `dx` = col2im(`dL/dy · Kᵀ`). First
    /// `prologue(first_row, rows)` runs on each block of rows of `grad_out`
    /// as [`forward`](Self::forward)'s epilogue does (a layer's activation
    /// derivative, turning `dL/da` into `dL/dy` in place), or `|_, _| {}`.
    /// Asking for `dx` overwrites the column matrix, so a second backward
    /// pass needs another forward pass.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `scratch` does not hold the columns
    /// of a forward pass of this geometry and batch size (or they were used
    /// up by an earlier `dx`), or when a slice does not hold its shape's
    /// element count.
    pub fn backward(
        &self,
        batch: usize,
        kernel: &[f32],
        grad_out: &mut [f32],
        grads: Conv2dGrads<'_>,
        scratch: &mut Conv2dScratch,
        prologue: impl Fn(usize, &mut [f32]) + Sync,
    ) -> Result<()> {
        self.check_kernel(kernel)?;
        self.check_output("the output gradient", grad_out.len(), batch)?;
        if let Some(gk) = &grads.kernel {
            self.check_len("the kernel gradient", gk.len(), &self.kernel_shape())?;
        }
        if let Some(gb) = &grads.bias {
            self.check_len("the bias gradient", gb.len(), &[self.filters])?;
        }
        if let Some(gx) = &grads.input {
            let [h, w, c] = self.input;
            self.check_len("the input gradient", gx.len(), &[batch, h, w, c])?;
        }
        if scratch.holds != Some((*self, batch)) {
            return Err(invalid(format!(
                "backward for a batch of {batch} needs the columns of a forward pass of the same \
                 geometry and batch size (input {:?}, kernel {:?}) in its scratch",
                self.input,
                self.kernel_shape()
            )));
        }
        let len = self.columns_len(batch);
        let groups = batch.div_ceil(self.group_images());
        let share = self.patch_len() * self.filters + self.filters;
        crate::tensor::try_grow(
            &mut scratch.partials,
            groups * share,
            "conv2d backward",
            &[groups, share],
        )?;
        if grads.input.is_some() {
            scratch.holds = None;
        }
        cpu_kernel::backward(
            self,
            kernel,
            grad_out,
            &mut scratch.cols[..len],
            &mut scratch.partials[..groups * share],
            cpu_kernel::Backward {
                kernel: grads.kernel,
                bias: grads.bias,
                input: grads.input,
            },
            &prologue,
        )
    }
}

impl Conv2dGeometry {
    /// im2col of a batch of images (Chellapilla, Puri & Simard 2006; the
    /// lowering of Caffe's and TensorFlow's convolutions): `x`
    /// `[batch, h, w, c]` to its column matrix `[batch · out_h · out_w,
    /// kh · kw · c]`, one row per output pixel (NHWC order) holding its
    /// receptive field in the kernel's HWIO order, 0 for taps in the
    /// padding. The convolution is then `cols · K` with the kernel read as
    /// `[kh · kw · c, filters]`. The result is on `x`'s device (on a GPU, one
    /// kernel launch); for a pointwise convolution (1×1 kernel, strides 1)
    /// it is `x` reshaped, sharing its storage.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] unless `x` is `[batch, h, w, c]` with this
    /// geometry's `[h, w, c]`; [`Error::Allocation`] or [`Error::Cuda`]
    /// naming the size when the columns cannot be allocated.
    pub fn im2col(&self, x: &Tensor) -> Result<Tensor> {
        let [h, w, c] = self.input;
        let batch = match x.shape() {
            &[b, xh, xw, xc] if [xh, xw, xc] == [h, w, c] => b,
            other => {
                return Err(Error::ShapeMismatch {
                    op: "im2col",
                    lhs: other.to_vec(),
                    rhs: vec![h, w, c],
                    detail: "the images must be [batch, h, w, c] for the geometry's [h, w, c]"
                        .into(),
                });
            }
        };
        let shape = [self.out_rows(batch), self.patch_len()];
        if self.is_pointwise() {
            return x.reshape(&shape);
        }
        #[cfg(feature = "cuda")]
        if let Some(xc) = x.cuda() {
            return cuda_kernel::im2col(self, batch, xc);
        }
        let mut cols = Vec::new();
        crate::tensor::try_grow(&mut cols, self.columns_len(batch), "im2col", &shape)?;
        cpu_kernel::im2col_batch(self, x.as_slice(), &mut cols);
        Ok(Tensor::from_parts(cols, shape.to_vec()))
    }

    /// col2im, the adjoint of [`im2col`](Self::im2col): `cols`
    /// `[batch · out_h · out_w, kh · kw · c]` to images `[batch, h, w, c]`
    /// whose every element is the sum of the column entries im2col copies
    /// from it (0 where none does). With `cols = dL/dcols` this is the
    /// convolution's input gradient. The sums run in one fixed order (output
    /// pixels row-major), so the CPU and a GPU (one thread per input
    /// element gathering its entries, no atomics) give the same bits. The
    /// result is on `cols`' device; for a pointwise convolution it is
    /// `cols` reshaped, sharing its storage.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] unless `cols` is `[batch · out_h · out_w,
    /// kh · kw · c]` for some batch; [`Error::Allocation`] or
    /// [`Error::Cuda`] naming the size when the images cannot be allocated.
    pub fn col2im(&self, cols: &Tensor) -> Result<Tensor> {
        let [h, w, c] = self.input;
        let pixels = self.out[0] * self.out[1];
        let patch = self.patch_len();
        let batch = match cols.shape() {
            &[rows, p] if p == patch && rows % pixels == 0 => rows / pixels,
            other => {
                return Err(Error::ShapeMismatch {
                    op: "col2im",
                    lhs: other.to_vec(),
                    rhs: vec![pixels, patch],
                    detail: format!(
                        "the columns must be [batch · {pixels}, {patch}] (out_h · out_w = \
                         {pixels} rows per image, kh · kw · c = {patch} columns)"
                    ),
                });
            }
        };
        let shape = [batch, h, w, c];
        if self.is_pointwise() {
            return cols.reshape(&shape);
        }
        #[cfg(feature = "cuda")]
        if let Some(cc) = cols.cuda() {
            return cuda_kernel::col2im(self, batch, cc);
        }
        let mut images = Vec::new();
        crate::tensor::try_grow(&mut images, batch * h * w * c, "col2im", &shape)?;
        cpu_kernel::col2im_batch(self, cols.as_slice(), &mut images);
        Ok(Tensor::from_parts(images, shape.to_vec()))
    }
}

/// The geometry of `x.conv2d(kernel, ..)` for tensors, checking ranks,
/// channels and devices.
fn tensor_geometry(
    x: &Tensor,
    kernel: &Tensor,
    strides: [usize; 2],
    padding: Padding,
    dilation: [usize; 2],
) -> Result<(usize, Conv2dGeometry)> {
    x.expect_rank(4, "conv2d")?;
    kernel.expect_rank(4, "conv2d")?;
    x.same_device(kernel, "conv2d")?;
    let (xs, ks) = (x.shape(), kernel.shape());
    if xs[3] != ks[2] {
        return Err(Error::ShapeMismatch {
            op: "conv2d",
            lhs: xs.to_vec(),
            rhs: ks.to_vec(),
            detail: format!(
                "the input has {} channels, the kernel [kh, kw, c, filters] expects {}",
                xs[3], ks[2]
            ),
        });
    }
    let g = Conv2dGeometry::new(
        [xs[1], xs[2], xs[3]],
        [ks[0], ks[1]],
        ks[3],
        strides,
        dilation,
        padding,
    )?;
    Ok((xs[0], g))
}

impl Tensor {
    /// 2-D convolution (`tf.nn.conv2d(x, kernel, strides, padding,
    /// dilations=dilation)`): `self` `[batch, h, w, c]` (channels-last) with
    /// `kernel` `[kh, kw, c, filters]` (HWIO) gives `[batch, out_h, out_w,
    /// filters]`; see the module docs for the formula and [`Padding`] for
    /// the output size.
    ///
    /// ```
    /// use hebb_tensor::{Tensor, ops::Padding};
    ///
    /// // A 3×3 image, one channel, and a 2×2 kernel of ones: sums of 2×2 windows.
    /// let x = Tensor::from_vec((1..=9).map(|v| v as f32).collect(), &[1, 3, 3, 1])?;
    /// let k = Tensor::full(&[2, 2, 1, 1], 1.0);
    /// let y = x.conv2d(&k, [1, 1], Padding::Valid, [1, 1])?;
    /// assert_eq!(y.shape(), &[1, 2, 2, 1]);
    /// assert_eq!(y.to_vec(), vec![12.0, 16.0, 24.0, 28.0]);
    /// # Ok::<(), hebb_tensor::Error>(())
    /// ```
    ///
    /// On a GPU the result stays on the device: im2col, then one cuBLAS
    /// product (see the module docs).
    ///
    /// # Errors
    /// [`Error::Rank`] unless both are rank 4; [`Error::ShapeMismatch`] if
    /// the channels differ; [`Error::InvalidArgument`] for a stride or
    /// dilation of 0, an empty axis, or a kernel larger than the image with
    /// `Padding::Valid`; [`Error::DeviceMismatch`] for operands on different
    /// devices; [`Error::Cuda`] if a launch or cuBLAS fails on a GPU.
    pub fn conv2d(
        &self,
        kernel: &Tensor,
        strides: [usize; 2],
        padding: Padding,
        dilation: [usize; 2],
    ) -> Result<Tensor> {
        let (batch, g) = tensor_geometry(self, kernel, strides, padding, dilation)?;
        let [oh, ow, f] = g.output_hwc();
        let shape = vec![batch, oh, ow, f];
        #[cfg(feature = "cuda")]
        if self.cuda().is_some() {
            let k = kernel.reshape(&[g.patch_len(), f])?;
            return g.im2col(self)?.matmul(&k)?.reshape(&shape);
        }
        let mut out = vec![0.0; batch * oh * ow * f];
        g.forward(
            batch,
            self.as_slice(),
            kernel.as_slice(),
            None,
            &mut out,
            &mut Conv2dScratch::new(),
            |_, _| {},
        )?;
        Ok(Tensor::from_parts(out, shape))
    }

    /// The gradients of [`conv2d`](Self::conv2d) (`self` the input `x`),
    /// from `grad_out` = `dL/dy` `[batch, out_h, out_w, filters]`:
    /// `(dL/dx, dL/dK)`, each computed only when its flag in `need`
    /// (`[input, kernel]`) is set: `dK = colsᵀ · dL/dy` and `dL/dx` =
    /// col2im(`dL/dy · Kᵀ`) (TensorFlow's `Conv2DBackpropFilter` and
    /// `Conv2DBackpropInput`). On a GPU both stay on the device (two
    /// cuBLAS products, im2col and col2im kernels).
    ///
    /// # Errors
    /// As [`conv2d`](Self::conv2d), and [`Error::ShapeMismatch`] when
    /// `grad_out` does not have the output's shape.
    #[allow(clippy::too_many_arguments)]
    pub fn conv2d_backward(
        &self,
        kernel: &Tensor,
        grad_out: &Tensor,
        strides: [usize; 2],
        padding: Padding,
        dilation: [usize; 2],
        need: [bool; 2],
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (batch, g) = tensor_geometry(self, kernel, strides, padding, dilation)?;
        let [oh, ow, f] = g.output_hwc();
        if grad_out.shape() != [batch, oh, ow, f] {
            return Err(Error::ShapeMismatch {
                op: "conv2d_backward",
                lhs: grad_out.shape().to_vec(),
                rhs: vec![batch, oh, ow, f],
                detail: "the output gradient must have the convolution's output shape".into(),
            });
        }
        self.same_device(grad_out, "conv2d_backward")?;
        #[cfg(feature = "cuda")]
        if self.cuda().is_some() {
            let gy = grad_out.reshape(&[g.out_rows(batch), f])?;
            let dk = if need[1] {
                let dk = g.im2col(self)?.matmul_with(&gy, true, false)?;
                Some(dk.reshape(kernel.shape())?)
            } else {
                None
            };
            let dx = if need[0] {
                let k = kernel.reshape(&[g.patch_len(), f])?;
                Some(g.col2im(&gy.matmul_with(&k, false, true)?)?)
            } else {
                None
            };
            return Ok((dx, dk));
        }
        let mut scratch = Conv2dScratch::new();
        g.fill_columns(batch, self.as_slice(), &mut scratch)?;
        let mut dx = need[0].then(|| vec![0.0; self.len()]);
        let mut dk = need[1].then(|| vec![0.0; kernel.len()]);
        g.backward(
            batch,
            kernel.as_slice(),
            &mut grad_out.to_vec(),
            Conv2dGrads {
                kernel: dk.as_deref_mut(),
                bias: None,
                input: dx.as_deref_mut(),
            },
            &mut scratch,
            |_, _| {},
        )?;
        Ok((
            dx.map(|d| Tensor::from_parts(d, self.shape.clone())),
            dk.map(|d| Tensor::from_parts(d, kernel.shape.clone())),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A convolution case: batch, input `[h, w, c]`, kernel `[kh, kw]`,
    /// filters, strides, dilation, padding.
    #[derive(Debug, Clone, Copy)]
    struct Case {
        batch: usize,
        input: [usize; 3],
        kernel: [usize; 2],
        filters: usize,
        strides: [usize; 2],
        dilation: [usize; 2],
        padding: Padding,
    }

    impl Case {
        fn geometry(&self) -> Result<Conv2dGeometry> {
            Conv2dGeometry::new(
                self.input,
                self.kernel,
                self.filters,
                self.strides,
                self.dilation,
                self.padding,
            )
        }
    }

    /// Deterministic values in `[-1, 1)`.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// The input coordinate of output `o` and tap `t` along an axis, if inside.
    fn at(o: usize, t: usize, stride: usize, dil: usize, pad: usize, size: usize) -> Option<usize> {
        let v = (o * stride + t * dil) as isize - pad as isize;
        (0..size as isize).contains(&v).then_some(v as usize)
    }

    /// Plain loops, in f64: `(y, dx, dk, db)` for the loss `Σ g·y`.
    #[allow(clippy::type_complexity)]
    fn reference(
        c: &Case,
        g: &Conv2dGeometry,
        x: &[f32],
        k: &[f32],
        b: &[f32],
        gy: &[f32],
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
        let [h, w, ch] = c.input;
        let [kh, kw] = c.kernel;
        let [oh, ow, f] = g.output_hwc();
        let [pt, pl] = g.pad_top_left();
        let mut y = vec![0f64; c.batch * oh * ow * f];
        let mut dx = vec![0f64; x.len()];
        let mut dk = vec![0f64; k.len()];
        let mut db = vec![0f64; f];
        for n in 0..c.batch {
            for oy in 0..oh {
                for ox in 0..ow {
                    for fi in 0..f {
                        let yi = ((n * oh + oy) * ow + ox) * f + fi;
                        let mut acc = f64::from(b[fi]);
                        db[fi] += f64::from(gy[yi]);
                        for i in 0..kh {
                            for j in 0..kw {
                                for cc in 0..ch {
                                    let (Some(iy), Some(ix)) = (
                                        at(oy, i, c.strides[0], c.dilation[0], pt, h),
                                        at(ox, j, c.strides[1], c.dilation[1], pl, w),
                                    ) else {
                                        continue;
                                    };
                                    let xi = ((n * h + iy) * w + ix) * ch + cc;
                                    let ki = ((i * kw + j) * ch + cc) * f + fi;
                                    acc += f64::from(x[xi]) * f64::from(k[ki]);
                                    dx[xi] += f64::from(gy[yi]) * f64::from(k[ki]);
                                    dk[ki] += f64::from(gy[yi]) * f64::from(x[xi]);
                                }
                            }
                        }
                        y[yi] = acc;
                    }
                }
            }
        }
        (y, dx, dk, db)
    }

    fn assert_close(what: &str, c: &Case, got: &[f32], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{what} {c:?}");
        for (idx, (&a, &b)) in got.iter().zip(want).enumerate() {
            assert!(
                (f64::from(a) - b).abs() <= 1e-4 * (1.0 + b.abs()),
                "{what} [{idx}]: {a} vs {b} in {c:?}"
            );
        }
    }

    /// Forward (with bias) and every gradient against the loops.
    fn check_case(c: &Case, seed: u64) {
        let g = c.geometry().unwrap();
        let [h, w, ch] = c.input;
        let [oh, ow, f] = g.output_hwc();
        let x = values(c.batch * h * w * ch, seed);
        let k = values(g.patch_len() * f, seed + 1);
        let b = values(f, seed + 2);
        let gy = values(c.batch * oh * ow * f, seed + 3);
        let (ry, rdx, rdk, rdb) = reference(c, &g, &x, &k, &b, &gy);

        let mut scratch = Conv2dScratch::new();
        let mut y = vec![f32::NAN; ry.len()];
        g.forward(c.batch, &x, &k, Some(&b), &mut y, &mut scratch, |_, _| {})
            .unwrap();
        assert_close("y", c, &y, &ry);
        assert_eq!(
            scratch.columns().map(<[f32]>::len),
            Some(c.batch * oh * ow * g.patch_len())
        );
        let (mut dx, mut dk, mut db) = (
            vec![f32::NAN; x.len()],
            vec![f32::NAN; k.len()],
            vec![f32::NAN; f],
        );
        let grads = Conv2dGrads {
            kernel: Some(&mut dk),
            bias: Some(&mut db),
            input: Some(&mut dx),
        };
        g.backward(c.batch, &k, &mut gy.clone(), grads, &mut scratch, |_, _| {})
            .unwrap();
        assert_close("dx", c, &dx, &rdx);
        assert_close("dk", c, &dk, &rdk);
        assert_close("db", c, &db, &rdb);

        // The tensor forms agree with the slice kernels bit for bit.
        let xt = Tensor::from_vec(x.clone(), &[c.batch, h, w, ch]).unwrap();
        let kt = Tensor::from_vec(k.clone(), &g.kernel_shape()).unwrap();
        let gt = Tensor::from_vec(gy.clone(), &[c.batch, oh, ow, f]).unwrap();
        let yt = xt.conv2d(&kt, c.strides, c.padding, c.dilation).unwrap();
        let mut y0 = vec![0.0; y.len()];
        g.forward(c.batch, &x, &k, None, &mut y0, &mut scratch, |_, _| {})
            .unwrap();
        assert_eq!(yt.to_vec(), y0);
        let (tdx, tdk) = xt
            .conv2d_backward(&kt, &gt, c.strides, c.padding, c.dilation, [true, true])
            .unwrap();
        assert_eq!(tdx.unwrap().to_vec(), dx);
        assert_eq!(tdk.unwrap().to_vec(), dk);
    }

    fn case(
        batch: usize,
        input: [usize; 3],
        kernel: [usize; 2],
        filters: usize,
        strides: [usize; 2],
        dilation: [usize; 2],
        padding: Padding,
    ) -> Case {
        Case {
            batch,
            input,
            kernel,
            filters,
            strides,
            dilation,
            padding,
        }
    }

    fn named_cases() -> Vec<Case> {
        use Padding::{Same, Valid};
        vec![
            // The MNIST convnet's layers, on two images.
            case(2, [28, 28, 1], [3, 3], 8, [1, 1], [1, 1], Valid),
            case(2, [11, 11, 32], [3, 3], 64, [1, 1], [1, 1], Valid),
            // Batch 1, one channel, one filter.
            case(1, [5, 4, 1], [2, 3], 1, [1, 1], [1, 1], Valid),
            // Kernel = input size: one output pixel.
            case(3, [4, 5, 2], [4, 5], 3, [1, 1], [1, 1], Valid),
            // Same, odd and even kernels, strides that do not divide.
            case(2, [7, 6, 3], [3, 3], 4, [1, 1], [1, 1], Same),
            case(2, [7, 6, 3], [2, 4], 4, [2, 3], [1, 1], Same),
            case(1, [5, 5, 2], [4, 4], 2, [3, 2], [1, 1], Same),
            // Same with a kernel larger than the image.
            case(2, [2, 3, 2], [5, 4], 3, [1, 1], [1, 1], Same),
            // Strides larger than the kernel (pixels skipped).
            case(2, [9, 8, 2], [2, 2], 3, [3, 4], [1, 1], Valid),
            // Dilation, valid and same.
            case(2, [9, 10, 2], [3, 2], 3, [1, 1], [2, 3], Valid),
            case(2, [8, 7, 3], [3, 3], 2, [2, 1], [2, 2], Same),
            // 1x1 kernel.
            case(2, [3, 4, 5], [1, 1], 6, [1, 1], [1, 1], Valid),
            // Several groups of images, the last one short.
            case(7, [12, 11, 16], [3, 3], 16, [1, 1], [1, 1], Valid),
        ]
    }

    #[test]
    fn named_cases_match_the_loops() {
        for (i, c) in named_cases().iter().enumerate() {
            check_case(c, i as u64);
        }
    }

    /// The tensor forms of im2col and col2im: im2col gives the forward
    /// pass's columns, col2im is its adjoint (`<im2col(x), C> = <x,
    /// col2im(C)>`), and a pointwise convolution's columns are its input.
    #[test]
    fn tensor_im2col_and_col2im_are_adjoint() {
        for (i, c) in named_cases().iter().enumerate() {
            let g = c.geometry().unwrap();
            let [h, w, ch] = c.input;
            let [oh, ow, f] = g.output_hwc();
            let x = values(c.batch * h * w * ch, i as u64);
            let k = values(g.patch_len() * f, 100 + i as u64);
            let mut scratch = Conv2dScratch::new();
            let mut y = vec![0.0; c.batch * oh * ow * f];
            g.forward(c.batch, &x, &k, None, &mut y, &mut scratch, |_, _| {})
                .unwrap();
            let xt = Tensor::from_vec(x.clone(), &[c.batch, h, w, ch]).unwrap();
            let cols = g.im2col(&xt).unwrap();
            assert_eq!(cols.shape(), &[c.batch * oh * ow, g.patch_len()]);
            assert_eq!(Some(cols.as_slice()), scratch.columns(), "{c:?}");
            let dcols = values(cols.len(), 200 + i as u64);
            let dt = Tensor::from_vec(dcols.clone(), cols.shape()).unwrap();
            let back = g.col2im(&dt).unwrap();
            assert_eq!(back.shape(), xt.shape());
            let dot = |a: &[f32], b: &[f32]| -> f64 {
                a.iter()
                    .zip(b)
                    .map(|(p, q)| f64::from(*p) * f64::from(*q))
                    .sum()
            };
            let (lhs, rhs) = (dot(cols.as_slice(), &dcols), dot(&x, back.as_slice()));
            assert!(
                (lhs - rhs).abs() <= 1e-4 * (1.0 + lhs.abs()),
                "{lhs} vs {rhs} in {c:?}"
            );
        }
        let g = Conv2dGeometry::new([3, 4, 5], [1, 1], 2, [1, 1], [1, 1], Padding::Same).unwrap();
        let x = Tensor::from_vec(values(2 * 60, 9), &[2, 3, 4, 5]).unwrap();
        let cols = g.im2col(&x).unwrap();
        assert_eq!(cols.shape(), &[24, 5]);
        assert_eq!(cols.as_slice().as_ptr(), x.as_slice().as_ptr());
        assert_eq!(
            g.col2im(&cols).unwrap().as_slice().as_ptr(),
            x.as_slice().as_ptr()
        );
        assert!(g.im2col(&Tensor::zeros(&[2, 3, 4, 4])).is_err());
        assert!(g.col2im(&Tensor::zeros(&[25, 5])).is_err());
        assert!(g.col2im(&Tensor::zeros(&[24, 4])).is_err());
    }

    fn any_case() -> impl Strategy<Value = Case> {
        (
            1usize..=3,
            (1usize..=9, 1usize..=9, 1usize..=4),
            (1usize..=4, 1usize..=4, 1usize..=5),
            (1usize..=3, 1usize..=3, 1usize..=3, 1usize..=3),
            any::<bool>(),
        )
            .prop_map(
                |(batch, (h, w, c), (kh, kw, filters), (sh, sw, dh, dw), same)| {
                    case(
                        batch,
                        [h, w, c],
                        [kh, kw],
                        filters,
                        [sh, sw],
                        [dh, dw],
                        if same { Padding::Same } else { Padding::Valid },
                    )
                },
            )
            .prop_filter("the kernel fits a valid convolution", |c| {
                c.geometry().is_ok()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn random_shapes_match_the_loops(c in any_case(), seed in 0u64..1000) {
            check_case(&c, seed);
        }
    }

    /// Forward and backward split between threads (products above the GEMM's
    /// parallel threshold, several images) are bit-identical to one thread's.
    #[test]
    fn threads_do_not_change_the_bits() {
        let c = case(5, [13, 12, 16], [3, 3], 40, [1, 1], [1, 1], Padding::Same);
        let g = c.geometry().unwrap();
        assert!(g.forward_macs(c.batch) > 1 << 20);
        let [h, w, ch] = c.input;
        let [oh, ow, f] = g.output_hwc();
        let x = values(c.batch * h * w * ch, 7);
        let k = values(g.patch_len() * f, 8);
        let b = values(f, 9);
        let gy = values(c.batch * oh * ow * f, 10);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut scratch = Conv2dScratch::new();
                let mut y = vec![0.0; gy.len()];
                g.forward(c.batch, &x, &k, Some(&b), &mut y, &mut scratch, |_, _| {})
                    .unwrap();
                let (mut dx, mut dk, mut db) =
                    (vec![0.0; x.len()], vec![0.0; k.len()], vec![0.0; f]);
                let grads = Conv2dGrads {
                    kernel: Some(&mut dk),
                    bias: Some(&mut db),
                    input: Some(&mut dx),
                };
                g.backward(c.batch, &k, &mut gy.clone(), grads, &mut scratch, |_, _| {})
                    .unwrap();
                [y, dx, dk, db].map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
            })
        };
        let one = run(1);
        for threads in [2, 3, 4] {
            assert!(one == run(threads), "{threads} threads");
        }
    }

    /// The epilogue sees every output row once, with its row number; the
    /// prologue's changes to the output gradient are what the gradients use.
    #[test]
    fn epilogue_and_prologue_see_numbered_rows() {
        let c = case(5, [22, 12, 2], [3, 3], 3, [1, 1], [1, 1], Padding::Valid);
        let g = c.geometry().unwrap();
        assert!(c.batch.div_ceil(g.group_images()) > 1, "several groups");
        let [h, w, ch] = c.input;
        let [oh, ow, f] = g.output_hwc();
        let x = values(c.batch * h * w * ch, 1);
        let k = values(g.patch_len() * f, 2);
        let gy = values(c.batch * oh * ow * f, 3);
        let mut scratch = Conv2dScratch::new();
        let mut plain = vec![0.0; gy.len()];
        g.forward(c.batch, &x, &k, None, &mut plain, &mut scratch, |_, _| {})
            .unwrap();
        let mut y = vec![0.0; gy.len()];
        let mark = |first: usize, rows: &mut [f32]| {
            for (r, row) in rows.chunks_exact_mut(f).enumerate() {
                row[0] += 1000.0 * (first + r) as f32;
            }
        };
        g.forward(c.batch, &x, &k, None, &mut y, &mut scratch, mark)
            .unwrap();
        let mut want = plain.clone();
        mark(0, &mut want);
        assert_eq!(y, want);

        let mut grads_with = |gy: &mut [f32], prologue: &(dyn Fn(usize, &mut [f32]) + Sync)| {
            g.forward(c.batch, &x, &k, None, &mut y, &mut scratch, |_, _| {})
                .unwrap();
            let (mut dx, mut dk) = (vec![0.0; x.len()], vec![0.0; k.len()]);
            let grads = Conv2dGrads {
                kernel: Some(&mut dk),
                bias: None,
                input: Some(&mut dx),
            };
            g.backward(c.batch, &k, gy, grads, &mut scratch, prologue)
                .unwrap();
            (dx, dk)
        };
        let scale = |first: usize, rows: &mut [f32]| {
            for (r, row) in rows.chunks_exact_mut(f).enumerate() {
                row.iter_mut().for_each(|v| *v *= ((first + r) % 7) as f32);
            }
        };
        let mut scaled = gy.clone();
        scale(0, &mut scaled);
        let want = grads_with(&mut scaled, &|_, _| {});
        let mut gy2 = gy.clone();
        assert_eq!(grads_with(&mut gy2, &scale), want);
        assert_eq!(gy2, scaled);
    }

    #[test]
    fn errors_name_the_shapes() {
        let e = Conv2dGeometry::new([2, 28, 1], [3, 3], 4, [1, 1], [1, 1], Padding::Valid)
            .unwrap_err()
            .to_string();
        assert!(e.contains("[2, 28, 1]") && e.contains("[3, 3]"), "{e}");
        assert!(e.contains("height"), "{e}");
        for (strides, dilation, filters) in [
            ([0, 1], [1, 1], 1),
            ([1, 1], [1, 0], 1),
            ([1, 1], [1, 1], 0),
        ] {
            assert!(
                Conv2dGeometry::new([5, 5, 1], [3, 3], filters, strides, dilation, Padding::Same)
                    .is_err()
            );
        }
        let x = Tensor::zeros(&[1, 5, 5, 2]);
        let e = x
            .conv2d(
                &Tensor::zeros(&[3, 3, 3, 4]),
                [1, 1],
                Padding::Valid,
                [1, 1],
            )
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[1, 5, 5, 2]") && e.contains("[3, 3, 3, 4]"),
            "{e}"
        );
        assert!(matches!(
            x.conv2d(&Tensor::zeros(&[3, 3, 2]), [1, 1], Padding::Valid, [1, 1]),
            Err(Error::Rank { .. })
        ));
        assert!(matches!(
            Tensor::zeros(&[5, 5, 2]).conv2d(
                &Tensor::zeros(&[3, 3, 2, 1]),
                [1, 1],
                Padding::Valid,
                [1, 1]
            ),
            Err(Error::Rank { .. })
        ));
        // Wrong slice lengths and a backward without its forward.
        let g = Conv2dGeometry::new([5, 5, 2], [3, 3], 4, [1, 1], [1, 1], Padding::Valid).unwrap();
        let mut scratch = Conv2dScratch::new();
        let mut y = vec![0.0; 3 * 3 * 4];
        let k = vec![0.0; 3 * 3 * 2 * 4];
        let e = g
            .forward(1, &[0.0; 49], &k, None, &mut y, &mut scratch, |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("49") && e.contains("[1, 5, 5, 2]"), "{e}");
        let e = g
            .backward(
                1,
                &k,
                &mut y,
                Conv2dGrads::default(),
                &mut scratch,
                |_, _| {},
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("forward pass"), "{e}");
        g.forward(1, &[0.0; 50], &k, None, &mut y, &mut scratch, |_, _| {})
            .unwrap();
        assert!(scratch.columns().is_some());
        let mut dx = vec![0.0; 50];
        let grads = Conv2dGrads {
            input: Some(&mut dx),
            ..Conv2dGrads::default()
        };
        g.backward(1, &k, &mut y, grads, &mut scratch, |_, _| {})
            .unwrap();
        // The columns were used up by dx.
        assert!(scratch.columns().is_none());
        let grads = Conv2dGrads {
            input: Some(&mut dx),
            ..Conv2dGrads::default()
        };
        assert!(
            g.backward(1, &k, &mut y, grads, &mut scratch, |_, _| {})
                .is_err()
        );
    }
}
