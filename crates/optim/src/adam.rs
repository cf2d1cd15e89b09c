//! [`Adam`]: adaptive moment estimation (Kingma & Ba 2015), optionally
//! AMSGrad (Reddi, Kale & Kumar 2018), as Keras 3's `Adam`.
//!
//! Step `t` (1 at the first call) of each variable `w` with gradient `g`
//! (`keras/src/optimizers/adam.py`, in `f32`):
//!
//! ```text
//! α ← lr·√(1 - β₂ᵗ) / (1 - β₁ᵗ)
//! m ← m + (g - m)·(1 - β₁)
//! v ← v + (g² - v)·(1 - β₂)
//! amsgrad:  v̂ ← max(v̂, v), and v̂ replaces v below
//! w ← w - (m·α) / (√v + ε)
//! ```
//!
//! The moments start at zero. `α` folds the bias corrections of the paper's
//! `m̂ = m/(1-β₁ᵗ)`, `v̂ = v/(1-β₂ᵗ)` into the step size ("the efficiency
//! version" just before section 2.1 of the paper), so `ε` is the paper's
//! `ε̂`. Lecture 13.2 presents Adam as adaptive learning rate plus gradient
//! estimation (momentum).

use hebb_autograd::Variable;
use hebb_tensor::Tensor;
use rayon::prelude::*;

use crate::core::{
    Core, check_lr, check_non_negative, check_rate, core_accessors, ensure_slots, ftz, named_slots,
};
use crate::{HyperparameterValue, Optimizer, Result};

/// The fused GPU updates (`adam.cu`): kernels `adam` and `adam_amsgrad`, the
/// CPU loops' arithmetic in the same order, with `α`, `1-β₁` and `1-β₂`
/// computed on the host as for the CPU.
#[cfg(feature = "cuda")]
pub(crate) const CUDA_SOURCE: hebb_tensor::cuda::CudaSource = hebb_tensor::cuda::CudaSource {
    name: "hebb-optim/adam.cu",
    code: include_str!("adam.cu"),
};

/// Adam (Keras 3 `keras.optimizers.Adam`, `keras/src/optimizers/adam.py`;
/// lecture 13.2; Kingma & Ba 2015, "Adam: a method for stochastic
/// optimization", ICLR; AMSGrad: Reddi, Kale & Kumar 2018, "On the
/// convergence of Adam and beyond", ICLR).
///
/// Update at step `t = iterations + 1`, in `f32` (`β₁`, `β₂` are rounded to
/// `f32` before the powers; `1-β₁`, `1-β₂` are computed in `f64` and then
/// rounded, as Keras does with Python floats; `α` once per step):
///
/// ```text
/// α ← lr·√(1 - β₂ᵗ) / (1 - β₁ᵗ)
/// m ← m + (g - m)·(1 - β₁)
/// v ← v + (g² - v)·(1 - β₂)
/// amsgrad:  v̂ ← max(v̂, v), and v̂ replaces v below
/// w ← w - (m·α) / (√v + ε)
/// ```
///
/// Defaults (Keras): `learning_rate = 0.001`, `beta_1 = 0.9`,
/// `beta_2 = 0.999`, `epsilon = 1e-7`, `amsgrad = false`. Slots:
/// `"momentum/{i}"` (`m`), `"velocity/{i}"` (`v`) and `"velocity_hat/{i}"`
/// (`v̂`, with AMSGrad), each of variable `i`'s shape.
///
/// ```
/// use hebb_autograd::Variable;
/// use hebb_optim::{Adam, Optimizer};
/// use hebb_tensor::Tensor;
///
/// // Keras adam_test.py: the first Adam step moves each weight by about lr.
/// let mut w = Variable::new("w", Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[4])?);
/// let g = Tensor::from_vec(vec![1.0, 6.0, 7.0, 2.0], &[4])?;
/// let mut adam = Adam::new(0.5);
/// adam.apply_gradients(&mut [&mut w], &[g])?;
/// for (got, want) in w.value().to_vec().iter().zip([0.5, 1.5, 2.5, 3.5]) {
///     assert!((got - want).abs() < 1e-4);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Adam {
    core: Core,
    beta_1: f64,
    beta_2: f64,
    epsilon: f64,
    amsgrad: bool,
    momentums: Vec<Tensor>,
    velocities: Vec<Tensor>,
    velocity_hats: Vec<Tensor>,
}

