//! 2-D pooling on channels-last images `[n, h, w, c]` (Keras'
//! `MaxPooling2D`, `AveragePooling2D`, `GlobalAveragePooling2D`,
//! `GlobalMaxPooling2D`; `tf.nn.max_pool2d`, `tf.nn.avg_pool2d`).
//!
//! A window of `pool = [ph, pw]` cells moves by `strides = [sh, sw]`; along
//! each axis the output size and the padding before follow [`Padding`]
//! (TensorFlow's rule: `valid` keeps windows inside the image, `same` gives
//! `ceil(size / stride)` outputs with the odd extra padding cell at the
//! bottom/right). For output cell `(oy, ox)` and channel `ch`, over the
//! window's cells `W` that lie inside the image (padding cells are never
//! looked at):
//!
//! ```text
//! max:      y = max_{(i, j) ∈ W} x[i, j, ch]
//! average:  y = (Σ_{(i, j) ∈ W} x[i, j, ch]) / |W|
//! ```
//!
//! so 'same' average pooling divides by the number of cells inside the
//! image, not by `ph · pw`, as TensorFlow does. Every window holds at least
//! one image cell.
//!
//! Gradients: max pooling sends each output's gradient to the input cell
//! that was its maximum; at ties, to the **first** maximum in the window's
//! scan order (rows top to bottom, each left to right), as TensorFlow's CPU
//! `MaxPoolGrad` does (its arg-max helper replaces the running maximum only
//! when a value is strictly greater). A NaN counts as larger than every
//! number, so NaNs propagate (the first NaN of the window is the maximum).
//! Average pooling gives each window cell `g / |W|`. Overlapping windows
//! (strides smaller than the pool) add their contributions.
//!
//! Global pooling reduces each `(sample, channel)` over all `h · w` cells:
//! `[n, h, w, c] -> [n, c]`. The global average sums in `f64` (in scan
//! order) and rounds once.
//!
//! [`Pool2d`] holds the geometry and runs the host kernels on slices the
//! caller owns (a layer's reused buffers); max pooling keeps the arg-max
//! indices its backward pass needs. The tensor forms run on the tensor's
//! device (CPU or GPU, feature `cuda`) and allocate their results there:
//! [`Tensor::max_pool2d`], [`Tensor::avg_pool2d`],
//! [`Tensor::global_avg_pool2d`], [`Tensor::global_max_pool2d`], the
//! forms that also return the arg-max indices ([`PoolArgmax`], kept in
//! device memory on a GPU) and the backward passes
//! [`Tensor::max_pool2d_backward`], [`Tensor::avg_pool2d_backward`] and
//! [`Tensor::global_avg_pool2d_backward`]. The host kernels split the work
//! between rayon's threads and give the same bits for any number of
//! threads. The GPU kernels (`pool.cu`) compute each element with the same
//! IEEE operations in the same order (the backward passes gather, for each
//! input cell, from the outputs whose windows cover it, in output order,
//! where the CPU scatters in output order), so GPU and CPU agree bit for
//! bit (checked on an H200), except for the payload of a NaN that an
//! average computes, which IEEE 754 leaves to the hardware; nothing is
//! copied to the host.
//!
//! ```
//! use hebb_tensor::{Tensor, ops::Padding};
//!
//! // Keras' MaxPooling2D example: a 3×3 image, pool 2×2, strides 1.
//! let x = Tensor::from_vec((1..=9).map(|v| v as f32).collect(), &[1, 3, 3, 1])?;
//! let y = x.max_pool2d([2, 2], [1, 1], Padding::Valid)?;
//! assert_eq!(y.shape(), &[1, 2, 2, 1]);
//! assert_eq!(y.to_vec(), [5.0, 6.0, 8.0, 9.0]);
//! // 'same' averages only the cells inside the image.
//! let y = x.avg_pool2d([2, 2], [1, 1], Padding::Same)?;
//! assert_eq!(y.to_vec(), [3.0, 4.0, 4.5, 6.0, 7.0, 7.5, 7.5, 8.5, 9.0]);
//! # Ok::<(), hebb_tensor::Error>(())
//! ```

mod cpu_kernel;
#[cfg(feature = "cuda")]
pub(crate) mod cuda_kernel;

use crate::ops::Padding;
use crate::{Device, Error, Result, Tensor};

/// The geometry of a 2-D pooling op on a channels-last batch
/// `[batch, height, width, channels]`: pool, strides, padding, and the
/// output size and padding before along each axis that they give. Made
/// once per input shape (it is `Copy` and allocates nothing); its kernels
/// run on caller-owned slices. See the module docs for the formulas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pool2d {
    batch: usize,
    height: usize,
    width: usize,
    channels: usize,
    pool: [usize; 2],
    strides: [usize; 2],
    padding: Padding,
    out_height: usize,
    out_width: usize,
    pad_top: usize,
    pad_left: usize,
}

impl Pool2d {
    /// The geometry for an input of shape `[n, h, w, c]`, a `pool`
    /// `[ph, pw]`, `strides` `[sh, sw]` and `padding`.
    ///
    /// # Errors
    /// [`Error::Rank`] unless `input` has rank 4; [`Error::InvalidArgument`]
    /// (naming the input shape, pool, strides and padding) for a pool or
    /// stride of 0, a pool larger than the image with `valid` padding, or a
    /// sample of more than `u32::MAX` elements (arg-max indices are `u32`).
    pub fn new(
        input: &[usize],
        pool: [usize; 2],
        strides: [usize; 2],
        padding: Padding,
    ) -> Result<Self> {
        Self::for_op("pool2d", input, pool, strides, padding)
    }

    /// The geometry of global pooling (a window over the whole image,
    /// `valid`): output `[n, 1, 1, c]`, which is `[n, c]` in memory.
    ///
    /// # Errors
    /// As [`new`](Self::new); an image with no cells (`h` or `w` of 0).
    pub fn global(input: &[usize]) -> Result<Self> {
        Self::global_for_op("global_max_pool2d", input)
    }

