//! Pooling layers (Keras `MaxPooling2D`, `AveragePooling2D`,
//! `GlobalAveragePooling2D`, `GlobalMaxPooling2D`) on channels-last images.
//!
//! - [`MaxPooling2D`], [`AveragePooling2D`]: `[rows, h, w, c] ->
//!   [rows, out_h, out_w, c]`, the maximum or the mean of each window of
//!   `pool_size` cells moved by `strides` (default: `pool_size`, as Keras),
//!   with `padding` `valid` (`out = floor((in - pool) / stride) + 1`) or
//!   `same` (`out = ceil(in / stride)`, TensorFlow's padding with the extra
//!   cell at the bottom/right; the average counts only the cells inside the
//!   image, as TensorFlow does).
//! - [`GlobalAveragePooling2D`], [`GlobalMaxPooling2D`]: `[rows, h, w, c] ->
//!   [rows, c]` (or `[rows, 1, 1, c]` with `keepdims`), the mean or maximum
//!   of each channel over the whole image.
//!
//! They have no weights. On the CPU their training step runs the kernels
//! of [`hebb_tensor::ops::pool`] on buffers the layer owns (the output and
//! max pooling's arg-max indices, reused while the batch size stays the
//! same); on a GPU (feature `cuda`) it runs the pooling tensor ops, whose
//! kernels keep the output, the arg-max indices and the input's gradient in
//! device memory (nothing is copied to the host). Both give the same bits.
//! Max pooling's gradient goes to each window's maximum (the first one in
//! scan order at ties, as TensorFlow's CPU kernel).
//!
//! ```
//! use hebb_layers::{Layer, MaxPooling2D, Pass};
//! use hebb_tensor::{Tensor, ops::Padding};
//!
//! let mut pool = MaxPooling2D::new([2, 2]);
//! assert_eq!(pool.compute_output_shape(&[26, 26, 32])?, vec![13, 13, 32]);
//! let x = Tensor::from_vec((1..=16).map(|v| v as f32).collect(), &[1, 4, 4, 1])?;
//! assert_eq!(pool.forward(&x, Pass::TRAIN)?.to_vec(), [6.0, 8.0, 14.0, 16.0]);
//!
//! let same = MaxPooling2D::new([3, 3]).strides([1, 1]).padding(Padding::Same);
//! assert_eq!(same.compute_output_shape(&[5, 7, 2])?, vec![5, 7, 2]);
//! # Ok::<(), hebb_layers::Error>(())
//! ```

use hebb_autograd::{GradientTape, Var};
use hebb_tensor::ops::Padding;
use hebb_tensor::ops::pool::{self, Pool2d, PoolArgmax};
use hebb_tensor::{Device, Tensor};
use rand::RngCore;
use serde_json::{Map, Value, json};

use crate::base::{LayerBase, base_builders, layer_base_methods, tensor_reason};
use crate::keras::{bool_key, channels_last, config_error, int_pair};
use crate::layer::{Layer, Pass, reuse};
use crate::{Error, Result};

/// Max or average.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Max,
    Average,
}

/// The state shared by the pooling layers: the [`LayerBase`], the built
/// shape and the output buffer.
#[derive(Debug, Clone)]
struct Common {
    base: LayerBase,
    /// The per-sample shape the layer was built for.
    built: Option<Vec<usize>>,
    out: Tensor,
}

impl Common {
    fn new(class: &'static str) -> Self {
        Self {
            base: LayerBase::new(class),
            built: None,
            out: Tensor::zeros(&[0]),
        }
    }

    fn shape_error(&self, detail: String) -> Error {
        self.base
            .shape_error(format!("{}: {detail}", self.base.class()))
    }

    /// The error for a backward pass without the forward pass of `x`
    /// (another shape, or another device) before it.
    fn no_forward(&self, x: &Tensor) -> Error {
        self.shape_error(format!(
            "backward needs the forward pass of the same input first; got x {:?} on {}",
            x.shape(),
            x.device()
        ))
    }

    /// Checks a per-sample input shape `[h, w, c]`.
    fn check_rank(&self, input_shape: &[usize]) -> Result<[usize; 3]> {
        <[usize; 3]>::try_from(input_shape).map_err(|_| {
            let hint = if input_shape.len() == 2 {
                " (a [h, w] image needs a channel axis: Reshape to [h, w, 1] first)"
            } else {
                ""
            };
            self.shape_error(format!(
                "the input must be an image [height, width, channels] per sample (rank 3), \
                 got {input_shape:?}{hint}"
            ))
        })
    }

    /// Checks that `x` is a batch `[rows, ..built]` (when built).
    fn check_input(&self, x: &Tensor) -> Result<()> {
        if x.rank() != 4 {
            return Err(self.shape_error(format!(
                "the input must be a batch of images [rows, height, width, channels], got {:?}",
                x.shape()
            )));
        }
        if let Some(built) = &self.built
            && &x.shape()[1..] != built.as_slice()
        {
            return Err(self.shape_error(format!(
                "the layer was built for images {built:?}, got a batch {:?}",
                x.shape()
            )));
        }
        Ok(())
    }

    /// Reads the base keys and `data_format` (only `channels_last`); returns
    /// the configuration as an object for the layer's own keys.
    fn from_config<'a>(
        class: &'static str,
        config: &'a Value,
    ) -> Result<(Self, &'a Map<String, Value>)> {
        let (base, obj) = LayerBase::from_config(class, config)?;
        channels_last(class, obj)?;
        Ok((
            Self {
                base,
                ..Self::new(class)
            },
            obj,
        ))
    }
}

