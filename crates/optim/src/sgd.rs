//! [`Sgd`]: gradient descent, optionally with momentum (Polyak 1964) or
//! Nesterov momentum (Nesterov 1983), as Keras 3's `SGD`.
//!
//! With `g` the gradient, `lr` the learning rate and `μ` the momentum, one
//! step of each variable `w` is (`keras/src/optimizers/sgd.py`, in `f32`):
//!
//! ```text
//! μ = 0:        w ← w - g·lr
//! μ > 0:        v ← v·μ - g·lr;  w ← w + v
//! Nesterov:     v ← v·μ - g·lr;  w ← w + (v·μ - g·lr)
//! ```
//!
//! The velocity `v` starts at zero. The first form is the lecture's
//! `W ← W - η ∇Loss(W)` (13.2); the second is its "动量梯度下降法":
//! `W⁽ᵏ⁺¹⁾ = W⁽ᵏ⁾ + v⁽ᵏ⁺¹⁾`, `v⁽ᵏ⁺¹⁾ = α v⁽ᵏ⁾ - η ∇Loss`. The Nesterov form is
//! the lecture's NAG (gradient at the look-ahead point) rewritten, as in
//! Keras and Bengio et al. 2013, so that the gradient is taken at the stored
//! `w`.

use hebb_autograd::Variable;
use hebb_tensor::Tensor;

use crate::core::{Core, check_momentum, core_accessors, ensure_slots, ftz, named_slots};
use crate::{HyperparameterValue, Optimizer, Result};

/// The fused GPU updates (`sgd.cu`): kernels `sgd`, `sgd_momentum` and
/// `sgd_nesterov`, the CPU loops' arithmetic in the same order.
#[cfg(feature = "cuda")]
pub(crate) const CUDA_SOURCE: hebb_tensor::cuda::CudaSource = hebb_tensor::cuda::CudaSource {
    name: "hebb-optim/sgd.cu",
    code: include_str!("sgd.cu"),
};

/// Gradient descent with optional momentum and Nesterov momentum (Keras 3
/// `keras.optimizers.SGD`, `keras/src/optimizers/sgd.py`; lecture 13.2;
/// Polyak 1964, "Some methods of speeding up the convergence of iteration
/// methods"; Nesterov 1983, "A method for solving the convex programming
/// problem with convergence rate O(1/k²)").
///
/// Update, in `f32`, with `g` the gradient, `lr` the learning rate and `μ`
/// the momentum (velocity `v` starts at zero):
///
/// ```text
/// μ = 0:      w ← w - g·lr
/// μ > 0:      v ← v·μ - g·lr;  w ← w + v
/// nesterov:   v ← v·μ - g·lr;  w ← w + (v·μ - g·lr)
/// ```
///
/// Defaults (Keras): `learning_rate = 0.01`, `momentum = 0.0`,
/// `nesterov = false`. Slots: `"momentum/{i}"` (only when `momentum > 0`),
/// each of variable `i`'s shape.
///
/// ```
/// use hebb_autograd::Variable;
/// use hebb_optim::{Optimizer, Sgd};
/// use hebb_tensor::Tensor;
///
/// let mut w = Variable::new("w", Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[4])?);
/// let g = Tensor::from_vec(vec![1.0, 6.0, 7.0, 2.0], &[4])?;
/// let mut sgd = Sgd::new(0.5);
/// sgd.apply_gradients(&mut [&mut w], &[g])?;
/// assert_eq!(w.value().to_vec(), vec![0.5, -1.0, -0.5, 3.0]); // Keras sgd_test.py
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Sgd {
    core: Core,
    momentum: f64,
    nesterov: bool,
    /// Velocities, one per variable; empty until the first step with `momentum > 0`.
    velocities: Vec<Tensor>,
}

impl Sgd {
    /// Plain gradient descent with learning rate `learning_rate` (Keras
    /// `SGD(learning_rate)`); add momentum with [`with_momentum`](Self::with_momentum).
    ///
    /// The learning rate is checked (finite, `>= 0`) by
    /// [`validate`](Self::validate), which every `apply_gradients` calls.
    pub fn new(learning_rate: f32) -> Self {
        Self {
            core: Core::new(learning_rate),
            momentum: 0.0,
            nesterov: false,
            velocities: Vec::new(),
        }
    }

