//! [`Conv2D`]: the 2-D convolution layer (Keras `Conv2D`),
//! `Y = activation(conv2d(X, kernel) + bias)`.
//!
//! Shapes (channels-last, as Keras' default `data_format="channels_last"`):
//! input `[rows, h, w, c]`, kernel `[kh, kw, c, filters]` (HWIO, as Keras
//! stores it), bias `[filters]`, output `[rows, out_h, out_w, filters]`,
//! where `out = floor((in - (k - 1)·d - 1) / s) + 1` with `padding="valid"`
//! and `out = ceil(in / s)` with `"same"` (TensorFlow's rule: the odd extra
//! padding row/column at the bottom/right); see
//! [`hebb_tensor::ops::conv`] for the formula and the kernels.
//!
//! The training step runs on the CPU on the layer's own buffers: the
//! output, the im2col columns ([`Conv2dScratch`]) and the gradients are made
//! at the first batch and reused; the activation is applied to each block
//! of output rows while it is in cache, and its derivative likewise in the
//! backward pass.
//!
//! On a GPU the step runs with tensor ops on the device, on the output
//! pixels as a `[rows · out_h · out_w, filters]` matrix (reshapes share
//! storage, nothing is copied):
//!
//! ```text
//! forward   cols = im2col(X),  Z = cols·K + b,  Y = f(Z)
//! backward  G ← G ⊙ f'(·) (from Y),  dK = colsᵀ·G (+ regulariser),  db = Σ_rows G,
//!           dX = col2im(G·Kᵀ)   (only when the input gradient is asked for)
//! ```
//!
//! with `K` the kernel read as `[kh · kw · c, filters]`, the products on
//! cuBLAS, and the columns of a training pass kept for its backward pass.

use hebb_autograd::{GradientTape, Var, Variable};
use hebb_tensor::ops::Padding;
use hebb_tensor::ops::conv::{Conv2dGeometry, Conv2dGrads, Conv2dScratch};
use hebb_tensor::{Device, Tensor};
use rand::RngCore;
use serde_json::{Value, json};

use crate::base::{LayerBase, base_builders, layer_base_methods, tensor_reason};
use crate::keras::{
    self, activation_from_config, activation_to_config, channels_last, config_error,
    initializer_key, initializer_to_keras, int_pair,
};
use crate::layer::{Layer, Pass, reuse};
use crate::weights::make_weight;
use crate::{Activation, Error, Initializer, Regularizer, Result};

const CLASS: &str = "Conv2D";

/// A 2-D convolution layer (Keras `keras.layers.Conv2D`), built lazily from
/// its input shape: `[rows, h, w, c] -> [rows, out_h, out_w, filters]`,
/// `Y = activation(conv2d(X, kernel) + bias)` (see [`Tensor::conv2d`]).
///
/// Keras' defaults: `strides (1, 1)`, `padding "valid"`, `dilation_rate
/// (1, 1)`, no activation (linear), `use_bias true`, kernel
/// `glorot_uniform` (fans `kh·kw·c` and `kh·kw·filters`, as Keras'
/// `compute_fans`), bias `zeros`, no regulariser, trainable. Only
/// `data_format="channels_last"` and `groups=1` exist in hebb.
///
/// The layer computes on its input's device: on the CPU with its own
/// reused buffers, on a GPU (feature `cuda`; its weights moved there, e.g.
/// by `model.to_device`) with im2col and col2im kernels and cuBLAS products,
/// every result staying on the device (see the module docs).
///
/// ```
/// use hebb_layers::{Activation, Conv2D, Layer, Pass};
/// use hebb_tensor::Tensor;
///
/// let mut conv = Conv2D::new(32, [3, 3]).activation(Activation::Relu).name("conv1");
/// assert_eq!(conv.compute_output_shape(&[28, 28, 1])?, vec![26, 26, 32]);
/// conv.build(&[28, 28, 1], &mut hebb_tensor::random::chacha(0))?;
/// assert_eq!(conv.weights()[0].shape(), &[3, 3, 1, 32]);
/// let y = conv.forward(&Tensor::zeros(&[2, 28, 28, 1]), Pass::TRAIN)?;
/// assert_eq!(y.shape(), &[2, 26, 26, 32]);
/// // A (28, 28) input needs a channel axis first.
/// assert!(conv.compute_output_shape(&[28, 28]).unwrap_err().to_string().contains("Reshape"));
/// # Ok::<(), hebb_layers::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Conv2D {
    base: LayerBase,
    filters: usize,
    kernel_size: [usize; 2],
    strides: [usize; 2],
    padding: Padding,
    dilation_rate: [usize; 2],
    activation: Activation,
    use_bias: bool,
    kernel_initializer: Initializer,
    bias_initializer: Initializer,
    kernel_regularizer: Option<Regularizer>,
    /// Built state: the geometry for the built input shape.
    geometry: Option<Conv2dGeometry>,
    kernel: Option<Variable>,
    bias: Option<Variable>,
    /// `[dK, db]` (`db` only with a bias).
    grads: Vec<Tensor>,
    out: Tensor,
    scratch: Conv2dScratch,
    /// On a GPU: the im2col columns of the last training pass, for its
    /// backward pass (which takes them).
    cols: Option<Tensor>,
}