/// The state of [`MaxPooling2D`] and [`AveragePooling2D`].
#[derive(Debug, Clone)]
struct Windowed {
    common: Common,
    mode: Mode,
    pool_size: [usize; 2],
    /// `None`: the pool size (Keras `strides=None`).
    strides: Option<[usize; 2]>,
    padding: Padding,
    /// The geometry of the last forward pass.
    geometry: Option<Pool2d>,
    /// Max pooling's arg-max indices of the last forward pass on the CPU.
    argmax: Vec<u32>,
    /// Those of the last forward pass on a GPU (in device memory).
    device_argmax: Option<PoolArgmax>,
}

impl Windowed {
    fn new(class: &'static str, mode: Mode, pool_size: [usize; 2]) -> Self {
        Self {
            common: Common::new(class),
            mode,
            pool_size,
            strides: None,
            padding: Padding::Valid,
            geometry: None,
            argmax: Vec::new(),
            device_argmax: None,
        }
    }

    fn strides(&self) -> [usize; 2] {
        self.strides.unwrap_or(self.pool_size)
    }

    fn describe(&self) -> String {
        format!(
            "pool_size {:?}, strides {:?}, padding {:?}",
            self.pool_size,
            self.strides(),
            self.padding.name()
        )
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let [_, oh, ow, oc] = self.sample_geometry(input_shape)?.output_shape();
        Ok(vec![oh, ow, oc])
    }

    /// The geometry of one sample of per-sample shape `input_shape`,
    /// checking it (allocates only for an error).
    fn sample_geometry(&self, input_shape: &[usize]) -> Result<Pool2d> {
        let [h, w, c] = self.common.check_rank(input_shape)?;
        let strides = self.strides();
        if self.pool_size.contains(&0) || strides.contains(&0) {
            return Err(self.common.shape_error(format!(
                "pool_size and strides must be at least 1, got {}",
                self.describe()
            )));
        }
        Pool2d::new(&[1, h, w, c], self.pool_size, strides, self.padding).map_err(|e| {
            let reason = tensor_reason(e);
            let describe = self.describe();
            if reason.starts_with("the pool is larger") {
                self.common.shape_error(format!(
                    "the pool is larger than the input {input_shape:?} with padding \"valid\" \
                     ({describe}); use a smaller pool_size or padding \"same\""
                ))
            } else {
                self.common.shape_error(format!(
                    "cannot pool the input {input_shape:?} ({describe}): {reason}"
                ))
            }
        })
    }

    fn geometry(&self, x: &Tensor) -> Result<Pool2d> {
        self.common.check_input(x)?;
        self.sample_geometry(&x.shape()[1..])?;
        Ok(Pool2d::new(
            x.shape(),
            self.pool_size,
            self.strides(),
            self.padding,
        )?)
    }

    fn forward(&mut self, x: &Tensor) -> Result<&Tensor> {
        let g = self.geometry(x)?;
        self.geometry = None;
        self.device_argmax = None;
        if x.device() != Device::Cpu {
            // The tensor ops on x's device; the output and the indices stay there.
            let (pool, strides, padding) = (self.pool_size, self.strides(), self.padding);
            self.common.out = match self.mode {
                Mode::Max => {
                    let (y, argmax) = x.max_pool2d_with_argmax(pool, strides, padding)?;
                    self.device_argmax = Some(argmax);
                    y
                }
                Mode::Average => x.avg_pool2d(pool, strides, padding)?,
            };
            self.geometry = Some(g);
            return Ok(&self.common.out);
        }
        let out = reuse(&mut self.common.out, &g.output_shape())?;
        match self.mode {
            Mode::Max => {
                self.argmax.resize(g.output_len(), 0);
                g.max_forward(x.as_slice(), out, &mut self.argmax)?;
            }
            Mode::Average => g.avg_forward(x.as_slice(), out)?,
        }
        self.geometry = Some(g);
        Ok(&self.common.out)
    }

    fn backward(
        &mut self,
        x: &Tensor,
        grad_out: &Tensor,
        grad_in: Option<&mut Tensor>,
    ) -> Result<()> {
        let g = match self.geometry {
            Some(g) if g.input_shape().as_slice() == x.shape() => g,
            _ => return Err(self.common.no_forward(x)),
        };
        if grad_out.shape() != g.output_shape().as_slice() || grad_out.device() != x.device() {
            return Err(self.common.shape_error(format!(
                "the output gradient must be a tensor {:?} on {} (the output of x {:?}), got \
                 {:?} on {}",
                g.output_shape(),
                x.device(),
                x.shape(),
                grad_out.shape(),
                grad_out.device()
            )));
        }
        let Some(grad_in) = grad_in else {
            return Ok(());
        };
        if x.device() != Device::Cpu {
            *grad_in = match (self.mode, &self.device_argmax) {
                (Mode::Max, Some(argmax)) => x.max_pool2d_backward(grad_out, argmax)?,
                (Mode::Max, None) => return Err(self.common.no_forward(x)),
                (Mode::Average, _) => {
                    x.avg_pool2d_backward(grad_out, self.pool_size, self.strides(), self.padding)?
                }
            };
            return Ok(());
        }
        if self.mode == Mode::Max && self.device_argmax.is_some() {
            return Err(self.common.no_forward(x));
        }
        let gi = reuse(grad_in, x.shape())?;
        match self.mode {
            Mode::Max => g.max_backward(grad_out.as_slice(), &self.argmax, gi)?,
            Mode::Average => g.avg_backward(grad_out.as_slice(), gi)?,
        }
        Ok(())
    }

