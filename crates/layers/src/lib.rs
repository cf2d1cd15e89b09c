//! # hebb-layers
//!
//! The building blocks of the lecture's networks, on hebb-autograd's tape:
//!
//! - [`Dense`]: `Y = X W + B` with kernel `[in, units]` and bias `[units]`
//!   (lecture 12.2, 12.6; Keras `Dense`), followed by an [`Activation`].
//! - [`Activation`]: step, logistic (sigmoid), tanh, ReLU, Leaky-ReLU as the
//!   lecture defines it (`z/a` for `z < 0`), softmax; [`PRelu`] with a
//!   trainable slope and [`RRelu`] with a random slope in training
//!   (lecture 12.5). Each has its value and derivative on plain tensors too.
//! - [`Flatten`]: `[batch, 28, 28] -> [batch, 784]` (Keras `Flatten`, lecture 13),
//!   and [`ActivationLayer`] (Keras `Activation`).
//! - [`Conv2D`]: 2-D convolution of channels-last images, kernels HWIO (Keras
//!   `Conv2D`; lecture 13.4's "卷积层"), on im2col and the crate's GEMM.
//! - [`MaxPooling2D`], [`AveragePooling2D`], [`GlobalAveragePooling2D`],
//!   [`GlobalMaxPooling2D`]: pooling of channels-last images (Keras' layers
//!   of those names; lecture 13.4's "池化层").
//! - [`Dropout`] (inverted, seeded, counter-based masks), [`BatchNormalization`]
//!   (Keras 3 semantics: batch statistics in training, moving ones otherwise) and
//!   [`Reshape`] (Keras `target_shape` with one `-1`), as [`Layer`]s.
//! - [`Layer`]: the one abstraction every layer implements (build, forward
//!   and backward on owned buffers, the tape form, Keras config), and
//!   [`Registry`], the layer classes by Keras name for loading models.
//! - [`initializers`]: Keras' weight initialisers ([`Initializer`]:
//!   `glorot_uniform`, `he_normal`, `random_normal`, ...).
//! - [`losses`]: mean squared error, the lecture's half squared error
//!   `1/2 Σ (y - ŷ)²`, binary, categorical and sparse categorical
//!   cross-entropy (also from logits), mean absolute (percentage) error and
//!   hinge losses with tf.keras's semantics; [`losses::Loss`] by Keras name.
//! - [`metrics`]: accuracy as the lecture computes it, and Keras' stateful
//!   metrics ([`metrics::Metric`]: accuracies, regression errors,
//!   precision, recall, AUC) by name.
//!
//! ```
//! use hebb_autograd::GradientTape;
//! use hebb_layers::{Activation, Dense, Layer, losses};
//! use hebb_tensor::{Tensor, random::RandomState};
//!
//! let mut rng = RandomState::new(612);
//! let layer = Dense::from_weights("dense", rng.randn_tensor(&[4, 3])?, Tensor::zeros(&[3]), Activation::Softmax)?;
//! let x = Tensor::from_vec(vec![0.1, -0.2, 0.3, 0.4], &[1, 4])?;
//! let y = Tensor::one_hot(&[2], 3)?;
//!
//! let tape = GradientTape::new();
//! let pred = layer.call(&tape, tape.constant(x), true)?;
//! let loss = losses::categorical_crossentropy(tape.constant(y), pred)?.mean_all();
//! let grads = tape.gradient_of(loss, &layer.trainable_variables())?;
//! assert_eq!(grads[0].shape(), &[4, 3]);
//! # Ok::<(), hebb_layers::Error>(())
//! ```

mod activation;
mod activation_layer;
mod base;
mod batch_normalization;
mod conv2d;
mod dense;
mod dropout;
mod error;
mod flatten;
pub mod initializers;
pub mod keras;
mod layer;
pub mod losses;
pub mod metrics;
mod pooling;
mod prelu;
pub mod regularizers;
mod reshape;
mod rrelu;
#[cfg(test)]
mod testing;
mod weights;

pub use activation::Activation;
pub use activation_layer::ActivationLayer;
pub use batch_normalization::BatchNormalization;
pub use conv2d::Conv2D;
pub use dense::Dense;
pub use dropout::Dropout;
pub use error::{Error, Result};
pub use flatten::Flatten;
/// Keras' `padding` (`"valid"`, `"same"`) of `Conv2D` and the poolings, from hebb-tensor.
pub use hebb_tensor::ops::Padding;
pub use initializers::Initializer;
pub use layer::{FromConfig, Layer, Pass, Registry, default_name, reuse};
pub use pooling::{AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D};
pub use prelu::PRelu;
pub use regularizers::Regularizer;
pub use reshape::Reshape;
pub use rrelu::RRelu;
pub use weights::make_weight;

/// Registers every layer class of this crate under its Keras class name
/// (see [`Registry::builtin`]).
fn register_builtin_layers(registry: &mut Registry) {
    registry.register("Conv2D", conv2d::from_config);
    registry.register("MaxPooling2D", pooling::max_pooling2d);
    registry.register("AveragePooling2D", pooling::average_pooling2d);
    registry.register("GlobalAveragePooling2D", pooling::global_average_pooling2d);
    registry.register("GlobalMaxPooling2D", pooling::global_max_pooling2d);
    registry.register("BatchNormalization", BatchNormalization::from_config);
    registry.register("Dropout", Dropout::from_config);
    registry.register("Reshape", Reshape::from_config);
    registry.register("Dense", Dense::from_config);
    registry.register("Flatten", Flatten::from_config);
    registry.register("Activation", ActivationLayer::from_config);
}