    /// Sets the momentum `μ` (Keras `momentum`, a float in `[0, 1]`; `0`
    /// is plain gradient descent) and whether to use Nesterov momentum
    /// (Keras `nesterov`). Call before the first step.
    pub fn with_momentum(mut self, momentum: f64, nesterov: bool) -> Self {
        self.momentum = momentum;
        self.nesterov = nesterov;
        self
    }

    /// The momentum `μ`.
    pub fn momentum(&self) -> f64 {
        self.momentum
    }

    /// Whether Nesterov momentum is used.
    pub fn nesterov(&self) -> bool {
        self.nesterov
    }

    /// Checks the hyperparameters: `learning_rate` finite and `>= 0`,
    /// `momentum` in `[0, 1]` (as Keras' `SGD.__init__` requires).
    ///
    /// # Errors
    /// [`Error::Hyperparameter`](crate::Error::Hyperparameter) naming the first bad value.
    pub fn validate(&self) -> Result<()> {
        crate::core::check_lr("SGD", self.core.learning_rate)?;
        check_momentum("SGD", self.momentum)
    }
}

impl Default for Sgd {
    /// Keras' defaults: `SGD(learning_rate=0.01, momentum=0.0, nesterov=False)`.
    fn default() -> Self {
        Self::new(0.01)
    }
}

impl Optimizer for Sgd {
    fn apply_gradients(
        &mut self,
        variables: &mut [&mut Variable],
        gradients: &[Tensor],
    ) -> Result<()> {
        self.validate()?;
        if !self.core.begin("SGD", variables, gradients)? {
            return Ok(());
        }
        let lr = self.core.learning_rate;
        if self.momentum != 0.0 {
            ensure_slots("SGD", &mut self.velocities, variables, 0.0)?;
            let mu = self.momentum as f32;
            for ((var, grad), vel) in variables
                .iter_mut()
                .zip(gradients)
                .zip(&mut self.velocities)
            {
                #[cfg(feature = "cuda")]
                if crate::core::on_gpu(var) {
                    let kernel = if self.nesterov {
                        "sgd_nesterov"
                    } else {
                        "sgd_momentum"
                    };
                    crate::core::launch(
                        "SGD",
                        &CUDA_SOURCE,
                        kernel,
                        &mut [var.value_mut(), vel],
                        &[grad],
                        &[lr, mu],
                    )?;
                    continue;
                }
                let g = grad.as_slice();
                let w = var.value_mut().as_mut_slice();
                let v = vel.as_mut_slice();
                if self.nesterov {
                    for ((w, &g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
                        *v = ftz(*v * mu - g * lr);
                        *w += *v * mu - g * lr;
                    }
                } else {
                    for ((w, &g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
                        *v = ftz(*v * mu - g * lr);
                        *w += *v;
                    }
                }
            }
        } else {
            for (var, grad) in variables.iter_mut().zip(gradients) {
                #[cfg(feature = "cuda")]
                if crate::core::on_gpu(var) {
                    crate::core::launch(
                        "SGD",
                        &CUDA_SOURCE,
                        "sgd",
                        &mut [var.value_mut()],
                        &[grad],
                        &[lr],
                    )?;
                    continue;
                }
                let g = grad.as_slice();
                let w = var.value_mut().as_mut_slice();
                for (w, &g) in w.iter_mut().zip(g) {
                    *w -= g * lr;
                }
            }
        }
        self.core.iterations += 1;
        Ok(())
    }

    core_accessors!("SGD");

    fn config(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("learning_rate", f64::from(self.core.learning_rate)),
            ("momentum", self.momentum),
            ("nesterov", f64::from(u8::from(self.nesterov))),
        ]
    }

    fn hyperparameters(&self) -> Vec<(&'static str, HyperparameterValue)> {
        vec![
            (
                "learning_rate",
                HyperparameterValue::F32(self.core.learning_rate),
            ),
            ("momentum", HyperparameterValue::F64(self.momentum)),
            ("nesterov", HyperparameterValue::Bool(self.nesterov)),
        ]
    }

    fn slots(&self) -> Vec<(String, &Tensor)> {
        named_slots(&[("momentum", &self.velocities)])
    }

    fn set_state(
        &mut self,
        iterations: u64,
        slots: &[(String, Tensor)],
        shapes: &[Vec<usize>],
    ) -> Result<()> {
        let mut kinds: Vec<(&'static str, &mut Vec<Tensor>)> = Vec::new();
        if self.momentum != 0.0 {
            kinds.push(("momentum", &mut self.velocities));
        }
        crate::core::set_state("SGD", &mut self.core, &mut kinds, iterations, slots, shapes)
    }
}