impl Conv2D {
    /// `filters` filters of `kernel_size` `[kh, kw]` (Keras
    /// `Conv2D(filters, kernel_size)`), with Keras' defaults for the rest.
    /// Invalid values (0 filters, a 0 kernel size) are reported by
    /// [`Layer::compute_output_shape`] and [`Layer::build`].
    pub fn new(filters: usize, kernel_size: [usize; 2]) -> Self {
        Self {
            base: LayerBase::new(CLASS),
            filters,
            kernel_size,
            strides: [1, 1],
            padding: Padding::Valid,
            dilation_rate: [1, 1],
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            geometry: None,
            kernel: None,
            bias: None,
            grads: Vec::new(),
            out: Tensor::zeros(&[0]),
            scratch: Conv2dScratch::new(),
            cols: None,
        }
    }

    /// The strides `[sh, sw]` (Keras `strides`, default `(1, 1)`).
    pub fn strides(mut self, strides: [usize; 2]) -> Self {
        self.strides = strides;
        self
    }

    /// `Padding::Valid` (Keras' default) or `Padding::Same`.
    pub fn padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// The dilation `[dh, dw]` (Keras `dilation_rate`, default `(1, 1)`).
    pub fn dilation_rate(mut self, dilation_rate: [usize; 2]) -> Self {
        self.dilation_rate = dilation_rate;
        self
    }

    /// The activation applied to the convolution plus bias (default linear).
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Whether the layer adds a bias (Keras `use_bias`, default `true`).
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// The kernel's initialiser (default `glorot_uniform`).
    pub fn kernel_initializer(mut self, init: Initializer) -> Self {
        self.kernel_initializer = init;
        self
    }

    /// The bias' initialiser (default `zeros`).
    pub fn bias_initializer(mut self, init: Initializer) -> Self {
        self.bias_initializer = init;
        self
    }

    /// A penalty on the kernel added to the loss (Keras `kernel_regularizer`).
    pub fn kernel_regularizer(mut self, regularizer: Regularizer) -> Self {
        self.kernel_regularizer = Some(regularizer);
        self
    }

    /// The number of filters (output channels).
    pub fn filters(&self) -> usize {
        self.filters
    }

    /// The kernel size `[kh, kw]`.
    pub fn kernel_size(&self) -> [usize; 2] {
        self.kernel_size
    }

    /// The kernel `[kh, kw, c, filters]`, named `{name}/kernel`, once built.
    pub fn kernel(&self) -> Option<&Variable> {
        self.kernel.as_ref()
    }

    /// The bias `[filters]`, named `{name}/bias`, once built with `use_bias`.
    pub fn bias(&self) -> Option<&Variable> {
        self.bias.as_ref()
    }

    fn shape_error(&self, detail: String) -> Error {
        self.base.shape_error(detail)
    }

    /// The geometry for a per-sample input shape, checking everything.
    fn geometry_for(&self, input_shape: &[usize]) -> Result<Conv2dGeometry> {
        let &[h, w, c] = input_shape else {
            let hint = match input_shape {
                &[h, w] => format!(
                    "; a grayscale image of shape ({h}, {w}) needs a channel axis: add \
                     Reshape(({h}, {w}, 1)) before it, or give input_shape ({h}, {w}, 1)"
                ),
                _ => String::new(),
            };
            return Err(self.shape_error(format!(
                "Conv2D expects images of shape (height, width, channels) (rank 3, \
                 channels_last), got input shape {input_shape:?}{hint}"
            )));
        };
        if self.filters == 0 {
            return Err(self.shape_error("filters must be at least 1, got 0".into()));
        }
        if self.strides.iter().any(|&s| s > 1) && self.dilation_rate.iter().any(|&d| d > 1) {
            // Keras' BaseConv refuses the pair in its constructor.
            return Err(self.shape_error(format!(
                "strides > 1 cannot be combined with dilation_rate > 1 (as in Keras): strides {:?}, \
                 dilation_rate {:?}",
                self.strides, self.dilation_rate
            )));
        }
        self.activation.validate()?;
        if let Some(r) = &self.kernel_regularizer {
            r.validate()?;
        }
        Conv2dGeometry::new(
            [h, w, c],
            self.kernel_size,
            self.filters,
            self.strides,
            self.dilation_rate,
            self.padding,
        )
        .map_err(|e| self.shape_error(format!("cannot convolve {}", tensor_reason(e))))
    }

