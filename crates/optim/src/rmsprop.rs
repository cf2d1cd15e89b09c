//! [`RmsProp`]: divide the gradient by a running root mean square
//! (Hinton, Coursera lecture 6e), as Keras 3's `RMSprop`.
//!
//! One step of each variable `w` with gradient `g` (`keras/src/optimizers/rmsprop.py`, in `f32`):
//!
//! ```text
//! v ← ρ·v + (1-ρ)·g²
//! centered:  ḡ ← ρ·ḡ + (1-ρ)·g;  d ← (v - ḡ²) + ε
//! otherwise: d ← v + ε
//! Δ ← (lr·g) / √d
//! μ > 0:     m ← μ·m + Δ;  w ← w - m
//! otherwise: w ← w - Δ
//! ```
//!
//! All slots start at zero. The centered form (Graves 2013) divides by an
//! estimate of the gradient's variance instead of its second moment.

use hebb_autograd::Variable;
use hebb_tensor::Tensor;

use crate::core::{
    Core, check, check_lr, check_momentum, check_rate, core_accessors, ensure_slots, ftz,
    named_slots,
};
use crate::{HyperparameterValue, Optimizer, Result};

/// The fused GPU updates (`rmsprop.cu`): kernels `rmsprop`,
/// `rmsprop_momentum`, `rmsprop_centered` and `rmsprop_centered_momentum`,
/// the CPU loops' arithmetic in the same order.
#[cfg(feature = "cuda")]
pub(crate) const CUDA_SOURCE: hebb_tensor::cuda::CudaSource = hebb_tensor::cuda::CudaSource {
    name: "hebb-optim/rmsprop.cu",
    code: include_str!("rmsprop.cu"),
};

/// RMSprop (Keras 3 `keras.optimizers.RMSprop`,
/// `keras/src/optimizers/rmsprop.py`; lecture 13.2; Hinton, Srivastava &
/// Swersky 2012, "Neural networks for machine learning", lecture 6e;
/// centered: Graves 2013, "Generating sequences with recurrent neural
/// networks").
///
/// Update, in `f32` (slots start at zero; `ρ`, `1-ρ`, `μ` and `ε` are rounded
/// to `f32` from the `f64` values, as Keras does with Python floats):
///
/// ```text
/// v ← ρ·v + (1-ρ)·g²
/// centered:  ḡ ← ρ·ḡ + (1-ρ)·g;  d ← (v - ḡ²) + ε
/// otherwise: d ← v + ε
/// Δ ← (lr·g) / √d
/// μ > 0:     m ← μ·m + Δ;  w ← w - m
/// otherwise: w ← w - Δ
/// ```
///
/// Defaults (Keras): `learning_rate = 0.001`, `rho = 0.9`, `momentum = 0.0`,
/// `epsilon = 1e-7`, `centered = false`. Slots: `"velocity/{i}"` (`v`),
/// `"momentum/{i}"` (`m`, when `momentum > 0`) and `"average_gradient/{i}"`
/// (`ḡ`, when centered), each of variable `i`'s shape.
///
/// ```
/// use hebb_autograd::Variable;
/// use hebb_optim::{Optimizer, RmsProp};
/// use hebb_tensor::Tensor;
///
/// // The example in Keras' RMSprop docstring: loss = w²/2, so g = w.
/// let mut w = Variable::new("w", Tensor::scalar(10.0));
/// let g = w.value().clone();
/// let mut opt = RmsProp::new(0.1);
/// opt.apply_gradients(&mut [&mut w], &[g])?;
/// assert!((w.value().item()? - 9.683772).abs() < 1e-6);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RmsProp {
    core: Core,
    rho: f64,
    momentum: f64,
    epsilon: f64,
    centered: bool,
    velocities: Vec<Tensor>,
    momentums: Vec<Tensor>,
    average_gradients: Vec<Tensor>,
}

impl RmsProp {
    /// RMSprop with learning rate `learning_rate` and Keras' other defaults.
    ///
    /// Hyperparameters are checked by [`validate`](Self::validate), which
    /// every `apply_gradients` calls.
    pub fn new(learning_rate: f32) -> Self {
        Self {
            core: Core::new(learning_rate),
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            centered: false,
            velocities: Vec::new(),
            momentums: Vec::new(),
            average_gradients: Vec::new(),
        }
    }

