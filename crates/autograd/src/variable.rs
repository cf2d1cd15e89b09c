//! [`Variable`]: a named, trainable tensor that outlives tapes (`tf.Variable`).

use std::sync::atomic::{AtomicU64, Ordering};

use hebb_tensor::{Error as TensorError, Tensor};

use crate::Result;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A trainable tensor with a name, updated in place between tapes
/// (`tf.Variable`): record it on a tape with
/// [`GradientTape::watch`](crate::GradientTape::watch), then update it with
/// [`assign_sub`](Variable::assign_sub).
///
/// Each variable has an identity (kept by `clone`); a tape records a
/// variable once, however often it is watched, so layers can watch their own
/// variables and the training loop can ask for gradients by variable.
#[derive(Debug, Clone)]
pub struct Variable {
    id: u64,
    name: String,
    value: Tensor,
}

impl Variable {
    /// A variable called `name` (e.g. `"dense/kernel"`) holding `value`.
    pub fn new(name: impl Into<String>, value: Tensor) -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name: name.into(),
            value,
        }
    }

    /// The identity a tape uses to record this variable once.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The variable's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current value (a cheap clone).
    pub fn value(&self) -> &Tensor {
        &self.value
    }

    /// The shape of the value.
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    /// The value, mutably, for in-place updates (optimisers write through
    /// [`Tensor::as_mut_slice`]; a tape that still holds the old value keeps it,
    /// copy-on-write).
    ///
    /// The shape must not change: callers must not reshape or replace the
    /// tensor with one of another shape (use [`assign`](Self::assign) to
    /// replace the value with a shape check).
    pub fn value_mut(&mut self) -> &mut Tensor {
        &mut self.value
    }

    /// Replaces the value (`tf.Variable.assign`).
    ///
    /// # Errors
    /// [`hebb_tensor::Error::ShapeMismatch`] if `value` has another shape.
    pub fn assign(&mut self, value: Tensor) -> Result<()> {
        self.check_shape("assign", &value)?;
        self.value = value;
        Ok(())
    }

    fn check_shape(&self, op: &'static str, value: &Tensor) -> Result<()> {
        if value.shape() != self.value.shape() {
            return Err(TensorError::ShapeMismatch {
                op,
                lhs: self.value.shape().to_vec(),
                rhs: value.shape().to_vec(),
                detail: format!("variable {} has a fixed shape", self.name),
            }
            .into());
        }
        Ok(())
    }

    /// `value -= delta` (`tf.Variable.assign_sub`), e.g. `W.assign_sub(lr * dW)`.
    ///
    /// # Errors
    /// [`hebb_tensor::Error::ShapeMismatch`] if `delta` has another shape.
    pub fn assign_sub(&mut self, delta: &Tensor) -> Result<()> {
        self.check_shape("assign_sub", delta)?;
        self.value = self.value.sub(delta)?;
        Ok(())
    }
}