    fn call<'t>(&self, x: Var<'t>) -> Result<Var<'t>> {
        let shape = x.shape();
        if shape.len() != 4 {
            return Err(self.common.shape_error(format!(
                "the input must be a batch of images [rows, height, width, channels], got {shape:?}"
            )));
        }
        self.sample_geometry(&shape[1..])?;
        Ok(match self.mode {
            Mode::Max => x.max_pool2d(self.pool_size, self.strides(), self.padding)?,
            Mode::Average => x.avg_pool2d(self.pool_size, self.strides(), self.padding)?,
        })
    }

    fn config(&self) -> Value {
        let mut m = self.common.base.config();
        m.insert("pool_size".into(), json!(self.pool_size));
        m.insert("padding".into(), json!(self.padding.name()));
        m.insert("strides".into(), json!(self.strides()));
        m.insert("data_format".into(), json!("channels_last"));
        Value::Object(m)
    }

    fn from_config(class: &'static str, mode: Mode, config: &Value) -> Result<Self> {
        let (common, obj) = Common::from_config(class, config)?;
        let pair = |key: &str| -> Result<Option<[usize; 2]>> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => int_pair(v).map(Some).ok_or_else(|| {
                    config_error(
                        class,
                        format!("{key} must be an integer or a list of 2 integers, got {v}"),
                    )
                }),
            }
        };
        let mut layer = Self::new(class, mode, pair("pool_size")?.unwrap_or([2, 2]));
        layer.strides = pair("strides")?;
        layer.common = common;
        if let Some(p) = obj.get("padding").filter(|v| !v.is_null()) {
            layer.padding = p
                .as_str()
                .and_then(|s| Padding::from_name(s).ok())
                .ok_or_else(|| {
                    config_error(
                        class,
                        format!("padding {p} is not supported (hebb has \"valid\" and \"same\")"),
                    )
                })?;
        }
        Ok(layer)
    }
}

/// The state of the global pooling layers.
#[derive(Debug, Clone)]
struct Global {
    common: Common,
    mode: Mode,
    keepdims: bool,
    /// The input shape of the last forward pass.
    last: Option<[usize; 4]>,
    /// Max pooling's arg-max indices of the last forward pass on the CPU.
    argmax: Vec<u32>,
    /// Those of the last forward pass on a GPU (in device memory).
    device_argmax: Option<PoolArgmax>,
}

impl Global {
    fn new(class: &'static str, mode: Mode) -> Self {
        Self {
            common: Common::new(class),
            mode,
            keepdims: false,
            last: None,
            argmax: Vec::new(),
            device_argmax: None,
        }
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let [_, _, c] = self.check(input_shape)?;
        Ok(if self.keepdims {
            vec![1, 1, c]
        } else {
            vec![c]
        })
    }

    /// Checks a per-sample input shape (allocates only for an error).
    fn check(&self, input_shape: &[usize]) -> Result<[usize; 3]> {
        let [h, w, c] = self.common.check_rank(input_shape)?;
        if h == 0 || w == 0 {
            return Err(self.common.shape_error(format!(
                "the image must have at least one cell, got {input_shape:?}"
            )));
        }
        Ok([h, w, c])
    }

    /// The batched output shape, `[rows, c]` or `[rows, 1, 1, c]`, as the
    /// used part of an array (no allocation).
    fn batch_shape(&self, rows: usize, c: usize) -> ([usize; 4], usize) {
        if self.keepdims {
            ([rows, 1, 1, c], 4)
        } else {
            ([rows, c, 0, 0], 2)
        }
    }

    fn forward(&mut self, x: &Tensor) -> Result<&Tensor> {
        self.common.check_input(x)?;
        self.check(&x.shape()[1..])?;
        let s = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
        let (shape, rank) = self.batch_shape(s[0], s[3]);
        self.last = None;
        self.device_argmax = None;
        if x.device() != Device::Cpu {
            // The tensor ops on x's device ([rows, c]; reshaping shares the storage).
            let y = match self.mode {
                Mode::Max => {
                    let (y, argmax) = x.global_max_pool2d_with_argmax()?;
                    self.device_argmax = Some(argmax);
                    y
                }
                Mode::Average => x.global_avg_pool2d()?,
            };
            self.common.out = y.reshape(&shape[..rank])?;
            self.last = Some(s);
            return Ok(&self.common.out);
        }
        let out = reuse(&mut self.common.out, &shape[..rank])?;
        match self.mode {
            Mode::Max => {
                let g = Pool2d::global(&s)?;
                self.argmax.resize(g.output_len(), 0);
                g.max_forward(x.as_slice(), out, &mut self.argmax)?;
            }
            Mode::Average => pool::global_avg_pool2d_forward(&s, x.as_slice(), out)?,
        }
        self.last = Some(s);
        Ok(&self.common.out)
    }

