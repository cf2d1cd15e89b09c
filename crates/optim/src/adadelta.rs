//! [`Adadelta`]: Adagrad with decaying averages and unit correction
//! (Zeiler 2012), as Keras 3's `Adadelta`.
//!
//! One step of each variable `w` with gradient `g` (`keras/src/optimizers/adadelta.py`, in `f32`):
//!
//! ```text
//! E[g²]  ← ρ·E[g²] + (1-ρ)·g²
//! Δw     ← -(√(E[Δw²] + ε) · g) / √(E[g²] + ε)
//! E[Δw²] ← ρ·E[Δw²] + (1-ρ)·Δw²
//! w      ← w + lr·Δw
//! ```
//!
//! Both averages start at zero. Zeiler's algorithm is `lr = 1`; Keras keeps
//! a learning rate (default 0.001). Lecture 13.2 introduces it beside
//! RMSprop as an AdaGrad whose per-parameter rates do not only decrease.

use hebb_autograd::Variable;
use hebb_tensor::Tensor;

use crate::core::{
    Core, check_lr, check_non_negative, check_rate, core_accessors, ensure_slots, ftz, named_slots,
};
use crate::{Optimizer, Result};

/// The fused GPU update (`adadelta.cu`): kernel `adadelta`, the CPU loop's
/// arithmetic in the same order.
#[cfg(feature = "cuda")]
pub(crate) const CUDA_SOURCE: hebb_tensor::cuda::CudaSource = hebb_tensor::cuda::CudaSource {
    name: "hebb-optim/adadelta.cu",
    code: include_str!("adadelta.cu"),
};

/// Adadelta (Keras 3 `keras.optimizers.Adadelta`,
/// `keras/src/optimizers/adadelta.py`; lecture 13.2; Zeiler 2012,
/// "ADADELTA: an adaptive learning rate method", arXiv:1212.5701).
///
/// Update, in `f32` (both averages start at zero; `ρ` and `1-ρ` are rounded
/// to `f32` from the `f64` values, as Keras does with Python floats):
///
/// ```text
/// E[g²]  ← ρ·E[g²] + (1-ρ)·g²
/// Δw     ← -(√(E[Δw²] + ε) · g) / √(E[g²] + ε)
/// E[Δw²] ← ρ·E[Δw²] + (1-ρ)·Δw²
/// w      ← w + lr·Δw
/// ```
///
/// Defaults (Keras): `learning_rate = 0.001`, `rho = 0.95`, `epsilon = 1e-7`.
/// Slots: `"accumulated_grad/{i}"` (`E[g²]`) and
/// `"accumulated_delta_var/{i}"` (`E[Δw²]`), each of variable `i`'s shape.
#[derive(Debug, Clone)]
pub struct Adadelta {
    core: Core,
    rho: f64,
    epsilon: f64,
    accumulated_grads: Vec<Tensor>,
    accumulated_delta_vars: Vec<Tensor>,
}

impl Adadelta {
    /// Adadelta with learning rate `learning_rate` and Keras' other defaults
    /// (use `1.0` for Zeiler's original form).
    ///
    /// Hyperparameters are checked by [`validate`](Self::validate), which
    /// every `apply_gradients` calls.
    pub fn new(learning_rate: f32) -> Self {
        Self {
            core: Core::new(learning_rate),
            rho: 0.95,
            epsilon: 1e-7,
            accumulated_grads: Vec::new(),
            accumulated_delta_vars: Vec::new(),
        }
    }

    /// Sets the decay rate `ρ` (Keras `rho`, in `[0, 1)`).
    pub fn with_rho(mut self, rho: f64) -> Self {
        self.rho = rho;
        self
    }

    /// Sets `ε` (Keras `epsilon`, `>= 0`), added under both square roots.
    pub fn with_epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// The decay rate `ρ`.
    pub fn rho(&self) -> f64 {
        self.rho
    }

    /// `ε`.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// Checks the hyperparameters: `learning_rate` and `epsilon` finite and
    /// `>= 0`, `rho` in `[0, 1)`.
    ///
    /// # Errors
    /// [`Error::Hyperparameter`](crate::Error::Hyperparameter) naming the first bad value.
    pub fn validate(&self) -> Result<()> {
        check_lr("Adadelta", self.core.learning_rate)?;
        check_rate("Adadelta", "rho", self.rho)?;
        check_non_negative("Adadelta", "epsilon", self.epsilon)
    }
}

impl Default for Adadelta {
    /// Keras' defaults: `Adadelta(learning_rate=0.001, rho=0.95, epsilon=1e-7)`.
    fn default() -> Self {
        Self::new(0.001)
    }
}

impl Optimizer for Adadelta {
    fn apply_gradients(
        &mut self,
        variables: &mut [&mut Variable],
        gradients: &[Tensor],
    ) -> Result<()> {
        self.validate()?;
        if !self.core.begin("Adadelta", variables, gradients)? {
            return Ok(());
        }
        ensure_slots("Adadelta", &mut self.accumulated_grads, variables, 0.0)?;
        ensure_slots("Adadelta", &mut self.accumulated_delta_vars, variables, 0.0)?;
        let lr = self.core.learning_rate;
        let rho = self.rho as f32;
        let one_minus_rho = (1.0 - self.rho) as f32;
        let eps = self.epsilon as f32;
        for (((var, grad), acc_g), acc_dx) in variables
            .iter_mut()
            .zip(gradients)
            .zip(&mut self.accumulated_grads)
            .zip(&mut self.accumulated_delta_vars)
        {
            #[cfg(feature = "cuda")]
            if crate::core::on_gpu(var) {
                crate::core::launch(
                    "Adadelta",
                    &CUDA_SOURCE,
                    "adadelta",
                    &mut [var.value_mut(), acc_g, acc_dx],
                    &[grad],
                    &[lr, rho, one_minus_rho, eps],
                )?;
                continue;
            }
            let g = grad.as_slice();
            let w = var.value_mut().as_mut_slice();
            for (((w, &g), ag), adx) in w
                .iter_mut()
                .zip(g)
                .zip(acc_g.as_mut_slice().iter_mut())
                .zip(acc_dx.as_mut_slice().iter_mut())
            {
                *ag = ftz(rho * *ag + one_minus_rho * (g * g));
                let delta = -(((*adx + eps).sqrt() * g) / (*ag + eps).sqrt());
                *adx = ftz(rho * *adx + one_minus_rho * (delta * delta));
                *w += lr * delta;
            }
        }
        self.core.iterations += 1;
        Ok(())
    }

    core_accessors!("Adadelta");

    fn config(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("learning_rate", f64::from(self.core.learning_rate)),
            ("rho", self.rho),
            ("epsilon", self.epsilon),
        ]
    }

    fn slots(&self) -> Vec<(String, &Tensor)> {
        named_slots(&[
            ("accumulated_grad", &self.accumulated_grads),
            ("accumulated_delta_var", &self.accumulated_delta_vars),
        ])
    }

    fn set_state(
        &mut self,
        iterations: u64,
        slots: &[(String, Tensor)],
        shapes: &[Vec<usize>],
    ) -> Result<()> {
        crate::core::set_state(
            "Adadelta",
            &mut self.core,
            &mut [
                ("accumulated_grad", &mut self.accumulated_grads),
                ("accumulated_delta_var", &mut self.accumulated_delta_vars),
            ],
            iterations,
            slots,
            shapes,
        )
    }
}
