//! A Keras-style [`Sequential`] model (lecture 13.3–13.5):
//! `add` layers, `summary`, `compile` with an optimiser, a loss and metrics,
//! `fit`, `evaluate`, `predict`.
//!
//! ```
//! use hebb_layers::Activation;
//! use hebb_models::sequential::{FitOptions, Sequential, layers::Dense};
//! use hebb_tensor::Tensor;
//!
//! let mut model = Sequential::new();
//! model.add(Dense::new(8).activation(Activation::Relu).input_shape(&[4]))?;
//! model.add(Dense::new(4).activation(Activation::Relu))?;
//! model.add(Dense::new(3).activation(Activation::Softmax))?;
//! assert!(model.summary()?.contains("Total params: 91"));
//!
//! model.compile("sgd", "sparse_categorical_crossentropy", vec!["sparse_categorical_accuracy"])?;
//! let x = Tensor::from_vec((0..40).map(|i| (i % 7) as f32 / 7.0).collect(), &[10, 4])?;
//! let y = Tensor::from_vec((0..10).map(|i| (i % 3) as f32).collect(), &[10])?;
//! let history = model.fit(&x, &y, FitOptions { epochs: 2, batch_size: 4, verbose: 0, ..Default::default() })?;
//! assert_eq!(history.get("loss").map(|l| l.len()), Some(2));
//! # Ok::<(), hebb_models::Error>(())
//! ```

pub mod callbacks;
pub mod distributed;
mod history;
pub mod layers;
mod saving;
mod step;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[cfg(test)]
use hebb_autograd::GradientTape;
use hebb_autograd::Variable;
use hebb_layers::losses::Loss;
use hebb_layers::metrics::{self, Metric};
use hebb_optim::Optimizer;
use hebb_tensor::ops::pack::{pack_scaled, unpack_scaled};
use hebb_tensor::random::chacha;
use hebb_tensor::{Device, Tensor};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::seq::SliceRandom;

pub use callbacks::{Callback, Control, ModelCheckpoint};
pub use distributed::Collective;
use hebb_layers::{Layer, Pass};
pub use history::History;
pub use saving::{
    LoadedModel, ModelFormat, load_model, load_model_bytes, load_model_bytes_with,
    load_model_with_notes, load_model_with_registry,
};
use step::Step;

use crate::{Error, Result};

/// `format` in the metadata of weights files.
const WEIGHTS_FORMAT: &str = "hebb-weights";
/// `version` in the metadata of weights files.
const WEIGHTS_VERSION: &str = "1";

/// An optimiser given by Keras name (`"adam"`) or as an object.
pub enum OptimizerArg {
    /// A Keras name, resolved with Keras' defaults.
    Name(String),
    /// A configured optimiser, e.g. `Box::new(Sgd::new(0.1))`.
    Object(Box<dyn Optimizer>),
}

impl From<&str> for OptimizerArg {
    fn from(name: &str) -> Self {
        OptimizerArg::Name(name.to_string())
    }
}

impl From<Box<dyn Optimizer>> for OptimizerArg {
    fn from(o: Box<dyn Optimizer>) -> Self {
        OptimizerArg::Object(o)
    }
}

/// A loss given by Keras name (`"sparse_categorical_crossentropy"`) or as a [`Loss`].
pub enum LossArg {
    /// A Keras name.
    Name(String),
    /// A configured loss (e.g. with `from_logits`).
    Object(Loss),
}

impl From<&str> for LossArg {
    fn from(name: &str) -> Self {
        LossArg::Name(name.to_string())
    }
}

impl From<Loss> for LossArg {
    fn from(l: Loss) -> Self {
        LossArg::Object(l)
    }
}

/// A metric given by Keras name (`"accuracy"`) or as an object.
pub enum MetricArg {
    /// A Keras name; `"accuracy"`/`"acc"` is resolved from the loss as Keras does.
    Name(String),
    /// A configured metric.
    Object(Box<dyn Metric>),
}

impl From<&str> for MetricArg {
    fn from(name: &str) -> Self {
        MetricArg::Name(name.to_string())
    }
}

impl From<Box<dyn Metric>> for MetricArg {
    fn from(m: Box<dyn Metric>) -> Self {
        MetricArg::Object(m)
    }
}

struct Compiled {
    optimizer: Box<dyn Optimizer>,
    loss: Loss,
    metrics: Vec<Box<dyn Metric>>,
    /// The weights the optimiser was built for (Keras' `optimizer.build`):
    /// the model's weight names at its first step in `fit`, or when its
    /// state was loaded; `None` while it has none.
    built_for: Option<Vec<String>>,
}

/// Options of [`Sequential::fit`], with Keras' names and defaults.
pub struct FitOptions {
    /// Samples per gradient step (32).
    pub batch_size: usize,
    /// Passes over the training data (1): epochs are numbered up to `epochs`,
    /// starting at `initial_epoch`.
    pub epochs: usize,
    /// The epoch to start at (0), as Keras' `initial_epoch`: to resume a
    /// training that stopped after `initial_epoch` epochs (a model saved with
    /// [`Sequential::save`] and loaded with [`load_model`]), fit with the
    /// same seed and `epochs` the total; each epoch's shuffle depends only on
    /// the seed and the epoch number, so the run continues bit for bit.
    pub initial_epoch: usize,
    /// 0 silent, 1 a progress bar per epoch, 2 one line per epoch (1).
    pub verbose: u8,
    /// Reshuffle the training samples before each epoch (true); each epoch's
    /// order is derived from `seed` and the epoch number alone.
    pub shuffle: bool,
    /// Seed of the shuffling (0).
    pub seed: u64,
    /// The last fraction of `x`/`y`, taken before shuffling, held out for
    /// validation (0.0): of `n` samples, the first `floor(n (1 -
    /// validation_split))` train and the rest validate, as in Keras. A split
    /// in `(0, 1)` that leaves either part empty (`1e-17` of 150 samples:
    /// no validation sample; 0.5 of 1: no training sample) is refused with
    /// [`Error::ValidationSplit`], as Keras refuses it.
    pub validation_split: f64,
    /// Explicit validation inputs and targets; overrides `validation_split`.
    pub validation_data: Option<(Tensor, Tensor)>,
    /// Validate every this many epochs (1).
    pub validation_freq: usize,
    /// Callbacks, run in order.
    pub callbacks: Vec<Box<dyn Callback>>,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            batch_size: 32,
            epochs: 1,
            initial_epoch: 0,
            verbose: 1,
            shuffle: true,
            seed: 0,
            validation_split: 0.0,
            validation_data: None,
            validation_freq: 1,
            callbacks: Vec::new(),
        }
    }
}

/// A linear stack of layers (Keras `tf.keras.Sequential`).
///
/// Layers are named as Keras names them (`dense`, `dense_1`, `flatten`),
/// counting within the model. Weights are drawn from a ChaCha8 generator
/// seeded by the model's seed and the layer's position, so the same seed
/// gives the same model.
pub struct Sequential {
    name: String,
    seed: u64,
    /// The layers as added, named.
    layers: Vec<Box<dyn Layer>>,
    /// Whether each layer's name was given by the user (else automatic).
    given_names: Vec<bool>,
    /// The per-sample output shapes of the built layers (a prefix of `layers`).
    shapes: Vec<Vec<usize>>,
    input_shape: Option<Vec<usize>>,
    compiled: Option<Compiled>,
    /// Where the weights live and `fit`/`evaluate`/`predict` compute.
    device: Device,
    /// The processes this model trains with (data-parallel), if any.
    group: Option<Arc<dyn Collective>>,
    /// Train on the whole-model tape (the reference the step is tested against).
    #[cfg(test)]
    force_tape: bool,
    /// The loss's head on tensor ops (the GPUs') on the CPU too.
    #[cfg(test)]
    force_device_step: bool,
    /// The loss's gradient from the tape, whatever the loss.
    #[cfg(test)]
    force_tape_head: bool,
}

impl Default for Sequential {
    fn default() -> Self {
        Self::new()
    }
}

/// `(None, 8)`, `(None, 28, 28)`.
fn shape_str(per_sample: &[usize]) -> String {
    let dims: Vec<String> = per_sample.iter().map(usize::to_string).collect();
    format!("(None, {})", dims.join(", "))
}

/// Advice when `got` is a grayscale image batch that lacks the channel axis
/// the model was built with (`(28, 28)` samples into `(28, 28, 1)`).
fn channel_axis_hint(built: &[usize], got: &[usize]) -> String {
    match built.split_last() {
        Some((1, image)) if image == got => format!(
            "; the samples lack the channel axis: reshape x to (N, {}, 1) \
             (Tensor::reshape) or start the model with Reshape({})",
            image
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            shape_str(built).replacen("None, ", "", 1)
        ),
        _ => String::new(),
    }
}

/// One row of the summary table, as TensorFlow 2's `print_row` lays it out:
/// fields end at columns 29, 55 and 65; a longer field is cut at its column,
/// and the character before each following field is a space.
fn summary_row(fields: &[&str]) -> String {
    const POSITIONS: [usize; 3] = [29, 55, 65];
    let mut line: Vec<char> = Vec::new();
    for (i, (field, &end)) in fields.iter().zip(&POSITIONS).enumerate() {
        if i > 0 {
            line.pop();
            line.push(' ');
        }
        line.extend(field.chars());
        line.truncate(end);
        line.resize(end, ' ');
    }
    line.into_iter().collect()
}