    fn backward(
        &mut self,
        x: &Tensor,
        grad_out: &Tensor,
        grad_in: Option<&mut Tensor>,
    ) -> Result<()> {
        let s = match self.last {
            Some(s) if s.as_slice() == x.shape() => s,
            _ => return Err(self.common.no_forward(x)),
        };
        let (want, rank) = self.batch_shape(s[0], s[3]);
        let want = &want[..rank];
        if grad_out.shape() != want || grad_out.device() != x.device() {
            return Err(self.common.shape_error(format!(
                "the output gradient must be a tensor {want:?} on {} (the output of x {:?}), got \
                 {:?} on {}",
                x.device(),
                x.shape(),
                grad_out.shape(),
                grad_out.device()
            )));
        }
        let Some(grad_in) = grad_in else {
            return Ok(());
        };
        if x.device() != Device::Cpu {
            *grad_in = match (self.mode, &self.device_argmax) {
                (Mode::Max, Some(argmax)) => x.max_pool2d_backward(grad_out, argmax)?,
                (Mode::Max, None) => return Err(self.common.no_forward(x)),
                (Mode::Average, _) => x.global_avg_pool2d_backward(grad_out)?,
            };
            return Ok(());
        }
        if self.mode == Mode::Max && self.device_argmax.is_some() {
            return Err(self.common.no_forward(x));
        }
        let gi = reuse(grad_in, x.shape())?;
        match self.mode {
            Mode::Max => Pool2d::global(&s)?.max_backward(grad_out.as_slice(), &self.argmax, gi)?,
            Mode::Average => pool::global_avg_pool2d_backward(&s, grad_out.as_slice(), gi)?,
        }
        Ok(())
    }

    fn call<'t>(&self, x: Var<'t>) -> Result<Var<'t>> {
        let shape = x.shape();
        if shape.len() != 4 {
            return Err(self.common.shape_error(format!(
                "the input must be a batch of images [rows, height, width, channels], got {shape:?}"
            )));
        }
        self.check(&shape[1..])?;
        let y = match self.mode {
            Mode::Max => x.global_max_pool2d()?,
            Mode::Average => x.global_avg_pool2d()?,
        };
        Ok(if self.keepdims {
            let (want, rank) = self.batch_shape(shape[0], shape[3]);
            y.reshape(&want[..rank])?
        } else {
            y
        })
    }

    fn config(&self) -> Value {
        let mut m = self.common.base.config();
        m.insert("data_format".into(), json!("channels_last"));
        m.insert("keepdims".into(), json!(self.keepdims));
        Value::Object(m)
    }

    fn from_config(class: &'static str, mode: Mode, config: &Value) -> Result<Self> {
        let (common, obj) = Common::from_config(class, config)?;
        let mut layer = Self::new(class, mode);
        layer.common = common;
        layer.keepdims = bool_key(class, obj, "keepdims", false)?;
        Ok(layer)
    }
}

/// The builder methods every pooling layer has, and its [`Layer`] impl
/// delegating to the inner state.
macro_rules! pooling_layer {
    ($ty:ident) => {
        base_builders!($ty, 0.common.base);

        impl Layer for $ty {
            layer_base_methods!(0.common.base);

            fn config(&self) -> Value {
                self.0.config()
            }

            fn compute_output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
                self.0.output_shape(input_shape)
            }

            fn build(&mut self, input_shape: &[usize], _rng: &mut dyn RngCore) -> Result<()> {
                self.0.output_shape(input_shape)?;
                self.0.common.built = Some(input_shape.to_vec());
                Ok(())
            }

            fn forward(&mut self, x: &Tensor, _pass: Pass) -> Result<&Tensor> {
                self.0.forward(x)
            }

            fn backward(
                &mut self,
                x: &Tensor,
                grad_out: &mut Tensor,
                grad_in: Option<&mut Tensor>,
                _pass: Pass,
            ) -> Result<()> {
                self.0.backward(x, grad_out, grad_in)
            }

            fn call<'t>(
                &self,
                _tape: &'t GradientTape,
                x: Var<'t>,
                _training: bool,
            ) -> Result<Var<'t>> {
                self.0.call(x)
            }

            /// Every device: the CPU's kernels, and a GPU's (feature `cuda`).
            fn supports(&self, _device: Device) -> bool {
                true
            }
        }
    };
}

/// Max pooling of images (Keras `keras.layers.MaxPooling2D`,
/// `tf.nn.max_pool2d`): `[rows, h, w, c] -> [rows, out_h, out_w, c]`, the
/// maximum of each channel over each window.
///
/// Keras' defaults: `pool_size (2, 2)` ([`Default`]), `strides` = the pool
/// size, `padding "valid"`, `data_format "channels_last"` (the only one
/// hebb has). The gradient goes to each window's maximum, the first one in
/// scan order (rows, then columns) at ties, as TensorFlow's CPU kernel.
/// A pool or stride of 0, an input that is not an image `[h, w, c]`, or a
/// pool larger than the image with `valid` padding is an [`Error::Shape`]
/// from [`Layer::compute_output_shape`] naming the layer and the shapes.
///
/// ```
/// use hebb_layers::{Layer, MaxPooling2D, Padding};
///
/// let pool = MaxPooling2D::new([2, 2]).strides([1, 1]).padding(Padding::Same);
/// assert_eq!(pool.compute_output_shape(&[11, 11, 64])?, vec![11, 11, 64]);
/// assert_eq!(MaxPooling2D::default().compute_output_shape(&[11, 11, 64])?, vec![5, 5, 64]);
/// assert!(MaxPooling2D::new([3, 3]).compute_output_shape(&[2, 2, 1]).is_err());
/// # Ok::<(), hebb_layers::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MaxPooling2D(Windowed);

