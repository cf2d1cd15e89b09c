//! # hebb-optim
//!
//! The optimisers of lecture 13.2 ("梯度下降法的优化"), each one update rule
//! that turns gradients into in-place changes of trainable
//! [`Variable`]s, with **Keras 3's update formulas, arithmetic order and
//! defaults** (`keras/src/optimizers/*.py` in keras-team/keras):
//!
//! | type | Keras | `from_name` | idea |
//! |---|---|---|---|
//! | [`Sgd`] | `SGD` | `"sgd"` | `w ← w - lr·g`; momentum (Polyak 1964), Nesterov (1983) |
//! | [`Adagrad`] | `Adagrad` | `"adagrad"` | per-parameter rates from the sum of `g²` (Duchi et al. 2011) |
//! | [`Adadelta`] | `Adadelta` | `"adadelta"` | decaying averages of `g²` and `Δw²` (Zeiler 2012) |
//! | [`RmsProp`] | `RMSprop` | `"rmsprop"` | divide by a running RMS of `g` (Hinton, lecture 6e) |
//! | [`Adam`] | `Adam` | `"adam"` | momentum + RMSprop with bias correction (Kingma & Ba 2015) |
//!
//! Learning-rate schedules (fixed, exponential, step, inverse-time,
//! cyclical; lecture 13.2) are in [`schedules`]: [`Scheduled`] makes any
//! optimiser follow one.
//!
//! Every optimiser implements [`Optimizer`], whose
//! [`apply_gradients`](Optimizer::apply_gradients) is Keras'
//! `optimizer.apply_gradients(zip(grads, vars))`: one step for every
//! variable, in place. Optimiser state ("slots": velocities, moment
//! averages) is allocated at the first call, one tensor per variable and
//! kind, and updated in place afterwards; slot `i` belongs to variable `i`,
//! so the variables must be passed in the same order at every call.
//!
//! All arithmetic is `f32`, in Keras' order; hyperparameters other than the
//! learning rate are `f64` (Keras keeps them as Python floats) and are
//! rounded to `f32` where Keras' tensor ops would round them, with
//! differences such as `1 - β₁` taken in `f64` first, as Python does.
//! Moving averages are flushed to zero when they decay below
//! `f32::MIN_POSITIVE`, as TensorFlow's CPU kernels (which run in the
//! processor's flush-to-zero mode) would leave them: subnormal arithmetic is
//! about a hundred times slower on x86, and Adam's moments of an input that
//! is always zero (an MNIST border pixel) decay into that range.
//!
//! Lecture 13.2 motivates momentum with a long, shallow valley: plain
//! gradient descent crawls along it, while momentum keeps the previous
//! direction and speeds up. On `f(w) = ½(0.05·w₀² + 2·w₁²)`:
//!
//! ```
//! use hebb_autograd::Variable;
//! use hebb_optim::{Optimizer, Sgd};
//! use hebb_tensor::Tensor;
//!
//! let a = [0.05_f32, 2.0];
//! let loss = |w: &Variable| {
//!     let w = w.value().to_vec();
//!     0.5 * (a[0] * w[0] * w[0] + a[1] * w[1] * w[1])
//! };
//! let minimise = |optimizer: &mut dyn Optimizer| -> Result<f32, hebb_optim::Error> {
//!     let mut w = Variable::new("w", Tensor::from_vec(vec![1.0, 1.0], &[2]).unwrap());
//!     for _ in 0..100 {
//!         let v = w.value().to_vec();
//!         let grad = Tensor::from_vec(vec![a[0] * v[0], a[1] * v[1]], &[2]).unwrap();
//!         optimizer.apply_gradients(&mut [&mut w], &[grad])?;
//!     }
//!     Ok(loss(&w))
//! };
//!
//! let plain = minimise(&mut Sgd::new(0.4))?;
//! let momentum = minimise(&mut Sgd::new(0.4).with_momentum(0.9, false))?;
//! assert!(plain > 1e-4);              // w₀ shrinks by only 2% a step: 4.4e-4
//! assert!(momentum < plain / 100.0);  // ~5% a step in both directions: 1.2e-6
//! # Ok::<(), hebb_optim::Error>(())
//! ```
//!
//! With a tape, compute the gradients, let the tape go, then apply them (a
//! tape still alive holds the old values, so the update would copy them
//! first):
//!
//! ```
//! use hebb_autograd::{GradientTape, Variable};
//! use hebb_optim::{Adam, Optimizer};
//! use hebb_tensor::Tensor;
//!
//! let mut w = Variable::new("dense/kernel", Tensor::from_vec(vec![0.5, -0.5], &[2, 1])?);
//! let mut b = Variable::new("dense/bias", Tensor::zeros(&[1]));
//! let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])?;
//! let y = Tensor::from_vec(vec![1.0, 0.0], &[2, 1])?;
//! let mut adam = Adam::default();
//! let grads = {
//!     let tape = GradientTape::new();
//!     let pred = tape.constant(x).matmul(tape.watch(&w))?.add(tape.watch(&b))?;
//!     let loss = pred.sub(tape.constant(y))?.square().mean_all();
//!     tape.gradient_of(loss, &[&w, &b])?
//! };
//! adam.apply_gradients(&mut [&mut w, &mut b], &grads)?;
//! assert_eq!(adam.iterations(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## GPUs (feature `cuda`)
//!
//! With the `cuda` feature, variables (and their gradients) on a CUDA
//! device are updated there: one fused kernel per variable
//! (`src/*.cu`, compiled once per device with NVRTC through
//! `hebb_tensor::cuda::launch_elementwise`), slots live on the variable's
//! device. The kernels do the CPU loops' `f32` operations in the same
//! order, each with an explicit round-to-nearest intrinsic that is never
//! fused into a multiply-add, take the same host-computed constants (Adam's
//! `α`, `1-β`, …) and flush the same averages to zero, so a GPU step is
//! meant to give the CPU's result bit for bit (`tests/cuda.rs` checks a
//! relative 1e-6 after 5 steps, and exact bits for flushed values).
//! `CUDA_SOURCES` lists the sources.