/// `101770` -> `101,770`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Sequential {
    /// An empty model named `sequential`, seed 0.
    pub fn new() -> Self {
        Self {
            name: "sequential".into(),
            seed: 0,
            layers: Vec::new(),
            given_names: Vec::new(),
            shapes: Vec::new(),
            input_shape: None,
            compiled: None,
            device: Device::Cpu,
            group: None,
            #[cfg(test)]
            force_tape: false,
            #[cfg(test)]
            force_device_step: false,
            #[cfg(test)]
            force_tape_head: false,
        }
    }

    /// Moves the model to `device` (PyTorch's `model.to(device)`): its
    /// weights, the weights of layers built or loaded later, and (at the
    /// next training step) the optimiser's state. `fit`, `evaluate` and `predict` then copy their data to the
    /// device once per call, gather mini-batches there and compute there;
    /// `predict` returns host tensors, as Keras returns NumPy arrays.
    ///
    /// Every layer computes its forward and backward passes on the batch's
    /// device ([`Layer::supports`]); a model with a layer that has no GPU
    /// kernels is refused, never trained on the CPU instead.
    ///
    /// # Errors
    /// [`hebb_layers::Error::Unsupported`] (wrapped) naming the first layer
    /// and its class that cannot run on `device` (the model stays where it
    /// was); [`hebb_tensor::Error::NoCudaDevice`] (wrapped) if the GPU is not
    /// usable; copy errors. On a copy error the model may be split between
    /// devices; call again or move it back.
    pub fn to_device(&mut self, device: Device) -> Result<()> {
        self.check_device(device)?;
        self.device = device;
        // The optimiser moves its state to its variables' device at its
        // next step (`hebb_optim`'s slots follow their variables).
        self.place_weights()
    }

    /// [`hebb_layers::Error::Unsupported`] for the first layer that cannot
    /// run on `device`.
    fn check_device(&self, device: Device) -> Result<()> {
        match self.layers.iter().find(|l| !l.supports(device)) {
            Some(l) => Err(Error::Layers(hebb_layers::Error::Unsupported {
                layer: l.name().to_string(),
                class: l.class_name().to_string(),
                detail: format!(
                    "the layer has no kernels for {device} yet; the model cannot compute \
                     there (hebb does not fall back to the CPU); keep it on the CPU"
                ),
            })),
            None => Ok(()),
        }
    }

    /// Trains data-parallel with the processes of `group` (Horovod's
    /// `hvd.DistributedOptimizer`, PyTorch's `DistributedDataParallel`):
    /// `fit` and `evaluate` then shard every batch over the ranks and
    /// reduce gradients, losses and metrics; see [`distributed`]. Every
    /// rank must build, compile and fit the same model with the same
    /// options. A group of one process trains as without it.
    pub fn distribute(&mut self, group: Arc<dyn Collective>) {
        self.group = Some(group);
    }

    /// The group set by [`distribute`](Self::distribute).
    pub fn group(&self) -> Option<&Arc<dyn Collective>> {
        self.group.as_ref()
    }

    /// Whether this process writes (files, progress): rank 0 of a group, or
    /// a model without one. `save` on another rank writes nothing.
    pub fn is_chief(&self) -> bool {
        self.group.as_ref().is_none_or(|g| g.rank() == 0)
    }

    /// The device the model computes on (see [`to_device`](Self::to_device)).
    pub fn device(&self) -> Device {
        self.device
    }

    /// Moves every weight not yet on the model's device there.
    fn place_weights(&mut self) -> Result<()> {
        let device = self.device;
        for layer in &mut self.layers {
            for v in layer.weights_mut() {
                if v.value().device() != device {
                    let moved = v.value().to_device(device)?;
                    *v.value_mut() = moved;
                }
            }
        }
        Ok(())
    }

    /// `t` on the model's device (a cheap clone when it is there).
    fn on_device(&self, t: &Tensor) -> Result<Tensor> {
        Ok(t.to_device(self.device)?)
    }

    /// Sets the seed of the weight initialisers (before layers are built).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the model's name (shown by `summary`).
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the weights exist (the input shape is known).
    pub fn built(&self) -> bool {
        self.input_shape.is_some() && self.shapes.len() == self.layers.len()
    }

    /// Appends a layer (`model.add(...)`): hebb's (`Dense`, `Flatten`,
    /// `Conv2D`, ...) or one of the user's own ([`Layer`]). When the input
    /// shape is known (the first layer's `input_shape`), the layer is built
    /// at once, after [`Layer::compute_output_shape`] accepted the previous
    /// layer's output shape.
    ///
    /// A layer of one's own needs nothing more than the trait:
    ///
    /// ```
    /// use hebb_autograd::{GradientTape, Var, Variable};
    /// use hebb_layers::{Layer, Pass, reuse};
    /// use hebb_models::sequential::{FitOptions, Sequential, layers::Dense};
    /// use hebb_tensor::Tensor;
    ///
    /// /// `y = s · x` with one trainable scalar `s` (initially 1).
    /// #[derive(Debug)]
    /// struct Scale { name: String, s: Option<Variable>, out: Tensor, grad: Vec<Tensor> }
    ///
    /// impl Layer for Scale {
    ///     fn class_name(&self) -> &str { "mypkg>Scale" }
    ///     fn name(&self) -> &str { &self.name }
    ///     fn set_name(&mut self, name: &str) { self.name = name.into() }
    ///     fn trainable(&self) -> bool { true }
    ///     fn set_trainable(&mut self, _: bool) {}
    ///     fn config(&self) -> serde_json::Value { serde_json::json!({"name": self.name}) }
    ///     fn compute_output_shape(&self, input: &[usize]) -> hebb_layers::Result<Vec<usize>> {
    ///         Ok(input.to_vec())
    ///     }
    ///     fn build(&mut self, _: &[usize], _: &mut dyn rand::RngCore) -> hebb_layers::Result<()> {
    ///         self.s = Some(Variable::new(format!("{}/s", self.name), Tensor::ones(&[1])));
    ///         Ok(())
    ///     }
    ///     fn weights(&self) -> Vec<&Variable> { self.s.iter().collect() }
    ///     fn weights_mut(&mut self) -> Vec<&mut Variable> { self.s.iter_mut().collect() }
    ///     fn forward(&mut self, x: &Tensor, _: Pass) -> hebb_layers::Result<&Tensor> {
    ///         let s = self.s.as_ref().unwrap().value().as_slice()[0];
    ///         let out = reuse(&mut self.out, x.shape())?;
    ///         out.iter_mut().zip(x.as_slice()).for_each(|(o, &v)| *o = s * v);
    ///         Ok(&self.out)
    ///     }
    ///     fn backward(&mut self, x: &Tensor, g: &mut Tensor, grad_in: Option<&mut Tensor>,
    ///                 _: Pass) -> hebb_layers::Result<()> {
    ///         let s = self.s.as_ref().unwrap().value().as_slice()[0];
    ///         let ds: f32 = g.as_slice().iter().zip(x.as_slice()).map(|(g, x)| g * x).sum();
    ///         self.grad = vec![Tensor::from_vec(vec![ds], &[1])?];
    ///         if let Some(gi) = grad_in {
    ///             let gi = reuse(gi, x.shape())?;
    ///             gi.iter_mut().zip(g.as_slice()).for_each(|(o, &g)| *o = s * g);
    ///         }
    ///         Ok(())
    ///     }
    ///     fn gradients(&self) -> &[Tensor] { &self.grad }
    ///     fn call<'t>(&self, tape: &'t GradientTape, x: Var<'t>, _: bool)
    ///         -> hebb_layers::Result<Var<'t>> {
    ///         Ok(x.mul(tape.watch(self.s.as_ref().unwrap()))?)
    ///     }
    /// }
    ///
    /// let mut model = Sequential::new();
    /// model.add(Dense::new(2).input_shape(&[3]))?;
    /// model.add(Scale { name: String::new(), s: None, out: Tensor::zeros(&[0]), grad: vec![] })?;
    /// assert!(model.summary()?.contains("scale (Scale)"));
    /// model.compile("sgd", "mse", Vec::<&str>::new())?;
    /// let x = Tensor::ones(&[4, 3]);
    /// let y = Tensor::zeros(&[4, 2]);
    /// model.fit(&x, &y, FitOptions { verbose: 0, ..Default::default() })?;
    /// assert_eq!(model.trainable_variables().len(), 3);
    /// # Ok::<(), hebb_models::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Build`] naming the layer and shapes when it cannot take the
    /// previous layer's output (e.g. `Dense` after a 2-D output without
    /// `Flatten`), when its given name is taken, or is empty, `.`, `..`, or
    /// contains `/` or NUL (names become HDF5 and weight paths); naming the
    /// layer and the value when its activation's parameter is out of range
    /// (`LeakyRelu { a: 0.01 }`: the lecture's `a` must be > 1, Keras'
    /// `negative_slope = 1/a` in `[0, 1)`), whether or not the model is
    /// built yet; naming the layer, its weights' shape and bytes when they
    /// are more than can be allocated (see [`build`](Self::build)).
    /// An automatic name skips names in use: after a model loaded from a
    /// Keras file with `dense` and `dense_1`, a new `Dense` is `dense_2`.
    /// On error the model is unchanged.
    pub fn add(&mut self, layer: impl Layer + 'static) -> Result<()> {
        self.add_boxed(Box::new(layer))
    }

    /// [`add`](Self::add) for a boxed layer (`Box<dyn Layer>`, e.g. one a
    /// [`hebb_layers::Registry`] made).
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub fn add_boxed(&mut self, mut layer: Box<dyn Layer>) -> Result<()> {
        let taken = |name: &str| self.layers.iter().any(|l| l.name() == name);
        let given = !layer.name().is_empty();
        let name = if given {
            let n = layer.name();
            if matches!(n, "." | "..") || n.contains(['/', '\0']) {
                return Err(Error::Build {
                    layer: n.escape_debug().to_string(),
                    detail: "a layer name must not be empty, `.` or `..`, nor contain '/' \
                             (Keras' rule: it separates the parts of weight names such as \
                             `dense/kernel`) or NUL"
                        .into(),
                });
            }
            n.to_string()
        } else {
            let base = hebb_layers::default_name(layer.class_name());
            // Keras numbers automatic names only; custom names use up no number.
            let mut count = self
                .layers
                .iter()
                .zip(&self.given_names)
                .filter(|(l, given)| !**given && hebb_layers::default_name(l.class_name()) == base)
                .count();
            // A name already in the model (a custom one, or one loaded from a
            // Keras file) is skipped, as Keras' per-session counter would.
            loop {
                let name = if count == 0 {
                    base.clone()
                } else {
                    format!("{base}_{count}")
                };
                if !taken(&name) {
                    break name;
                }
                count += 1;
            }
        };
        if taken(&name) {
            return Err(Error::Build {
                layer: name,
                detail: "a layer of this name is already in the model".into(),
            });
        }
        // Checked here, not first at predict (Keras checks at construction).
        if let Err(e) = layer.activation().validate() {
            return Err(Error::Build {
                layer: name,
                detail: e.to_string(),
            });
        }
        if !layer.supports(self.device) {
            return Err(Error::Layers(hebb_layers::Error::Unsupported {
                layer: name,
                class: layer.class_name().to_string(),
                detail: format!(
                    "the layer has no kernels for {:?} yet, where the model is; move the model \
                     to the CPU first (hebb does not fall back to the CPU)",
                    self.device
                ),
            }));
        }
        layer.set_name(&name);
        let first = self.layers.is_empty();
        if first {
            self.input_shape = layer.input_shape().map(<[usize]>::to_vec);
        }
        self.layers.push(layer);
        self.given_names.push(given);
        if let Some(shape) = self.input_shape.clone()
            && let Err(e) = self.build(&shape)
        {
            self.layers.pop();
            self.given_names.pop();
            if first {
                self.input_shape = None;
            }
            return Err(e);
        }
        Ok(())
    }

    /// The layers in order (Keras `model.layers`), built or not.
    pub fn layers(&self) -> impl Iterator<Item = &dyn Layer> {
        self.layers.iter().map(|l| l.as_ref())
    }

    /// The layers in order, mutable (to freeze one with
    /// [`Layer::set_trainable`], then compile again, as Keras requires).
    pub fn layers_mut(&mut self) -> impl Iterator<Item = &mut Box<dyn Layer>> {
        self.layers.iter_mut()
    }

    /// The layer called `name` (Keras `model.get_layer(name)`).
    pub fn get_layer(&self, name: &str) -> Option<&dyn Layer> {
        self.layers
            .iter()
            .find(|l| l.name() == name)
            .map(|l| l.as_ref())
    }

    /// The per-sample output shape of each built layer (`[26, 26, 32]`), in order.
    pub fn output_shapes(&self) -> &[Vec<usize>] {
        &self.shapes
    }

    /// Builds the layers not built yet for per-sample input `shape`
    /// (Keras `model.build((None, *shape))`); `fit`, `evaluate` and `predict`
    /// call it with their input's shape. Each layer `i` draws its initial
    /// weights from a ChaCha8 generator seeded by the model's seed and `i`.
    ///
    /// # Errors
    /// [`Error::Build`] naming the layer and shapes that do not fit; the
    /// model is left as it was.
    pub fn build(&mut self, input_shape: &[usize]) -> Result<()> {
        if let Some(known) = &self.input_shape
            && known.as_slice() != input_shape
            && !self.shapes.is_empty()
        {
            return Err(Error::Build {
                layer: self.layers[0].name().to_string(),
                detail: format!(
                    "the model was built for input {} but got {}{}",
                    shape_str(known),
                    shape_str(input_shape),
                    channel_axis_hint(known, input_shape)
                ),
            });
        }
        let before = (self.input_shape.clone(), self.shapes.len());
        self.input_shape = Some(input_shape.to_vec());
        while self.shapes.len() < self.layers.len() {
            let index = self.shapes.len();
            let previous = self
                .shapes
                .last()
                .map_or(input_shape.to_vec(), Clone::clone);
            match self.build_layer(index, &previous) {
                Ok(shape) => self.shapes.push(shape),
                Err(e) => {
                    // Leave the model as it was, so another shape can be tried.
                    self.input_shape = before.0;
                    self.shapes.truncate(before.1);
                    return Err(e);
                }
            }
        }
        // Layers are made on the host; a model moved to a GPU puts them there.
        self.place_weights()
    }

    fn build_layer(&mut self, index: usize, input: &[usize]) -> Result<Vec<usize>> {
        let layer = &mut self.layers[index];
        let as_build = |e: hebb_layers::Error, name: &str| match e {
            hebb_layers::Error::Shape { layer, detail } => Error::Build { layer, detail },
            other => Error::Build {
                layer: name.to_string(),
                detail: other.to_string(),
            },
        };
        let output = layer
            .compute_output_shape(input)
            .map_err(|e| as_build(e, layer.name()))?;
        // One generator per layer, from the model's seed and the layer's position.
        let mut rng = chacha(self.seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        layer
            .build(input, &mut rng)
            .map_err(|e| as_build(e, layer.name()))?;
        Ok(output)
    }

    fn require_built(&self) -> Result<()> {
        if self.built() {
            Ok(())
        } else {
            Err(Error::NotBuilt {
                model: self.name.clone(),
            })
        }
    }

    /// `(total, trainable)` parameters of a layer: a frozen layer's weights
    /// and non-trainable-kind weights (moving statistics) are not trainable.
    fn param_counts(layer: &dyn Layer) -> (usize, usize) {
        let weights = layer.weights();
        let total = weights.iter().map(|w| w.value().len()).sum();
        let trainable = if layer.trainable() {
            let n = weights.len() - layer.non_trainable_weight_count();
            weights[..n].iter().map(|w| w.value().len()).sum()
        } else {
            0
        };
        (total, trainable)
    }

    /// Keras' summary table (`model.summary()`), as TensorFlow 2 prints it:
    /// each layer's name and class, output shape (`(None, 26, 26, 32)`) and
    /// parameter count, then the totals with thousands separators: total,
    /// trainable and non-trainable (frozen layers' weights and
    /// BatchNormalization's moving statistics).
    ///
    /// # Errors
    /// [`Error::NotBuilt`] if the input shape is not known yet.
    pub fn summary(&self) -> Result<String> {
        self.require_built()?;
        const WIDTH: usize = 65;
        let rule = |c: char| c.to_string().repeat(WIDTH);
        let mut s = String::new();
        let _ = writeln!(s, "Model: \"{}\"", self.name);
        let _ = writeln!(s, "{}", rule('_'));
        let _ = writeln!(
            s,
            "{}",
            summary_row(&["Layer (type)", "Output Shape", "Param #"])
        );
        let _ = writeln!(s, "{}", rule('='));
        let (mut total, mut trainable) = (0, 0);
        for (i, (layer, shape)) in self.layers.iter().zip(&self.shapes).enumerate() {
            let class = layer.class_name();
            let class = class.rsplit('>').next().unwrap_or(class);
            let row = format!("{} ({class})", layer.name());
            let (t, tr) = Self::param_counts(layer.as_ref());
            total += t;
            trainable += tr;
            let _ = writeln!(
                s,
                "{}",
                summary_row(&[&row, &shape_str(shape), &t.to_string()])
            );
            let _ = writeln!(
                s,
                "{}",
                if i + 1 == self.layers.len() {
                    rule('=')
                } else {
                    rule('_')
                }
            );
        }
        let _ = writeln!(s, "Total params: {}", thousands(total));
        let _ = writeln!(s, "Trainable params: {}", thousands(trainable));
        let _ = writeln!(s, "Non-trainable params: {}", thousands(total - trainable));
        let _ = write!(s, "{}", rule('_'));
        Ok(s)
    }

    /// Total number of parameters (Keras `model.count_params()`): every
    /// weight of every built layer, trainable or not.
    pub fn count_params(&self) -> usize {
        self.layers
            .iter()
            .map(|l| Self::param_counts(l.as_ref()).0)
            .sum()
    }

    /// The trainable variables in Keras order (`model.trainable_variables`):
    /// the trainable-kind weights of the layers that are not frozen, layer
    /// by layer (each Dense's kernel then bias).
    pub fn trainable_variables(&self) -> Vec<&Variable> {
        let mut out = Vec::new();
        for layer in self.layers.iter().filter(|l| l.trainable()) {
            let weights = layer.weights();
            let n = weights.len() - layer.non_trainable_weight_count();
            out.extend(weights.into_iter().take(n));
        }
        out
    }

    fn trainable_variables_mut(&mut self) -> Vec<&mut Variable> {
        let mut out = Vec::new();
        for layer in self.layers.iter_mut().filter(|l| l.trainable()) {
            let n = layer.weights().len() - layer.non_trainable_weight_count();
            out.extend(layer.weights_mut().into_iter().take(n));
        }
        out
    }

    /// Every weight in Keras order (`model.weights`): layer by layer, each
    /// layer's in creation order (trainable kind, then non-trainable).
    pub fn weights(&self) -> Vec<&Variable> {
        self.layers.iter().flat_map(|l| l.weights()).collect()
    }

    fn weights_mut(&mut self) -> Vec<&mut Variable> {
        self.layers
            .iter_mut()
            .flat_map(|l| l.weights_mut())
            .collect()
    }

    /// The weights in Keras order (`model.get_weights()`), cheap clones.
    pub fn get_weights(&self) -> Vec<Tensor> {
        self.weights().iter().map(|v| v.value().clone()).collect()
    }

    /// Replaces the weights (`model.set_weights(...)`).
    ///
    /// # Errors
    /// [`Error::Weights`] naming the first variable whose shape differs, or a count mismatch.
    pub fn set_weights(&mut self, weights: &[Tensor]) -> Result<()> {
        let mut vars = self.weights_mut();
        if vars.len() != weights.len() {
            return Err(Error::Weights {
                detail: format!(
                    "the model has {} weight tensors, got {}",
                    vars.len(),
                    weights.len()
                ),
            });
        }
        for (v, w) in vars.iter_mut().zip(weights) {
            if v.shape() != w.shape() {
                return Err(Error::Weights {
                    detail: format!(
                        "{} has shape {:?}, got {:?}",
                        v.name(),
                        v.shape(),
                        w.shape()
                    ),
                });
            }
        }
        for (v, w) in vars.into_iter().zip(weights) {
            v.assign(w.clone())?;
        }
        self.place_weights()
    }

    /// The names of the weight tensors in [`get_weights`](Self::get_weights)
    /// order (`dense/kernel`, `dense/bias`, `dense_1/kernel`, ...), of the
    /// built layers.
    fn weight_names(&self) -> Vec<String> {
        self.weights()
            .iter()
            .map(|v| v.name().to_string())
            .collect()
    }

    /// The names of [`trainable_variables`](Self::trainable_variables), the
    /// weights the optimiser is built for.
    fn trainable_names(&self) -> Vec<String> {
        self.trainable_variables()
            .iter()
            .map(|v| v.name().to_string())
            .collect()
    }

    /// The layers' names in order (`dense`, `flatten`, `dense_1`, ...).
    fn layer_names(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.name().to_string()).collect()
    }

    /// Every layer's output for `x` `[n, ...]` in inference mode (Keras'
    /// feature-extraction model `Model(inputs, [l.output for l in layers])`),
    /// host tensors `[n, ..output shape]` in layer order: for figures of
    /// feature maps.
    ///
    /// # Errors
    /// As [`predict`](Self::predict).
    pub fn layer_outputs(&mut self, x: &Tensor) -> Result<Vec<Tensor>> {
        self.prepare_input(x, "layer_outputs")?;
        let mut h = self.on_device(x)?;
        let mut out = Vec::with_capacity(self.layers.len());
        for layer in &mut self.layers {
            let y = layer.forward(&h, Pass::INFER)?;
            out.push(Tensor::from_vec(y.try_to_vec()?, y.shape())?);
            h = y.clone();
        }
        Ok(out)
    }

    /// Writes `weights` under `names` to a safetensors file with the
    /// `hebb-weights` metadata (shared by `save_weights` and `ModelCheckpoint`).
    pub(crate) fn write_weights_file(
        path: &Path,
        names: &[String],
        weights: &[Tensor],
        layers: &[String],
        overwrite: bool,
    ) -> Result<()> {
        if names.len() != weights.len() {
            return Err(Error::Weights {
                detail: format!(
                    "{} names ({}) for {} weight tensors",
                    names.len(),
                    names.join(", "),
                    weights.len()
                ),
            });
        }
        let tensors: Vec<(&str, &Tensor)> = names.iter().map(String::as_str).zip(weights).collect();
        let metadata = HashMap::from([
            ("format".to_string(), WEIGHTS_FORMAT.to_string()),
            ("version".to_string(), WEIGHTS_VERSION.to_string()),
            ("layers".to_string(), layers.join(",")),
        ]);
        hebb_serialize::save(path, &tensors, Some(metadata), overwrite)?;
        Ok(())
    }

    /// Saves the weights to `path` in the safetensors format
    /// (`model.save_weights(path, overwrite)`; Keras 3 writes
    /// `.weights.h5`, hebb writes safetensors, e.g. `model.weights.safetensors`).
    ///
    /// Each variable is stored as an `F32` tensor under its Keras name
    /// (`dense/kernel` `[in, units]`, `dense/bias` `[units]`, `dense_1/kernel`,
    /// ...), with the metadata `format = "hebb-weights"`, `version = "1"` and
    /// `layers` = the layers' names joined by commas. The file is written to a
    /// temporary file beside `path`, synced, and renamed over it, so a failed
    /// save leaves any old file intact.
    ///
    /// ```
    /// use hebb_models::sequential::{Sequential, layers::Dense};
    ///
    /// let make = |seed| -> hebb_models::Result<Sequential> {
    ///     let mut model = Sequential::new().with_seed(seed);
    ///     model.add(Dense::new(8).input_shape(&[4]))?;
    ///     model.add(Dense::new(3))?;
    ///     Ok(model)
    /// };
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("model.weights.safetensors");
    /// let model = make(1)?;
    /// model.save_weights(&path, false)?;
    ///
    /// let mut copy = make(2)?; // other initial weights
    /// copy.load_weights(&path)?;
    /// assert_eq!(copy.get_weights(), model.get_weights());
    /// // overwrite = false never replaces a file.
    /// assert!(model.save_weights(&path, false).is_err());
    /// # Ok::<(), hebb_models::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NotBuilt`] if the model has no weights yet;
    /// [`Error::Serialize`] wrapping [`hebb_serialize::Error::AlreadyExists`]
    /// (naming the file) if `overwrite` is false and `path` exists, or an I/O
    /// error naming the file.
    pub fn save_weights(&self, path: impl AsRef<Path>, overwrite: bool) -> Result<()> {
        self.require_built()?;
        // Data-parallel: the copies are identical and rank 0 writes.
        if !self.is_chief() {
            return Ok(());
        }
        Self::write_weights_file(
            path.as_ref(),
            &self.weight_names(),
            &self.get_weights(),
            &self.layer_names(),
            overwrite,
        )
    }

    /// Loads weights saved by [`save_weights`](Self::save_weights) (or a
    /// [`callbacks::ModelCheckpoint`]) into the built model
    /// (`model.load_weights(path)`), matching tensors to variables by name.
    ///
    /// Every check is made before any weight is replaced, so a failed load
    /// leaves the model as it was: the file must hold exactly the model's
    /// variables (`dense/kernel`, `dense/bias`, ...), each with the model's
    /// shape, as `F32`. Files without hebb's metadata are accepted when the
    /// names and shapes fit; a `hebb-weights` file of another version is refused.
    /// The optimiser's state is left alone, as in Keras.
    ///
    /// Whole-model files are read too, as Keras' `load_weights` reads them:
    /// a hebb model file ([`save`](Self::save) to `.safetensors`) by name,
    /// its optimiser state ignored; a Keras `.h5` or `.keras` model layer by
    /// layer in order (Keras' `by_name=False`), through [`load_model`].
    ///
    /// # Errors
    /// [`Error::NotBuilt`] if the model is not built (give the first layer an
    /// `input_shape`, or call `build`); [`Error::Serialize`] if the file cannot
    /// be read or is not a valid F32 safetensors file; [`Error::WeightsFile`]
    /// naming the file, the model and the first variable that differs, e.g.
    /// `weights file w.safetensors does not fit model sequential: dense_1/kernel
    /// is [128, 10] in the model but [64, 10] in the file`, or a variable
    /// missing from the file, or a tensor the model lacks; for a Keras file,
    /// the errors of [`load_model`].
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        self.require_built()?;
        let keras = saving::file_head(path)
            .is_some_and(|(head, _)| saving::keras_signature(&head).is_some());
        if keras {
            // Keras matches the layers of a whole-model file in order.
            let source = load_model(path)?;
            return self
                .set_weights(&source.get_weights())
                .map_err(|e| match e {
                    Error::Weights { detail } => Error::WeightsFile {
                        path: path.to_path_buf(),
                        model: self.name.clone(),
                        detail: format!("by layer order, {detail}"),
                    },
                    other => other,
                });
        }
        let misfit = |detail: String| Error::WeightsFile {
            path: path.to_path_buf(),
            model: self.name.clone(),
            detail,
        };
        let loaded = hebb_serialize::load(path)?;
        let model_file =
            loaded.metadata.get("format").map(String::as_str) == Some(saving::MODEL_FORMAT);
        if loaded.metadata.get("format").map(String::as_str) == Some(WEIGHTS_FORMAT) {
            let version = loaded
                .metadata
                .get("version")
                .map_or("none", String::as_str);
            if version != WEIGHTS_VERSION {
                return Err(misfit(format!(
                    "the file is {WEIGHTS_FORMAT} version {version}; this hebb reads version {WEIGHTS_VERSION}"
                )));
            }
        }
        let list = |names: &mut dyn Iterator<Item = &str>| names.collect::<Vec<_>>().join(", ");
        let mut values = Vec::new();
        for var in self.weights() {
            let name = var.name();
            let Some(tensor) = loaded.get(name) else {
                return Err(misfit(format!(
                    "{name} is in the model but not in the file (the file has: {})",
                    list(&mut loaded.tensors.iter().map(|(n, _)| n.as_str()))
                )));
            };
            if tensor.shape() != var.shape() {
                return Err(misfit(format!(
                    "{name} is {:?} in the model but {:?} in the file",
                    var.shape(),
                    tensor.shape()
                )));
            }
            values.push(tensor.clone());
        }
        let model_names = self.weight_names();
        if let Some((extra, _)) = loaded.tensors.iter().find(|(n, _)| {
            let optimizer_state = model_file && n.starts_with(saving::OPTIMIZER_PREFIX);
            !model_names.contains(n) && !optimizer_state
        }) {
            return Err(misfit(format!(
                "the file has {extra}, which is not in the model (the model has: {})",
                list(&mut model_names.iter().map(String::as_str))
            )));
        }
        for (var, value) in self.weights_mut().into_iter().zip(values) {
            var.assign(value)?;
        }
        self.place_weights()
    }

    /// A [`callbacks::ModelCheckpoint`] that saves this model's weights to
    /// `filepath` during `fit` (Keras
    /// `ModelCheckpoint(filepath, monitor="val_loss", save_best_only=False,
    /// save_weights_only=True, mode="auto")`); configure it with
    /// [`monitor`](callbacks::ModelCheckpoint::monitor) and
    /// [`save_best_only`](callbacks::ModelCheckpoint::save_best_only).
    ///
    /// It takes the weights' names from the model now, so make it after the
    /// last `add` (the model need not be built). The files can be read with
    /// [`load_weights`](Self::load_weights).
    ///
    /// ```
    /// use hebb_models::sequential::{FitOptions, Sequential, layers::Dense};
    /// use hebb_tensor::Tensor;
    ///
    /// let mut model = Sequential::new();
    /// model.add(Dense::new(1).input_shape(&[2]))?;
    /// model.compile("sgd", "mse", Vec::<&str>::new())?;
    /// let dir = tempfile::tempdir().unwrap();
    /// let best = dir.path().join("best.safetensors");
    /// let checkpoint = model.model_checkpoint(&best).monitor("val_loss").save_best_only(true);
    /// let every = model.model_checkpoint(dir.path().join("w.{epoch}.safetensors"));
    ///
    /// let x = Tensor::from_vec(vec![0., 1., 1., 0., 1., 1., 0., 0.], &[4, 2])?;
    /// let y = Tensor::from_vec(vec![1., 1., 2., 0.], &[4, 1])?;
    /// model.fit(&x, &y, FitOptions {
    ///     epochs: 3, verbose: 0, validation_split: 0.25,
    ///     callbacks: vec![Box::new(checkpoint), Box::new(every)],
    ///     ..Default::default()
    /// })?;
    /// assert!(dir.path().join("w.03.safetensors").exists());
    /// model.load_weights(&best)?; // the best epoch's weights
    /// # Ok::<(), hebb_models::Error>(())
    /// ```
    pub fn model_checkpoint(&self, filepath: impl Into<PathBuf>) -> callbacks::ModelCheckpoint {
        callbacks::ModelCheckpoint::new(filepath.into(), self.weight_names(), self.layer_names())
    }

    /// Configures training (`model.compile(optimizer, loss, metrics)`), with
    /// Keras names (`"adam"`, `"sparse_categorical_crossentropy"`,
    /// `["sparse_categorical_accuracy"]`) or objects.
    ///
    /// # Errors
    /// An unknown name, with the list of known ones.
    pub fn compile<M: Into<MetricArg>>(
        &mut self,
        optimizer: impl Into<OptimizerArg>,
        loss: impl Into<LossArg>,
        metrics: Vec<M>,
    ) -> Result<()> {
        let optimizer = match optimizer.into() {
            OptimizerArg::Name(n) => hebb_optim::from_name(&n)?,
            OptimizerArg::Object(o) => o,
        };
        let loss = match loss.into() {
            LossArg::Name(n) => Loss::from_name(&n)?,
            LossArg::Object(l) => l,
        };
        let metrics = metrics
            .into_iter()
            .map(|m| match m.into() {
                MetricArg::Name(n) => Ok(metrics::from_name(&n, Some(loss.name()))?),
                MetricArg::Object(m) => Ok(m),
            })
            .collect::<Result<Vec<_>>>()?;
        self.compiled = Some(Compiled {
            optimizer,
            loss,
            metrics,
            built_for: None,
        });
        Ok(())
    }

    /// [`Error::RecompileNeeded`] when the optimiser was built for other
    /// weights than the model's `names` (a layer added after `fit`).
    fn check_optimizer_fits(&self, names: &[String]) -> Result<()> {
        let Some(c) = &self.compiled else {
            return Ok(());
        };
        match &c.built_for {
            Some(built) if built.as_slice() != names => Err(Error::RecompileNeeded {
                model: self.name.clone(),
                detail: format!(
                    "the optimizer ({}) was built for {} weight tensors ({}) but the model now has {} ({})",
                    c.optimizer.name(),
                    built.len(),
                    built.join(", "),
                    names.len(),
                    names.join(", ")
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Checks class-index targets (`labels` of any shape, `f32` class
    /// indices such as MNIST's `0..=9`) against the model's outputs: the
    /// largest label must be below the size of the output's last axis, as
    /// a sparse categorical cross-entropy needs. `fit` and `evaluate` call
    /// it for sparse losses before any batch; call it before one-hot
    /// encoding labels for a categorical loss. Labels that are not class
    /// indices at all (negative, fractional, NaN) are left to the loss,
    /// which names them and their sample.
    ///
    /// ```
    /// use hebb_models::sequential::{Sequential, layers::Dense};
    /// use hebb_tensor::Tensor;
    ///
    /// let mut model = Sequential::new();
    /// model.add(Dense::new(3).input_shape(&[4]))?;
    /// let mnist_like = Tensor::from_vec(vec![7.0, 2.0, 9.0], &[3])?;
    /// let err = model.check_class_labels(&mnist_like).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "labels have classes up to 9 but the model has 3 outputs (layer dense): \
    ///      label 7 of sample 0 is the first without an output, \
    ///      and these labels need at least 10 units in the last layer"
    /// );
    /// # Ok::<(), hebb_models::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NotBuilt`] before the model is built;
    /// [`Error::LabelsOutOfRange`] naming the largest label, the number of
    /// outputs and the layer that sets it (the last `Dense`), and the first
    /// sample whose label has no output; copy errors for labels on a GPU.
    pub fn check_class_labels(&self, labels: &Tensor) -> Result<()> {
        self.require_built()?;
        let Some(shape) = self.shapes.last() else {
            return Ok(());
        };
        let outputs = shape.last().copied().unwrap_or(1);
        let values = labels.try_to_vec()?;
        // Only class indices count; other labels are the loss's to name.
        let class = |v: f32| v >= 0.0 && v.fract() == 0.0;
        let first = values.iter().position(|&v| class(v) && v >= outputs as f32);
        match first {
            Some(sample) => {
                let max = values
                    .iter()
                    .copied()
                    .filter(|&v| class(v))
                    .fold(0f32, f32::max);
                // The last layer with weights sets the number of outputs.
                let layer = self
                    .layers
                    .iter()
                    .rev()
                    .find(|l| !l.weights().is_empty())
                    .or(self.layers.last())
                    .map_or(String::new(), |l| l.name().to_string());
                Err(Error::LabelsOutOfRange {
                    max_label: max,
                    outputs,
                    layer,
                    first_sample: sample,
                    first_label: values[sample],
                })
            }
            _ => Ok(()),
        }
    }

    /// `["loss", <metric names>]` (Keras `model.metrics_names`); just
    /// `["loss"]` before `compile`.
    pub fn metrics_names(&self) -> Vec<String> {
        let mut names = vec!["loss".to_string()];
        if let Some(c) = &self.compiled {
            names.extend(c.metrics.iter().map(|m| m.name().to_string()));
        }
        names
    }

    /// The activation of the last layer (`Linear` for an empty model).
    fn output_activation(&self) -> hebb_layers::Activation {
        self.layers
            .last()
            .map_or(hebb_layers::Activation::Linear, |l| l.activation())
    }

    /// Whether `loss` is a `from_logits` cross-entropy meeting an output
    /// that is not logits: a categorical one on a softmax layer, or the
    /// binary one on a sigmoid layer. Keras' TensorFlow backend
    /// (`_get_logits` in `keras/src/backend/tensorflow/nn.py`) then computes
    /// the loss from the logits that layer activates (`_keras_logits`), not
    /// from its outputs, which would apply the activation twice; so does
    /// hebb's step (for the loss of `fit`, of the validation data and of
    /// `evaluate`). The metrics still see the outputs. Decided from the
    /// built layers when `fit` or `evaluate` runs, so a model compiled
    /// before its last layer was added is treated by that layer.
    fn loss_reads_logits(&self, loss: Loss) -> bool {
        step::reads_logits(loss, self.output_activation())
    }

    /// Keras' warning (through [`crate::warnings`], once per message) when
    /// the compiled loss takes `from_logits=True` but the output layer is a
    /// softmax or sigmoid (see [`loss_reads_logits`](Self::loss_reads_logits)).
    fn warn_if_not_logits(&self) {
        let Some(compiled) = &self.compiled else {
            return;
        };
        if !self.loss_reads_logits(compiled.loss) {
            return;
        }
        let (op_type, layer) = match self.output_activation() {
            hebb_layers::Activation::Sigmoid => ("Sigmoid", "sigmoid"),
            _ => ("Softmax", "softmax"),
        };
        let name = self.layers.last().map_or("", |l| l.name());
        crate::warnings::warn(format!(
            "`{}` received `from_logits=True`, but the `output` argument was produced by a \
             {op_type} activation and thus does not represent logits. Was this intended? \
             (hebb, as Keras, computes the loss from the logits of layer {name}, the input \
             of its {layer}.)",
            compiled.loss.name()
        ));
    }

    /// Checks `x` `[n, ...]` against the model and builds it if needed.
    fn prepare_input(&mut self, x: &Tensor, what: &str) -> Result<usize> {
        if x.rank() < 2 {
            return Err(Error::Data {
                detail: format!(
                    "{what}: inputs must be [samples, ...], got shape {:?}",
                    x.shape()
                ),
            });
        }
        self.build(&x.shape()[1..])?;
        self.check_device(self.device)?;
        self.place_weights()?;
        Ok(x.shape()[0])
    }

    /// The step for the compiled loss and targets shaped as `y`.
    fn make_step(&self, y: &Tensor) -> Result<Step> {
        let compiled = self.compiled()?;
        let input = self.input_shape.as_deref().unwrap_or(&[]);
        let output = self.shapes.last().map_or(input, Vec::as_slice);
        #[allow(unused_mut)]
        let mut step = Step::new(
            &self.layers,
            input,
            output,
            compiled.loss,
            y,
            self.device.is_cuda(),
        );
        #[cfg(test)]
        {
            step.tensor_ops |= self.force_device_step;
            if self.force_tape_head {
                step.head = step::Head::Tape;
                step.logits = self.loss_reads_logits(compiled.loss);
            }
        }
        Ok(step)
    }

    fn compiled(&self) -> Result<&Compiled> {
        self.compiled.as_ref().ok_or_else(|| Error::NotCompiled {
            model: self.name.clone(),
        })
    }

    /// Class probabilities (or outputs) for `x` `[n, ...]`, computed in
    /// batches of `batch_size` (`model.predict(x, batch_size=32)`): `[n, ..output]`,
    /// in inference mode (Dropout off, BatchNormalization's moving statistics).
    ///
    /// # Errors
    /// Shape errors naming the layer.
    pub fn predict(&mut self, x: &Tensor, batch_size: usize) -> Result<Tensor> {
        let n = self.prepare_input(x, "predict")?;
        check_batch_size(batch_size, "predict")?;
        let x = &self.on_device(x)?;
        let mut out = Vec::new();
        for start in (0..n).step_by(batch_size) {
            let rows: Vec<usize> = (start..(start + batch_size).min(n)).collect();
            let mut h = x.gather_rows(&rows)?;
            for layer in &mut self.layers {
                h = layer.forward(&h, Pass::INFER)?.clone();
            }
            out.extend(h.try_to_vec()?);
        }
        let mut shape = vec![n];
        shape.extend(self.shapes.last().map_or(&[][..], Vec::as_slice));
        Ok(Tensor::from_vec(out, &shape)?)
    }

    /// Loss and metrics on `x`, `y` (`model.evaluate(x, y, batch_size, verbose)`):
    /// `[loss, metric...]` in [`metrics_names`](Self::metrics_names) order. The
    /// loss is the mean over all samples, computed as in [`fit`](Self::fit)
    /// (a `from_logits` cross-entropy on a softmax or sigmoid output reads
    /// that layer's logits, with Keras' warning), plus the layers'
    /// regularisation penalties, as Keras reports it. `verbose = 2` prints one line.
    ///
    /// # Errors
    /// [`Error::NotCompiled`]; shape errors; [`Error::LabelsOutOfRange`]
    /// (sparse losses) if a label is a class the model has no output for.
    pub fn evaluate(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        batch_size: usize,
        verbose: u8,
    ) -> Result<Vec<f32>> {
        let n = self.prepare_input(x, "evaluate")?;
        self.warn_if_not_logits();
        check_targets(y, n, "evaluate")?;
        check_batch_size(batch_size, "evaluate")?;
        if n == 0 {
            return Err(Error::Data {
                detail: "evaluate: no samples to evaluate".into(),
            });
        }
        if self.compiled()?.loss.is_sparse() {
            self.check_class_labels(y)?;
        }
        let start = Instant::now();
        let mut step = self.make_step(y)?;
        step.check_labels(y, self.device)?;
        let (x, y) = (&self.on_device(x)?, &self.on_device(y)?);
        let rows: Vec<usize> = (0..n).collect();
        let values = rayon::scope(|_| self.evaluate_rows(x, y, &rows, batch_size, &mut step))?;
        if verbose > 0 {
            let names = self.metrics_names();
            println!(
                "{n}/{n} - {:.0}s - {}",
                start.elapsed().as_secs_f32(),
                format_logs(names.iter().map(String::as_str).zip(values.iter().copied()))
            );
        }
        Ok(values)
    }

    fn evaluate_rows(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        rows: &[usize],
        batch_size: usize,
        step: &mut Step,
    ) -> Result<Vec<f32>> {
        let mut compiled = self.compiled.take().ok_or_else(|| Error::NotCompiled {
            model: self.name.clone(),
        })?;
        // On a GPU the metrics read the batches' outputs after the loop, so
        // that a batch waits for nothing but its loss.
        let mut deferred = Deferred::new(self.device);
        // Data-parallel: this rank's shard, reduced below.
        let group = self.group.clone().filter(|g| g.size() > 1);
        let rows = match &group {
            Some(g) => distributed::shard(rows, g.rank(), g.size()).1,
            None => rows,
        };
        let result = (|| -> Result<Vec<f32>> {
            for m in &mut compiled.metrics {
                m.reset_state();
            }
            let mut loss_sum = 0f64;
            for chunk in rows.chunks(batch_size) {
                let loss = step.forward(&mut self.layers, x, y, chunk, false)?;
                loss_sum += f64::from(loss) * chunk.len() as f64;
                let (pred, yb) = step.outputs();
                deferred.update(&mut compiled.metrics, yb, pred)?;
            }
            deferred.flush(&mut compiled.metrics)?;
            let mut values = vec![(loss_sum / rows.len().max(1) as f64) as f32];
            values.extend(compiled.metrics.iter().map(|m| m.result()));
            Ok(values)
        })();
        self.compiled = Some(compiled);
        let mut values = result?;
        if let Some(g) = &group {
            let mut wide: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
            distributed::weighted_mean(g.as_ref(), &mut wide, rows.len() as f64)?;
            values = wide.into_iter().map(|v| v as f32).collect();
        }
        Ok(values)
    }

    /// Data-parallel `fit`'s start: the same program on every rank (model,
    /// batch size, epochs, seed, samples), a batch of at least one sample
    /// per rank, and rank 0's weights and layers' training state (Dropout's
    /// seed and pass count) on every rank.
    fn start_data_parallel(
        &mut self,
        group: &dyn Collective,
        options: &FitOptions,
        samples: usize,
    ) -> Result<()> {
        if options.batch_size < group.size() {
            return Err(Error::Distributed {
                detail: format!(
                    "batch_size {} is the global batch and is smaller than the {} workers; \
                     give each worker at least one sample: batch_size >= {}",
                    options.batch_size,
                    group.size(),
                    group.size()
                ),
            });
        }
        let layers: Vec<String> = self
            .layers
            .iter()
            .zip(&self.shapes)
            .map(|(l, s)| format!("{} {}", l.class_name(), shape_str(s)))
            .collect();
        let fingerprint = format!(
            "model [{}], batch_size {}, epochs {}..{}, shuffle {}, seed {}, {samples} samples, \
             validation_split {}",
            layers.join(", "),
            options.batch_size,
            options.initial_epoch,
            options.epochs,
            options.shuffle,
            options.seed,
            options.validation_split
        );
        distributed::check_same_program(group, &fingerprint)?;
        // Rank 0's weights, trainable and not, on every rank.
        let weights = self.get_weights();
        let mut flat: Vec<f32> = Vec::new();
        for w in &weights {
            flat.extend_from_slice(&w.to_device(Device::Cpu)?.to_vec());
        }
        group.broadcast(&mut flat, 0)?;
        // And rank 0's training state of the layers that keep one
        // (Dropout's seed and pass count, which pick its masks).
        let states: Vec<serde_json::Value> = self
            .layers
            .iter()
            .map(|l| l.training_state().unwrap_or(serde_json::Value::Null))
            .collect();
        let mut bytes = serde_json::to_vec(&states).map_err(|e| Error::Distributed {
            detail: format!("cannot encode the layers' training state: {e}"),
        })?;
        group.broadcast_bytes(&mut bytes, 0)?;
        let states: Vec<serde_json::Value> =
            serde_json::from_slice(&bytes).map_err(|e| Error::Distributed {
                detail: format!("rank 0's training state of the layers is not readable: {e}"),
            })?;
        for (layer, state) in self.layers.iter_mut().zip(&states) {
            if !state.is_null() {
                layer.set_training_state(state)?;
            }
        }
        let mut offset = 0;
        let mut broadcast = Vec::with_capacity(weights.len());
        for w in &weights {
            let len = w.len();
            broadcast.push(Tensor::from_vec(
                flat[offset..offset + len].to_vec(),
                w.shape(),
            )?);
            offset += len;
        }
        self.set_weights(&broadcast)
    }

    /// Data-parallel: replaces this rank's gradients (of its shard's mean
    /// loss, `here` samples) by the whole batch's (`total` samples), sums
    /// of the shards' weighted by their samples in one fused buffer, and
    /// averages the non-trainable weights (moving statistics) the same
    /// way. Returns the batch's mean loss.
    ///
    /// The fused buffer and the batch's gradients stay in `step` from step
    /// to step, on the model's device: packing, the all-reduce (on the
    /// device where the engine can, as NCCL) and unpacking allocate nothing
    /// after the first step (the moving statistics, when the model has any,
    /// are copied once a step, as the layers share them).
    fn reduce_step(
        &mut self,
        group: &dyn Collective,
        step: &mut Step,
        here: usize,
        total: usize,
        loss: f32,
    ) -> Result<f32> {
        let shapes: Vec<Vec<usize>> = self
            .trainable_variables()
            .iter()
            .map(|v| v.shape().to_vec())
            .collect();
        let statistics = self.non_trainable_of_trainable_layers();
        let len = shapes
            .iter()
            .map(|s| s.iter().product::<usize>())
            .sum::<usize>()
            + statistics.iter().map(Tensor::len).sum::<usize>()
            + 1;
        let fresh = |shape: &[usize]| Tensor::zeros(shape).to_device(self.device);
        let mut fused = match step.fused.take() {
            Some(f) if f.len() == len && f.device() == self.device && here > 0 => f,
            // A rank without samples in this batch adds zeros.
            _ => fresh(&[len])?,
        };
        if here > 0 {
            let parts: Vec<&Tensor> = step.grads.iter().chain(&statistics).collect();
            let weight = here as f32;
            pack_scaled(&mut fused, &parts, weight, &[loss * weight])?;
        }
        group.all_reduce_sum_tensor(&mut fused)?;
        let mut targets = std::mem::take(&mut step.reduced);
        if targets.len() != shapes.len()
            || targets
                .iter()
                .zip(&shapes)
                .any(|(t, s)| t.shape() != s.as_slice())
        {
            targets = shapes
                .iter()
                .map(|s| fresh(s))
                .collect::<hebb_tensor::Result<_>>()?;
        }
        let grads = targets.len();
        targets.extend(statistics);
        let scale = 1.0 / total as f32;
        let mut loss_sum = [0f32];
        unpack_scaled(&fused, &mut targets, scale, &mut loss_sum)?;
        let averaged = targets.split_off(grads);
        step.grads.clear();
        step.grads.extend(targets.iter().cloned());
        step.reduced = targets;
        step.fused = Some(fused);
        self.set_non_trainable_of_trainable_layers(averaged)?;
        Ok(loss_sum[0] * scale)
    }

    /// The non-trainable weights of the layers that train (moving
    /// statistics), in order, on the model's device.
    fn non_trainable_of_trainable_layers(&self) -> Vec<Tensor> {
        let mut values = Vec::new();
        for layer in self.layers.iter().filter(|l| l.trainable()) {
            let weights = layer.weights();
            let skip = weights.len() - layer.non_trainable_weight_count();
            values.extend(weights.into_iter().skip(skip).map(|w| w.value().clone()));
        }
        values
    }

    /// Sets what [`non_trainable_of_trainable_layers`](Self::non_trainable_of_trainable_layers) read.
    fn set_non_trainable_of_trainable_layers(&mut self, values: Vec<Tensor>) -> Result<()> {
        let device = self.device;
        let mut values = values.into_iter();
        for layer in self.layers.iter_mut().filter(|l| l.trainable()) {
            let count = layer.non_trainable_weight_count();
            let mut weights = layer.weights_mut();
            let skip = weights.len() - count;
            for w in weights.iter_mut().skip(skip) {
                let value = values.next().ok_or_else(step::lost_buffers)?;
                w.assign(value.to_device(device)?)?;
            }
        }
        Ok(())
    }

    /// Trains the model (`model.fit(x, y, batch_size, epochs, ...)`), see
    /// [`FitOptions`] for Keras' options and defaults. `y` holds class
    /// indices `[n]` for sparse losses, else targets `[n, units]`.
    ///
    /// Each epoch visits every training sample once, in a fresh order when
    /// `shuffle` is set; the loss and metrics reported are means over the
    /// epoch's samples (as Keras reports them), the validation figures are
    /// computed after the epoch.
    ///
    /// Every model trains with one step (`step.rs`): each layer's
    /// [`Layer::forward`] and [`Layer::backward`] on buffers reused from
    /// batch to batch (`training` set, so Dropout drops), frozen layers'
    /// weights left alone, the layers' regularisation penalties added to the
    /// loss; as in Keras' TensorFlow backend, a softmax (sigmoid) output
    /// layer meets a categorical (binary) cross-entropy through its logits,
    /// without clipping; other losses get their gradient from the tape on
    /// the loss alone. A cross-entropy
    /// compiled with `from_logits: true` on a softmax (sigmoid) output layer
    /// is computed from that layer's logits on every path, not from its
    /// outputs (which would apply the activation twice), after Keras'
    /// warning "`sparse_categorical_crossentropy` received
    /// `from_logits=True`, but the `output` argument was produced by a
    /// Softmax activation ..." (once per process, see [`crate::warnings`]);
    /// `evaluate` does the same. Large matrix
    /// products use every thread of rayon's pool (`RAYON_NUM_THREADS`); the
    /// results do not depend on the number of threads.
    ///
    /// # Errors
    /// [`Error::NotCompiled`]; shape errors naming the layer;
    /// [`Error::LabelsOutOfRange`] (sparse losses) before the first batch
    /// if a label (of `y` or the validation data) is a class the model has
    /// no output for; [`Error::RecompileNeeded`] if the optimiser was built
    /// for other weights (a layer added after an earlier `fit`: compile
    /// again, as Keras requires); [`Error::ValidationSplit`] naming the
    /// sample count and the split when `validation_split` leaves no training
    /// or no validation sample; [`Error::NonFiniteBatchLoss`]
    /// naming the epoch and batch if the loss becomes NaN or infinite (unless a
    /// [`callbacks::TerminateOnNaN`] stops training first); callback errors.
    pub fn fit(&mut self, x: &Tensor, y: &Tensor, options: FitOptions) -> Result<History> {
        // On a rayon worker, splitting a product between the cores costs
        // about a microsecond; from another thread each split would wake
        // the pool and wait for it.
        rayon::scope(|_| self.fit_on_worker(x, y, options))
    }

    fn fit_on_worker(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        mut options: FitOptions,
    ) -> Result<History> {
        let sparse = self.compiled()?.loss.is_sparse();
        let n = self.prepare_input(x, "fit")?;
        self.warn_if_not_logits();
        check_targets(y, n, "fit")?;
        check_batch_size(options.batch_size, "fit")?;
        // The optimiser's state must belong to these weights (Keras: compile
        // again after changing the model).
        let weight_names = self.trainable_names();
        self.check_optimizer_fits(&weight_names)?;
        if sparse {
            self.check_class_labels(y)?;
        }
        if options.validation_freq == 0 {
            return Err(Error::Data {
                detail: "fit: validation_freq must be at least 1".into(),
            });
        }
        if !(0.0..1.0).contains(&options.validation_split) {
            return Err(Error::Data {
                detail: format!(
                    "validation_split must be in [0, 1), got {}",
                    options.validation_split
                ),
            });
        }
        // Keras: the validation samples are the last ones, taken before shuffling.
        let split_at = if options.validation_data.is_some() {
            n
        } else {
            (n as f64 * (1.0 - options.validation_split)).floor() as usize
        };
        // Keras (`train_validation_split`) refuses a split that leaves either
        // side empty: 1e-17 of 150 samples would train without validation.
        if options.validation_data.is_none()
            && options.validation_split > 0.0
            && (split_at == 0 || split_at == n)
        {
            return Err(Error::ValidationSplit {
                samples: n,
                validation_split: options.validation_split,
                train: split_at,
                validation: n - split_at,
            });
        }
        if split_at == 0 {
            return Err(Error::Data {
                detail: format!(
                    "no training samples left: {n} samples with validation_split {}",
                    options.validation_split
                ),
            });
        }
        // Labels are checked on the host, before the data goes to the
        // model's device once per fit; batches are gathered there.
        let mut train_step = self.make_step(y)?;
        train_step.check_labels(y, self.device)?;
        let group = self.group.clone().filter(|g| g.size() > 1);
        if let Some(g) = &group {
            self.start_data_parallel(g.as_ref(), &options, n)?;
            if g.rank() != 0 {
                options.verbose = 0;
                options.callbacks.retain(|c| c.on_every_rank());
            }
        }
        let (x, y) = (&self.on_device(x)?, &self.on_device(y)?);
        let validation = match options.validation_data.take() {
            Some((vx, vy)) => {
                let m = self.prepare_input(&vx, "validation_data")?;
                if m == 0 {
                    return Err(Error::Data {
                        detail: "validation_data holds no samples".into(),
                    });
                }
                check_targets(&vy, m, "validation_data")?;
                if sparse {
                    self.check_class_labels(&vy)?;
                }
                self.make_step(&vy)?.check_labels(&vy, self.device)?;
                let (vx, vy) = (self.on_device(&vx)?, self.on_device(&vy)?);
                Some((vx, vy, (0..m).collect::<Vec<_>>()))
            }
            None if split_at < n => Some((x.clone(), y.clone(), (split_at..n).collect())),
            None => None,
        };
        let batch_size = options.batch_size;
        let steps = split_at.div_ceil(batch_size);
        if options.verbose == 1 {
            match &validation {
                Some((_, _, rows)) => println!(
                    "Train on {split_at} samples, validate on {} samples",
                    rows.len()
                ),
                None => println!("Train on {split_at} samples"),
            }
        }
        for cb in &mut options.callbacks {
            cb.on_train_begin()?;
        }
        let mut history = History::default();
        let mut validation_step = match &validation {
            Some((_, vy, _)) => Some(self.make_step(vy)?),
            None => None,
        };
        let names = (self.weight_names(), self.layer_names());
        for cb in &mut options.callbacks {
            cb.set_model_weights(&names.0, &names.1);
        }
        let mut order: Vec<usize> = (0..split_at).collect();
        let metric_names = self.metrics_names();
        'epochs: for epoch in options.initial_epoch..options.epochs {
            if options.shuffle {
                order.sort_unstable();
                let mut rng =
                    chacha(options.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ epoch as u64);
                order.shuffle(&mut rng);
            }
            if options.verbose > 0 {
                println!("Epoch {}/{}", epoch + 1, options.epochs);
            }
            let bar = progress_bar(options.verbose, split_at as u64);
            let start = Instant::now();
            let mut compiled = self.compiled.take().ok_or_else(|| Error::NotCompiled {
                model: self.name.clone(),
            })?;
            for m in &mut compiled.metrics {
                m.reset_state();
            }
            let mut loss_sum = 0f64;
            let mut seen = 0usize;
            // Samples of this rank's shards (data-parallel), for the metrics.
            let mut seen_here = 0usize;
            let mut stop = false;
            // Without a progress bar to update, the metrics on a GPU read
            // the batches' outputs at the end of the epoch (see `Deferred`).
            let mut deferred = Deferred::new(if bar.is_none() {
                self.device
            } else {
                Device::Cpu
            });
            let step_result = (|| -> Result<()> {
                for (batch, rows) in order.chunks(batch_size).enumerate() {
                    // Data-parallel: this rank's shard of the global batch,
                    // from its row `first_row`; a rank with none sits the
                    // pass out (Dropout still counts it).
                    let (first_row, here) = match &group {
                        Some(g) => distributed::shard(rows, g.rank(), g.size()),
                        None => (0, rows),
                    };
                    train_step.first_row = first_row;
                    if here.is_empty() {
                        for layer in &mut self.layers {
                            layer.skip_training_pass();
                        }
                    }
                    // Forward and backward: the layers keep their
                    // gradients and outputs in their buffers.
                    #[cfg(test)]
                    let loss_value = if here.is_empty() {
                        0.0
                    } else if self.force_tape {
                        self.tape_batch(&mut train_step, compiled.loss, x, y, here)?
                    } else {
                        train_step.train_batch(&mut self.layers, x, y, here)?
                    };
                    #[cfg(not(test))]
                    let loss_value = if here.is_empty() {
                        0.0
                    } else {
                        train_step.train_batch(&mut self.layers, x, y, here)?
                    };
                    #[cfg(test)]
                    if !self.force_tape && !here.is_empty() {
                        train_step.collect_gradients(&self.layers)?;
                    }
                    #[cfg(not(test))]
                    if !here.is_empty() {
                        train_step.collect_gradients(&self.layers)?;
                    }
                    // The gradients, the loss and the moving statistics of
                    // the whole batch, on every rank.
                    let loss_value = match &group {
                        Some(g) => self.reduce_step(
                            g.as_ref(),
                            &mut train_step,
                            here.len(),
                            rows.len(),
                            loss_value,
                        )?,
                        None => loss_value,
                    };
                    for cb in &mut options.callbacks {
                        if cb.on_batch_end(epoch, batch, loss_value)? == Control::Stop {
                            stop = true;
                        }
                    }
                    if stop {
                        return Ok(());
                    }
                    if !loss_value.is_finite() {
                        return Err(Error::NonFiniteBatchLoss {
                            epoch,
                            batch,
                            loss: loss_value,
                        });
                    }
                    let mut vars = self.trainable_variables_mut();
                    compiled
                        .optimizer
                        .apply_gradients(&mut vars, &train_step.grads)
                        .map_err(|e| match e {
                            // An optimiser compiled in with state for other weights.
                            hebb_optim::Error::VariableCount { .. }
                            | hebb_optim::Error::SlotShape { .. } => Error::RecompileNeeded {
                                model: self.name.clone(),
                                detail: format!(
                                    "the optimizer does not fit the model's weights ({e})"
                                ),
                            },
                            other => other.into(),
                        })?;
                    if compiled.built_for.is_none() {
                        compiled.built_for = Some(weight_names.clone());
                    }
                    // The gradients' clones go, so the layers reuse their buffers.
                    train_step.grads.clear();
                    if !here.is_empty() {
                        let (pred, yb) = train_step.outputs();
                        deferred.update(&mut compiled.metrics, yb, pred)?;
                    }
                    seen_here += here.len();
                    loss_sum += f64::from(loss_value) * rows.len() as f64;
                    seen += rows.len();
                    if let Some(bar) = &bar {
                        bar.set_position(seen as u64);
                        let mut logs = vec![("loss", (loss_sum / seen as f64) as f32)];
                        logs.extend(compiled.metrics.iter().map(|m| (m.name(), m.result())));
                        bar.set_message(format_logs(logs.into_iter()));
                    }
                }
                deferred.flush(&mut compiled.metrics)
            })();
            let mut logs: Vec<(String, f32)> =
                vec![("loss".into(), (loss_sum / seen.max(1) as f64) as f32)];
            logs.extend(
                compiled
                    .metrics
                    .iter()
                    .map(|m| (m.name().to_string(), m.result())),
            );
            self.compiled = Some(compiled);
            step_result?;
            if let Some(g) = &group {
                // The metrics of every rank's shards: means over samples.
                let mut values: Vec<f64> = logs[1..].iter().map(|(_, v)| f64::from(*v)).collect();
                distributed::weighted_mean(g.as_ref(), &mut values, seen_here as f64)?;
                for ((_, v), m) in logs[1..].iter_mut().zip(values) {
                    *v = m as f32;
                }
            }
            if stop {
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                }
                break 'epochs;
            }
            let validate = (epoch + 1) % options.validation_freq == 0;
            if let (Some((vx, vy, rows)), true) = (&validation, validate) {
                let step = validation_step.as_mut().ok_or_else(step::lost_buffers)?;
                let values = self.evaluate_rows(vx, vy, rows, batch_size, step)?;
                for (name, v) in metric_names.iter().zip(values) {
                    logs.push((format!("val_{name}"), v));
                }
            }
            history.epoch.push(epoch);
            for (k, v) in &logs {
                history.push(k, *v);
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            if options.verbose > 0 {
                let secs = start.elapsed().as_secs_f64();
                let shown = logs.iter().map(|(k, v)| (k.as_str(), *v));
                match options.verbose {
                    1 => println!(
                        "{split_at}/{split_at} [==============================] - {secs:.0}s {:.0}us/sample - {}",
                        secs * 1e6 / split_at as f64,
                        format_logs(shown)
                    ),
                    _ => println!("{steps}/{steps} - {secs:.0}s - {}", format_logs(shown)),
                }
            }
            let weights = self.get_weights();
            let mut stop = false;
            for cb in &mut options.callbacks {
                if cb.on_epoch_end(epoch, &logs, &weights)? == Control::Stop {
                    stop = true;
                }
            }
            if stop {
                break;
            }
        }
        for cb in &options.callbacks {
            if let Some(w) = cb.weights_to_restore() {
                self.set_weights(&w)?;
            }
        }
        Ok(history)
    }
}

#[cfg(test)]
impl Sequential {
    /// One training batch on the whole-model tape, built from the layers'
    /// [`Layer::call`]: the reference the step is tested against. Leaves
    /// the gradients in `step.grads` and the outputs in the step; returns
    /// the loss with the regularisation penalties.
    fn tape_batch(
        &mut self,
        step: &mut Step,
        loss: Loss,
        x: &Tensor,
        y: &Tensor,
        rows: &[usize],
    ) -> Result<f32> {
        let xb = x.gather_rows(rows)?;
        let yb = y.gather_rows(rows)?;
        let tape = GradientTape::new();
        let mut h = tape.constant(xb);
        for layer in &self.layers {
            h = layer.call(&tape, h, true)?;
        }
        let mut total = loss.call(tape.constant(yb.clone()), h)?.mean_all();
        for layer in &self.layers {
            let reg = layer.regularization_loss()?;
            if reg != 0.0 {
                total = total.add(tape.constant(Tensor::scalar(reg)))?;
            }
        }
        let value = total.value().item()?;
        let vars = self.trainable_variables();
        let mut grads = tape.gradient_of(total, &vars)?;
        // The penalties' gradients (the layers add them in the step).
        for ((l, w), g) in self
            .layers
            .iter()
            .filter(|l| l.trainable())
            .flat_map(|l| l.weights().into_iter().map(move |w| (l, w)))
            .zip(grads.iter_mut())
        {
            if let Some(r) = l.config().get("kernel_regularizer")
                && !r.is_null()
                && w.name().ends_with("/kernel")
                && let Ok(Some(r)) = hebb_layers::Regularizer::from_keras(r)
            {
                r.add_gradient(w.value().as_slice(), g.as_mut_slice());
            }
        }
        step.grads = grads;
        step.set_outputs(h.value(), yb);
        Ok(value)
    }
}

/// Metric updates that wait until a loop over batches ends, on a GPU: a
/// metric reads its batch's outputs and targets on the host, and copying
/// them after each step would make every step wait for the GPU twice more.
/// The batches' tensors are kept (a few kilobytes each) and read in order
/// when the loop ends; the metrics' values are the same.
struct Deferred {
    defer: bool,
    batches: Vec<(Tensor, Tensor)>,
}

impl Deferred {
    /// Defers on a GPU; on the CPU updates at once.
    fn new(device: Device) -> Self {
        Self {
            defer: device.is_cuda(),
            batches: Vec::new(),
        }
    }

    /// `update_state(y_true, y_pred)` on every metric, now or at [`flush`](Self::flush).
    fn update(
        &mut self,
        metrics: &mut [Box<dyn Metric>],
        y_true: &Tensor,
        y_pred: &Tensor,
    ) -> Result<()> {
        if self.defer {
            self.batches.push((y_true.clone(), y_pred.clone()));
            return Ok(());
        }
        for m in metrics {
            m.update_state(y_true, y_pred)?;
        }
        Ok(())
    }

    /// The deferred updates, in batch order.
    fn flush(&mut self, metrics: &mut [Box<dyn Metric>]) -> Result<()> {
        for (y_true, y_pred) in self.batches.drain(..) {
            for m in metrics.iter_mut() {
                m.update_state(&y_true, &y_pred)?;
            }
        }
        Ok(())
    }
}

/// ` loss: 0.2846 - sparse_categorical_accuracy: 0.9183`, as Keras prints figures.
fn format_logs<'a>(logs: impl Iterator<Item = (&'a str, f32)>) -> String {
    logs.map(|(k, v)| format!("{k}: {v:.4}"))
        .collect::<Vec<_>>()
        .join(" - ")
}

fn progress_bar(verbose: u8, len: u64) -> Option<ProgressBar> {
    if verbose != 1 {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stdout());
    let style =
        ProgressStyle::with_template("{pos}/{len} [{bar:30}] - {elapsed} {per_sec} - {msg}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

/// Checks a batch size (Keras raises for 0 as well).
fn check_batch_size(batch_size: usize, what: &str) -> Result<()> {
    if batch_size == 0 {
        return Err(Error::Data {
            detail: format!("{what}: batch_size must be at least 1"),
        });
    }
    Ok(())
}

/// Checks that `y` has one row per sample.
fn check_targets(y: &Tensor, n: usize, what: &str) -> Result<()> {
    if y.rank() == 0 || y.shape()[0] != n {
        return Err(Error::Data {
            detail: format!(
                "{what}: {n} input samples but targets of shape {:?}",
                y.shape()
            ),
        });
    }
    Ok(())
}