/// Average pooling of images (Keras `keras.layers.AveragePooling2D`,
/// `tf.nn.avg_pool2d`): `[rows, h, w, c] -> [rows, out_h, out_w, c]`, the
/// mean of each channel over each window; with `same` padding only the
/// window's cells inside the image are counted, as TensorFlow does.
///
/// Defaults and errors as [`MaxPooling2D`]. Each cell of a window gets the
/// window's gradient divided by the number of cells counted.
///
/// ```
/// use hebb_layers::{AveragePooling2D, Layer, Pass};
/// use hebb_tensor::{Tensor, ops::Padding};
///
/// let mut pool = AveragePooling2D::new([2, 2]).strides([1, 1]).padding(Padding::Same);
/// let x = Tensor::from_vec((1..=9).map(|v| v as f32).collect(), &[1, 3, 3, 1])?;
/// let y = pool.forward(&x, Pass::INFER)?;
/// assert_eq!(y.to_vec(), [3.0, 4.0, 4.5, 6.0, 7.0, 7.5, 7.5, 8.5, 9.0]);
/// # Ok::<(), hebb_layers::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct AveragePooling2D(Windowed);

macro_rules! windowed_layer {
    ($ty:ident, $class:literal, $mode:expr) => {
        impl $ty {
            /// A pooling layer with windows of `pool_size` `[ph, pw]` (Keras
            /// `pool_size`); the strides are the pool size unless
            /// [`strides`](Self::strides) says otherwise. A size of 0 is
            /// reported by [`Layer::compute_output_shape`].
            pub fn new(pool_size: [usize; 2]) -> Self {
                Self(Windowed::new($class, $mode, pool_size))
            }

            /// The strides `[sh, sw]` (Keras `strides`; default: the pool size).
            pub fn strides(mut self, strides: [usize; 2]) -> Self {
                self.0.strides = Some(strides);
                self
            }

            /// `Padding::Valid` (Keras' default) or `Padding::Same`.
            pub fn padding(mut self, padding: Padding) -> Self {
                self.0.padding = padding;
                self
            }

            /// The pool size `[ph, pw]`.
            pub fn pool_size(&self) -> [usize; 2] {
                self.0.pool_size
            }

            /// The layer made from its Keras configuration (`pool_size`,
            /// `strides` (`null`: the pool size), `padding`, `data_format`,
            /// `name`, `trainable`, `dtype` (float32 only); other keys Keras
            /// writes are ignored).
            ///
            /// # Errors
            /// [`Error::Config`] naming the key and value for a value hebb
            /// cannot read or lacks (`data_format "channels_first"`).
            pub fn from_config(config: &Value) -> Result<Self> {
                Ok(Self(Windowed::from_config($class, $mode, config)?))
            }
        }

        impl Default for $ty {
            /// Keras' defaults: `pool_size (2, 2)`, strides 2, `valid`.
            fn default() -> Self {
                Self::new([2, 2])
            }
        }

        pooling_layer!($ty);
    };
}

windowed_layer!(MaxPooling2D, "MaxPooling2D", Mode::Max);
windowed_layer!(AveragePooling2D, "AveragePooling2D", Mode::Average);

/// Global average pooling (Keras `keras.layers.GlobalAveragePooling2D`):
/// `[rows, h, w, c] -> [rows, c]` (`[rows, 1, 1, c]` with
/// [`keepdims`](Self::keepdims)), the mean of each channel over the image,
/// summed in `f64`. Each cell gets `g / (h · w)` of the gradient.
///
/// ```
/// use hebb_layers::{GlobalAveragePooling2D, Layer};
///
/// let pool = GlobalAveragePooling2D::new();
/// assert_eq!(pool.compute_output_shape(&[5, 5, 64])?, vec![64]);
/// assert_eq!(pool.keepdims(true).compute_output_shape(&[5, 5, 64])?, vec![1, 1, 64]);
/// # Ok::<(), hebb_layers::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct GlobalAveragePooling2D(Global);

/// Global max pooling (Keras `keras.layers.GlobalMaxPooling2D`):
/// `[rows, h, w, c] -> [rows, c]` (`[rows, 1, 1, c]` with
/// [`keepdims`](Self::keepdims)), the maximum of each channel over the
/// image; the gradient goes to it (the first one in scan order at ties).
#[derive(Debug, Clone)]
pub struct GlobalMaxPooling2D(Global);

macro_rules! global_layer {
    ($ty:ident, $class:literal, $mode:expr) => {
        impl $ty {
            /// The layer with Keras' defaults (`keepdims false`,
            /// `data_format "channels_last"`).
            pub fn new() -> Self {
                Self(Global::new($class, $mode))
            }

            /// Keep the spatial axes as 1s: `[rows, 1, 1, c]` (Keras
            /// `keepdims`, default `false`).
            pub fn keepdims(mut self, keepdims: bool) -> Self {
                self.0.keepdims = keepdims;
                self
            }

            /// The layer made from its Keras configuration (`keepdims`,
            /// `data_format`, `name`, `trainable`, `dtype` (float32 only);
            /// other keys are ignored).
            ///
            /// # Errors
            /// [`Error::Config`] naming the key and value for a value hebb
            /// cannot read or lacks (`data_format "channels_first"`).
            pub fn from_config(config: &Value) -> Result<Self> {
                Ok(Self(Global::from_config($class, $mode, config)?))
            }
        }

        impl Default for $ty {
            fn default() -> Self {
                Self::new()
            }
        }

        pooling_layer!($ty);
    };
}