    fn global_for_op(op: &'static str, input: &[usize]) -> Result<Self> {
        let [_, h, w, _] = rank4(op, input)?;
        if h == 0 || w == 0 {
            return Err(Error::InvalidArgument {
                op,
                reason: format!("global pooling needs an image of at least 1×1, got {input:?}"),
            });
        }
        Self::for_op(op, input, [h, w], [h, w], Padding::Valid)
    }

    pub(crate) fn for_op(
        op: &'static str,
        input: &[usize],
        pool: [usize; 2],
        strides: [usize; 2],
        padding: Padding,
    ) -> Result<Self> {
        let [batch, height, width, channels] = rank4(op, input)?;
        let describe = || {
            format!(
                "input {input:?} ([n, h, w, c]), pool {pool:?}, strides {strides:?}, padding {:?}",
                padding.name()
            )
        };
        if pool.contains(&0) || strides.contains(&0) {
            return Err(Error::InvalidArgument {
                op,
                reason: format!("pool and strides must be at least 1: {}", describe()),
            });
        }
        let axis = |size: usize, i: usize| {
            padding
                .output_size(size, pool[i], strides[i], 1)
                .map_err(|_| Error::InvalidArgument {
                    op,
                    reason: format!(
                        "the pool is larger than the image with padding \"valid\": {}",
                        describe()
                    ),
                })
        };
        let (out_height, pad_top) = axis(height, 0)?;
        let (out_width, pad_left) = axis(width, 1)?;
        let sample = height
            .checked_mul(width)
            .and_then(|v| v.checked_mul(channels));
        let total = sample.and_then(|s| s.checked_mul(batch));
        if sample.is_none_or(|s| s > u32::MAX as usize) || total.is_none() {
            return Err(Error::InvalidArgument {
                op,
                reason: format!(
                    "a sample of more than {} elements is not supported: {}",
                    u32::MAX,
                    describe()
                ),
            });
        }
        Ok(Self {
            batch,
            height,
            width,
            channels,
            pool,
            strides,
            padding,
            out_height,
            out_width,
            pad_top,
            pad_left,
        })
    }

    /// The input shape `[n, h, w, c]`.
    pub fn input_shape(&self) -> [usize; 4] {
        [self.batch, self.height, self.width, self.channels]
    }

    /// The output shape `[n, out_h, out_w, c]`.
    pub fn output_shape(&self) -> [usize; 4] {
        [self.batch, self.out_height, self.out_width, self.channels]
    }

    /// Elements of the input, `n · h · w · c`.
    pub fn input_len(&self) -> usize {
        self.input_shape().iter().product()
    }

    /// Elements of the output, `n · out_h · out_w · c`.
    pub fn output_len(&self) -> usize {
        self.output_shape().iter().product()
    }

    /// The pool `[ph, pw]`.
    pub fn pool(&self) -> [usize; 2] {
        self.pool
    }

    /// The strides `[sh, sw]`.
    pub fn strides(&self) -> [usize; 2] {
        self.strides
    }

    /// The padding rule.
    pub fn padding(&self) -> Padding {
        self.padding
    }

    /// Padding cells before the image: `[top, left]` (the bottom/right get
    /// the rest of [`Padding::Same`]'s total).
    pub fn pad_before(&self) -> [usize; 2] {
        [self.pad_top, self.pad_left]
    }

    fn check_len(&self, op: &'static str, what: &str, got: usize, want: usize) -> Result<()> {
        if got == want {
            Ok(())
        } else {
            Err(Error::InvalidArgument {
                op,
                reason: format!(
                    "{what} has {got} elements, the geometry (input {:?}, output {:?}) needs {want}",
                    self.input_shape(),
                    self.output_shape()
                ),
            })
        }
    }

    /// Max pooling forward: `x` (input, `input_len` elements) to `out`
    /// (`output_len`), and in `argmax` (`output_len`) each maximum's index
    /// within its sample, `(iy · w + ix) · c + ch`, for
    /// [`max_backward`](Self::max_backward).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when a slice has the wrong length.
    pub fn max_forward(&self, x: &[f32], out: &mut [f32], argmax: &mut [u32]) -> Result<()> {
        const OP: &str = "max_pool2d";
        self.check_len(OP, "x", x.len(), self.input_len())?;
        self.check_len(OP, "out", out.len(), self.output_len())?;
        self.check_len(OP, "argmax", argmax.len(), self.output_len())?;
        cpu_kernel::max_forward(self, x, out, argmax);
        Ok(())
    }

    /// Max pooling backward: `grad_in` (`input_len`, overwritten) gets each
    /// of `grad_out`'s values (`output_len`) at the input its `argmax`
    /// names (as [`max_forward`](Self::max_forward) left them); inputs that
    /// were no window's maximum get 0.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when a slice has the wrong length, or an
    /// index is outside its sample.
    pub fn max_backward(
        &self,
        grad_out: &[f32],
        argmax: &[u32],
        grad_in: &mut [f32],
    ) -> Result<()> {
        const OP: &str = "max_pool2d_backward";
        self.check_len(OP, "grad_out", grad_out.len(), self.output_len())?;
        self.check_len(OP, "argmax", argmax.len(), self.output_len())?;
        self.check_len(OP, "grad_in", grad_in.len(), self.input_len())?;
        match cpu_kernel::max_backward(self, grad_out, argmax, grad_in) {
            None => Ok(()),
            Some(i) => Err(Error::Index {
                op: OP,
                index: i as usize,
                bound: self.height * self.width * self.channels,
            }),
        }
    }

    /// Average pooling forward: `x` (`input_len`) to `out` (`output_len`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when a slice has the wrong length.
    pub fn avg_forward(&self, x: &[f32], out: &mut [f32]) -> Result<()> {
        const OP: &str = "avg_pool2d";
        self.check_len(OP, "x", x.len(), self.input_len())?;
        self.check_len(OP, "out", out.len(), self.output_len())?;
        cpu_kernel::avg_forward(self, x, out);
        Ok(())
    }

