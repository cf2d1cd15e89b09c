//! [`Adagrad`]: per-parameter learning rates from the sum of squared
//! gradients (Duchi, Hazan & Singer 2011), as Keras 3's `Adagrad`.
//!
//! One step of each variable `w` with gradient `g` (`keras/src/optimizers/adagrad.py`, in `f32`):
//!
//! ```text
//! a ← a + g²
//! w ← w - (lr·g) / √(a + ε)
//! ```
//!
//! The accumulator `a` starts at `initial_accumulator_value` (0.1). This is
//! the lecture's AdaGrad (13.2), `η / √(Σ grad² + ε)`, with Keras' starting
//! value added to the sum.

use hebb_autograd::Variable;
use hebb_tensor::Tensor;

use crate::core::{Core, check_lr, check_non_negative, core_accessors, ensure_slots, named_slots};
use crate::{Optimizer, Result};

/// The fused GPU update (`adagrad.cu`): kernel `adagrad`, the CPU loop's
/// arithmetic in the same order.
#[cfg(feature = "cuda")]
pub(crate) const CUDA_SOURCE: hebb_tensor::cuda::CudaSource = hebb_tensor::cuda::CudaSource {
    name: "hebb-optim/adagrad.cu",
    code: include_str!("adagrad.cu"),
};

/// Adagrad (Keras 3 `keras.optimizers.Adagrad`,
/// `keras/src/optimizers/adagrad.py`; lecture 13.2; Duchi, Hazan & Singer
/// 2011, "Adaptive subgradient methods for online learning and stochastic
/// optimization", JMLR 12).
///
/// Update, in `f32` (accumulator `a` starts at `initial_accumulator_value`):
///
/// ```text
/// a ← a + g²
/// w ← w - (lr·g) / √(a + ε)
/// ```
///
/// Defaults (Keras): `learning_rate = 0.001`,
/// `initial_accumulator_value = 0.1`, `epsilon = 1e-7`. Slots:
/// `"accumulator/{i}"`, each of variable `i`'s shape.
#[derive(Debug, Clone)]
pub struct Adagrad {
    core: Core,
    initial_accumulator_value: f64,
    epsilon: f64,
    accumulators: Vec<Tensor>,
}

impl Adagrad {
    /// Adagrad with learning rate `learning_rate` and Keras' other defaults.
    ///
    /// Hyperparameters are checked by [`validate`](Self::validate), which
    /// every `apply_gradients` calls.
    pub fn new(learning_rate: f32) -> Self {
        Self {
            core: Core::new(learning_rate),
            initial_accumulator_value: 0.1,
            epsilon: 1e-7,
            accumulators: Vec::new(),
        }
    }

    /// Sets the accumulators' starting value (Keras
    /// `initial_accumulator_value`, `>= 0`). Call before the first step.
    pub fn with_initial_accumulator_value(mut self, value: f64) -> Self {
        self.initial_accumulator_value = value;
        self
    }

    /// Sets `ε` (Keras `epsilon`, `>= 0`), added under the square root.
    pub fn with_epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// The accumulators' starting value.
    pub fn initial_accumulator_value(&self) -> f64 {
        self.initial_accumulator_value
    }

    /// `ε`.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// Checks the hyperparameters: `learning_rate`, `epsilon` and
    /// `initial_accumulator_value` finite and `>= 0`.
    ///
    /// # Errors
    /// [`Error::Hyperparameter`](crate::Error::Hyperparameter) naming the first bad value.
    pub fn validate(&self) -> Result<()> {
        check_lr("Adagrad", self.core.learning_rate)?;
        check_non_negative(
            "Adagrad",
            "initial_accumulator_value",
            self.initial_accumulator_value,
        )?;
        check_non_negative("Adagrad", "epsilon", self.epsilon)
    }
}

impl Default for Adagrad {
    /// Keras' defaults: `Adagrad(learning_rate=0.001,
    /// initial_accumulator_value=0.1, epsilon=1e-7)`.
    fn default() -> Self {
        Self::new(0.001)
    }
}

impl Optimizer for Adagrad {
    fn apply_gradients(
        &mut self,
        variables: &mut [&mut Variable],
        gradients: &[Tensor],
    ) -> Result<()> {
        self.validate()?;
        if !self.core.begin("Adagrad", variables, gradients)? {
            return Ok(());
        }
        ensure_slots(
            "Adagrad",
            &mut self.accumulators,
            variables,
            self.initial_accumulator_value as f32,
        )?;
        let lr = self.core.learning_rate;
        let eps = self.epsilon as f32;
        for ((var, grad), acc) in variables
            .iter_mut()
            .zip(gradients)
            .zip(&mut self.accumulators)
        {
            #[cfg(feature = "cuda")]
            if crate::core::on_gpu(var) {
                crate::core::launch(
                    "Adagrad",
                    &CUDA_SOURCE,
                    "adagrad",
                    &mut [var.value_mut(), acc],
                    &[grad],
                    &[lr, eps],
                )?;
                continue;
            }
            let g = grad.as_slice();
            let w = var.value_mut().as_mut_slice();
            for ((w, &g), a) in w.iter_mut().zip(g).zip(acc.as_mut_slice().iter_mut()) {
                *a += g * g;
                *w -= (lr * g) / (*a + eps).sqrt();
            }
        }
        self.core.iterations += 1;
        Ok(())
    }

    core_accessors!("Adagrad");

    fn config(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("learning_rate", f64::from(self.core.learning_rate)),
            ("initial_accumulator_value", self.initial_accumulator_value),
            ("epsilon", self.epsilon),
        ]
    }

    fn slots(&self) -> Vec<(String, &Tensor)> {
        named_slots(&[("accumulator", &self.accumulators)])
    }

    fn set_state(
        &mut self,
        iterations: u64,
        slots: &[(String, Tensor)],
        shapes: &[Vec<usize>],
    ) -> Result<()> {
        crate::core::set_state(
            "Adagrad",
            &mut self.core,
            &mut [("accumulator", &mut self.accumulators)],
            iterations,
            slots,
            shapes,
        )
    }
}
