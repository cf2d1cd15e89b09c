//! The layers a [`Sequential`](super::Sequential) model is built from, as
//! `tf.keras.layers` names them. They are hebb-layers' types (one type per
//! layer, built by the model once its input shape is known), re-exported
//! here: `Dense`, `Flatten`, `ActivationLayer` (Keras `Activation`), and
//! the [`Layer`] trait, which a layer of one's own implements.

pub use hebb_layers::{ActivationLayer, Dense, Flatten, Layer, Registry};