    /// Average pooling backward: `grad_in` (`input_len`, overwritten) from
    /// `grad_out` (`output_len`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when a slice has the wrong length.
    pub fn avg_backward(&self, grad_out: &[f32], grad_in: &mut [f32]) -> Result<()> {
        const OP: &str = "avg_pool2d_backward";
        self.check_len(OP, "grad_out", grad_out.len(), self.output_len())?;
        self.check_len(OP, "grad_in", grad_in.len(), self.input_len())?;
        cpu_kernel::avg_backward(self, grad_out, grad_in);
        Ok(())
    }
}

fn rank4(op: &'static str, shape: &[usize]) -> Result<[usize; 4]> {
    <[usize; 4]>::try_from(shape).map_err(|_| Error::Rank {
        op,
        expected: 4,
        shape: shape.to_vec(),
    })
}

/// Checks that `shape` is a global pooling input `[n, h, w, c]` with at
/// least one cell, and returns it.
fn global_shape(op: &'static str, shape: &[usize]) -> Result<[usize; 4]> {
    Pool2d::global_for_op(op, shape).map(|g| g.input_shape())
}

/// Global average pooling forward on slices: `x` `[n, h, w, c]` (`shape`)
/// to `out` `[n, c]`, each the mean of its `h · w` cells summed in `f64`.
///
/// # Errors
/// [`Error::Rank`] unless `shape` has rank 4; [`Error::InvalidArgument`]
/// for an image without cells or slices of the wrong length.
pub fn global_avg_pool2d_forward(shape: &[usize], x: &[f32], out: &mut [f32]) -> Result<()> {
    const OP: &str = "global_avg_pool2d";
    let s = global_shape(OP, shape)?;
    check_global_lens(OP, s, x.len(), out.len())?;
    cpu_kernel::global_avg_forward(s, x, out);
    Ok(())
}

/// Global average pooling backward on slices: `grad_in` `[n, h, w, c]`
/// (`shape`, overwritten) gets `grad_out[n, c] / (h · w)` at every cell.
///
/// # Errors
/// As [`global_avg_pool2d_forward`].
pub fn global_avg_pool2d_backward(
    shape: &[usize],
    grad_out: &[f32],
    grad_in: &mut [f32],
) -> Result<()> {
    const OP: &str = "global_avg_pool2d_backward";
    let s = global_shape(OP, shape)?;
    check_global_lens(OP, s, grad_in.len(), grad_out.len())?;
    cpu_kernel::global_avg_backward(s, grad_out, grad_in);
    Ok(())
}

fn check_global_lens(op: &'static str, s: [usize; 4], image: usize, reduced: usize) -> Result<()> {
    let want = (s.iter().product::<usize>(), s[0] * s[3]);
    if (image, reduced) == want {
        return Ok(());
    }
    Err(Error::InvalidArgument {
        op,
        reason: format!(
            "slices of {image} and {reduced} elements do not fit input {s:?} and output [{}, {}] \
             ({} and {} elements)",
            s[0], s[3], want.0, want.1
        ),
    })
}

/// Where max pooling's maxima were: for each output element, the index of
/// its window's maximum within its sample, `(iy · w + ix) · c + ch` (the
/// first maximum in scan order at ties, the first NaN if any), with the
/// geometry that made them. Returned by [`Tensor::max_pool2d_with_argmax`]
/// and [`Tensor::global_max_pool2d_with_argmax`] (as
/// `tf.nn.max_pool_with_argmax`, whose indices count from the start of the
/// sample too with `include_batch_in_index=False`) and consumed by
/// [`Tensor::max_pool2d_backward`]. The indices stay on the input's device
/// (device memory on a GPU); cloning shares them.
#[derive(Clone)]
pub struct PoolArgmax {
    geometry: Pool2d,
    indices: Indices,
}

/// The indices on the host or on a GPU.
#[derive(Clone)]
enum Indices {
    Host(std::sync::Arc<Vec<u32>>),
    #[cfg(feature = "cuda")]
    Cuda(std::sync::Arc<cuda_kernel::DeviceIndices>),
}

impl std::fmt::Debug for PoolArgmax {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolArgmax")
            .field("geometry", &self.geometry)
            .field("device", &self.device())
            .finish()
    }
}

impl PoolArgmax {
    /// The geometry of the forward pass (its input and output shapes).
    pub fn geometry(&self) -> Pool2d {
        self.geometry
    }

    /// The device the indices are on (the forward pass's input's).
    pub fn device(&self) -> Device {
        match &self.indices {
            Indices::Host(_) => Device::Cpu,
            #[cfg(feature = "cuda")]
            Indices::Cuda(d) => Device::Cuda(d.backend.ordinal),
        }
    }

    /// The number of indices: the forward pass's output elements.
    pub fn len(&self) -> usize {
        self.geometry.output_len()
    }

    /// Whether there are no indices (an empty output).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The indices on the host, in output order (a GPU's are copied, which
    /// waits for the device).
    ///
    /// # Errors
    /// [`Error::Cuda`] if the copy from a GPU fails.
    pub fn to_vec(&self) -> Result<Vec<u32>> {
        match &self.indices {
            Indices::Host(v) => Ok(v.as_ref().clone()),
            #[cfg(feature = "cuda")]
            Indices::Cuda(d) => d.download(self.len()),
        }
    }
}

impl Tensor {
    /// The tensor as a buffer on its device and the backend it needs.
    #[cfg(feature = "cuda")]
    fn pool_cuda(
        &self,
    ) -> Option<(
        &std::sync::Arc<crate::cuda::Backend>,
        &cudarc::driver::CudaSlice<f32>,
    )> {
        self.cuda().map(|c| (&c.backend, c.data.as_ref()))
    }