    /// The built geometry and kernel, and the batch size of `x` after
    /// checking its shape and device.
    fn check_input(&self, x: &Tensor) -> Result<(Conv2dGeometry, usize)> {
        let g = self
            .geometry
            .ok_or_else(|| self.shape_error("the layer is not built yet".into()))?;
        let [h, w, c] = g.input_hwc();
        match x.shape() {
            &[rows, xh, xw, xc] if [xh, xw, xc] == [h, w, c] => Ok((g, rows)),
            other => Err(self.shape_error(format!(
                "expected input [rows, {h}, {w}, {c}] (built for ({h}, {w}, {c})), got {other:?}"
            ))),
        }
    }

    /// The kernel, checked to be on `device` (the input's).
    fn kernel_on(&self, device: Device) -> Result<&Tensor> {
        let kernel = self
            .kernel
            .as_ref()
            .ok_or_else(|| self.shape_error("the layer is not built yet".into()))?
            .value();
        if kernel.device() != device {
            return Err(Error::Unsupported {
                layer: self.base.label().into_owned(),
                class: CLASS.into(),
                detail: format!(
                    "the input is on {device} but the kernel on {}; move the layer's weights \
                     to the input's device (model.to_device)",
                    kernel.device()
                ),
            });
        }
        Ok(kernel)
    }

    /// The forward pass with tensor ops on `x`'s device (GPUs): see the
    /// module docs. `x` was checked against `g`; it has `rows` images.
    fn forward_ops(
        &mut self,
        g: Conv2dGeometry,
        rows: usize,
        x: &Tensor,
        pass: Pass,
    ) -> Result<()> {
        let [oh, ow, filters] = g.output_hwc();
        let kernel = self
            .kernel_on(x.device())?
            .reshape(&[g.patch_len(), filters])?;
        let cols = g.im2col(x)?;
        let mut z = cols.matmul(&kernel)?;
        if let Some(b) = &self.bias {
            z = z.add(b.value())?;
        }
        if !pass.logits {
            z = self.activation.call(&z)?;
        }
        self.out = z.reshape(&[rows, oh, ow, filters])?;
        self.cols = pass.training.then_some(cols);
        Ok(())
    }

    /// The backward pass with tensor ops on `x`'s device (GPUs): see the
    /// module docs. The columns of the last training pass are used when
    /// they fit, else im2col runs again.
    fn backward_ops(
        &mut self,
        g: Conv2dGeometry,
        rows: usize,
        x: &Tensor,
        grad_out: &Tensor,
        grad_in: Option<&mut Tensor>,
        pass: Pass,
    ) -> Result<()> {
        let [oh, ow, filters] = g.output_hwc();
        let (pixels, patch) = (rows * oh * ow, g.patch_len());
        let kernel = self.kernel_on(x.device())?.clone();
        let gy = grad_out.reshape(&[pixels, filters])?;
        let delta = if pass.logits || self.activation == Activation::Linear {
            gy
        } else {
            let y = self.out.reshape(&[pixels, filters])?;
            self.activation.backprop(&y, &gy)?
        };
        let cols = self.cols.take();
        if self.base.trainable {
            let cols = match cols {
                Some(c) if c.shape() == [pixels, patch] && c.device() == x.device() => c,
                _ => g.im2col(x)?,
            };
            let mut dk = cols
                .matmul_with(&delta, true, false)?
                .reshape(kernel.shape())?;
            if let Some(r) = &self.kernel_regularizer {
                // l1 · sign(w) + 2 · l2 · w, as Regularizer::add_gradient.
                let reg = kernel
                    .sign()
                    .mul_scalar(r.l1)
                    .add(&kernel.mul_scalar(2.0 * r.l2))?;
                dk = dk.add(&reg)?;
            }
            let mut grads = vec![dk];
            if self.bias.is_some() {
                grads.push(delta.sum(0, false)?);
            }
            self.grads = grads;
        }
        if let Some(grad_in) = grad_in {
            let k = kernel.reshape(&[patch, filters])?;
            *grad_in = g.col2im(&delta.matmul_with(&k, false, true)?)?;
        }
        Ok(())
    }