    /// Sets the decay rate `ρ` of the averages (Keras `rho`, in `[0, 1)`).
    pub fn with_rho(mut self, rho: f64) -> Self {
        self.rho = rho;
        self
    }

    /// Sets the momentum `μ` (Keras `momentum`, in `[0, 1]`; `0` is none).
    pub fn with_momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets `ε` (Keras `epsilon`, `> 0`), added before the square root.
    pub fn with_epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Whether to divide by the estimated variance rather than the second
    /// moment of the gradient (Keras `centered`).
    pub fn with_centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }

    /// The decay rate `ρ`.
    pub fn rho(&self) -> f64 {
        self.rho
    }

    /// The momentum `μ`.
    pub fn momentum(&self) -> f64 {
        self.momentum
    }

    /// `ε`.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// Whether the centered form is used.
    pub fn centered(&self) -> bool {
        self.centered
    }

    /// Checks the hyperparameters: `learning_rate` finite and `>= 0`, `rho`
    /// in `[0, 1)`, `momentum` in `[0, 1]` and `epsilon` finite and `> 0`
    /// (Keras' `RMSprop.__init__` checks `rho` in `[0, 1]`, `momentum` in
    /// `[0, 1]` and `epsilon > 0`; `rho = 1` is rejected here too, as it
    /// would never update the average).
    ///
    /// # Errors
    /// [`Error::Hyperparameter`](crate::Error::Hyperparameter) naming the first bad value.
    pub fn validate(&self) -> Result<()> {
        check_lr("RMSprop", self.core.learning_rate)?;
        check_rate("RMSprop", "rho", self.rho)?;
        check_momentum("RMSprop", self.momentum)?;
        check(
            "RMSprop",
            "epsilon",
            self.epsilon,
            self.epsilon.is_finite() && self.epsilon > 0.0,
            "finite and > 0",
        )
    }
}

impl Default for RmsProp {
    /// Keras' defaults: `RMSprop(learning_rate=0.001, rho=0.9, momentum=0.0,
    /// epsilon=1e-7, centered=False)`.
    fn default() -> Self {
        Self::new(0.001)
    }
}