    /// Max pooling of a channels-last batch `[n, h, w, c]` (`tf.nn.max_pool2d`,
    /// Keras `MaxPooling2D`) to `[n, out_h, out_w, c]`, on the tensor's
    /// device; see the [module docs](crate::ops::pool).
    ///
    /// # Errors
    /// As [`Pool2d::new`]; [`Error::Cuda`] if a launch fails on a GPU.
    pub fn max_pool2d(
        &self,
        pool: [usize; 2],
        strides: [usize; 2],
        padding: Padding,
    ) -> Result<Tensor> {
        let g = Pool2d::for_op("max_pool2d", self.shape(), pool, strides, padding)?;
        Ok(self.max_pool_with(g, g.output_shape().to_vec())?.0)
    }

    /// [`max_pool2d`](Self::max_pool2d) and where each maximum was
    /// (`tf.nn.max_pool_with_argmax`), for
    /// [`max_pool2d_backward`](Self::max_pool2d_backward). Both stay on
    /// the tensor's device.
    ///
    /// ```
    /// use hebb_tensor::{Tensor, ops::Padding};
    ///
    /// // A 3×3 image with a tie: windows 2×2, strides 1.
    /// let x = Tensor::from_vec(vec![1., 4., 2., 4., 0., 3., 1., 5., 1.], &[1, 3, 3, 1])?;
    /// let (y, argmax) = x.max_pool2d_with_argmax([2, 2], [1, 1], Padding::Valid)?;
    /// assert_eq!(y.to_vec(), [4., 4., 5., 5.]);
    /// // The first maximum in scan order wins the tie of the first window.
    /// assert_eq!(argmax.to_vec()?, [1, 1, 7, 7]);
    /// let g = Tensor::from_vec(vec![1., 2., 3., 4.], &[1, 2, 2, 1])?;
    /// let dx = x.max_pool2d_backward(&g, &argmax)?;
    /// assert_eq!(dx.to_vec(), [0., 3., 0., 0., 0., 0., 0., 7., 0.]);
    /// # Ok::<(), hebb_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`max_pool2d`](Self::max_pool2d).
    pub fn max_pool2d_with_argmax(
        &self,
        pool: [usize; 2],
        strides: [usize; 2],
        padding: Padding,
    ) -> Result<(Tensor, PoolArgmax)> {
        let g = Pool2d::for_op("max_pool2d", self.shape(), pool, strides, padding)?;
        self.max_pool_with(g, g.output_shape().to_vec())
    }

    /// Max pooling with geometry `g` (of this tensor's shape), the output
    /// shaped `shape` (`output_len` elements).
    fn max_pool_with(&self, g: Pool2d, shape: Vec<usize>) -> Result<(Tensor, PoolArgmax)> {
        #[cfg(feature = "cuda")]
        if let Some((backend, x)) = self.pool_cuda() {
            let (out, indices) = cuda_kernel::max_forward(backend, &g, x)?;
            let argmax = PoolArgmax {
                geometry: g,
                indices: Indices::Cuda(std::sync::Arc::new(indices)),
            };
            return Ok((Tensor::from_cuda(out, shape, backend.clone()), argmax));
        }
        let mut out = vec![0.0; g.output_len()];
        let mut argmax = vec![0; g.output_len()];
        g.max_forward(self.as_slice(), &mut out, &mut argmax)?;
        let argmax = PoolArgmax {
            geometry: g,
            indices: Indices::Host(std::sync::Arc::new(argmax)),
        };
        Ok((Tensor::from_parts(out, shape), argmax))
    }

    /// The gradient of max pooling (TensorFlow's `MaxPoolGrad`), `self`
    /// being the forward pass's input `x` `[n, h, w, c]`: each value of
    /// `grad_out` goes to the input its `argmax` names, values sent to one
    /// input are added in output order, and inputs that were no window's
    /// maximum get 0. Returns `[n, h, w, c]` on the tensors' device. On a
    /// GPU each input element gathers from the outputs whose windows cover
    /// it, in that same order, so the result is the CPU's bit for bit.
    ///
    /// Shapes: `grad_out` has the forward output's shape, `[n, out_h,
    /// out_w, c]`, or `[n, c]` when `out_h = out_w = 1` (global max
    /// pooling).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when `x` is not the input `argmax` was made
    /// for or `grad_out` does not have the output's shape;
    /// [`Error::DeviceMismatch`] unless `x`, `grad_out` and `argmax` are on
    /// one device; [`Error::Cuda`] if a launch fails on a GPU.
    pub fn max_pool2d_backward(&self, grad_out: &Tensor, argmax: &PoolArgmax) -> Result<Tensor> {
        const OP: &str = "max_pool2d_backward";
        let g = argmax.geometry;
        self.check_pool_grad(OP, &g, grad_out)?;
        if argmax.device() != self.device() {
            return Err(Error::DeviceMismatch {
                op: OP,
                lhs: self.device(),
                rhs: argmax.device(),
            });
        }
        match &argmax.indices {
            Indices::Host(indices) => {
                let mut grad = vec![0.0; g.input_len()];
                g.max_backward(grad_out.as_slice(), indices, &mut grad)?;
                Ok(Tensor::from_parts(grad, g.input_shape().to_vec()))
            }
            #[cfg(feature = "cuda")]
            Indices::Cuda(indices) => {
                let (backend, go) = grad_out.pool_cuda().ok_or(Error::DeviceMismatch {
                    op: OP,
                    lhs: self.device(),
                    rhs: grad_out.device(),
                })?;
                let grad = cuda_kernel::max_backward(backend, &g, go, &indices.data)?;
                Ok(Tensor::from_cuda(
                    grad,
                    g.input_shape().to_vec(),
                    backend.clone(),
                ))
            }
        }
    }