global_layer!(
    GlobalAveragePooling2D,
    "GlobalAveragePooling2D",
    Mode::Average
);
global_layer!(GlobalMaxPooling2D, "GlobalMaxPooling2D", Mode::Max);

/// [`Registry`](crate::Registry) entries.
pub(crate) fn max_pooling2d(config: &Value) -> Result<Box<dyn Layer>> {
    Ok(Box::new(MaxPooling2D::from_config(config)?))
}

/// See [`max_pooling2d`].
pub(crate) fn average_pooling2d(config: &Value) -> Result<Box<dyn Layer>> {
    Ok(Box::new(AveragePooling2D::from_config(config)?))
}

/// See [`max_pooling2d`].
pub(crate) fn global_average_pooling2d(config: &Value) -> Result<Box<dyn Layer>> {
    Ok(Box::new(GlobalAveragePooling2D::from_config(config)?))
}

/// See [`max_pooling2d`].
pub(crate) fn global_max_pooling2d(config: &Value) -> Result<Box<dyn Layer>> {
    Ok(Box::new(GlobalMaxPooling2D::from_config(config)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Registry;
    use crate::testing::{random, tape_reference};
    use hebb_tensor::random::chacha;

    fn bits(t: &Tensor) -> Vec<u32> {
        t.as_slice().iter().map(|v| v.to_bits()).collect()
    }

    /// The step's forward and backward against the tape form, bit for bit
    /// (same kernels): the output, and the input's gradient of `Σ G · y`.
    /// A second step at the same batch size reuses the buffers.
    fn step_matches_tape(mut layer: Box<dyn Layer>, input: [usize; 3], rows: usize, what: &str) {
        layer.set_name("p");
        let out_shape = layer.compute_output_shape(&input).unwrap();
        layer.build(&input, &mut chacha(0)).unwrap();
        let mut x_shape = vec![rows];
        x_shape.extend(input);
        let x = random(&x_shape, 1);
        let mut y_shape = vec![rows];
        y_shape.extend(&out_shape);
        let g = random(&y_shape, 2);

        let tape = tape_reference(layer.as_ref(), &x, &g, true).unwrap();

        let class = format!("{what}: {}", layer.class_name());
        let mut grad_in = Tensor::zeros(&[0]);
        for step in 0..2 {
            let y = layer.forward(&x, Pass::TRAIN).unwrap();
            let y_ptr = y.as_slice().as_ptr();
            assert_eq!(y.shape(), &y_shape[..], "{class}");
            assert_eq!(bits(y), bits(&tape.y), "{class} y");
            let mut gm = g.clone();
            layer
                .backward(&x, &mut gm, Some(&mut grad_in), Pass::TRAIN)
                .unwrap();
            assert_eq!(bits(&grad_in), bits(&tape.dx), "{class} dx");
            let gi_ptr = grad_in.as_slice().as_ptr();
            if step == 1 {
                continue;
            }
            // The same buffers at the next step of the same batch size.
            let y = layer.forward(&x, Pass::INFER).unwrap();
            assert_eq!(y.as_slice().as_ptr(), y_ptr);
            let mut gm = g.clone();
            layer
                .backward(&x, &mut gm, Some(&mut grad_in), Pass::TRAIN)
                .unwrap();
            assert_eq!(grad_in.as_slice().as_ptr(), gi_ptr);
        }
        assert!(layer.weights().is_empty() && layer.gradients().is_empty());
    }

    #[test]
    fn forward_and_backward_match_the_tape() {
        use Padding::{Same, Valid};
        // (what, pool, strides, padding, image, rows)
        let windowed = [
            ("mnist 1", [2, 2], None, Valid, [26, 26, 32], 4),
            ("mnist 2", [2, 2], None, Valid, [11, 11, 64], 3),
            ("overlap", [3, 3], Some([2, 2]), Same, [7, 9, 3], 2),
            ("strides > pool", [2, 3], Some([3, 1]), Valid, [8, 7, 1], 1),
            ("pool = image", [5, 4], None, Valid, [5, 4, 2], 2),
            ("same odd", [2, 2], Some([1, 1]), Same, [5, 3, 1], 1),
        ];
        for (what, pool, strides, padding, input, rows) in windowed {
            let mut max = MaxPooling2D::new(pool).padding(padding);
            let mut avg = AveragePooling2D::new(pool).padding(padding);
            if let Some(s) = strides {
                max = max.strides(s);
                avg = avg.strides(s);
            }
            step_matches_tape(Box::new(max), input, rows, what);
            step_matches_tape(Box::new(avg), input, rows, what);
        }
        for keepdims in [false, true] {
            for (input, rows) in [([5, 5, 64], 3), ([1, 1, 1], 1), ([3, 7, 2], 2)] {
                step_matches_tape(
                    Box::new(GlobalAveragePooling2D::new().keepdims(keepdims)),
                    input,
                    rows,
                    &format!("keepdims {keepdims}"),
                );
                step_matches_tape(
                    Box::new(GlobalMaxPooling2D::new().keepdims(keepdims)),
                    input,
                    rows,
                    &format!("keepdims {keepdims}"),
                );
            }
        }
    }

    /// Values for a hand-checked case: 4×4, two channels, pool 2.
    #[test]
    fn values_by_hand() {
        // Channel 0 is 0..16 row-major, channel 1 its negation.
        let data: Vec<f32> = (0..16).flat_map(|v| [v as f32, -(v as f32)]).collect();
        let x = Tensor::from_vec(data, &[1, 4, 4, 2]).unwrap();
        let mut max = MaxPooling2D::default();
        let y = max.forward(&x, Pass::TRAIN).unwrap();
        assert_eq!(y.to_vec(), [5., 0., 7., -2., 13., -8., 15., -10.]);
        let mut avg = AveragePooling2D::default();
        let y = avg.forward(&x, Pass::TRAIN).unwrap();
        assert_eq!(y.to_vec(), [2.5, -2.5, 4.5, -4.5, 10.5, -10.5, 12.5, -12.5]);
        let mut gap = GlobalAveragePooling2D::new();
        assert_eq!(gap.forward(&x, Pass::TRAIN).unwrap().to_vec(), [7.5, -7.5]);
        let mut gmp = GlobalMaxPooling2D::new();
        assert_eq!(gmp.forward(&x, Pass::TRAIN).unwrap().to_vec(), [15., 0.]);
        // The gradient goes to the maxima: cell 15 of channel 0, cell 0 of channel 1.
        let mut g = Tensor::from_vec(vec![1., 2.], &[1, 2]).unwrap();
        let mut gi = Tensor::zeros(&[0]);
        gmp.backward(&x, &mut g, Some(&mut gi), Pass::TRAIN)
            .unwrap();
        let mut want = vec![0.0; 32];
        want[30] = 1.0;
        want[1] = 2.0;
        assert_eq!(gi.to_vec(), want);
    }

    #[test]
    fn config_round_trips_through_the_registry() {
        let registry = Registry::builtin();
        let layers: Vec<Box<dyn Layer>> = vec![
            Box::new(
                MaxPooling2D::new([3, 2])
                    .strides([1, 2])
                    .padding(Padding::Same)
                    .name("mp")
                    .trainable(false),
            ),
            Box::new(AveragePooling2D::new([2, 2]).name("ap")),
            Box::new(GlobalAveragePooling2D::new().keepdims(true).name("gap")),
            Box::new(GlobalMaxPooling2D::new().name("gmp")),
        ];
        for layer in &layers {
            let config = layer.config();
            assert_eq!(config["dtype"], json!("float32"));
            assert_eq!(config["data_format"], json!("channels_last"));
            let again = registry.from_config(layer.class_name(), &config).unwrap();
            assert_eq!(again.class_name(), layer.class_name());
            assert_eq!(again.config(), config);
            assert_eq!(again.name(), layer.name());
            assert_eq!(
                again.compute_output_shape(&[6, 6, 3]).unwrap(),
                layer.compute_output_shape(&[6, 6, 3]).unwrap()
            );
        }
        let mp = layers[0].config();
        assert_eq!(mp["pool_size"], json!([3, 2]));
        assert_eq!(mp["strides"], json!([1, 2]));
        assert_eq!(mp["padding"], json!("same"));
        assert_eq!(mp["trainable"], json!(false));
        // Keras' default strides are the pool size.
        assert_eq!(layers[1].config()["strides"], json!([2, 2]));
        assert_eq!(layers[2].config()["keepdims"], json!(true));
    }

    /// Keras 3's own configurations (as `model.to_json()` writes them),
    /// with an int pool size, `strides: null` and upper-case padding.
    #[test]
    fn reads_keras_configs() {
        let registry = Registry::builtin();
        let dtype = json!({"module": "keras", "class_name": "DTypePolicy",
                           "config": {"name": "float32"}, "registered_name": null});
        let keras = json!({"name": "max_pooling2d", "trainable": true, "dtype": dtype,
            "pool_size": [2, 2], "padding": "valid", "strides": [2, 2],
            "data_format": "channels_last"});
        let layer = registry.from_config("MaxPooling2D", &keras).unwrap();
        assert_eq!(layer.name(), "max_pooling2d");
        assert_eq!(
            layer.compute_output_shape(&[26, 26, 32]).unwrap(),
            [13, 13, 32]
        );
        let short = json!({"name": "a", "pool_size": 3, "strides": null, "padding": "SAME"});
        let layer = registry.from_config("AveragePooling2D", &short).unwrap();
        assert_eq!(layer.config()["strides"], json!([3, 3]));
        assert_eq!(layer.config()["padding"], json!("same"));
        assert_eq!(layer.compute_output_shape(&[7, 7, 1]).unwrap(), [3, 3, 1]);
        let gap = json!({"name": "g", "trainable": true, "dtype": dtype,
                         "data_format": "channels_last", "keepdims": false});
        let layer = registry
            .from_config("GlobalAveragePooling2D", &gap)
            .unwrap();
        assert_eq!(layer.compute_output_shape(&[5, 5, 64]).unwrap(), [64]);
    }

    #[test]
    fn bad_configs_name_the_key_and_value() {
        let registry = Registry::builtin();
        for (class, config, words) in [
            (
                "MaxPooling2D",
                json!({"data_format": "channels_first"}),
                &["data_format", "channels_first"][..],
            ),
            (
                "GlobalMaxPooling2D",
                json!({"data_format": "channels_first"}),
                &["data_format", "channels_first"],
            ),
            (
                "AveragePooling2D",
                json!({"pool_size": [2, 2, 2]}),
                &["pool_size", "[2,2,2]"],
            ),
            (
                "MaxPooling2D",
                json!({"strides": "two"}),
                &["strides", "two"],
            ),
            (
                "MaxPooling2D",
                json!({"padding": "full"}),
                &["padding", "full"],
            ),
            (
                "GlobalAveragePooling2D",
                json!({"keepdims": 1}),
                &["keepdims", "1"],
            ),
            ("MaxPooling2D", json!([2, 2]), &["JSON object"]),
        ] {
            let e = registry.from_config(class, &config).unwrap_err();
            assert!(
                matches!(&e, Error::Config { class: c, .. } if c == class),
                "{e:?}"
            );
            let msg = e.to_string();
            for w in words {
                assert!(msg.contains(w), "{msg} lacks {w}");
            }
        }
    }

    #[test]
    fn bad_shapes_name_the_layer_and_the_shapes() {
        let msg = |r: Result<Vec<usize>>| r.unwrap_err().to_string();
        let pool = MaxPooling2D::default().name("pool1");
        let m = msg(pool.compute_output_shape(&[28, 28]));
        assert!(
            m.contains("pool1") && m.contains("[28, 28]") && m.contains("Reshape"),
            "{m}"
        );
        let m = msg(MaxPooling2D::new([0, 2]).compute_output_shape(&[4, 4, 1]));
        assert!(
            m.contains("max_pooling2d") && m.contains("at least 1") && m.contains("[0, 2]"),
            "{m}"
        );
        let m = msg(AveragePooling2D::new([2, 2])
            .strides([2, 0])
            .compute_output_shape(&[4, 4, 1]));
        assert!(
            m.contains("average_pooling2d") && m.contains("[2, 0]"),
            "{m}"
        );
        let m = msg(MaxPooling2D::new([3, 3]).compute_output_shape(&[2, 5, 1]));
        assert!(
            m.contains("larger") && m.contains("[2, 5, 1]") && m.contains("[3, 3]"),
            "{m}"
        );
        // 'same' takes a pool larger than the image.
        assert_eq!(
            MaxPooling2D::new([3, 3])
                .padding(Padding::Same)
                .compute_output_shape(&[2, 5, 1])
                .unwrap(),
            [1, 2, 1]
        );
        let m = msg(GlobalMaxPooling2D::new().compute_output_shape(&[5, 5, 3, 1]));
        assert!(
            m.contains("global_max_pooling2d") && m.contains("[5, 5, 3, 1]"),
            "{m}"
        );
        let m = msg(GlobalAveragePooling2D::new().compute_output_shape(&[0, 5, 3]));
        assert!(m.contains("at least one cell"), "{m}");

        // Build checks too; forward refuses other images than the built ones,
        // and backward needs its forward pass.
        let mut pool = MaxPooling2D::default().name("p");
        assert!(pool.build(&[1, 1, 1], &mut chacha(0)).is_err());
        pool.build(&[4, 4, 2], &mut chacha(0)).unwrap();
        let e = pool
            .forward(&Tensor::zeros(&[3, 6, 6, 2]), Pass::TRAIN)
            .unwrap_err();
        assert!(
            e.to_string().contains("[4, 4, 2]") && e.to_string().contains("[3, 6, 6, 2]"),
            "{e}"
        );
        let e = pool
            .forward(&Tensor::zeros(&[3, 32]), Pass::TRAIN)
            .unwrap_err();
        assert!(e.to_string().contains("[3, 32]"), "{e}");
        let x = Tensor::zeros(&[3, 4, 4, 2]);
        let mut g = Tensor::zeros(&[3, 2, 2, 2]);
        let mut gi = Tensor::zeros(&[0]);
        assert!(
            pool.backward(&x, &mut g, Some(&mut gi), Pass::TRAIN)
                .is_err()
        );
        pool.forward(&x, Pass::TRAIN).unwrap();
        let mut bad = Tensor::zeros(&[3, 2, 2, 1]);
        let e = pool
            .backward(&x, &mut bad, Some(&mut gi), Pass::TRAIN)
            .unwrap_err();
        assert!(e.to_string().contains("[3, 2, 2, 1]"), "{e}");
        pool.backward(&x, &mut g, Some(&mut gi), Pass::TRAIN)
            .unwrap();
        assert_eq!(gi.shape(), &[3, 4, 4, 2]);
        // The tape form checks the same things.
        let tape = GradientTape::new();
        let v = tape.constant(Tensor::zeros(&[1, 2, 2]));
        assert!(matches!(
            pool.call(&tape, v, true),
            Err(Error::Shape { .. })
        ));
        let v = tape.constant(Tensor::zeros(&[1, 1, 5, 1]));
        let e = MaxPooling2D::default().call(&tape, v, true).unwrap_err();
        assert!(
            matches!(e, Error::Shape { .. }) && e.to_string().contains("larger"),
            "{e}"
        );
    }

    /// The layers run on every device (tests/cuda_pooling.rs checks a GPU's
    /// results against the CPU's).
    #[test]
    fn every_device_is_supported() {
        let layers: Vec<Box<dyn Layer>> = vec![
            Box::new(MaxPooling2D::default()),
            Box::new(AveragePooling2D::default()),
            Box::new(GlobalAveragePooling2D::new()),
            Box::new(GlobalMaxPooling2D::new()),
        ];
        for layer in &layers {
            assert!(layer.supports(Device::Cpu));
            #[cfg(feature = "cuda")]
            assert!(layer.supports(Device::Cuda(0)));
        }
    }
}
