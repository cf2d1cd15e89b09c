//! [`LayerBase`]: what every layer of this crate keeps as Keras' base
//! `Layer` does (name, `trainable`, the declared input shape), with the
//! code they share around it: error labels, weight names, the base keys of
//! the Keras configuration, the refusal of tensors on devices the layer
//! has no kernels for; and two macros writing the [`Layer`](crate::Layer)
//! methods and builder methods that only read or set those fields.
//!
//! A layer embeds a `base: LayerBase` field, calls
//! `base_builders!(Type, base)` once, and writes `layer_base_methods!(base);`
//! inside its `impl Layer for Type`.

use std::borrow::Cow;

use hebb_autograd::Variable;
use serde_json::{Map, Value};

use crate::keras::{self, base_config};
use crate::layer::default_name;
use crate::{Error, Result};

/// A layer's name, `trainable` flag and declared per-sample input shape
/// (Keras `name=`, `trainable=`, `input_shape=`), with its Keras class.
#[derive(Debug, Clone)]
pub(crate) struct LayerBase {
    class: &'static str,
    /// The name; empty until the model (or the user) names the layer.
    pub(crate) name: String,
    /// Whether the optimiser updates the layer's weights (default `true`).
    pub(crate) trainable: bool,
    /// The per-sample input shape the user declared, if any.
    pub(crate) input_shape: Option<Vec<usize>>,
}

impl LayerBase {
    /// An unnamed, trainable layer of Keras class `class` without a
    /// declared input shape.
    pub(crate) fn new(class: &'static str) -> Self {
        Self {
            class,
            name: String::new(),
            trainable: true,
            input_shape: None,
        }
    }

    /// The Keras class name (`"Conv2D"`).
    pub(crate) fn class(&self) -> &'static str {
        self.class
    }

    /// The name errors and weights use: the layer's name, or its class'
    /// default name (`conv2d`) before it has one. Allocates only then.
    pub(crate) fn label(&self) -> Cow<'_, str> {
        if self.name.is_empty() {
            Cow::Owned(default_name(self.class))
        } else {
            Cow::Borrowed(&self.name)
        }
    }

    /// [`Error::Shape`] naming the layer (see [`label`](Self::label)).
    pub(crate) fn shape_error(&self, detail: String) -> Error {
        Error::Shape {
            layer: self.label().into_owned(),
            detail,
        }
    }

    /// `{label}/{weight}`: a weight's Keras name (`dense/kernel`).
    pub(crate) fn weight_name(&self, weight: &str) -> String {
        format!("{}/{weight}", self.label())
    }

    /// Renames `weights` to `{label}/{weight}`, keeping their values (new
    /// [`Variable`] identities), after the layer was renamed.
    pub(crate) fn rename_weights<'a>(&self, weights: impl IntoIterator<Item = &'a mut Variable>) {
        for w in weights {
            let weight = w.name().rsplit('/').next().unwrap_or_default();
            *w = Variable::new(self.weight_name(weight), w.value().clone());
        }
    }

    /// The keys of Keras' base `Layer.get_config`: `name`, `trainable`,
    /// `dtype` (`"float32"`); the layer adds its own.
    pub(crate) fn config(&self) -> Map<String, Value> {
        base_config(&self.name, self.trainable)
    }

    /// Reads the base keys of a layer configuration of class `class`:
    /// `name`, `trainable`, `dtype` (only float32) and the input shape of
    /// `batch_input_shape` (Keras 2) or `batch_shape` (Keras 3); returns the
    /// configuration as an object for the layer's own keys.
    ///
    /// # Errors
    /// [`Error::Config`] naming `class` for a configuration that is not an
    /// object, a key of the wrong type, or another dtype.
    pub(crate) fn from_config<'a>(
        class: &'static str,
        config: &'a Value,
    ) -> Result<(Self, &'a Map<String, Value>)> {
        let map = keras::object(class, config)?;
        keras::check_dtype(class, map)?;
        let base = Self {
            class,
            name: keras::name_key(class, map)?.unwrap_or_default(),
            trainable: keras::bool_key(class, map, "trainable", true)?,
            input_shape: keras::input_shape_key(class, map)?,
        };
        Ok((base, map))
    }
}

/// The [`Layer`](crate::Layer) methods answered by the layer's
/// [`LayerBase`] field (given as its path, e.g. `base` or `0.base`):
/// `class_name`, `name`, `set_name` (which also renames the weights of
/// [`Layer::weights_mut`](crate::Layer::weights_mut) to `{name}/{weight}`),
/// `input_shape`, `trainable` and `set_trainable`. Written inside
/// `impl Layer for ...`.
macro_rules! layer_base_methods {
    ($($base:tt)+) => {
        fn class_name(&self) -> &str {
            self.$($base)+.class()
        }

        fn name(&self) -> &str {
            &self.$($base)+.name
        }

        /// Names the layer and renames its built weights `{name}/{weight}`
        /// (same values, new [`Variable`](hebb_autograd::Variable) identities).
        fn set_name(&mut self, name: &str) {
            self.$($base)+.name = name.to_string();
            let base = self.$($base)+.clone();
            base.rename_weights($crate::Layer::weights_mut(self));
        }

        fn input_shape(&self) -> Option<&[usize]> {
            self.$($base)+.input_shape.as_deref()
        }

        fn trainable(&self) -> bool {
            self.$($base)+.trainable
        }

        fn set_trainable(&mut self, trainable: bool) {
            self.$($base)+.trainable = trainable;
        }
    };
}

/// The Keras builder methods every layer has, `name`, `input_shape` and
/// `trainable`, on the layer type `$ty` whose [`LayerBase`] field is at the
/// path that follows (`base_builders!(Dense, base)`).
macro_rules! base_builders {
    ($ty:ty, $($base:tt)+) => {
        impl $ty {
            /// The layer's name (Keras `name=`); without one the model names
            /// it after its class (`dense`, `dense_1`, ...). Renames built weights.
            pub fn name(mut self, name: &str) -> Self {
                $crate::Layer::set_name(&mut self, name);
                self
            }

            /// The shape of one input sample without the batch axis (Keras
            /// `input_shape=`, e.g. `[28, 28, 1]`); only a model's first
            /// layer needs it.
            pub fn input_shape(mut self, shape: &[usize]) -> Self {
                self.$($base)+.input_shape = Some(shape.to_vec());
                self
            }

            /// Keras `trainable=`: `false` freezes the layer's weights (a
            /// layer without weights keeps the flag for its configuration).
            pub fn trainable(mut self, trainable: bool) -> Self {
                self.$($base)+.trainable = trainable;
                self
            }
        }
    };
}

pub(crate) use {base_builders, layer_base_methods};

/// The reason of a tensor op's argument error, without the op's name (for a
/// layer's message, which names the layer and its settings itself).
pub(crate) fn tensor_reason(e: hebb_tensor::Error) -> String {
    match e {
        hebb_tensor::Error::InvalidArgument { reason, .. } => reason,
        other => other.to_string(),
    }
}
