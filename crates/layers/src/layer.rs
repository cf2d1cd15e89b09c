//! [`Layer`]: the one abstraction every layer implements, as Keras'
//! `keras.layers.Layer` (`build(input_shape)`, `call(inputs, training)`,
//! weights, `get_config`).
//!
//! A layer is made from its configuration (`Dense::new(64)`), named and
//! built by the model once its input shape is known, and then runs in two
//! forms:
//!
//! - the training step's: [`Layer::forward`] and [`Layer::backward`] on
//!   tensors the layer owns and reuses from batch to batch (its output, its
//!   weights' gradients, scratch such as im2col columns or dropout masks),
//!   with no tape and no allocation while the batch size stays the same;
//! - the tape's ([`Layer::call`]), for chapter 12's `GradientTape`, for
//!   gradient checks, and as the reference the step is tested against.
//!
//! Shapes: a layer sees per-sample shapes when it is built
//! (`compute_output_shape(&[28, 28, 1]) == [26, 26, 32]` for a 3×3 `Conv2D`
//! of 32 filters), and batched tensors `[rows, ..per-sample]` when it runs.
//! Images are channels-last (`[rows, height, width, channels]`).
//!
//! Weights are [`Variable`]s named `{layer}/{weight}` as Keras names them
//! (`dense/kernel`, `conv2d/bias`, `batch_normalization/moving_mean`), listed
//! by [`Layer::weights`] in one fixed creation order: the trainable kind
//! first, then the non-trainable kind (BatchNormalization's moving
//! statistics), whatever [`Layer::trainable`] says (toggling it never
//! reorders them; tensorflow/tensorflow#37541). `training` (a property of the
//! pass: `fit` versus `evaluate`/`predict`) and `trainable` (a property of
//! the layer: frozen or not) are separate, as in Keras (keras-team/keras#9522).

use std::collections::BTreeMap;

use hebb_autograd::{GradientTape, Var, Variable};
use hebb_tensor::{Device, Tensor};
use rand::RngCore;

use crate::{Activation, Error, Result};

/// How a pass through a layer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pass {
    /// Keras' `training=True` (`fit`): Dropout drops, BatchNormalization
    /// normalises with the batch's statistics and updates its moving ones
    /// (only while the layer is trainable, as Keras 2.1+ does). `false` in
    /// `evaluate` and `predict`.
    pub training: bool,
    /// The layer leaves its final activation out and outputs the logits,
    /// which the loss reads (softmax or sigmoid cross-entropy fused with the
    /// activation, as Keras' TensorFlow backend does); `backward` then gets
    /// the gradient with respect to those logits. Set only for the model's
    /// last layer, and only when [`Layer::activation`] is the one the loss
    /// fuses.
    pub logits: bool,
    /// The index, in the global mini-batch, of this batch's first row: a
    /// data-parallel worker's shard starts there (0 in a single process).
    /// Layers that draw per-element randomness (Dropout) key each draw by
    /// the element's index in the global batch, so the shards' draws
    /// together are the ones a single process makes for the whole batch.
    pub first_row: usize,
}

impl Pass {
    /// The pass of `fit`: training, outputs as the activation gives them.
    pub const TRAIN: Pass = Pass {
        training: true,
        logits: false,
        first_row: 0,
    };
    /// The pass of `evaluate` and `predict`.
    pub const INFER: Pass = Pass {
        training: false,
        logits: false,
        first_row: 0,
    };
}

/// A layer of a model (Keras `keras.layers.Layer`); see the module docs.
///
/// Implementing it for a layer of one's own makes the layer usable in
/// `Sequential` (`add`, `fit`, `evaluate`, `predict`, `summary`); saving a
/// model with it needs its class name in a [`Registry`] when loading.
pub trait Layer: std::fmt::Debug + Send + Sync {
    /// The Keras class name (`"Dense"`, `"Conv2D"`, `"MaxPooling2D"`); a
    /// user's layer uses Keras' registered form `"package>Name"`.
    fn class_name(&self) -> &str;

    /// The layer's name (`dense_1`); empty until the model names it.
    fn name(&self) -> &str;

    /// Names the layer (the model does, with [`default_name`] and a count,
    /// unless the user gave one). Renames its weights too.
    fn set_name(&mut self, name: &str);