    /// Reads Keras' configuration (`layer.get_config()`), as a `.keras`
    /// file stores it; keys Keras writes that hebb does not need are
    /// tolerated when they hold their default (`null` constraints, ...).
    ///
    /// # Errors
    /// [`Error::Config`] naming the key and value for a missing `filters` or
    /// `kernel_size`, an unsupported `data_format` (`channels_first`),
    /// `groups != 1`, `padding="causal"`, a bias or activity regulariser, a
    /// constraint, an unknown activation or initialiser, a dtype other than
    /// float32.
    pub fn from_config(config: &Value) -> Result<Self> {
        let (base, obj) = LayerBase::from_config(CLASS, config)?;
        let bad = |detail: String| config_error(CLASS, detail);
        let filters = obj.get("filters").and_then(Value::as_u64).ok_or_else(|| {
            bad(format!(
                "filters must be a positive integer, got {:?}",
                obj.get("filters")
            ))
        })? as usize;
        let pair = |key: &str, default: Option<[usize; 2]>| -> Result<[usize; 2]> {
            match obj.get(key) {
                None | Some(Value::Null) => default.ok_or_else(|| bad(format!("{key} is missing"))),
                Some(v) => int_pair(v).ok_or_else(|| {
                    bad(format!(
                        "{key} must be an integer or a list of 2 integers, got {v}"
                    ))
                }),
            }
        };
        let mut layer = Conv2D::new(filters, pair("kernel_size", None)?)
            .strides(pair("strides", Some([1, 1]))?)
            .dilation_rate(pair("dilation_rate", Some([1, 1]))?);
        if let Some(p) = obj.get("padding").filter(|v| !v.is_null()) {
            let name = p.as_str().unwrap_or_default();
            layer.padding = Padding::from_name(name).map_err(|_| {
                bad(format!(
                    "padding {p} is not supported (hebb has \"valid\" and \"same\")"
                ))
            })?;
        }
        channels_last(CLASS, obj)?;
        match obj.get("groups") {
            None | Some(Value::Null) => {}
            Some(v) if v.as_u64() == Some(1) => {}
            Some(v) => {
                return Err(bad(format!(
                    "groups {v} is not supported: hebb has grouped convolutions only with groups 1"
                )));
            }
        }
        for key in [
            "bias_regularizer",
            "activity_regularizer",
            "kernel_constraint",
            "bias_constraint",
        ] {
            if let Some(v) = obj.get(key).filter(|v| !v.is_null()) {
                return Err(bad(format!(
                    "{key} {v} is not supported (hebb has kernel_regularizer only)"
                )));
            }
        }
        layer.use_bias = keras::bool_key(CLASS, obj, "use_bias", true)?;
        layer.activation =
            activation_from_config(CLASS, obj.get("activation").unwrap_or(&Value::Null))?;
        layer.kernel_initializer =
            initializer_key(CLASS, obj, "kernel_initializer", Initializer::GlorotUniform)?;
        layer.bias_initializer =
            initializer_key(CLASS, obj, "bias_initializer", Initializer::Zeros)?;
        layer.kernel_regularizer =
            Regularizer::from_keras(obj.get("kernel_regularizer").unwrap_or(&Value::Null))
                .map_err(|e| bad(e.to_string()))?;
        layer.base = base;
        Ok(layer)
    }
}

/// The reason of a tensor error, without the op's prefix.
/// The registry's constructor for `"Conv2D"` (see [`Conv2D::from_config`]).
pub(crate) fn from_config(config: &Value) -> Result<Box<dyn Layer>> {
    Ok(Box::new(Conv2D::from_config(config)?))
}

base_builders!(Conv2D, base);

impl Layer for Conv2D {
    layer_base_methods!(base);

    fn activation(&self) -> Activation {
        self.activation
    }

    fn config(&self) -> Value {
        let mut config = self.base.config();
        config.extend(
            [
                ("filters", json!(self.filters)),
                ("kernel_size", json!(self.kernel_size)),
                ("strides", json!(self.strides)),
                ("padding", json!(self.padding.name())),
                ("data_format", json!("channels_last")),
                ("dilation_rate", json!(self.dilation_rate)),
                ("groups", json!(1)),
                ("activation", activation_to_config(self.activation)),
                ("use_bias", json!(self.use_bias)),
                (
                    "kernel_initializer",
                    initializer_to_keras(self.kernel_initializer),
                ),
                (
                    "bias_initializer",
                    initializer_to_keras(self.bias_initializer),
                ),
                (
                    "kernel_regularizer",
                    self.kernel_regularizer
                        .map_or(Value::Null, |r| r.to_keras()),
                ),
                ("bias_regularizer", Value::Null),
                ("activity_regularizer", Value::Null),
                ("kernel_constraint", Value::Null),
                ("bias_constraint", Value::Null),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        );
        if let Some(shape) = &self.base.input_shape {
            let batch: Vec<Value> = std::iter::once(Value::Null)
                .chain(shape.iter().map(|&d| json!(d)))
                .collect();
            config.insert("batch_input_shape".into(), Value::Array(batch));
        }
        Value::Object(config)
    }

    fn compute_output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        Ok(self.geometry_for(input_shape)?.output_hwc().to_vec())
    }

