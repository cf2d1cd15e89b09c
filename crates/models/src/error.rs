//! The error type of hebb-models.

/// Errors from building, training or running models.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A layer, loss or tape op failed; the message names it and the shapes.
    #[error(transparent)]
    Layers(#[from] hebb_layers::Error),
    /// Inputs do not fit the model.
    #[error("{model}: {detail}")]
    Shape {
        /// The model.
        model: &'static str,
        /// Which shapes do not fit.
        detail: String,
    },
    /// The perceptron rule made mistakes in every epoch up to the limit: the
    /// data are not linearly separable (XOR), or the limit is too low.
    #[error(
        "perceptron did not converge within {epochs} epochs ({errors} of {samples} samples still misclassified in the last epoch)"
    )]
    NotConverged {
        /// The epoch limit reached.
        epochs: usize,
        /// Misclassified samples in the last epoch.
        errors: usize,
        /// Samples per epoch.
        samples: usize,
    },
    /// The loss became NaN or infinite.
    #[error(
        "training diverged: loss is {loss} at iteration {iteration}; try a smaller learning rate"
    )]
    NonFiniteLoss {
        /// The iteration (0-based) whose loss is not finite.
        iteration: usize,
        /// The loss value.
        loss: f32,
    },
}

impl From<hebb_tensor::Error> for Error {
    fn from(e: hebb_tensor::Error) -> Self {
        Error::Layers(e.into())
    }
}

impl From<hebb_autograd::Error> for Error {
    fn from(e: hebb_autograd::Error) -> Self {
        Error::Layers(e.into())
    }
}

/// `Result` with hebb-models' [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