    /// Checks that `self` is the input of geometry `g` and `grad_out` has
    /// its output's shape (or `[n, c]` for a 1×1 output), both on one device.
    fn check_pool_grad(&self, op: &'static str, g: &Pool2d, grad_out: &Tensor) -> Result<()> {
        if self.shape() != g.input_shape() {
            return Err(Error::ShapeMismatch {
                op,
                lhs: self.shape().to_vec(),
                rhs: g.input_shape().to_vec(),
                detail: "x must be the input of the forward pass".into(),
            });
        }
        let [n, oh, ow, c] = g.output_shape();
        let fits = grad_out.shape() == [n, oh, ow, c]
            || (oh == 1 && ow == 1 && grad_out.shape() == [n, c]);
        if !fits {
            return Err(Error::ShapeMismatch {
                op,
                lhs: grad_out.shape().to_vec(),
                rhs: g.output_shape().to_vec(),
                detail: format!(
                    "the output gradient must have the output's shape (the pooling of x {:?})",
                    self.shape()
                ),
            });
        }
        self.same_device(grad_out, op)
    }

    /// Average pooling of a channels-last batch `[n, h, w, c]`
    /// (`tf.nn.avg_pool2d`, Keras `AveragePooling2D`) to
    /// `[n, out_h, out_w, c]`, on the tensor's device; 'same' padding
    /// averages only the cells inside the image. See the
    /// [module docs](crate::ops::pool).
    ///
    /// # Errors
    /// As [`Pool2d::new`]; [`Error::Cuda`] if a launch fails on a GPU.
    pub fn avg_pool2d(
        &self,
        pool: [usize; 2],
        strides: [usize; 2],
        padding: Padding,
    ) -> Result<Tensor> {
        let g = Pool2d::for_op("avg_pool2d", self.shape(), pool, strides, padding)?;
        #[cfg(feature = "cuda")]
        if let Some((backend, x)) = self.pool_cuda() {
            let out = cuda_kernel::avg_forward(backend, &g, x)?;
            return Ok(Tensor::from_cuda(
                out,
                g.output_shape().to_vec(),
                backend.clone(),
            ));
        }
        let mut out = vec![0.0; g.output_len()];
        g.avg_forward(self.as_slice(), &mut out)?;
        Ok(Tensor::from_parts(out, g.output_shape().to_vec()))
    }

    /// The gradient of [`avg_pool2d`](Self::avg_pool2d) (TensorFlow's
    /// `AvgPoolGrad`), `self` being the forward pass's input `x`
    /// `[n, h, w, c]`: each output's gradient divided by its window's count
    /// of image cells, added (in output order) to every image cell of the
    /// window. Returns `[n, h, w, c]` on the tensors' device; a GPU gathers
    /// in the CPU's order, bit for bit.
    ///
    /// # Errors
    /// As [`Pool2d::new`]; [`Error::ShapeMismatch`] unless `grad_out` has
    /// the output's shape `[n, out_h, out_w, c]`; [`Error::DeviceMismatch`]
    /// unless both are on one device; [`Error::Cuda`] if a launch fails.
    pub fn avg_pool2d_backward(
        &self,
        grad_out: &Tensor,
        pool: [usize; 2],
        strides: [usize; 2],
        padding: Padding,
    ) -> Result<Tensor> {
        const OP: &str = "avg_pool2d_backward";
        let g = Pool2d::for_op(OP, self.shape(), pool, strides, padding)?;
        self.check_pool_grad(OP, &g, grad_out)?;
        #[cfg(feature = "cuda")]
        if let Some((backend, go)) = grad_out.pool_cuda() {
            let grad = cuda_kernel::avg_backward(backend, &g, go)?;
            return Ok(Tensor::from_cuda(
                grad,
                g.input_shape().to_vec(),
                backend.clone(),
            ));
        }
        let mut grad = vec![0.0; g.input_len()];
        g.avg_backward(grad_out.as_slice(), &mut grad)?;
        Ok(Tensor::from_parts(grad, g.input_shape().to_vec()))
    }

    /// Global average pooling `[n, h, w, c] -> [n, c]` (Keras
    /// `GlobalAveragePooling2D`), on the tensor's device: each
    /// `(sample, channel)`'s mean over the image, summed in `f64` in scan
    /// order and rounded once (on a GPU too, so both agree bit for bit).
    ///
    /// # Errors
    /// [`Error::Rank`] unless the tensor has rank 4;
    /// [`Error::InvalidArgument`] for an image without cells;
    /// [`Error::Cuda`] if a launch fails on a GPU.
    pub fn global_avg_pool2d(&self) -> Result<Tensor> {
        const OP: &str = "global_avg_pool2d";
        let s = global_shape(OP, self.shape())?;
        #[cfg(feature = "cuda")]
        if let Some((backend, x)) = self.pool_cuda() {
            let out = cuda_kernel::global_avg_forward(backend, s, x)?;
            return Ok(Tensor::from_cuda(out, vec![s[0], s[3]], backend.clone()));
        }
        let mut out = vec![0.0; s[0] * s[3]];
        global_avg_pool2d_forward(&s, self.as_slice(), &mut out)?;
        Ok(Tensor::from_parts(out, vec![s[0], s[3]]))
    }