    fn build(&mut self, input_shape: &[usize], rng: &mut dyn RngCore) -> Result<()> {
        let g = self.geometry_for(input_shape)?;
        let label = self.base.label();
        let kernel = make_weight(
            &label,
            "kernel",
            &g.kernel_shape(),
            self.kernel_initializer,
            rng,
        )?;
        self.kernel = Some(Variable::new(self.base.weight_name("kernel"), kernel));
        self.bias = if self.use_bias {
            let bias = make_weight(&label, "bias", &[self.filters], self.bias_initializer, rng)?;
            Some(Variable::new(self.base.weight_name("bias"), bias))
        } else {
            None
        };
        self.geometry = Some(g);
        self.grads.clear();
        self.cols = None;
        Ok(())
    }

    fn weights(&self) -> Vec<&Variable> {
        self.kernel.iter().chain(&self.bias).collect()
    }

    fn weights_mut(&mut self) -> Vec<&mut Variable> {
        self.kernel.iter_mut().chain(&mut self.bias).collect()
    }

    fn forward(&mut self, x: &Tensor, pass: Pass) -> Result<&Tensor> {
        let (g, rows) = self.check_input(x)?;
        self.activation.validate()?;
        if x.device() != Device::Cpu {
            self.forward_ops(g, rows, x, pass)?;
            return Ok(&self.out);
        }
        self.cols = None;
        let [oh, ow, filters] = g.output_hwc();
        let not_built = self.shape_error("the layer is not built yet".into());
        let Self {
            kernel,
            bias,
            out,
            scratch,
            activation,
            ..
        } = self;
        let (Some(kernel), activation) = (kernel.as_ref(), *activation) else {
            return Err(not_built);
        };
        let out_slice = reuse(out, &[rows, oh, ow, filters])?;
        let apply = !pass.logits && activation != Activation::Linear;
        g.forward(
            rows,
            x.as_slice(),
            kernel.value().as_slice(),
            bias.as_ref().map(|b| b.value().as_slice()),
            out_slice,
            scratch,
            |_, block| {
                if apply {
                    // Cannot fail: the activation was validated above and
                    // `block` holds whole rows of `filters` values.
                    let _ = activation.apply_in_place(block, filters);
                }
            },
        )?;
        Ok(&self.out)
    }

    fn backward(
        &mut self,
        x: &Tensor,
        grad_out: &mut Tensor,
        grad_in: Option<&mut Tensor>,
        pass: Pass,
    ) -> Result<()> {
        let (g, rows) = self.check_input(x)?;
        let [oh, ow, filters] = g.output_hwc();
        let out_shape = [rows, oh, ow, filters];
        if grad_out.shape() != out_shape || self.out.shape() != out_shape {
            return Err(self.shape_error(format!(
                "backward: the output gradient is {:?} and the last output {:?}, for input {:?} \
                 (expected {out_shape:?})",
                grad_out.shape(),
                self.out.shape(),
                x.shape()
            )));
        }
        if grad_out.device() != x.device() {
            return Err(hebb_tensor::Error::DeviceMismatch {
                op: "Conv2D backward",
                lhs: x.device(),
                rhs: grad_out.device(),
            }
            .into());
        }
        if x.device() != Device::Cpu {
            return self.backward_ops(g, rows, x, grad_out, grad_in, pass);
        }
        let trainable = self.base.trainable;
        let not_built = self.shape_error("the layer is not built yet".into());
        let Self {
            kernel,
            bias,
            out,
            scratch,
            activation,
            grads,
            kernel_regularizer,
            ..
        } = self;
        let (Some(kernel), activation) = (kernel.as_ref(), *activation) else {
            return Err(not_built);
        };
        if trainable {
            let fits = grads.first().map(Tensor::shape) == Some(kernel.shape())
                && grads.len() == 1 + usize::from(bias.is_some())
                && grads.iter().all(|t| t.device() == Device::Cpu);
            if !fits {
                *grads = std::iter::once(Tensor::zeros(kernel.shape()))
                    .chain(bias.iter().map(|b| Tensor::zeros(b.shape())))
                    .collect();
            }
        }
        let (dk, db) = if trainable {
            let (dk, db) = grads.split_at_mut(1);
            (
                Some(dk[0].as_mut_slice()),
                db.first_mut().map(Tensor::as_mut_slice),
            )
        } else {
            (None, None)
        };
        let dx = grad_in.map(|t| reuse(t, x.shape())).transpose()?;
        let y = out.as_slice();
        let apply = !pass.logits && activation != Activation::Linear;
        let w = kernel.value().as_slice();
        let has_dk = dk.is_some();
        g.backward(
            rows,
            w,
            grad_out.as_mut_slice(),
            Conv2dGrads {
                kernel: dk,
                bias: db,
                input: dx,
            },
            scratch,
            |first, block| {
                if apply {
                    let y = &y[first * filters..][..block.len()];
                    // Cannot fail: validated in forward, whole rows, equal lengths.
                    let _ = activation.backprop_in_place(y, block, filters);
                }
            },
        )?;
        if has_dk && let Some(r) = kernel_regularizer {
            r.add_gradient(w, grads[0].as_mut_slice());
        }
        Ok(())
    }