impl Optimizer for RmsProp {
    fn apply_gradients(
        &mut self,
        variables: &mut [&mut Variable],
        gradients: &[Tensor],
    ) -> Result<()> {
        self.validate()?;
        if !self.core.begin("RMSprop", variables, gradients)? {
            return Ok(());
        }
        let use_momentum = self.momentum > 0.0;
        ensure_slots("RMSprop", &mut self.velocities, variables, 0.0)?;
        if use_momentum {
            ensure_slots("RMSprop", &mut self.momentums, variables, 0.0)?;
        }
        if self.centered {
            ensure_slots("RMSprop", &mut self.average_gradients, variables, 0.0)?;
        }
        let lr = self.core.learning_rate;
        let rho = self.rho as f32;
        let one_minus_rho = (1.0 - self.rho) as f32;
        let mu = self.momentum as f32;
        let eps = self.epsilon as f32;
        for (i, (var, grad)) in variables.iter_mut().zip(gradients).enumerate() {
            #[cfg(feature = "cuda")]
            if crate::core::on_gpu(var) {
                let v = &mut self.velocities[i];
                let base = [lr, rho, one_minus_rho, eps];
                let with_mu = [lr, rho, one_minus_rho, eps, mu];
                let (kernel, outputs, scalars): (_, &mut [&mut Tensor], &[f32]) =
                    match (self.centered, use_momentum) {
                        (false, false) => ("rmsprop", &mut [var.value_mut(), v], &base),
                        (false, true) => (
                            "rmsprop_momentum",
                            &mut [var.value_mut(), v, &mut self.momentums[i]],
                            &with_mu,
                        ),
                        (true, false) => (
                            "rmsprop_centered",
                            &mut [var.value_mut(), v, &mut self.average_gradients[i]],
                            &base,
                        ),
                        (true, true) => (
                            "rmsprop_centered_momentum",
                            &mut [
                                var.value_mut(),
                                v,
                                &mut self.average_gradients[i],
                                &mut self.momentums[i],
                            ],
                            &with_mu,
                        ),
                    };
                crate::core::launch("RMSprop", &CUDA_SOURCE, kernel, outputs, &[grad], scalars)?;
                continue;
            }
            let g = grad.as_slice();
            let w = var.value_mut().as_mut_slice();
            let v = self.velocities[i].as_mut_slice();
            // The four forms are separate loops so each stays branch-free.
            match (self.centered, use_momentum) {
                (false, false) => {
                    for ((w, &g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
                        *v = ftz(rho * *v + one_minus_rho * (g * g));
                        *w -= (lr * g) / (*v + eps).sqrt();
                    }
                }
                (false, true) => {
                    let m = self.momentums[i].as_mut_slice();
                    for (((w, &g), v), m) in w.iter_mut().zip(g).zip(v.iter_mut()).zip(m.iter_mut())
                    {
                        *v = ftz(rho * *v + one_minus_rho * (g * g));
                        *m = mu * *m + (lr * g) / (*v + eps).sqrt();
                        *w -= *m;
                    }
                }
                (true, false) => {
                    let a = self.average_gradients[i].as_mut_slice();
                    for (((w, &g), v), a) in w.iter_mut().zip(g).zip(v.iter_mut()).zip(a.iter_mut())
                    {
                        *v = ftz(rho * *v + one_minus_rho * (g * g));
                        *a = ftz(rho * *a + one_minus_rho * g);
                        *w -= (lr * g) / ((*v - *a * *a) + eps).sqrt();
                    }
                }
                (true, true) => {
                    let m = self.momentums[i].as_mut_slice();
                    let a = self.average_gradients[i].as_mut_slice();
                    for ((((w, &g), v), a), m) in w
                        .iter_mut()
                        .zip(g)
                        .zip(v.iter_mut())
                        .zip(a.iter_mut())
                        .zip(m.iter_mut())
                    {
                        *v = ftz(rho * *v + one_minus_rho * (g * g));
                        *a = ftz(rho * *a + one_minus_rho * g);
                        *m = mu * *m + (lr * g) / ((*v - *a * *a) + eps).sqrt();
                        *w -= *m;
                    }
                }
            }
        }
        self.core.iterations += 1;
        Ok(())
    }

    core_accessors!("RMSprop");

    fn config(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("learning_rate", f64::from(self.core.learning_rate)),
            ("rho", self.rho),
            ("momentum", self.momentum),
            ("epsilon", self.epsilon),
            ("centered", f64::from(u8::from(self.centered))),
        ]
    }

    fn hyperparameters(&self) -> Vec<(&'static str, HyperparameterValue)> {
        vec![
            (
                "learning_rate",
                HyperparameterValue::F32(self.core.learning_rate),
            ),
            ("rho", HyperparameterValue::F64(self.rho)),
            ("momentum", HyperparameterValue::F64(self.momentum)),
            ("epsilon", HyperparameterValue::F64(self.epsilon)),
            ("centered", HyperparameterValue::Bool(self.centered)),
        ]
    }

    fn slots(&self) -> Vec<(String, &Tensor)> {
        named_slots(&[
            ("velocity", &self.velocities),
            ("momentum", &self.momentums),
            ("average_gradient", &self.average_gradients),
        ])
    }

    fn set_state(
        &mut self,
        iterations: u64,
        slots: &[(String, Tensor)],
        shapes: &[Vec<usize>],
    ) -> Result<()> {
        let mut kinds: Vec<(&'static str, &mut Vec<Tensor>)> =
            vec![("velocity", &mut self.velocities)];
        if self.momentum > 0.0 {
            kinds.push(("momentum", &mut self.momentums));
        }
        if self.centered {
            kinds.push(("average_gradient", &mut self.average_gradients));
        }
        crate::core::set_state(
            "RMSprop",
            &mut self.core,
            &mut kinds,
            iterations,
            slots,
            shapes,
        )
    }
}
