//! The error type of hebb-autograd.

/// Errors from recording ops or computing gradients.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A tensor op failed (shapes, ranks, axes); the message names the op and shapes.
    #[error(transparent)]
    Tensor(#[from] hebb_tensor::Error),
    /// Two `Var`s from different tapes were combined, or a `Var` was passed to another tape.
    #[error("{op}: the operands were recorded on different tapes")]
    ForeignVar {
        /// The op or method that received the foreign `Var`.
        op: &'static str,
    },
}

/// `Result` with hebb-autograd's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