    fn gradients(&self) -> &[Tensor] {
        &self.grads
    }

    /// The kernel regulariser's penalty; 0 for a frozen layer, as Keras 3
    /// (`Layer.losses` sums the regularisers of the trainable weights only).
    fn regularization_loss(&self) -> Result<f32> {
        Ok(match (&self.kernel_regularizer, &self.kernel) {
            (Some(r), Some(k)) if self.base.trainable => r.penalty(k.value()),
            _ => 0.0,
        })
    }

    fn call<'t>(&self, tape: &'t GradientTape, x: Var<'t>, _training: bool) -> Result<Var<'t>> {
        let (Some(kernel), Some(g)) = (&self.kernel, self.geometry) else {
            return Err(self.shape_error("the layer is not built yet".into()));
        };
        let [h, w, c] = g.input_hwc();
        let xs = x.shape();
        if xs.len() != 4 || xs[1..] != [h, w, c] {
            return Err(self.shape_error(format!(
                "expected input [rows, {h}, {w}, {c}] (built for ({h}, {w}, {c})), got {xs:?}"
            )));
        }
        let mut y = x.conv2d(
            tape.watch(kernel),
            self.strides,
            self.padding,
            self.dilation_rate,
        )?;
        if let Some(b) = &self.bias {
            y = y.add(tape.watch(b))?;
        }
        self.activation.apply(y)
    }

    /// The CPU, and GPUs (im2col and col2im kernels, cuBLAS products).
    fn supports(&self, _device: Device) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Registry;
    use crate::testing::{assert_close, random, run_step, tape_reference};
    use hebb_tensor::random::chacha;

    /// The step's forward and backward against the layer's tape form: the
    /// output, and the gradients of the kernel, bias and input of
    /// `L = Σ G · y` (plus the regulariser's gradient on the kernel).
    fn step_matches_tape(mut layer: Conv2D, input: [usize; 3], rows: usize, logits: bool) {
        layer.set_name("c");
        layer.build(&input, &mut chacha(3)).unwrap();
        let out_shape = layer.compute_output_shape(&input).unwrap();
        let mut x_shape = vec![rows];
        x_shape.extend(input);
        let x = random(&x_shape, 1);
        let mut y_shape = vec![rows];
        y_shape.extend(&out_shape);
        let g = random(&y_shape, 2);
        let pass = Pass {
            training: true,
            logits,
            ..Pass::default()
        };
        let (y, dx) = run_step(&mut layer, &x, &g, pass).unwrap();

        let mut probe = layer.clone();
        if logits {
            probe.activation = Activation::Linear;
        }
        let want = tape_reference(&probe, &x, &g, true).unwrap();
        assert_close("y", &y, &want.y, 1e-5);
        assert_close("dx", &dx, &want.dx, 1e-5);
        let mut dk = want.dweights[0].clone();
        if let Some(r) = &layer.kernel_regularizer {
            r.add_gradient(
                layer.kernel().unwrap().value().as_slice(),
                dk.as_mut_slice(),
            );
        }
        assert_close("dkernel", &layer.gradients()[0], &dk, 1e-5);
        assert_eq!(layer.gradients().len(), want.dweights.len());
        if layer.use_bias {
            assert_close("dbias", &layer.gradients()[1], &want.dweights[1], 1e-5);
        }
    }