    /// The gradient of [`global_avg_pool2d`](Self::global_avg_pool2d),
    /// `self` being its input `x` `[n, h, w, c]`: every cell of
    /// `[n, h, w, c]` gets `grad_out[n, c] / (h · w)`, on the tensors'
    /// device.
    ///
    /// Shapes: `grad_out` is `[n, c]` (or `[n, 1, 1, c]`, Keras'
    /// `keepdims`).
    ///
    /// # Errors
    /// As [`global_avg_pool2d`](Self::global_avg_pool2d);
    /// [`Error::ShapeMismatch`] for another `grad_out` shape;
    /// [`Error::DeviceMismatch`] unless both are on one device.
    pub fn global_avg_pool2d_backward(&self, grad_out: &Tensor) -> Result<Tensor> {
        const OP: &str = "global_avg_pool2d_backward";
        let s = global_shape(OP, self.shape())?;
        let [n, _, _, c] = s;
        if grad_out.shape() != [n, c] && grad_out.shape() != [n, 1, 1, c] {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: grad_out.shape().to_vec(),
                rhs: vec![n, c],
                detail: format!(
                    "the output gradient must have the output's shape (the pooling of x {:?})",
                    self.shape()
                ),
            });
        }
        self.same_device(grad_out, OP)?;
        #[cfg(feature = "cuda")]
        if let Some((backend, go)) = grad_out.pool_cuda() {
            let grad = cuda_kernel::global_avg_backward(backend, s, go)?;
            return Ok(Tensor::from_cuda(grad, s.to_vec(), backend.clone()));
        }
        let mut grad = vec![0.0; self.len()];
        global_avg_pool2d_backward(&s, grad_out.as_slice(), &mut grad)?;
        Ok(Tensor::from_parts(grad, s.to_vec()))
    }

    /// Global max pooling `[n, h, w, c] -> [n, c]` (Keras
    /// `GlobalMaxPooling2D`), on the tensor's device: each
    /// `(sample, channel)`'s maximum over the image (max pooling with a
    /// window of the whole image).
    ///
    /// # Errors
    /// As [`global_avg_pool2d`](Self::global_avg_pool2d).
    pub fn global_max_pool2d(&self) -> Result<Tensor> {
        Ok(self.global_max_pool2d_with_argmax()?.0)
    }

    /// [`global_max_pool2d`](Self::global_max_pool2d) (`[n, c]`) and where
    /// each maximum was, for [`max_pool2d_backward`](Self::max_pool2d_backward).
    ///
    /// # Errors
    /// As [`global_avg_pool2d`](Self::global_avg_pool2d).
    pub fn global_max_pool2d_with_argmax(&self) -> Result<(Tensor, PoolArgmax)> {
        let g = Pool2d::global_for_op("global_max_pool2d", self.shape())?;
        self.max_pool_with(g, vec![g.batch, g.channels])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(data: Vec<f32>, shape: &[usize]) -> Tensor {
        Tensor::from_vec(data, shape).unwrap()
    }

    /// `(out, pad_before)` computed from TensorFlow's formulas directly.
    fn axis_ref(size: usize, pool: usize, stride: usize, same: bool) -> Option<(usize, usize)> {
        if same {
            let out = size.div_ceil(stride);
            let total =
                ((out as isize - 1) * stride as isize + pool as isize - size as isize).max(0);
            Some((out, total as usize / 2))
        } else if pool <= size {
            Some(((size - pool) / stride + 1, 0))
        } else {
            None
        }
    }

    struct Ref {
        out: Vec<f32>,
        argmax: Vec<usize>,
        avg: Vec<f32>,
        oshape: [usize; 4],
    }

    /// Plain pooling: every window cell visited through explicit padded
    /// coordinates; the first strictly greater value (or first NaN) is the max.
    fn reference(
        x: &[f32],
        s: [usize; 4],
        pool: [usize; 2],
        st: [usize; 2],
        same: bool,
    ) -> Option<Ref> {
        let [n, h, w, c] = s;
        let (oh, pt) = axis_ref(h, pool[0], st[0], same)?;
        let (ow, pl) = axis_ref(w, pool[1], st[1], same)?;
        let mut r = Ref {
            out: vec![],
            argmax: vec![],
            avg: vec![],
            oshape: [n, oh, ow, c],
        };
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for ch in 0..c {
                        let (mut best, mut arg, mut sum, mut count) = (None::<f32>, 0, 0.0f32, 0);
                        for ky in 0..pool[0] {
                            for kx in 0..pool[1] {
                                let iy = (oy * st[0] + ky) as isize - pt as isize;
                                let ix = (ox * st[1] + kx) as isize - pl as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let i = ((iy as usize * w) + ix as usize) * c + ch;
                                let v = x[b * h * w * c + i];
                                let take = match best {
                                    None => true,
                                    Some(m) => v > m || (v.is_nan() && !m.is_nan()),
                                };
                                if take {
                                    best = Some(v);
                                    arg = i;
                                }
                                sum += v;
                                count += 1;
                            }
                        }
                        r.out.push(best.unwrap());
                        r.argmax.push(arg);
                        r.avg.push(sum / count as f32);
                    }
                }
            }
        }
        Some(r)
    }

    /// The backward passes by scattering in output order.
    fn reference_grads(
        g: &[f32],
        r: &Ref,
        s: [usize; 4],
        pool: [usize; 2],
        st: [usize; 2],
        same: bool,
    ) -> (Vec<f32>, Vec<f32>) {
        let [n, h, w, c] = s;
        let [_, oh, ow, _] = r.oshape;
        let (_, pt) = axis_ref(h, pool[0], st[0], same).unwrap();
        let (_, pl) = axis_ref(w, pool[1], st[1], same).unwrap();
        let (mut gmax, mut gavg) = (vec![0.0f32; n * h * w * c], vec![0.0f32; n * h * w * c]);
        let mut o = 0;
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for ch in 0..c {
                        gmax[b * h * w * c + r.argmax[o]] += g[o];
                        let mut cells = vec![];
                        for ky in 0..pool[0] {
                            for kx in 0..pool[1] {
                                let iy = (oy * st[0] + ky) as isize - pt as isize;
                                let ix = (ox * st[1] + kx) as isize - pl as isize;
                                if iy >= 0 && ix >= 0 && iy < h as isize && ix < w as isize {
                                    cells.push(((iy as usize * w) + ix as usize) * c + ch);
                                }
                            }
                        }
                        for &i in &cells {
                            gavg[b * h * w * c + i] += g[o] / cells.len() as f32;
                        }
                        o += 1;
                    }
                }
            }
        }
        (gmax, gavg)
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Keras' documented examples (`MaxPooling2D`, `AveragePooling2D` docs).
    #[test]
    fn keras_examples() {
        let x = t((1..=9).map(|v| v as f32).collect(), &[1, 3, 3, 1]);
        let y = x.max_pool2d([2, 2], [1, 1], Padding::Same).unwrap();
        assert_eq!(y.shape(), &[1, 3, 3, 1]);
        assert_eq!(y.to_vec(), [5., 6., 6., 8., 9., 9., 8., 9., 9.]);
        let x = t((1..=12).map(|v| v as f32).collect(), &[1, 3, 4, 1]);
        let y = x.max_pool2d([2, 2], [2, 2], Padding::Valid).unwrap();
        assert_eq!((y.shape(), y.to_vec()), (&[1, 1, 2, 1][..], vec![6., 8.]));
        let y = x.avg_pool2d([2, 2], [2, 2], Padding::Valid).unwrap();
        assert_eq!(y.to_vec(), [3.5, 5.5]);
        // 'same', strides 2 on 3×4: out 2×2, extra padding row at the bottom,
        // so the second row of windows holds one image row: (9+10)/2, (11+12)/2.
        let y = x.avg_pool2d([2, 2], [2, 2], Padding::Same).unwrap();
        assert_eq!(
            (y.shape(), y.to_vec()),
            (&[1, 2, 2, 1][..], vec![3.5, 5.5, 9.5, 11.5])
        );
    }

    /// Two channels pooled independently; a window of the whole image is
    /// the global pool.
    #[test]
    fn channels_are_independent_and_pool_equals_image_is_global() {
        let x = t(vec![1., -1., 4., -4., 2., -2., 3., 8.], &[1, 2, 2, 2]);
        let y = x.max_pool2d([2, 2], [2, 2], Padding::Valid).unwrap();
        assert_eq!(y.to_vec(), [4., 8.]);
        assert_eq!(x.global_max_pool2d().unwrap().to_vec(), [4., 8.]);
        assert_eq!(x.global_max_pool2d().unwrap().shape(), &[1, 2]);
        let y = x.avg_pool2d([2, 2], [1, 1], Padding::Valid).unwrap();
        assert_eq!(y.to_vec(), [2.5, 0.25]);
        assert_eq!(x.global_avg_pool2d().unwrap().to_vec(), [2.5, 0.25]);
    }

    /// At ties the gradient goes to the first maximum in scan order, and a
    /// NaN is the maximum.
    #[test]
    fn ties_go_to_the_first_maximum_and_nans_propagate() {
        let g = Pool2d::new(&[1, 2, 2, 1], [2, 2], [2, 2], Padding::Valid).unwrap();
        let (mut out, mut arg, mut gi) = ([0.0], [0], [9.0; 4]);
        g.max_forward(&[1., 3., 3., 3.], &mut out, &mut arg)
            .unwrap();
        assert_eq!((out, arg), ([3.0], [1]));
        g.max_backward(&[2.0], &arg, &mut gi).unwrap();
        assert_eq!(gi, [0., 2., 0., 0.]);
        g.max_forward(&[1., f32::NAN, 5., f32::NAN], &mut out, &mut arg)
            .unwrap();
        assert!(out[0].is_nan());
        assert_eq!(arg, [1]);
    }

    #[test]
    fn global_average_sums_in_f64() {
        // 1e8 followed by ones: an f32 running sum would lose every 1.
        let mut data = vec![1.0f32; 64];
        data[0] = 1e8;
        let y = t(data, &[1, 8, 8, 1]).global_avg_pool2d().unwrap();
        assert_eq!(y.to_vec(), [((1e8f64 + 63.0) / 64.0) as f32]);
        let mut gi = vec![0.0; 2 * 3 * 3];
        global_avg_pool2d_backward(&[1, 3, 3, 2], &[9.0, -4.5], &mut gi).unwrap();
        assert_eq!(&gi[..4], &[1.0, -0.5, 1.0, -0.5]);
    }

    #[test]
    fn errors_name_the_shapes() {
        let x = Tensor::zeros(&[1, 3, 3, 1]);
        let msg = Tensor::zeros(&[3, 3, 1])
            .max_pool2d([2, 2], [2, 2], Padding::Valid)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("rank 4") && msg.contains("[3, 3, 1]"), "{msg}");
        for (pool, strides) in [([0, 2], [1, 1]), ([2, 2], [1, 0])] {
            let msg = x
                .avg_pool2d(pool, strides, Padding::Same)
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains("at least 1") && msg.contains("[1, 3, 3, 1]"),
                "{msg}"
            );
        }
        let msg = x
            .max_pool2d([4, 2], [1, 1], Padding::Valid)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("larger") && msg.contains("[4, 2]") && msg.contains("[1, 3, 3, 1]"),
            "{msg}"
        );
        // 'same' accepts a pool larger than the image.
        assert_eq!(
            x.max_pool2d([4, 2], [1, 1], Padding::Same).unwrap().shape(),
            &[1, 3, 3, 1]
        );
        assert!(Tensor::zeros(&[1, 0, 3, 1]).global_avg_pool2d().is_err());
        let g = Pool2d::new(&[1, 2, 2, 1], [2, 2], [2, 2], Padding::Valid).unwrap();
        assert!(g.max_forward(&[0.0; 3], &mut [0.0], &mut [0]).is_err());
        assert!(g.avg_backward(&[0.0; 2], &mut [0.0; 4]).is_err());
        assert!(matches!(
            g.max_backward(&[1.0], &[4], &mut [0.0; 4]),
            Err(Error::Index {
                index: 4,
                bound: 4,
                ..
            })
        ));
        assert!(global_avg_pool2d_forward(&[1, 2, 2, 1], &[0.0; 4], &mut [0.0; 2]).is_err());
    }

    #[test]
    fn empty_batches_and_channels() {
        for shape in [[0, 3, 3, 2], [2, 3, 3, 0]] {
            let x = Tensor::zeros(&shape);
            let y = x.max_pool2d([2, 2], [1, 1], Padding::Valid).unwrap();
            assert_eq!(y.shape(), &[shape[0], 2, 2, shape[3]]);
            assert_eq!(
                x.avg_pool2d([2, 2], [1, 1], Padding::Same).unwrap().len(),
                0
            );
            assert_eq!(
                x.global_avg_pool2d().unwrap().shape(),
                &[shape[0], shape[3]]
            );
        }
    }

    /// Forward and backward split between threads give one thread's bits,
    /// with overlapping windows ('same', strides < pool).
    #[test]
    fn threads_do_not_change_the_bits() {
        let s = [16, 26, 26, 32];
        let n: usize = s.iter().product();
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 97.0)
            .collect();
        let g = Pool2d::new(&s, [3, 3], [2, 2], Padding::Same).unwrap();
        let go: Vec<f32> = (0..g.output_len())
            .map(|i| ((i * 104_729 % 887) as f32 - 443.0) / 61.0)
            .collect();
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let (mut out, mut arg) = (vec![0.0; g.output_len()], vec![0; g.output_len()]);
                let (mut gmax, mut gavg, mut avg) =
                    (vec![0.0; n], vec![0.0; n], vec![0.0; g.output_len()]);
                g.max_forward(&x, &mut out, &mut arg).unwrap();
                g.max_backward(&go, &arg, &mut gmax).unwrap();
                g.avg_forward(&x, &mut avg).unwrap();
                g.avg_backward(&go, &mut gavg).unwrap();
                let mut ga = vec![0.0; s[0] * s[3]];
                global_avg_pool2d_forward(&s, &x, &mut ga).unwrap();
                [
                    bits(&out),
                    arg,
                    bits(&gmax),
                    bits(&avg),
                    bits(&gavg),
                    bits(&ga),
                ]
            })
        };
        assert_eq!(run(1), run(3));
    }

    /// Input shape, pool, strides, `same`, values, output gradients.
    type Case = ([usize; 4], [usize; 2], [usize; 2], bool, Vec<f32>, Vec<f32>);

    fn case() -> impl Strategy<Value = Case> {
        (
            1usize..=3,
            1usize..=7,
            1usize..=7,
            1usize..=3,
            [1usize..=4, 1usize..=4],
            [1usize..=4, 1usize..=4],
            any::<bool>(),
        )
            .prop_flat_map(|(n, h, w, c, pool, st, same)| {
                let len = n * h * w * c;
                // Small integers make ties common; halves keep them exact.
                let values = prop::collection::vec((-4i32..=4).prop_map(|v| v as f32 / 2.0), len);
                let grads = prop::collection::vec(-2.0f32..2.0, len * 16);
                (
                    Just([n, h, w, c]),
                    Just(pool),
                    Just(st),
                    Just(same),
                    values,
                    grads,
                )
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Every kernel against the plain reference, bit for bit, on random
        /// shapes, pools, strides and paddings (batch 1, one channel, odd
        /// sizes, strides ≠ pool, pool = image all among them).
        #[test]
        fn kernels_match_the_reference((s, pool, st, same, x, gs) in case()) {
            let padding = if same { Padding::Same } else { Padding::Valid };
            let tensor = t(x.clone(), &s);
            let Some(r) = reference(&x, s, pool, st, same) else {
                prop_assert!(tensor.max_pool2d(pool, st, padding).is_err());
                return Ok(());
            };
            let g = Pool2d::new(&s, pool, st, padding).unwrap();
            prop_assert_eq!(g.output_shape(), r.oshape);
            let max = tensor.max_pool2d(pool, st, padding).unwrap();
            prop_assert_eq!(max.shape(), &r.oshape[..]);
            prop_assert_eq!(bits(&max.to_vec()), bits(&r.out));
            let avg = tensor.avg_pool2d(pool, st, padding).unwrap();
            prop_assert_eq!(bits(&avg.to_vec()), bits(&r.avg));
            let (mut out, mut arg) = (vec![0.0; g.output_len()], vec![0; g.output_len()]);
            g.max_forward(&x, &mut out, &mut arg).unwrap();
            let arg_usize: Vec<usize> = arg.iter().map(|&a| a as usize).collect();
            prop_assert_eq!(&arg_usize, &r.argmax);
            let go = &gs[..g.output_len()];
            let (gmax, gavg) = reference_grads(go, &r, s, pool, st, same);
            let mut gi = vec![f32::NAN; g.input_len()];
            g.max_backward(go, &arg, &mut gi).unwrap();
            prop_assert_eq!(bits(&gi), bits(&gmax));
            g.avg_backward(go, &mut gi).unwrap();
            prop_assert_eq!(bits(&gi), bits(&gavg));
        }

        /// Global pooling: the maximum and the f64 mean of each channel.
        #[test]
        fn global_pooling_matches_the_reference((s, _pool, _st, _same, x, gs) in case()) {
            let [n, h, w, c] = s;
            let tensor = t(x.clone(), &s);
            let (mut want_max, mut want_avg) = (vec![], vec![]);
            for b in 0..n {
                for ch in 0..c {
                    let cells: Vec<f32> = (0..h * w).map(|i| x[(b * h * w + i) * c + ch]).collect();
                    want_max.push(cells.iter().copied().fold(f32::NEG_INFINITY, f32::max));
                    let sum: f64 = cells.iter().map(|&v| f64::from(v)).sum();
                    want_avg.push((sum / (h * w) as f64) as f32);
                }
            }
            prop_assert_eq!(tensor.global_max_pool2d().unwrap().to_vec(), want_max);
            let avg = tensor.global_avg_pool2d().unwrap();
            prop_assert_eq!(avg.shape(), &[n, c][..]);
            prop_assert_eq!(avg.to_vec(), want_avg);
            let go = &gs[..n * c];
            let mut gi = vec![0.0; x.len()];
            global_avg_pool2d_backward(&s, go, &mut gi).unwrap();
            for (i, v) in gi.iter().enumerate() {
                let (b, ch) = (i / (h * w * c), i % c);
                prop_assert_eq!(*v, go[b * c + ch] / (h * w) as f32);
            }
        }
    }
}