    /// The per-sample input shape the user declared (Keras `input_shape=`),
    /// if any; only a model's first layer needs one.
    fn input_shape(&self) -> Option<&[usize]> {
        None
    }

    /// Whether the optimiser updates this layer's weights (Keras
    /// `layer.trainable`, default `true`). A frozen layer's weights count as
    /// non-trainable in `summary`, and a frozen BatchNormalization runs in
    /// inference mode.
    fn trainable(&self) -> bool;

    /// Freezes (`false`) or unfreezes the layer (Keras `layer.trainable = ...`;
    /// the model must be compiled again, as in Keras).
    fn set_trainable(&mut self, trainable: bool);

    /// The activation the layer ends with (`Linear` when none): the model
    /// fuses a last softmax or sigmoid with the cross-entropy loss through
    /// [`Pass::logits`].
    fn activation(&self) -> Activation {
        Activation::Linear
    }

    /// The Keras configuration (`layer.get_config()`): `name`, `trainable`,
    /// `dtype` (`"float32"`) and the layer's own keys with Keras' names and
    /// values (`filters`, `kernel_size: [3, 3]`, `padding: "valid"`, ...),
    /// as `.keras` files store it. A [`Registry`] makes the layer again from it.
    fn config(&self) -> serde_json::Value;

    /// The per-sample output shape for a per-sample input shape (Keras
    /// `compute_output_shape` less the batch axis), checking the input.
    ///
    /// # Errors
    /// [`Error::Shape`] naming the layer and the shapes when the input does
    /// not fit (wrong rank, a kernel larger than the image, ...).
    fn compute_output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>>;

    /// Creates the weights for a per-sample input shape (Keras `build`),
    /// drawing initial values from `rng`; called once, after
    /// [`compute_output_shape`](Self::compute_output_shape) accepted the shape.
    ///
    /// # Errors
    /// As [`compute_output_shape`](Self::compute_output_shape), and
    /// initialiser errors.
    fn build(&mut self, input_shape: &[usize], rng: &mut dyn RngCore) -> Result<()>;

    /// Every weight in creation order: the trainable kind first, then the
    /// last [`non_trainable_weight_count`](Self::non_trainable_weight_count)
    /// ones (Keras `layer.weights`). Empty before `build`.
    fn weights(&self) -> Vec<&Variable> {
        Vec::new()
    }

    /// [`weights`](Self::weights), mutable (optimiser updates, loading).
    fn weights_mut(&mut self) -> Vec<&mut Variable> {
        Vec::new()
    }

    /// How many of the last [`weights`](Self::weights) are non-trainable by
    /// kind (BatchNormalization's `moving_mean` and `moving_variance`: 2).
    fn non_trainable_weight_count(&self) -> usize {
        0
    }

    /// The training step's forward pass: `x` `[rows, ..input]` to the
    /// layer's output `[rows, ..output]`, kept in a tensor the layer owns
    /// (reallocated only when `rows` changes; see [`reuse`]) together with
    /// whatever [`backward`](Self::backward) needs. `x` may live on a GPU;
    /// a layer computes on `x`'s device or returns an error
    /// ([`supports`](Self::supports) tells beforehand).
    ///
    /// # Errors
    /// [`Error::Shape`] when `x` does not have the built input shape.
    fn forward(&mut self, x: &Tensor, pass: Pass) -> Result<&Tensor>;

    /// The backward pass of the last [`forward`](Self::forward) (same `x`
    /// and `pass`): from `grad_out` `[rows, ..output]`, the loss's gradient
    /// with respect to the layer's output (its logits under
    /// [`Pass::logits`]), which the layer may overwrite, computes
    ///
    /// - the weights' gradients into [`gradients`](Self::gradients) (with the
    ///   regulariser's gradient added), unless the layer is frozen;
    /// - the gradient with respect to `x` into `grad_in`, resized with
    ///   [`reuse`] to `x`'s shape, when it is given (`None` for a model's
    ///   first layers, which need none).
    ///
    /// # Errors
    /// [`Error::Shape`] when the tensors do not match the last forward pass.
    fn backward(
        &mut self,
        x: &Tensor,
        grad_out: &mut Tensor,
        grad_in: Option<&mut Tensor>,
        pass: Pass,
    ) -> Result<()>;