    #[test]
    fn forward_and_backward_match_the_tape() {
        step_matches_tape(
            Conv2D::new(4, [3, 3]).activation(Activation::Relu),
            [8, 7, 2],
            3,
            false,
        );
        step_matches_tape(
            Conv2D::new(3, [2, 3])
                .strides([2, 1])
                .padding(Padding::Same)
                .activation(Activation::Tanh)
                .kernel_regularizer(Regularizer::l1_l2(0.01, 0.02)),
            [5, 6, 3],
            2,
            false,
        );
        step_matches_tape(
            Conv2D::new(2, [3, 2])
                .dilation_rate([2, 1])
                .use_bias(false)
                .activation(Activation::Sigmoid),
            [7, 5, 1],
            1,
            false,
        );
        // Softmax over the filters, and the same layer's logits.
        for logits in [false, true] {
            step_matches_tape(
                Conv2D::new(5, [1, 1]).activation(Activation::Softmax),
                [3, 3, 2],
                2,
                logits,
            );
        }
    }

    #[test]
    fn frozen_layers_compute_no_weight_gradients_and_buffers_are_reused() {
        let mut layer = Conv2D::new(3, [3, 3])
            .activation(Activation::Relu)
            .name("c")
            .trainable(false);
        layer.build(&[6, 6, 2], &mut chacha(0)).unwrap();
        let x = random(&[2, 6, 6, 2], 5);
        let ptr = layer.forward(&x, Pass::TRAIN).unwrap().as_slice().as_ptr();
        assert_eq!(
            layer.forward(&x, Pass::TRAIN).unwrap().as_slice().as_ptr(),
            ptr
        );
        let mut g = random(&[2, 4, 4, 3], 6);
        let mut dx = Tensor::zeros(&[0]);
        layer
            .backward(&x, &mut g, Some(&mut dx), Pass::TRAIN)
            .unwrap();
        assert!(layer.gradients().is_empty());
        assert_eq!(dx.shape(), &[2, 6, 6, 2]);
        assert!(dx.as_slice().iter().any(|&v| v != 0.0));
        // A batch of another size: new buffers of the new shape.
        let x1 = random(&[1, 6, 6, 2], 7);
        assert_eq!(
            layer.forward(&x1, Pass::INFER).unwrap().shape(),
            &[1, 4, 4, 3]
        );
        // An input of another image size is refused, naming the layer and shape.
        let e = layer
            .forward(&random(&[1, 6, 5, 2], 7), Pass::INFER)
            .unwrap_err()
            .to_string();
        assert!(e.contains("layer c") && e.contains("[1, 6, 5, 2]"), "{e}");
    }

    #[test]
    fn weights_are_named_and_drawn_as_keras_draws_them() {
        let mut layer = Conv2D::new(32, [3, 3]);
        layer.set_name("conv2d_1");
        layer.build(&[28, 28, 1], &mut chacha(0)).unwrap();
        let names: Vec<&str> = layer.weights().iter().map(|w| w.name()).collect();
        assert_eq!(names, ["conv2d_1/kernel", "conv2d_1/bias"]);
        assert_eq!(layer.weights()[0].shape(), &[3, 3, 1, 32]);
        assert_eq!(layer.weights()[1].value().to_vec(), vec![0.0; 32]);
        // glorot_uniform with Keras' fans: 3·3·1 = 9 in, 3·3·32 = 288 out.
        let limit = (6.0f32 / (9.0 + 288.0)).sqrt();
        let k = layer.weights()[0].value().to_vec();
        let max = k.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(max < limit && max > 0.9 * limit, "{max} vs {limit}");
        layer.set_name("first");
        let names: Vec<&str> = layer.weights().iter().map(|w| w.name()).collect();
        assert_eq!(names, ["first/kernel", "first/bias"]);
        // Keras 3: Conv2D(2, 3, kernel_regularizer=L2(0.5), kernel_initializer="ones")
        // on (5, 5, 1) has losses [9.0] (0.5 · 18 ones), and none once frozen.
        let mut reg = Conv2D::new(2, [3, 3])
            .kernel_regularizer(Regularizer::l2(0.5))
            .kernel_initializer(Initializer::Ones);
        reg.build(&[5, 5, 1], &mut chacha(0)).unwrap();
        assert_eq!(reg.regularization_loss().unwrap(), 9.0);
        reg.set_trainable(false);
        assert_eq!(reg.regularization_loss().unwrap(), 0.0);
        let mut nobias = Conv2D::new(2, [1, 1]).use_bias(false).name("n");
        nobias.build(&[2, 2, 3], &mut chacha(0)).unwrap();
        assert_eq!(nobias.weights().len(), 1);
    }