impl Adam {
    /// Adam with learning rate `learning_rate` and Keras' other defaults.
    ///
    /// Hyperparameters are checked by [`validate`](Self::validate), which
    /// every `apply_gradients` calls.
    pub fn new(learning_rate: f32) -> Self {
        Self {
            core: Core::new(learning_rate),
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            amsgrad: false,
            momentums: Vec::new(),
            velocities: Vec::new(),
            velocity_hats: Vec::new(),
        }
    }

    /// Sets `β₁`, the decay rate of the first-moment average (Keras `beta_1`, in `[0, 1)`).
    pub fn with_beta_1(mut self, beta_1: f64) -> Self {
        self.beta_1 = beta_1;
        self
    }

    /// Sets `β₂`, the decay rate of the second-moment average (Keras `beta_2`, in `[0, 1)`).
    pub fn with_beta_2(mut self, beta_2: f64) -> Self {
        self.beta_2 = beta_2;
        self
    }

    /// Sets `ε` (Keras `epsilon`, `>= 0`; the paper's `ε̂`), added after the square root.
    pub fn with_epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Whether to use AMSGrad (Keras `amsgrad`): divide by the running
    /// maximum of `v` instead of `v`.
    pub fn with_amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
        self
    }

    /// `β₁`.
    pub fn beta_1(&self) -> f64 {
        self.beta_1
    }

    /// `β₂`.
    pub fn beta_2(&self) -> f64 {
        self.beta_2
    }

    /// `ε`.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// Whether AMSGrad is used.
    pub fn amsgrad(&self) -> bool {
        self.amsgrad
    }

    /// Checks the hyperparameters: `learning_rate` and `epsilon` finite and
    /// `>= 0`, `beta_1` and `beta_2` in `[0, 1)`.
    ///
    /// # Errors
    /// [`Error::Hyperparameter`](crate::Error::Hyperparameter) naming the first bad value.
    pub fn validate(&self) -> Result<()> {
        check_lr("Adam", self.core.learning_rate)?;
        check_rate("Adam", "beta_1", self.beta_1)?;
        check_rate("Adam", "beta_2", self.beta_2)?;
        check_non_negative("Adam", "epsilon", self.epsilon)
    }
}

impl Default for Adam {
    /// Keras' defaults: `Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999,
    /// epsilon=1e-7, amsgrad=False)`.
    fn default() -> Self {
        Self::new(0.001)
    }
}

/// Variables with at least this many elements are updated on all threads of
/// rayon's pool, in chunks of [`CHUNK`]: the update streams five arrays
/// through memory, and two cores have twice one core's cache and bandwidth.
const PARALLEL_LEN: usize = 1 << 15;
/// Elements per parallel chunk.
const CHUNK: usize = 1 << 13;