mod adadelta;
mod adagrad;
mod adam;
mod core;
mod error;
mod hyperparameters;
mod rmsprop;
pub mod schedules;
mod sgd;

use hebb_autograd::Variable;
use hebb_tensor::Tensor;

pub use adadelta::Adadelta;
pub use adagrad::Adagrad;
pub use adam::Adam;
pub use error::{Error, Result};
pub use hyperparameters::{HyperparameterValue, describe};
pub use rmsprop::RmsProp;
pub use schedules::{LearningRateSchedule, Scheduled};
pub use sgd::Sgd;

/// The CUDA C sources of the optimisers' fused GPU updates (SGD, Adam,
/// Adagrad, RMSprop, Adadelta), e.g. to check that they compile with
/// [`hebb_tensor::cuda::compile_check`].
#[cfg(feature = "cuda")]
pub const CUDA_SOURCES: [hebb_tensor::cuda::CudaSource; 5] = [
    sgd::CUDA_SOURCE,
    adam::CUDA_SOURCE,
    adagrad::CUDA_SOURCE,
    rmsprop::CUDA_SOURCE,
    adadelta::CUDA_SOURCE,
];

/// A gradient-based update rule for trainable variables (Keras
/// `keras.optimizers.Optimizer`, `keras/src/optimizers/base_optimizer.py`).
pub trait Optimizer: std::fmt::Debug + Send {
    /// Keras `optimizer.apply_gradients(zip(grads, vars))`: one update step
    /// of every variable, in place.
    ///
    /// `gradients[i]` is `∂loss/∂variables[i]` and has its shape. Variables
    /// must be passed in the same order (and with the same shapes) at every
    /// call: slot `i` belongs to variable `i`. The first call with at least
    /// one variable builds the slots; an empty call is a no-op that does not
    /// count as a step (as in Keras). On success
    /// [`iterations`](Self::iterations) grows by one.
    ///
    /// The update writes through [`Tensor::as_mut_slice`]: no allocation for the
    /// variables or slots after the first call, unless a variable's storage
    /// is shared (e.g. a tape that recorded it is still alive), which is then
    /// copied first. Each gradient is read through one copy of its elements
    /// (hebb-tensor has no public read-only view of a tensor's elements).
    /// Non-finite gradients are not checked (training loops check the loss).
    ///
    /// With the `cuda` feature, a variable on a GPU is updated there instead,
    /// by one fused kernel per variable that follows the CPU loop's
    /// arithmetic (see the crate docs); its slots are created on (or moved
    /// to) its device.
    ///
    /// # Errors
    /// Nothing is modified when an error other than [`Error::Tensor`] is returned.
    /// - [`Error::Hyperparameter`] if a hyperparameter is out of range (the
    ///   optimiser's `validate` runs first, so a bad
    ///   [`set_learning_rate`](Self::set_learning_rate) is caught here);
    /// - [`Error::GradientCount`] if `gradients.len() != variables.len()`;
    /// - [`Error::GradientShape`] naming the variable and both shapes;
    /// - [`Error::VariableCount`] if the number of variables differs from the
    ///   first call, [`Error::SlotShape`] if a variable's shape differs from
    ///   its slot's (the variables were passed in another order);
    /// - [`Error::GradientDevice`] if a gradient is on another device than
    ///   its variable;
    /// - [`Error::Tensor`] if a slot cannot be made on the variable's device
    ///   or a GPU kernel fails (variables before the failing one may then
    ///   have been updated).
    fn apply_gradients(
        &mut self,
        variables: &mut [&mut Variable],
        gradients: &[Tensor],
    ) -> Result<()>;

