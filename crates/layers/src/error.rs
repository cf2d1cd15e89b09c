//! The error type of hebb-layers.

/// Errors from building or applying layers and losses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A tensor or tape op failed; the message names the op and shapes.
    #[error(transparent)]
    Autograd(#[from] hebb_autograd::Error),
    /// A layer's parameters or input have the wrong shape.
    #[error("layer {layer}: {detail}")]
    Shape {
        /// The layer's name.
        layer: String,
        /// Which shapes do not fit.
        detail: String,
    },
    /// A hyperparameter is outside its valid range.
    #[error("{what}: {detail}")]
    InvalidArgument {
        /// The layer, activation or loss.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A layer configuration (Keras `get_config`) that cannot be read, or a
    /// layer class that is not registered.
    #[error("layer class {class}: {detail}")]
    Config {
        /// The Keras class name.
        class: String,
        /// What is wrong.
        detail: String,
    },
    /// A layer that cannot run where it was asked to (e.g. on a GPU before
    /// its GPU kernels exist).
    #[error("layer {layer} ({class}): {detail}")]
    Unsupported {
        /// The layer's name.
        layer: String,
        /// Its Keras class name.
        class: String,
        /// What is not supported, and what to do instead.
        detail: String,
    },
}

impl From<hebb_tensor::Error> for Error {
    fn from(e: hebb_tensor::Error) -> Self {
        Error::Autograd(e.into())
    }
}

/// `Result` with hebb-layers' [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