    /// The gradients of the last [`backward`](Self::backward), one per
    /// trainable-kind weight in [`weights`](Self::weights) order.
    fn gradients(&self) -> &[Tensor] {
        &[]
    }

    /// The regularisation penalty the layer adds to the loss (Keras
    /// `layer.losses`, e.g. `l2 · Σ kernel²`); 0 without regulariser.
    ///
    /// # Errors
    /// Tensor errors.
    fn regularization_loss(&self) -> Result<f32> {
        Ok(0.0)
    }

    /// The layer on the tape (Keras `call(inputs, training)`): `x`
    /// `[rows, ..input]` to `[rows, ..output]`, its weights watched with
    /// [`GradientTape::watch`], so that `tape.gradient_of(loss,
    /// &layer.weights())` gives their gradients. The regularisation penalty
    /// is not included (see [`regularization_loss`](Self::regularization_loss)).
    ///
    /// # Errors
    /// As [`forward`](Self::forward).
    fn call<'t>(&self, tape: &'t GradientTape, x: Var<'t>, training: bool) -> Result<Var<'t>>;

    /// State besides the weights that the layer's next training passes
    /// depend on (Dropout: its seed and the number of training passes so
    /// far, which pick its next mask), as JSON, or `None` (the default) for
    /// a layer without any. hebb's own model format stores it beside the
    /// layer's configuration, so that a saved model resumes training bit for
    /// bit; Keras files have no place for it (Keras does not save Dropout's
    /// seed generator either), so a model loaded from one starts the masks
    /// again.
    fn training_state(&self) -> Option<serde_json::Value> {
        None
    }

    /// Restores what [`training_state`](Self::training_state) gave, after
    /// [`build`](Self::build) (which may draw a seed the state replaces).
    ///
    /// # Errors
    /// [`Error::Config`] when `state` is not what the layer writes (the
    /// default: the layer has no state to restore).
    fn set_training_state(&mut self, state: &serde_json::Value) -> Result<()> {
        Err(Error::Config {
            class: self.class_name().to_string(),
            detail: format!(
                "layer {} keeps no training state, but was given {state}",
                self.name()
            ),
        })
    }

    /// A training pass this layer sits out: a data-parallel worker whose
    /// shard of a global batch is empty runs no pass, while the others do.
    /// A layer that counts its training passes (Dropout, whose count picks
    /// its next mask) counts this one too, so every worker's copy stays in
    /// step; the default does nothing.
    fn skip_training_pass(&mut self) {}

    /// Whether the layer can run its step on `device` (every layer can on
    /// the CPU; those without GPU kernels yet say `false` for a GPU, and a
    /// model refuses to move there rather than fall back to the CPU).
    fn supports(&self, device: Device) -> bool {
        device == Device::Cpu
    }
}

/// Resizes `buffer` to `shape` when it has another shape (zeros, on the
/// CPU), and returns its elements to write: the step's buffers are made once
/// per batch size and reused. A buffer shared with a clone is copied first
/// (`as_mut_slice`), so callers keep no clones of the buffers they reuse.
///
/// # Errors
/// [`hebb_tensor::Error::Allocation`] naming the shape and the bytes when a
/// new buffer cannot be had (a batch or an image too large for the memory):
/// the program goes on, where `Tensor::zeros` would abort it.
pub fn reuse<'a>(buffer: &'a mut Tensor, shape: &[usize]) -> hebb_tensor::Result<&'a mut [f32]> {
    if buffer.shape() != shape || buffer.device() != Device::Cpu {
        *buffer = Tensor::try_full(shape, 0.0)?;
    }
    Ok(buffer.as_mut_slice())
}

