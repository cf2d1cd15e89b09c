//! # hebb-models
//!
//! The lecture's models, from the first neuron to trained networks:
//!
//! - [`McCullochPitts`]: the M-P neuron (1943), `y = step(Σ w_j x_j - θ)`
//!   with fixed weights (lecture 12.1).
//! - [`Perceptron`]: Rosenblatt's perceptron (1957) and its training rule
//!   `w ← w + η (y - ŷ) x` (lecture 12.1), which reports non-convergence
//!   (XOR) as an error instead of looping for ever.
//! - [`lowlevel`]: the gradient-descent loops of lecture 12.1 (the delta
//!   rule), 12.2 (softmax regression) and 12.6 (a multi-layer network),
//!   written with the tape as the lecture writes them with `tf.GradientTape`
//!   (the "low-level API").
//! - [`regression`]: the one-variable linear regression of 13.1 trained by
//!   batch, stochastic and mini-batch gradient descent, beside its
//!   closed-form least-squares solution.
//! - [`warnings`]: Keras-style warnings, once per message, on standard error.
//!
//! ```
//! use hebb_models::{McCullochPitts, Perceptron};
//! use hebb_tensor::Tensor;
//!
//! let x = Tensor::from_vec(vec![0., 0., 0., 1., 1., 0., 1., 1.], &[4, 2])?;
//! assert_eq!(McCullochPitts::and().output(&x)?.to_vec(), vec![0., 0., 0., 1.]);
//!
//! let mut p = Perceptron::new(2, 0.1);
//! let fit = p.fit(&x, &[0., 1., 1., 1.], 100)?; // OR
//! assert_eq!(p.predict(&x)?.to_vec(), vec![0., 1., 1., 1.]);
//! assert!(fit.epochs <= 100);
//! # Ok::<(), hebb_models::Error>(())
//! ```

mod error;
pub mod lowlevel;
mod mp;
mod perceptron;
pub mod regression;
pub mod sequential;
pub mod warnings;

pub use error::{Error, Result};
pub use mp::McCullochPitts;
pub use perceptron::{Perceptron, PerceptronFit};

/// The README's Rust examples, compiled and run as doctests so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
