//! The layers a [`Sequential`](super::Sequential) model is built from, as
//! `tf.keras.layers` names them. They are hebb-layers' types (one type per
//! layer, built by the model once its input shape is known), re-exported
//! here: `Dense`, `Flatten`, `ActivationLayer` (Keras `Activation`), the
//! image layers (`Conv2D`, the poolings, `Dropout`, `BatchNormalization`,
//! `Reshape`) with [`Padding`] (`"valid"`/`"same"`) and [`Regularizer`],
//! and the [`Layer`] trait, which a layer of one's own implements.

pub use hebb_layers::{
    ActivationLayer, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten,
    GlobalAveragePooling2D, GlobalMaxPooling2D, Layer, MaxPooling2D, Padding, Registry,
    Regularizer, Reshape,
};