/// Keras' default layer name for a class name (`keras.src.utils.naming.to_snake_case`):
/// `Dense -> dense`, `Conv2D -> conv2d`, `MaxPooling2D -> max_pooling2d`,
/// `BatchNormalization -> batch_normalization`; a user's `"package>Name"`
/// uses its `Name`.
pub fn default_name(class_name: &str) -> String {
    let class = class_name.rsplit('>').next().unwrap_or(class_name);
    let chars: Vec<char> = class.chars().collect();
    let mut out = String::with_capacity(class.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            // `(.)([A-Z][a-z]+)` and then `([a-z])([A-Z])` in Keras' regexes.
            let starts_word = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase() || (starts_word && prev != '_') {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Makes a layer from its Keras configuration (`{"name": .., "units": ..}`).
pub type FromConfig = fn(&serde_json::Value) -> Result<Box<dyn Layer>>;

/// Layer classes by Keras class name, for loading models (Keras'
/// `custom_objects`): [`Registry::builtin`] knows hebb's layers, and
/// [`Registry::register`] adds a user's (`"package>Name"`).
#[derive(Debug, Clone)]
pub struct Registry {
    classes: BTreeMap<String, FromConfig>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self {
            classes: BTreeMap::new(),
        }
    }

    /// hebb's layers under their Keras class names.
    pub fn builtin() -> Self {
        let mut registry = Self::new();
        crate::register_builtin_layers(&mut registry);
        registry
    }

    /// Adds (or replaces) the class `class_name`.
    pub fn register(&mut self, class_name: &str, from_config: FromConfig) -> &mut Self {
        self.classes.insert(class_name.to_string(), from_config);
        self
    }

    /// Whether `class_name` is known.
    pub fn contains(&self, class_name: &str) -> bool {
        self.classes.contains_key(class_name)
    }

    /// The registered class names, sorted.
    pub fn class_names(&self) -> impl Iterator<Item = &str> {
        self.classes.keys().map(String::as_str)
    }

    /// The layer of class `class_name` made from `config`.
    ///
    /// # Errors
    /// [`Error::Config`] for a class that is not registered (naming it and
    /// saying how to register it), or the class's own configuration errors.
    pub fn from_config(
        &self,
        class_name: &str,
        config: &serde_json::Value,
    ) -> Result<Box<dyn Layer>> {
        let make = self.classes.get(class_name).ok_or_else(|| Error::Config {
            class: class_name.to_string(),
            detail: format!(
                "hebb does not know the layer class {class_name:?}; hebb has {}; a layer of \
                 your own is registered with Registry::register (Keras' custom_objects)",
                self.class_names().collect::<Vec<_>>().join(", ")
            ),
        })?;
        make(config)
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_keras_snake_case() {
        for (class, name) in [
            ("Dense", "dense"),
            ("Conv2D", "conv2d"),
            ("MaxPooling2D", "max_pooling2d"),
            ("AveragePooling2D", "average_pooling2d"),
            ("GlobalAveragePooling2D", "global_average_pooling2d"),
            ("BatchNormalization", "batch_normalization"),
            ("Dropout", "dropout"),
            ("Reshape", "reshape"),
            ("Flatten", "flatten"),
            ("mypkg>MyLayer", "my_layer"),
        ] {
            assert_eq!(default_name(class), name, "{class}");
        }
    }

    #[test]
    fn reuse_keeps_a_buffer_of_the_same_shape() {
        let mut b = Tensor::zeros(&[2, 3]);
        reuse(&mut b, &[2, 3]).unwrap()[0] = 5.0;
        assert_eq!(reuse(&mut b, &[2, 3]).unwrap()[0], 5.0);
        assert_eq!(reuse(&mut b, &[3, 3]).unwrap().len(), 9);
        assert_eq!(b.shape(), &[3, 3]);
    }

    #[test]
    fn a_buffer_too_large_for_the_memory_is_an_error_not_an_abort() {
        let mut b = Tensor::zeros(&[1]);
        // 2^61 floats are 2^63 bytes, more than a process can address.
        let e = reuse(&mut b, &[1 << 31, 1 << 30]).unwrap_err();
        assert!(
            matches!(e, hebb_tensor::Error::Allocation { ref shape, .. } if shape == &[1 << 31, 1 << 30]),
            "{e}"
        );
        assert_eq!(b.shape(), &[1], "the old buffer is kept");
    }

    #[test]
    fn an_unknown_class_is_named() {
        let e = Registry::new()
            .from_config("mypkg>Foo", &serde_json::json!({}))
            .unwrap_err();
        assert!(e.to_string().contains("mypkg>Foo"), "{e}");
    }
}
