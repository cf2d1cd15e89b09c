//! # hebb-autograd
//!
//! Reverse-mode automatic differentiation in the spirit of TensorFlow's
//! `tf.GradientTape` and micrograd: a [`GradientTape`] records every op
//! applied to the [`Var`]s it hands out; [`GradientTape::gradient`] walks the
//! record backwards, applying each op's chain rule, and returns
//! `∂target/∂source` for each source.
//!
//! A node stores its value, the ids of its inputs and a backward closure that
//! maps the gradient of its output to gradients of its inputs. The backward
//! rules are the ones TensorFlow registers for the same ops (e.g. the
//! gradient of `log(x)` is `g * (1/x)`, of `softmax` is `(g - Σ g·y) · y`),
//! so that a training loop written with the tape follows TensorFlow's
//! arithmetic and reproduces the lecture's printed numbers.
//!
//! [`Variable`] is the persistent, trainable value (`tf.Variable`) that lives
//! across tapes; [`gradcheck`] compares the tape's gradients with central
//! finite differences.
//!
//! ```
//! use hebb_autograd::{GradientTape, Variable};
//! use hebb_tensor::Tensor;
//!
//! // Lecture 12.4: y = sigmoid(w x + b); dL/dw for L = 1/2 (0.8 - y)^2
//! let w = Variable::new("w", Tensor::scalar(0.3));
//! let b = Variable::new("b", Tensor::scalar(0.2));
//! let tape = GradientTape::new();
//! let (wv, bv) = (tape.watch(&w), tape.watch(&b));
//! let x = tape.constant(Tensor::scalar(0.574_442_5)); // y_h = sigmoid(0.3)
//! let y = wv.mul(x)?.add(bv)?.sigmoid();
//! let loss = tape.constant(Tensor::scalar(0.8)).sub(y)?.square().mul_scalar(0.5);
//! let grads = tape.gradient(loss, &[wv, bv])?;
//! assert!((grads[0].item()? + 0.028_856).abs() < 1e-6);
//! # Ok::<(), hebb_autograd::Error>(())
//! ```

mod conv;
mod error;
pub mod gradcheck;
mod tape;
mod var;
mod variable;

pub use error::{Error, Result};
pub use tape::GradientTape;
pub use var::Var;
pub use variable::Variable;