    #[test]
    fn bad_shapes_name_the_layer_and_the_shapes() {
        let conv = Conv2D::new(32, [3, 3]).name("conv");
        let e = conv
            .compute_output_shape(&[28, 28])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("layer conv")
                && e.contains("[28, 28]")
                && e.contains("Reshape((28, 28, 1))")
                && e.contains("input_shape (28, 28, 1)"),
            "{e}"
        );
        let e = conv
            .compute_output_shape(&[2, 28, 1])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("layer conv") && e.contains("[2, 28, 1]") && e.contains("[3, 3]"),
            "{e}"
        );
        // 'same' pads instead.
        assert_eq!(
            Conv2D::new(4, [3, 3])
                .padding(Padding::Same)
                .compute_output_shape(&[2, 28, 1])
                .unwrap(),
            vec![2, 28, 4]
        );
        let e = Conv2D::new(0, [3, 3])
            .compute_output_shape(&[8, 8, 1])
            .unwrap_err()
            .to_string();
        assert!(e.contains("layer conv2d") && e.contains("filters"), "{e}");
        let e = Conv2D::new(2, [3, 3])
            .strides([2, 1])
            .dilation_rate([1, 2])
            .compute_output_shape(&[8, 8, 1])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("layer conv2d")
                && e.contains("strides [2, 1]")
                && e.contains("dilation_rate [1, 2]"),
            "{e}"
        );
        for layer in [
            Conv2D::new(2, [3, 3]).strides([0, 1]),
            Conv2D::new(2, [3, 3]).dilation_rate([1, 0]),
            Conv2D::new(2, [0, 3]),
        ] {
            let e = layer
                .compute_output_shape(&[8, 8, 1])
                .unwrap_err()
                .to_string();
            assert!(e.contains("at least 1"), "{e}");
        }
        let mut unbuilt = Conv2D::new(2, [3, 3]);
        assert!(
            unbuilt
                .forward(&Tensor::zeros(&[1, 8, 8, 1]), Pass::TRAIN)
                .is_err()
        );
        assert!(unbuilt.build(&[8, 8], &mut chacha(0)).is_err());
    }

    #[test]
    fn config_round_trips_and_reads_keras() {
        let layer = Conv2D::new(8, [3, 2])
            .strides([2, 1])
            .padding(Padding::Same)
            .dilation_rate([1, 1])
            .activation(Activation::Relu)
            .use_bias(false)
            .kernel_initializer(Initializer::HeNormal)
            .kernel_regularizer(Regularizer::l2(0.01))
            .input_shape(&[28, 28, 1])
            .trainable(false)
            .name("c1");
        let config = layer.config();
        assert_eq!(config["kernel_size"], json!([3, 2]));
        assert_eq!(config["padding"], json!("same"));
        assert_eq!(config["data_format"], json!("channels_last"));
        assert_eq!(config["dtype"], json!("float32"));
        let back = Registry::builtin().from_config("Conv2D", &config).unwrap();
        assert_eq!(back.class_name(), "Conv2D");
        assert_eq!(back.config(), config);
        assert_eq!(back.input_shape(), Some(&[28, 28, 1][..]));
        assert!(!back.trainable());

        // Keras 3.15's get_config of Conv2D(32, (3, 3), activation="relu").
        let keras = json!({"name": "conv2d", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}, "filters": 32, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid", "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1, "activation": "relu", "use_bias": true, "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null, "input_axes": null, "output_axes": null}, "registered_name": null}, "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null}, "kernel_regularizer": null, "bias_regularizer": null, "activity_regularizer": null, "kernel_constraint": null, "bias_constraint": null});
        let conv = Conv2D::from_config(&keras).unwrap();
        assert_eq!(conv.base.name, "conv2d");
        assert_eq!((conv.filters, conv.kernel_size), (32, [3, 3]));
        assert_eq!(conv.activation, Activation::Relu);
        assert_eq!(conv.kernel_initializer, Initializer::GlorotUniform);
        assert_eq!(
            conv.compute_output_shape(&[28, 28, 1]).unwrap(),
            vec![26, 26, 32]
        );
        // Integers for pairs, as Keras accepts.
        let mut short = keras.clone();
        short["kernel_size"] = json!(5);
        short["strides"] = json!(2);
        assert_eq!(Conv2D::from_config(&short).unwrap().strides, [2, 2]);

        for (key, value, says) in [
            ("data_format", json!("channels_first"), "channels_first"),
            ("groups", json!(2), "groups 2"),
            ("padding", json!("causal"), "causal"),
            (
                "bias_regularizer",
                json!({"class_name": "L2", "config": {"l2": 0.1}}),
                "bias_regularizer",
            ),
            ("activation", json!("gelu"), "gelu"),
            ("kernel_size", json!([3, 3, 3]), "kernel_size"),
        ] {
            let mut bad = keras.clone();
            bad[key] = value;
            let e = Conv2D::from_config(&bad).unwrap_err().to_string();
            assert!(e.contains("Conv2D") && e.contains(says), "{key}: {e}");
        }
    }
}
