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
}

impl From<hebb_tensor::Error> for Error {
    fn from(e: hebb_tensor::Error) -> Self {
        Error::Autograd(e.into())
    }
}

/// `Result` with hebb-layers' [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