impl Optimizer for Adam {
    fn apply_gradients(
        &mut self,
        variables: &mut [&mut Variable],
        gradients: &[Tensor],
    ) -> Result<()> {
        self.validate()?;
        if !self.core.begin("Adam", variables, gradients)? {
            return Ok(());
        }
        ensure_slots("Adam", &mut self.momentums, variables, 0.0)?;
        ensure_slots("Adam", &mut self.velocities, variables, 0.0)?;
        if self.amsgrad {
            ensure_slots("Adam", &mut self.velocity_hats, variables, 0.0)?;
        }
        // Keras: local_step = cast(iterations + 1); beta_i_power = cast(beta_i) ** local_step;
        // alpha = lr * sqrt(1 - beta_2_power) / (1 - beta_1_power), all in the variable dtype.
        let t = (self.core.iterations + 1) as f32;
        let beta_1_power = (self.beta_1 as f32).powf(t);
        let beta_2_power = (self.beta_2 as f32).powf(t);
        let alpha = self.core.learning_rate * (1.0 - beta_2_power).sqrt() / (1.0 - beta_1_power);
        let one_minus_beta_1 = (1.0 - self.beta_1) as f32;
        let one_minus_beta_2 = (1.0 - self.beta_2) as f32;
        let eps = self.epsilon as f32;
        let arch = pulp::Arch::new();
        let step = |w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
            arch.dispatch(|| {
                for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                    *m = ftz(*m + (g - *m) * one_minus_beta_1);
                    *v = ftz(*v + (g * g - *v) * one_minus_beta_2);
                    *w -= (*m * alpha) / (v.sqrt() + eps);
                }
            });
        };
        let amsgrad_step =
            |w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], vh: &mut [f32]| {
                for ((((w, &g), m), v), vh) in w
                    .iter_mut()
                    .zip(g)
                    .zip(m.iter_mut())
                    .zip(v.iter_mut())
                    .zip(vh.iter_mut())
                {
                    *m = ftz(*m + (g - *m) * one_minus_beta_1);
                    *v = ftz(*v + (g * g - *v) * one_minus_beta_2);
                    *vh = vh.max(*v);
                    *w -= (*m * alpha) / (vh.sqrt() + eps);
                }
            };
        for (i, (var, grad)) in variables.iter_mut().zip(gradients).enumerate() {
            #[cfg(feature = "cuda")]
            if crate::core::on_gpu(var) {
                let scalars = [alpha, one_minus_beta_1, one_minus_beta_2, eps];
                let (m, v) = (&mut self.momentums[i], &mut self.velocities[i]);
                if self.amsgrad {
                    let vh = &mut self.velocity_hats[i];
                    let outputs: &mut [&mut Tensor] = &mut [var.value_mut(), m, v, vh];
                    crate::core::launch(
                        "Adam",
                        &CUDA_SOURCE,
                        "adam_amsgrad",
                        outputs,
                        &[grad],
                        &scalars,
                    )?;
                } else {
                    let outputs: &mut [&mut Tensor] = &mut [var.value_mut(), m, v];
                    crate::core::launch("Adam", &CUDA_SOURCE, "adam", outputs, &[grad], &scalars)?;
                }
                continue;
            }
            let g = grad.as_slice();
            let w = var.value_mut().as_mut_slice();
            let m = self.momentums[i].as_mut_slice();
            let v = self.velocities[i].as_mut_slice();
            // Elementwise, so splitting between threads changes no bit.
            if self.amsgrad {
                let vh = self.velocity_hats[i].as_mut_slice();
                if w.len() < PARALLEL_LEN {
                    amsgrad_step(w, g, m, v, vh);
                } else {
                    w.par_chunks_mut(CHUNK)
                        .zip(g.par_chunks(CHUNK))
                        .zip(m.par_chunks_mut(CHUNK))
                        .zip(v.par_chunks_mut(CHUNK))
                        .zip(vh.par_chunks_mut(CHUNK))
                        .for_each(|((((w, g), m), v), vh)| amsgrad_step(w, g, m, v, vh));
                }
            } else if w.len() < PARALLEL_LEN {
                step(w, g, m, v);
            } else {
                w.par_chunks_mut(CHUNK)
                    .zip(g.par_chunks(CHUNK))
                    .zip(m.par_chunks_mut(CHUNK))
                    .zip(v.par_chunks_mut(CHUNK))
                    .for_each(|(((w, g), m), v)| step(w, g, m, v));
            }
        }
        self.core.iterations += 1;
        Ok(())
    }

    core_accessors!("Adam");

    fn config(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("learning_rate", f64::from(self.core.learning_rate)),
            ("beta_1", self.beta_1),
            ("beta_2", self.beta_2),
            ("epsilon", self.epsilon),
            ("amsgrad", f64::from(u8::from(self.amsgrad))),
        ]
    }

    fn hyperparameters(&self) -> Vec<(&'static str, HyperparameterValue)> {
        vec![
            (
                "learning_rate",
                HyperparameterValue::F32(self.core.learning_rate),
            ),
            ("beta_1", HyperparameterValue::F64(self.beta_1)),
            ("beta_2", HyperparameterValue::F64(self.beta_2)),
            ("epsilon", HyperparameterValue::F64(self.epsilon)),
            ("amsgrad", HyperparameterValue::Bool(self.amsgrad)),
        ]
    }

    fn slots(&self) -> Vec<(String, &Tensor)> {
        named_slots(&[
            ("momentum", &self.momentums),
            ("velocity", &self.velocities),
            ("velocity_hat", &self.velocity_hats),
        ])
    }

    fn set_state(
        &mut self,
        iterations: u64,
        slots: &[(String, Tensor)],
        shapes: &[Vec<usize>],
    ) -> Result<()> {
        let mut kinds: Vec<(&'static str, &mut Vec<Tensor>)> = vec![
            ("momentum", &mut self.momentums),
            ("velocity", &mut self.velocities),
        ];
        if self.amsgrad {
            kinds.push(("velocity_hat", &mut self.velocity_hats));
        }
        crate::core::set_state(
            "Adam",
            &mut self.core,
            &mut kinds,
            iterations,
            slots,
            shapes,
        )
    }
}
