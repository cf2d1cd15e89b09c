//! The layers a [`Sequential`](super::Sequential) model is built from, as
//! `tf.keras.layers` describes them: each holds its configuration (units,
//! activation, initialisers, input shape) and is built into weights when the
//! model learns its input shape.

use hebb_layers::Activation as ActivationFn;
use hebb_layers::initializers::Initializer;

/// A fully connected layer (Keras `Dense`): `y = activation(x · kernel + bias)`,
/// kernel `[in, units]` drawn from `kernel_initializer` (Keras' default
/// `glorot_uniform`), bias `[units]` from `bias_initializer` (`zeros`).
/// Its input is `(None, in)`; put a [`Flatten`] before it for images.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    pub(crate) units: usize,
    pub(crate) activation: ActivationFn,
    pub(crate) input_shape: Option<Vec<usize>>,
    pub(crate) kernel_initializer: Initializer,
    pub(crate) bias_initializer: Initializer,
    pub(crate) name: Option<String>,
}

impl Dense {
    /// A layer of `units` outputs, linear activation, Keras' default initialisers.
    pub fn new(units: usize) -> Self {
        Self {
            units,
            activation: ActivationFn::Linear,
            input_shape: None,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            name: None,
        }
    }

    /// The activation applied to `x · kernel + bias` (Keras `activation="relu"`).
    /// It is checked by [`Sequential::add`](super::Sequential::add) (e.g.
    /// Leaky-ReLU's `a > 1`, see [`ActivationFn::LeakyRelu`]).
    pub fn activation(mut self, activation: ActivationFn) -> Self {
        self.activation = activation;
        self
    }

    /// The shape of one input sample, e.g. `[4]` (Keras `input_shape=(4,)`);
    /// only the first layer of a model needs it.
    pub fn input_shape(mut self, shape: &[usize]) -> Self {
        self.input_shape = Some(shape.to_vec());
        self
    }

    /// How the kernel is initialised (Keras `kernel_initializer`).
    pub fn kernel_initializer(mut self, init: Initializer) -> Self {
        self.kernel_initializer = init;
        self
    }

    /// How the bias is initialised (Keras `bias_initializer`).
    pub fn bias_initializer(mut self, init: Initializer) -> Self {
        self.bias_initializer = init;
        self
    }

    /// The layer's name (default `dense`, `dense_1`, ... in order of addition).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

/// Flattens each sample (Keras `Flatten`): `(None, 28, 28) -> (None, 784)`; no weights.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flatten {
    pub(crate) input_shape: Option<Vec<usize>>,
    pub(crate) name: Option<String>,
}

impl Flatten {
    /// A flatten layer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The shape of one input sample, e.g. `[28, 28]` (Keras `input_shape=(28, 28)`).
    pub fn input_shape(mut self, shape: &[usize]) -> Self {
        self.input_shape = Some(shape.to_vec());
        self
    }

    /// The layer's name (default `flatten`, `flatten_1`, ...).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

/// An activation applied as a layer of its own (Keras `Activation("relu")`); no weights.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationLayer {
    pub(crate) activation: ActivationFn,
    pub(crate) input_shape: Option<Vec<usize>>,
    pub(crate) name: Option<String>,
}

impl ActivationLayer {
    /// A layer applying `activation` elementwise (softmax: over the last axis).
    pub fn new(activation: ActivationFn) -> Self {
        Self {
            activation,
            input_shape: None,
            name: None,
        }
    }

    /// The shape of one input sample.
    pub fn input_shape(mut self, shape: &[usize]) -> Self {
        self.input_shape = Some(shape.to_vec());
        self
    }

    /// The layer's name (default `activation`, `activation_1`, ...).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

/// Any layer [`Sequential::add`](super::Sequential::add) accepts.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// A [`Dense`] layer.
    Dense(Dense),
    /// A [`Flatten`] layer.
    Flatten(Flatten),
    /// An [`ActivationLayer`].
    Activation(ActivationLayer),
}

impl Layer {
    /// Keras' class name, shown in summaries: `Dense`, `Flatten`, `Activation`.
    pub fn class_name(&self) -> &'static str {
        match self {
            Layer::Dense(_) => "Dense",
            Layer::Flatten(_) => "Flatten",
            Layer::Activation(_) => "Activation",
        }
    }

    /// The activation the layer applies (`Dense` and `Activation` layers);
    /// `None` for `Flatten`. Its [`Display`](std::fmt::Display) is what
    /// summaries show, e.g. `leaky_relu (a=5, negative_slope=0.2)`.
    pub fn activation(&self) -> Option<ActivationFn> {
        match self {
            Layer::Dense(l) => Some(l.activation),
            Layer::Flatten(_) => None,
            Layer::Activation(l) => Some(l.activation),
        }
    }

    /// The prefix of automatic names: `dense`, `flatten`, `activation`.
    pub(crate) fn base_name(&self) -> &'static str {
        match self {
            Layer::Dense(_) => "dense",
            Layer::Flatten(_) => "flatten",
            Layer::Activation(_) => "activation",
        }
    }

    pub(crate) fn input_shape(&self) -> Option<&[usize]> {
        match self {
            Layer::Dense(l) => l.input_shape.as_deref(),
            Layer::Flatten(l) => l.input_shape.as_deref(),
            Layer::Activation(l) => l.input_shape.as_deref(),
        }
    }

    pub(crate) fn given_name(&self) -> Option<&str> {
        match self {
            Layer::Dense(l) => l.name.as_deref(),
            Layer::Flatten(l) => l.name.as_deref(),
            Layer::Activation(l) => l.name.as_deref(),
        }
    }
}

impl From<Dense> for Layer {
    fn from(l: Dense) -> Self {
        Layer::Dense(l)
    }
}

impl From<Flatten> for Layer {
    fn from(l: Flatten) -> Self {
        Layer::Flatten(l)
    }
}

impl From<ActivationLayer> for Layer {
    fn from(l: ActivationLayer) -> Self {
        Layer::Activation(l)
    }
}