    /// The Keras class name: `"SGD"`, `"Adagrad"`, `"Adadelta"`, `"RMSprop"`, `"Adam"`.
    fn name(&self) -> &'static str;

    /// The current learning rate (`f32`, as Keras' `learning_rate` variable).
    fn learning_rate(&self) -> f32;

    /// Sets the learning rate for the following steps (schedules,
    /// callbacks). It is checked at the next
    /// [`apply_gradients`](Self::apply_gradients).
    fn set_learning_rate(&mut self, lr: f32);

    /// Number of steps taken (Keras `optimizer.iterations`).
    fn iterations(&self) -> u64;

    /// The hyperparameters by Keras name, in the order of Keras'
    /// `get_config()`, starting with `learning_rate` (the `f32` value
    /// widened, as Keras reports it: `0.001` reads `0.0010000000474974513`).
    /// Booleans (`nesterov`, `centered`, `amsgrad`) are `0.0` or `1.0`.
    /// This is the form saved in model files and read by [`from_config`];
    /// for display, use [`hyperparameters`](Self::hyperparameters) or
    /// [`describe`](Self::describe).
    fn config(&self) -> Vec<(&'static str, f64)>;

    /// The hyperparameters of [`config`](Self::config), same names and
    /// order, each in the type it was given in, for display: the learning
    /// rate as the `f32` it is (`0.001`), booleans as booleans. A
    /// [`Scheduled`] optimiser gives its schedule as `learning_rate` (and
    /// leaves out `learning_rate_schedule`, a marker for saving).
    ///
    /// The provided version types `learning_rate` as [`f32`] and every
    /// other value as [`f64`]; hebb's optimisers give their flags as
    /// [`HyperparameterValue::Bool`].
    fn hyperparameters(&self) -> Vec<(&'static str, HyperparameterValue)> {
        self.config()
            .into_iter()
            .map(|(k, v)| {
                let v = if k == "learning_rate" {
                    HyperparameterValue::F32(self.learning_rate())
                } else {
                    HyperparameterValue::F64(v)
                };
                (k, v)
            })
            .collect()
    }

    /// A one-line summary with Keras' class name and the
    /// [`hyperparameters`](Self::hyperparameters) as they were given:
    ///
    /// ```
    /// use hebb_optim::{Adam, Optimizer, Sgd};
    ///
    /// assert_eq!(
    ///     Adam::default().describe(),
    ///     "Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=false)"
    /// );
    /// assert_eq!(
    ///     Sgd::new(0.1).with_momentum(0.9, true).describe(),
    ///     "SGD(learning_rate=0.1, momentum=0.9, nesterov=true)"
    /// );
    /// ```
    fn describe(&self) -> String {
        describe(self.name(), &self.hyperparameters())
    }

    /// The optimiser state by name, `"{kind}/{i}"` for variable `i`, kinds
    /// named as Keras names its slot variables (e.g. `"momentum/0"`,
    /// `"velocity/1"`), grouped by kind. Empty before the first step.
    fn slots(&self) -> Vec<(String, &Tensor)>;

    /// Replaces the optimiser's state with exported state (a saved model's:
    /// Keras' `optimizer.load_own_variables`): the step count and the slots
    /// by name as [`slots`](Self::slots) names them, for variables of
    /// `shapes` (in the order they will be passed to
    /// [`apply_gradients`](Self::apply_gradients)). Hyperparameters are
    /// left as they are; the slot kinds expected are those of the current
    /// configuration (e.g. `momentum` for an [`Sgd`] only when its momentum
    /// is not 0). No slots and `iterations = 0` is a fresh optimiser (slots
    /// are built at the first step); otherwise every slot must be given.
    /// Afterwards, `apply_gradients` continues exactly where the exported
    /// optimiser stopped.
    ///
    /// ```
    /// use hebb_autograd::Variable;
    /// use hebb_optim::{Adam, Optimizer};
    /// use hebb_tensor::Tensor;
    ///
    /// let mut w = Variable::new("w", Tensor::from_vec(vec![1.0, -2.0], &[2])?);
    /// let g = Tensor::from_vec(vec![0.5, 0.25], &[2])?;
    /// let mut adam = Adam::default();
    /// adam.apply_gradients(&mut [&mut w], &[g.clone()])?;
    ///
    /// let slots: Vec<(String, Tensor)> =
    ///     adam.slots().into_iter().map(|(n, t)| (n, t.clone())).collect();
    /// let mut copy = Adam::default();
    /// copy.set_state(adam.iterations(), &slots, &[vec![2]])?;
    /// let mut w2 = w.clone();
    /// adam.apply_gradients(&mut [&mut w], &[g.clone()])?;
    /// copy.apply_gradients(&mut [&mut w2], &[g])?;
    /// assert_eq!(w.value(), w2.value()); // bit for bit
    /// assert!(copy.set_state(1, &slots[..1], &[vec![2]]).is_err()); // velocity/0 missing
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Nothing is modified when an error is returned.
    /// [`Error::UnexpectedSlot`] for a name of another kind or an index not
    /// below `shapes.len()`; [`Error::DuplicateSlot`];
    /// [`Error::StateShape`] naming the slot and both shapes;
    /// [`Error::MissingSlot`] naming the first slot missing.
    fn set_state(
        &mut self,
        iterations: u64,
        slots: &[(String, Tensor)],
        shapes: &[Vec<usize>],
    ) -> Result<()>;
}

/// The optimiser of Keras class `class_name` (as [`from_name`], case-insensitive)
/// with the hyperparameters in `config`, named as
/// [`Optimizer::config`] names them; those not given keep Keras' defaults.
/// Booleans are `0.0` or not. `from_config(o.name(), &o.config())`
/// rebuilds an optimiser's configuration exactly (its state is
/// [`Optimizer::set_state`]'s job).
///
/// ```
/// use hebb_optim::{Optimizer, Sgd, from_config};
///
/// let sgd = Sgd::new(0.1).with_momentum(0.9, true);
/// let copy = from_config(sgd.name(), &sgd.config())?;
/// assert_eq!(copy.config(), sgd.config());
/// assert!(from_config("SGD", &[("beta_1", 0.9)]).is_err());
/// # Ok::<(), hebb_optim::Error>(())
/// ```
///
/// # Errors
/// [`Error::UnknownOptimizer`]; [`Error::UnknownHyperparameter`] for a
/// name the optimiser does not have; [`Error::Hyperparameter`] for a value
/// out of range.
pub fn from_config(class_name: &str, config: &[(&str, f64)]) -> Result<Box<dyn Optimizer>> {
    let lowered = class_name.to_ascii_lowercase();
    let template = from_name(&lowered).map_err(|_| Error::UnknownOptimizer {
        name: class_name.to_string(),
        known: KNOWN_OPTIMIZERS.to_vec(),
    })?;
    let known: Vec<&'static str> = template.config().iter().map(|(k, _)| *k).collect();
    for (name, _) in config {
        if !known.contains(name) {
            return Err(Error::UnknownHyperparameter {
                optimizer: template.name(),
                name: (*name).to_string(),
                known,
            });
        }
    }
    let get = |key: &str| {
        config
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    };
    let default = |key: &str| {
        template
            .config()
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(0.0, |(_, v)| *v)
    };
    let value = |key: &str| get(key).unwrap_or_else(|| default(key));
    let flag = |key: &str| value(key) != 0.0;
    let lr = get("learning_rate").map_or(template.learning_rate(), |v| v as f32);
    Ok(match lowered.as_str() {
        "sgd" => {
            let o = Sgd::new(lr).with_momentum(value("momentum"), flag("nesterov"));
            o.validate()?;
            Box::new(o)
        }
        "adagrad" => {
            let o = Adagrad::new(lr)
                .with_initial_accumulator_value(value("initial_accumulator_value"))
                .with_epsilon(value("epsilon"));
            o.validate()?;
            Box::new(o)
        }
        "adadelta" => {
            let o = Adadelta::new(lr)
                .with_rho(value("rho"))
                .with_epsilon(value("epsilon"));
            o.validate()?;
            Box::new(o)
        }
        "rmsprop" => {
            let o = RmsProp::new(lr)
                .with_rho(value("rho"))
                .with_momentum(value("momentum"))
                .with_epsilon(value("epsilon"))
                .with_centered(flag("centered"));
            o.validate()?;
            Box::new(o)
        }
        _ => {
            let o = Adam::new(lr)
                .with_beta_1(value("beta_1"))
                .with_beta_2(value("beta_2"))
                .with_epsilon(value("epsilon"))
                .with_amsgrad(flag("amsgrad"));
            o.validate()?;
            Box::new(o)
        }
    })
}

/// The names [`from_name`] accepts (Keras' lower-case class names).
pub const KNOWN_OPTIMIZERS: [&str; 5] = ["sgd", "adagrad", "adadelta", "rmsprop", "adam"];

/// The optimiser Keras builds from a string identifier
/// (`model.compile(optimizer="adam")`, `keras.optimizers.get`), with Keras'
/// defaults. Names are case-insensitive: `"sgd"`, `"adagrad"`,
/// `"adadelta"`, `"rmsprop"`, `"adam"` (lecture 13.3's table).
///
/// ```
/// let adam = hebb_optim::from_name("Adam")?;
/// assert_eq!(adam.name(), "Adam");
/// assert_eq!(adam.learning_rate(), 0.001);
/// # Ok::<(), hebb_optim::Error>(())
/// ```
///
/// # Errors
/// [`Error::UnknownOptimizer`] for any other name; its message lists the
/// known names.
pub fn from_name(name: &str) -> Result<Box<dyn Optimizer>> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "sgd" => Box::new(Sgd::default()),
        "adagrad" => Box::new(Adagrad::default()),
        "adadelta" => Box::new(Adadelta::default()),
        "rmsprop" => Box::new(RmsProp::default()),
        "adam" => Box::new(Adam::default()),
        _ => {
            return Err(Error::UnknownOptimizer {
                name: name.to_string(),
                known: KNOWN_OPTIMIZERS.to_vec(),
            });
        }
    })
}
