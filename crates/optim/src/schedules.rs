//! Learning-rate schedules (lecture 13.2, "学习率"): a learning rate that
//! changes with the step count, and [`Scheduled`], which lets any
//! [`Optimizer`] follow one.
//!
//! The lecture: a fixed learning rate that is too small converges slowly,
//! one that is too large oscillates and does not converge; so start large
//! and decay it as training goes on ("学习率衰减 / 学习率退火"), or, on a
//! non-convex loss, increase it periodically ("周期性的增大学习率") to leave
//! saddle points and poor local minima. With `s` the step (Keras'
//! `optimizer.iterations`, from 0) and `lr₀` the initial learning rate:
//!
//! | schedule | Keras / source | `lr(s)` |
//! |---|---|---|
//! | [`Constant`] | a float `learning_rate` | `lr₀` |
//! | [`ExponentialDecay`] | `keras.optimizers.schedules.ExponentialDecay` | `lr₀ · rate^(s / steps)` |
//! | the same, `staircase` | (step decay) | `lr₀ · rate^⌊s / steps⌋` |
//! | [`PiecewiseConstantDecay`] | `keras.optimizers.schedules.PiecewiseConstantDecay` | `values[i]` for `boundaries[i-1] < s <= boundaries[i]` |
//! | [`InverseTimeDecay`] | `keras.optimizers.schedules.InverseTimeDecay` | `lr₀ / (1 + rate · s / steps)` (`⌊s / steps⌋` with `staircase`) |
//! | [`CyclicalLearningRate`] | TensorFlow Addons `CyclicalLearningRate`; Smith 2017 | a triangle wave between `lr₀` and `lr_max` |
//!
//! Values are computed as Keras computes them, in `f32` (the step, the
//! hyperparameters and every intermediate cast to `float32`), so steps
//! beyond 2²⁴ are rounded as there.
//!
//! A schedule takes effect through [`Scheduled`], an [`Optimizer`] that
//! wraps another one and, before each update, sets the wrapped optimiser's
//! learning rate to `schedule(optimizer.iterations)`, as Keras evaluates a
//! schedule passed as `learning_rate` at `optimizer.iterations`. It works
//! wherever an optimiser does: in a low-level loop with a tape, and in
//! `Sequential::compile` (hebb-models) as `Box::new(Scheduled::new(..))`.
//!
//! ```
//! use hebb_autograd::Variable;
//! use hebb_optim::schedules::{ExponentialDecay, LearningRateSchedule, Scheduled};
//! use hebb_optim::{Optimizer, Sgd};
//! use hebb_tensor::Tensor;
//!
//! // lr = 0.1 · 0.5^(step / 2): 0.1, 0.0707.., 0.05, 0.0354.., ...
//! let schedule = ExponentialDecay::new(0.1, 2, 0.5, false)?;
//! assert_eq!(schedule.learning_rate(2), 0.05);
//!
//! let mut sgd = Scheduled::new(Sgd::new(1.0), schedule);
//! let mut w = Variable::new("w", Tensor::from_vec(vec![1.0], &[1])?);
//! for _ in 0..3 {
//!     sgd.apply_gradients(&mut [&mut w], &[Tensor::from_vec(vec![1.0], &[1])?])?;
//! }
//! // w = 1 - 0.1 - 0.1·0.5^0.5 - 0.05
//! assert!((w.value().to_vec()[0] - (0.85 - 0.1 * 0.5f32.sqrt())).abs() < 1e-6);
//! assert_eq!(sgd.iterations(), 3);
//! assert_eq!(sgd.learning_rate(), 0.1 * 0.5f32.powf(1.5)); // the next step's
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use hebb_autograd::Variable;
use hebb_tensor::Tensor;

use crate::{Error, HyperparameterValue, Optimizer, Result};

/// A learning rate as a function of the step count (Keras
/// `keras.optimizers.schedules.LearningRateSchedule`, whose `__call__(step)`
/// gives the learning rate of step `step`).
pub trait LearningRateSchedule: std::fmt::Debug + Send {
    /// The learning rate of step `step` (Keras `optimizer.iterations` before
    /// the step is taken, so the first step is step 0).
    fn learning_rate(&self, step: u64) -> f32;

    /// The Keras class name, e.g. `"ExponentialDecay"`.
    fn name(&self) -> &'static str;

    /// The hyperparameters by Keras name, as Keras' `get_config()` lists
    /// them (booleans `0.0` or `1.0`; list-valued ones, such as
    /// [`PiecewiseConstantDecay`]'s, numbered `boundaries/0`, ...).
    fn config(&self) -> Vec<(String, f64)>;

    /// The hyperparameters for display, each in the type it was given in
    /// (counts as integers, flags as booleans, `f32` values in `f32`'s
    /// shortest form, lists as lists: `boundaries=[100, 200]`). The
    /// provided version shows every [`config`](Self::config) value as an
    /// `f64`; hebb's schedules give their own.
    fn hyperparameters(&self) -> Vec<(String, HyperparameterValue)> {
        self.config()
            .into_iter()
            .map(|(k, v)| (k, HyperparameterValue::F64(v)))
            .collect()
    }

    /// A one-line summary: `ExponentialDecay(initial_learning_rate=0.1,
    /// decay_steps=100, decay_rate=0.96, staircase=false)`.
    ///
    /// ```
    /// use hebb_optim::schedules::{LearningRateSchedule, PiecewiseConstantDecay};
    ///
    /// let s = PiecewiseConstantDecay::new(vec![100, 200], vec![0.1, 0.01, 0.001])?;
    /// assert_eq!(s.describe(), "PiecewiseConstantDecay(boundaries=[100, 200], values=[0.1, 0.01, 0.001])");
    /// # Ok::<(), hebb_optim::Error>(())
    /// ```
    fn describe(&self) -> String {
        crate::describe(self.name(), &self.hyperparameters())
    }
}

/// `(key, value)` with an owned key, for [`LearningRateSchedule::hyperparameters`].
fn pair(key: &str, value: HyperparameterValue) -> (String, HyperparameterValue) {
    (key.to_string(), value)
}

/// `name` must be finite and `>= 0`.
fn non_negative(schedule: &'static str, name: &'static str, value: f64) -> Result<()> {
    check(
        schedule,
        name,
        value,
        value.is_finite() && value >= 0.0,
        "finite and >= 0",
    )
}

/// `name` must be finite and `> 0`.
fn positive(schedule: &'static str, name: &'static str, value: f64) -> Result<()> {
    check(
        schedule,
        name,
        value,
        value.is_finite() && value > 0.0,
        "finite and > 0",
    )
}

fn check(
    schedule: &'static str,
    name: &'static str,
    value: f64,
    ok: bool,
    expected: &'static str,
) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::Hyperparameter {
            optimizer: schedule,
            name,
            value,
            expected,
        })
    }
}

/// A fixed learning rate (the lecture's "固定学习率"; in Keras, a float
/// passed as `learning_rate`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Constant {
    learning_rate: f32,
}

impl Constant {
    /// The schedule `lr(s) = learning_rate`.
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] unless `learning_rate` is finite and `>= 0`.
    pub fn new(learning_rate: f32) -> Result<Self> {
        non_negative("Constant", "learning_rate", f64::from(learning_rate))?;
        Ok(Self { learning_rate })
    }
}

impl LearningRateSchedule for Constant {
    fn learning_rate(&self, _step: u64) -> f32 {
        self.learning_rate
    }

    fn name(&self) -> &'static str {
        "Constant"
    }

    fn config(&self) -> Vec<(String, f64)> {
        vec![("learning_rate".into(), f64::from(self.learning_rate))]
    }

    fn hyperparameters(&self) -> Vec<(String, HyperparameterValue)> {
        vec![pair(
            "learning_rate",
            HyperparameterValue::F32(self.learning_rate),
        )]
    }
}

/// Exponential decay (Keras `keras.optimizers.schedules.ExponentialDecay`,
/// `keras/src/optimizers/schedules/learning_rate_schedule.py`):
///
/// ```text
/// p = step / decay_steps            (⌊step / decay_steps⌋ if staircase)
/// lr = initial_learning_rate · decay_rate^p
/// ```
///
/// With `staircase` this is step decay: the rate is multiplied by
/// `decay_rate` every `decay_steps` steps and constant in between.
///
/// ```
/// use hebb_optim::schedules::{ExponentialDecay, LearningRateSchedule};
///
/// let step_decay = ExponentialDecay::new(0.1, 100, 0.5, true)?;
/// assert_eq!(step_decay.learning_rate(99), 0.1);
/// assert_eq!(step_decay.learning_rate(100), 0.05);
/// assert_eq!(step_decay.learning_rate(250), 0.025);
/// # Ok::<(), hebb_optim::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExponentialDecay {
    initial_learning_rate: f64,
    decay_steps: u64,
    decay_rate: f64,
    staircase: bool,
}

impl ExponentialDecay {
    /// Keras `ExponentialDecay(initial_learning_rate, decay_steps,
    /// decay_rate, staircase)`.
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] unless `initial_learning_rate` is finite and
    /// `>= 0`, `decay_steps > 0` (Keras: "must be positive"), and
    /// `decay_rate` finite and `> 0`.
    pub fn new(
        initial_learning_rate: f64,
        decay_steps: u64,
        decay_rate: f64,
        staircase: bool,
    ) -> Result<Self> {
        non_negative(
            "ExponentialDecay",
            "initial_learning_rate",
            initial_learning_rate,
        )?;
        positive("ExponentialDecay", "decay_steps", decay_steps as f64)?;
        positive("ExponentialDecay", "decay_rate", decay_rate)?;
        Ok(Self {
            initial_learning_rate,
            decay_steps,
            decay_rate,
            staircase,
        })
    }
}

impl LearningRateSchedule for ExponentialDecay {
    fn learning_rate(&self, step: u64) -> f32 {
        let mut p = step as f32 / self.decay_steps as f32;
        if self.staircase {
            p = p.floor();
        }
        self.initial_learning_rate as f32 * (self.decay_rate as f32).powf(p)
    }

    fn name(&self) -> &'static str {
        "ExponentialDecay"
    }

    fn config(&self) -> Vec<(String, f64)> {
        vec![
            ("initial_learning_rate".into(), self.initial_learning_rate),
            ("decay_steps".into(), self.decay_steps as f64),
            ("decay_rate".into(), self.decay_rate),
            ("staircase".into(), f64::from(u8::from(self.staircase))),
        ]
    }

    fn hyperparameters(&self) -> Vec<(String, HyperparameterValue)> {
        vec![
            pair(
                "initial_learning_rate",
                HyperparameterValue::F64(self.initial_learning_rate),
            ),
            pair("decay_steps", HyperparameterValue::Int(self.decay_steps)),
            pair("decay_rate", HyperparameterValue::F64(self.decay_rate)),
            pair("staircase", HyperparameterValue::Bool(self.staircase)),
        ]
    }
}

/// Inverse-time decay (Keras `keras.optimizers.schedules.InverseTimeDecay`):
///
/// ```text
/// p = step / decay_steps            (⌊step / decay_steps⌋ if staircase)
/// lr = initial_learning_rate / (1 + decay_rate · p)
/// ```
///
/// The `1/t` decay of stochastic approximation (Robbins & Monro 1951), under
/// which SGD converges to the minimum instead of oscillating around it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InverseTimeDecay {
    initial_learning_rate: f64,
    decay_steps: u64,
    decay_rate: f64,
    staircase: bool,
}

impl InverseTimeDecay {
    /// Keras `InverseTimeDecay(initial_learning_rate, decay_steps,
    /// decay_rate, staircase)`.
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] unless `initial_learning_rate` and
    /// `decay_rate` are finite and `>= 0` and `decay_steps > 0`.
    pub fn new(
        initial_learning_rate: f64,
        decay_steps: u64,
        decay_rate: f64,
        staircase: bool,
    ) -> Result<Self> {
        non_negative(
            "InverseTimeDecay",
            "initial_learning_rate",
            initial_learning_rate,
        )?;
        positive("InverseTimeDecay", "decay_steps", decay_steps as f64)?;
        non_negative("InverseTimeDecay", "decay_rate", decay_rate)?;
        Ok(Self {
            initial_learning_rate,
            decay_steps,
            decay_rate,
            staircase,
        })
    }
}

impl LearningRateSchedule for InverseTimeDecay {
    fn learning_rate(&self, step: u64) -> f32 {
        let mut p = step as f32 / self.decay_steps as f32;
        if self.staircase {
            p = p.floor();
        }
        self.initial_learning_rate as f32 / (1.0 + self.decay_rate as f32 * p)
    }

    fn name(&self) -> &'static str {
        "InverseTimeDecay"
    }

    fn config(&self) -> Vec<(String, f64)> {
        vec![
            ("initial_learning_rate".into(), self.initial_learning_rate),
            ("decay_steps".into(), self.decay_steps as f64),
            ("decay_rate".into(), self.decay_rate),
            ("staircase".into(), f64::from(u8::from(self.staircase))),
        ]
    }

    fn hyperparameters(&self) -> Vec<(String, HyperparameterValue)> {
        vec![
            pair(
                "initial_learning_rate",
                HyperparameterValue::F64(self.initial_learning_rate),
            ),
            pair("decay_steps", HyperparameterValue::Int(self.decay_steps)),
            pair("decay_rate", HyperparameterValue::F64(self.decay_rate)),
            pair("staircase", HyperparameterValue::Bool(self.staircase)),
        ]
    }
}

/// A piecewise-constant learning rate (Keras
/// `keras.optimizers.schedules.PiecewiseConstantDecay`): `values[0]` while
/// `step <= boundaries[0]`, `values[i]` while `boundaries[i-1] < step <=
/// boundaries[i]`, and the last value after the last boundary.
///
/// ```
/// use hebb_optim::schedules::{LearningRateSchedule, PiecewiseConstantDecay};
///
/// // Keras' docstring example: 1.0 for the first 100001 steps, 0.5 for the next 10000, then 0.1.
/// let s = PiecewiseConstantDecay::new(vec![100_000, 110_000], vec![1.0, 0.5, 0.1])?;
/// assert_eq!([s.learning_rate(100_000), s.learning_rate(100_001), s.learning_rate(110_001)], [1.0, 0.5, 0.1]);
/// # Ok::<(), hebb_optim::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PiecewiseConstantDecay {
    boundaries: Vec<u64>,
    values: Vec<f32>,
}

impl PiecewiseConstantDecay {
    /// Keras `PiecewiseConstantDecay(boundaries, values)`.
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] if `values` does not have exactly one more
    /// element than `boundaries` (Keras: "The length of boundaries should be
    /// 1 less than the length of values"; the value reported is the number
    /// of values), if the boundaries are not strictly increasing (the first
    /// out-of-order boundary is reported), or if a value is negative or not
    /// finite.
    pub fn new(boundaries: Vec<u64>, values: Vec<f32>) -> Result<Self> {
        const NAME: &str = "PiecewiseConstantDecay";
        check(
            NAME,
            "values",
            values.len() as f64,
            values.len() == boundaries.len() + 1,
            "one more values than boundaries",
        )?;
        for pair in boundaries.windows(2) {
            check(
                NAME,
                "boundaries",
                pair[1] as f64,
                pair[0] < pair[1],
                "strictly increasing",
            )?;
        }
        for &v in &values {
            non_negative(NAME, "values", f64::from(v))?;
        }
        Ok(Self { boundaries, values })
    }
}

impl LearningRateSchedule for PiecewiseConstantDecay {
    fn learning_rate(&self, step: u64) -> f32 {
        let i = self.boundaries.partition_point(|&b| b < step);
        self.values[i]
    }

    fn name(&self) -> &'static str {
        "PiecewiseConstantDecay"
    }

    fn config(&self) -> Vec<(String, f64)> {
        let boundaries = self.boundaries.iter().enumerate();
        let values = self.values.iter().enumerate();
        boundaries
            .map(|(i, &b)| (format!("boundaries/{i}"), b as f64))
            .chain(values.map(|(i, &v)| (format!("values/{i}"), f64::from(v))))
            .collect()
    }

    fn hyperparameters(&self) -> Vec<(String, HyperparameterValue)> {
        vec![
            pair(
                "boundaries",
                HyperparameterValue::List(
                    self.boundaries
                        .iter()
                        .map(|&b| HyperparameterValue::Int(b))
                        .collect(),
                ),
            ),
            pair(
                "values",
                HyperparameterValue::List(
                    self.values
                        .iter()
                        .map(|&v| HyperparameterValue::F32(v))
                        .collect(),
                ),
            ),
        ]
    }
}

/// How a [`CyclicalLearningRate`]'s amplitude changes from cycle to cycle
/// (Smith 2017, section 3.1; TensorFlow Addons' `scale_fn`/`scale_mode`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CyclicalMode {
    /// The same triangle every cycle (Addons `TriangularCyclicalLearningRate`).
    Triangular,
    /// The amplitude halves every cycle: scaled by `1 / 2^(cycle - 1)`
    /// (Addons `Triangular2CyclicalLearningRate`).
    Triangular2,
    /// The amplitude is scaled by `gamma^step` (Addons
    /// `ExponentialCyclicalLearningRate`, `scale_mode="iterations"`).
    ExpRange {
        /// The factor per step, in `(0, 1]`.
        gamma: f64,
    },
}

/// A cyclical learning rate (Leslie N. Smith, "Cyclical Learning Rates for
/// Training Neural Networks", WACV 2017; TensorFlow Addons
/// `tfa.optimizers.CyclicalLearningRate`): the rate climbs linearly from
/// `initial_learning_rate` to `maximal_learning_rate` in `step_size` steps,
/// falls back in as many, and repeats; the lecture's "periodically increase
/// the learning rate" (13.2). In Addons' `float32` arithmetic:
///
/// ```text
/// cycle = ⌊1 + step / (2 · step_size)⌋
/// x     = |step / step_size - 2 · cycle + 1|
/// lr    = initial + (maximal - initial) · max(0, 1 - x) · scale
/// ```
///
/// with `scale = 1` ([`Triangular`](CyclicalMode::Triangular)),
/// `1 / 2^(cycle-1)` ([`Triangular2`](CyclicalMode::Triangular2)) or
/// `gamma^step` ([`ExpRange`](CyclicalMode::ExpRange)).
///
/// ```
/// use hebb_optim::schedules::{CyclicalLearningRate, CyclicalMode, LearningRateSchedule};
///
/// let clr = CyclicalLearningRate::new(0.001, 0.006, 2000, CyclicalMode::Triangular)?;
/// assert_eq!(clr.learning_rate(0), 0.001);
/// assert!((clr.learning_rate(1000) - 0.0035).abs() < 1e-9);
/// assert!((clr.learning_rate(2000) - 0.006).abs() < 1e-9); // the peak
/// assert_eq!(clr.learning_rate(4000), 0.001);               // a cycle is 2 · step_size
/// # Ok::<(), hebb_optim::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CyclicalLearningRate {
    initial_learning_rate: f64,
    maximal_learning_rate: f64,
    step_size: u64,
    mode: CyclicalMode,
}

impl CyclicalLearningRate {
    /// Addons `CyclicalLearningRate(initial_learning_rate,
    /// maximal_learning_rate, step_size, scale_fn)` with `scale_fn` given
    /// by `mode`. `step_size` is half a cycle (Smith suggests 2 to 10
    /// epochs' worth of steps).
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] unless both rates are finite and `>= 0`,
    /// `step_size > 0`, and (for `ExpRange`) `gamma` is in `(0, 1]`.
    pub fn new(
        initial_learning_rate: f64,
        maximal_learning_rate: f64,
        step_size: u64,
        mode: CyclicalMode,
    ) -> Result<Self> {
        const NAME: &str = "CyclicalLearningRate";
        non_negative(NAME, "initial_learning_rate", initial_learning_rate)?;
        non_negative(NAME, "maximal_learning_rate", maximal_learning_rate)?;
        positive(NAME, "step_size", step_size as f64)?;
        if let CyclicalMode::ExpRange { gamma } = mode {
            check(
                NAME,
                "gamma",
                gamma,
                gamma > 0.0 && gamma <= 1.0,
                "in (0, 1]",
            )?;
        }
        Ok(Self {
            initial_learning_rate,
            maximal_learning_rate,
            step_size,
            mode,
        })
    }
}

impl LearningRateSchedule for CyclicalLearningRate {
    fn learning_rate(&self, step: u64) -> f32 {
        let (initial, maximal) = (
            self.initial_learning_rate as f32,
            self.maximal_learning_rate as f32,
        );
        let step_size = self.step_size as f32;
        let step = step as f32;
        let cycle = (1.0 + step / (2.0 * step_size)).floor();
        let x = (step / step_size - 2.0 * cycle + 1.0).abs();
        let scale = match self.mode {
            CyclicalMode::Triangular => 1.0,
            CyclicalMode::Triangular2 => 1.0 / 2f32.powf(cycle - 1.0),
            CyclicalMode::ExpRange { gamma } => (gamma as f32).powf(step),
        };
        initial + (maximal - initial) * (1.0 - x).max(0.0) * scale
    }

    fn name(&self) -> &'static str {
        "CyclicalLearningRate"
    }

    fn config(&self) -> Vec<(String, f64)> {
        let mut config = vec![
            ("initial_learning_rate".into(), self.initial_learning_rate),
            ("maximal_learning_rate".into(), self.maximal_learning_rate),
            ("step_size".into(), self.step_size as f64),
        ];
        if let CyclicalMode::ExpRange { gamma } = self.mode {
            config.push(("gamma".into(), gamma));
        }
        config
    }

    /// As [`config`](LearningRateSchedule::config), with the mode named
    /// (`mode=triangular`, `triangular2` or `exp_range`, then `gamma`).
    fn hyperparameters(&self) -> Vec<(String, HyperparameterValue)> {
        let mode = match self.mode {
            CyclicalMode::Triangular => "triangular",
            CyclicalMode::Triangular2 => "triangular2",
            CyclicalMode::ExpRange { .. } => "exp_range",
        };
        let mut config = vec![
            pair(
                "initial_learning_rate",
                HyperparameterValue::F64(self.initial_learning_rate),
            ),
            pair(
                "maximal_learning_rate",
                HyperparameterValue::F64(self.maximal_learning_rate),
            ),
            pair("step_size", HyperparameterValue::Int(self.step_size)),
            pair("mode", HyperparameterValue::Name(mode)),
        ];
        if let CyclicalMode::ExpRange { gamma } = self.mode {
            config.push(pair("gamma", HyperparameterValue::F64(gamma)));
        }
        config
    }
}

/// An optimiser whose learning rate follows a schedule: before every
/// update, the wrapped optimiser's learning rate is set to
/// `schedule.learning_rate(iterations)`, where `iterations` is its step
/// count before the update (Keras evaluates a `LearningRateSchedule`
/// given as `learning_rate` at `optimizer.iterations`,
/// `keras/src/optimizers/base_optimizer.py`, `_get_current_learning_rate`).
///
/// Everything else is the wrapped optimiser's: its update rule, slots, step
/// count, [`name`](Optimizer::name) and [`config`](Optimizer::config) (whose
/// `learning_rate` is the rate of the last step taken, or of the next
/// step before any). A model saved with a `Scheduled` optimiser therefore
/// records the wrapped optimiser with that rate, not the schedule.
///
/// [`set_learning_rate`](Optimizer::set_learning_rate) replaces the schedule
/// by a [`Constant`] one at that rate (Keras refuses to set the rate of an
/// optimiser that has a schedule; a callback that sets it here gets a fixed
/// rate from then on).
///
/// ```
/// use hebb_optim::schedules::{InverseTimeDecay, Scheduled};
/// use hebb_optim::{Adam, Optimizer};
///
/// let adam = Scheduled::new(Adam::default(), InverseTimeDecay::new(0.01, 10, 1.0, false)?);
/// assert_eq!(adam.name(), "Adam");
/// assert_eq!(adam.learning_rate(), 0.01);
/// // `Sequential::compile(Box::new(adam) as Box<dyn Optimizer>, ...)` in hebb-models.
/// let _boxed: Box<dyn Optimizer> = Box::new(adam);
/// # Ok::<(), hebb_optim::Error>(())
/// ```
#[derive(Debug)]
pub struct Scheduled {
    optimizer: Box<dyn Optimizer>,
    schedule: Box<dyn LearningRateSchedule>,
}

impl Scheduled {
    /// `optimizer` following `schedule`; its own learning rate is replaced
    /// by the schedule's at its current step count.
    pub fn new(
        optimizer: impl Optimizer + 'static,
        schedule: impl LearningRateSchedule + 'static,
    ) -> Self {
        Self::from_boxed(Box::new(optimizer), Box::new(schedule))
    }

    /// [`new`](Self::new) for optimisers and schedules already boxed (e.g.
    /// from [`from_name`](crate::from_name)).
    pub fn from_boxed(
        mut optimizer: Box<dyn Optimizer>,
        schedule: Box<dyn LearningRateSchedule>,
    ) -> Self {
        optimizer.set_learning_rate(schedule.learning_rate(optimizer.iterations()));
        Self {
            optimizer,
            schedule,
        }
    }

    /// The schedule followed.
    pub fn schedule(&self) -> &dyn LearningRateSchedule {
        self.schedule.as_ref()
    }

    /// The wrapped optimiser.
    pub fn optimizer(&self) -> &dyn Optimizer {
        self.optimizer.as_ref()
    }

    /// The wrapped optimiser, taken out of the wrapper.
    pub fn into_inner(self) -> Box<dyn Optimizer> {
        self.optimizer
    }
}

impl Optimizer for Scheduled {
    /// Sets the wrapped optimiser's learning rate to the schedule's at its
    /// step count, then applies the gradients with it.
    ///
    /// # Errors
    /// The wrapped optimiser's (its checks come first, so a schedule that
    /// gives a bad rate is reported as [`Error::Hyperparameter`]); on an
    /// error, the wrapped optimiser's learning rate is restored, so nothing
    /// is modified.
    fn apply_gradients(
        &mut self,
        variables: &mut [&mut Variable],
        gradients: &[Tensor],
    ) -> Result<()> {
        let previous = self.optimizer.learning_rate();
        let lr = self.schedule.learning_rate(self.optimizer.iterations());
        self.optimizer.set_learning_rate(lr);
        let result = self.optimizer.apply_gradients(variables, gradients);
        if result.is_err() {
            self.optimizer.set_learning_rate(previous);
        }
        result
    }

    fn name(&self) -> &'static str {
        self.optimizer.name()
    }

    /// The learning rate of the next step: the schedule's at the current
    /// step count.
    fn learning_rate(&self) -> f32 {
        self.schedule.learning_rate(self.optimizer.iterations())
    }

    /// Replaces the schedule by [`Constant`] `lr` (see the type's docs). A
    /// bad `lr` is caught at the next [`apply_gradients`](Optimizer::apply_gradients),
    /// as for every optimiser.
    fn set_learning_rate(&mut self, lr: f32) {
        self.schedule = Box::new(Constant { learning_rate: lr });
        self.optimizer.set_learning_rate(lr);
    }

    fn iterations(&self) -> u64 {
        self.optimizer.iterations()
    }

    /// The wrapped optimiser's hyperparameters, plus `learning_rate_schedule = 1`:
    /// [`from_config`](crate::from_config) cannot rebuild a schedule, so it
    /// rejects this key, and saving a model with a scheduled optimiser is an
    /// error rather than a file that resumes at a fixed rate.
    fn config(&self) -> Vec<(&'static str, f64)> {
        let mut config = self.optimizer.config();
        config.push(("learning_rate_schedule", 1.0));
        config
    }

    /// The wrapped optimiser's, with the schedule as `learning_rate`, as
    /// Keras' `get_config()` nests a schedule:
    /// `SGD(learning_rate=ExponentialDecay(initial_learning_rate=0.1, ...), momentum=0.0, nesterov=false)`.
    fn hyperparameters(&self) -> Vec<(&'static str, HyperparameterValue)> {
        self.optimizer
            .hyperparameters()
            .into_iter()
            .map(|(k, v)| {
                if k == "learning_rate" {
                    let schedule = HyperparameterValue::Object {
                        class: self.schedule.name(),
                        config: self.schedule.hyperparameters(),
                    };
                    (k, schedule)
                } else {
                    (k, v)
                }
            })
            .collect()
    }

    fn slots(&self) -> Vec<(String, &Tensor)> {
        self.optimizer.slots()
    }

    fn set_state(
        &mut self,
        iterations: u64,
        slots: &[(String, Tensor)],
        shapes: &[Vec<usize>],
    ) -> Result<()> {
        self.optimizer.set_state(iterations, slots, shapes)?;
        self.optimizer
            .set_learning_rate(self.schedule.learning_rate(iterations));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Adam, Sgd};

    fn close(a: f32, b: f64) -> bool {
        (f64::from(a) - b).abs() <= 1e-6 * b.abs().max(1e-3)
    }

    fn assert_values(s: &dyn LearningRateSchedule, expected: &[(u64, f64)]) {
        for &(step, want) in expected {
            let got = s.learning_rate(step);
            assert!(
                close(got, want),
                "{} at step {step}: {got} != {want}",
                s.name()
            );
        }
    }

    #[test]
    fn constant() {
        let s = Constant::new(0.01).unwrap();
        assert_values(&s, &[(0, 0.01), (1, 0.01), (1_000_000, 0.01)]);
        assert!(Constant::new(-0.1).is_err());
        assert!(Constant::new(f32::NAN).is_err());
    }

    #[test]
    fn exponential_decay_by_hand() {
        // 0.1 · 0.96^(s/100)
        let s = ExponentialDecay::new(0.1, 100, 0.96, false).unwrap();
        assert_values(
            &s,
            &[
                (0, 0.1),
                (50, 0.1 * 0.979_795_897_113_271_2), // 0.96^0.5 = sqrt(0.96)
                (100, 0.096),
                (250, 0.1 * 0.96 * 0.96 * 0.979_795_897_113_271_2),
                (1000, 0.1 * 0.664_832_635_991_501_3), // 0.96^10
            ],
        );
        let stairs = ExponentialDecay::new(0.1, 100, 0.96, true).unwrap();
        assert_values(
            &stairs,
            &[
                (0, 0.1),
                (99, 0.1),
                (100, 0.096),
                (199, 0.096),
                (250, 0.092_16),
            ],
        );
        assert_eq!(s.config()[0], ("initial_learning_rate".to_string(), 0.1));
        assert_eq!(stairs.config()[3], ("staircase".to_string(), 1.0));
        let err = ExponentialDecay::new(0.1, 0, 0.96, false).unwrap_err();
        assert!(err.to_string().contains("decay_steps"), "{err}");
        assert!(ExponentialDecay::new(0.1, 10, 0.0, false).is_err());
        assert!(ExponentialDecay::new(-1.0, 10, 0.5, false).is_err());
    }

    #[test]
    fn inverse_time_decay_by_hand() {
        // Keras docstring: 0.1 / (1 + 0.5 · s / 1.0)
        let s = InverseTimeDecay::new(0.1, 1, 0.5, false).unwrap();
        assert_values(&s, &[(0, 0.1), (1, 0.1 / 1.5), (2, 0.05), (18, 0.01)]);
        let fractional = InverseTimeDecay::new(0.5, 4, 1.0, false).unwrap();
        assert_values(&fractional, &[(2, 0.5 / 1.5), (6, 0.2)]);
        let stairs = InverseTimeDecay::new(0.5, 4, 1.0, true).unwrap();
        assert_values(&stairs, &[(3, 0.5), (4, 0.25), (7, 0.25), (8, 0.5 / 3.0)]);
        assert!(InverseTimeDecay::new(0.5, 4, -1.0, false).is_err());
        // decay_rate 0 is a constant rate.
        let flat = InverseTimeDecay::new(0.5, 4, 0.0, false).unwrap();
        assert_values(&flat, &[(0, 0.5), (400, 0.5)]);
    }

    #[test]
    fn piecewise_constant_by_hand() {
        let s = PiecewiseConstantDecay::new(vec![10, 20], vec![1.0, 0.5, 0.1]).unwrap();
        let got: Vec<f32> = [0, 10, 11, 20, 21, 1000]
            .iter()
            .map(|&step| s.learning_rate(step))
            .collect();
        assert_eq!(got, [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]);
        let single = PiecewiseConstantDecay::new(vec![], vec![0.3]).unwrap();
        assert_eq!(single.learning_rate(5), 0.3);
        assert_eq!(
            s.config(),
            [
                ("boundaries/0".to_string(), 10.0),
                ("boundaries/1".to_string(), 20.0),
                ("values/0".to_string(), 1.0),
                ("values/1".to_string(), 0.5),
                ("values/2".to_string(), f64::from(0.1f32)),
            ]
        );
        let err = PiecewiseConstantDecay::new(vec![10, 20], vec![1.0, 0.5]).unwrap_err();
        assert!(err.to_string().contains("values"), "{err}");
        assert!(PiecewiseConstantDecay::new(vec![20, 10], vec![1.0, 0.5, 0.1]).is_err());
        assert!(PiecewiseConstantDecay::new(vec![10, 10], vec![1.0, 0.5, 0.1]).is_err());
        assert!(PiecewiseConstantDecay::new(vec![10], vec![1.0, -0.5]).is_err());
    }

    #[test]
    fn cyclical_by_hand() {
        // Smith 2017, figure 2: base 0.001, max 0.006, step size 2000.
        let tri = CyclicalLearningRate::new(0.001, 0.006, 2000, CyclicalMode::Triangular).unwrap();
        assert_values(
            &tri,
            &[
                (0, 0.001),
                (500, 0.002_25),
                (2000, 0.006),
                (3000, 0.003_5),
                (4000, 0.001),
                (5000, 0.003_5),
                (6000, 0.006),
            ],
        );
        let tri2 =
            CyclicalLearningRate::new(0.001, 0.006, 2000, CyclicalMode::Triangular2).unwrap();
        assert_values(
            &tri2,
            &[
                (2000, 0.006),
                (6000, 0.001 + 0.005 / 2.0),
                (10000, 0.001 + 0.005 / 4.0),
                (8000, 0.001),
            ],
        );
        let exp =
            CyclicalLearningRate::new(0.001, 0.006, 2000, CyclicalMode::ExpRange { gamma: 0.9999 })
                .unwrap();
        assert_values(
            &exp,
            &[
                (2000, 0.001 + 0.005 * f64::from(0.9999f32).powi(2000)),
                (4000, 0.001),
            ],
        );
        assert!(CyclicalLearningRate::new(0.1, 1.0, 0, CyclicalMode::Triangular).is_err());
        let gamma = CyclicalMode::ExpRange { gamma: 1.5 };
        assert!(CyclicalLearningRate::new(0.1, 1.0, 5, gamma).is_err());
        assert_eq!(exp.config().len(), 4);
    }

    fn one() -> Tensor {
        Tensor::from_vec(vec![1.0], &[1]).unwrap()
    }

    #[test]
    fn scheduled_sgd_uses_the_rate_at_each_step() {
        // SGD on w with gradient 1: w decreases by exactly lr(s) at step s.
        let schedule = PiecewiseConstantDecay::new(vec![1, 3], vec![0.5, 0.25, 0.125]).unwrap();
        let mut sgd = Scheduled::new(Sgd::new(99.0), schedule);
        assert_eq!(sgd.learning_rate(), 0.5);
        assert_eq!(sgd.optimizer().learning_rate(), 0.5);
        let mut w = Variable::new("w", Tensor::from_vec(vec![10.0], &[1]).unwrap());
        let mut seen = Vec::new();
        for _ in 0..5 {
            let before = w.value().to_vec()[0];
            sgd.apply_gradients(&mut [&mut w], &[one()]).unwrap();
            seen.push(before - w.value().to_vec()[0]);
        }
        // steps 0,1 -> 0.5; 2,3 -> 0.25; 4 -> 0.125 (Keras: step <= boundary)
        assert_eq!(seen, [0.5, 0.5, 0.25, 0.25, 0.125]);
        assert_eq!(sgd.iterations(), 5);
        assert_eq!(sgd.name(), "SGD");
        assert_eq!(sgd.config()[0], ("learning_rate", 0.125));
        assert_eq!(sgd.schedule().name(), "PiecewiseConstantDecay");
    }

    #[test]
    fn scheduled_adam_equals_adam_with_the_rate_set_by_hand() {
        let schedule = ExponentialDecay::new(0.01, 2, 0.5, false).unwrap();
        let mut scheduled = Scheduled::new(Adam::default(), schedule);
        let mut manual = Adam::default();
        let start = Tensor::from_vec(vec![1.0, -2.0], &[2]).unwrap();
        let (mut a, mut b) = (Variable::new("a", start.clone()), Variable::new("b", start));
        for step in 0..6u64 {
            let g = Tensor::from_vec(vec![0.3 * step as f32 - 0.5, 0.7], &[2]).unwrap();
            manual.set_learning_rate(schedule.learning_rate(step));
            manual
                .apply_gradients(&mut [&mut b], std::slice::from_ref(&g))
                .unwrap();
            scheduled.apply_gradients(&mut [&mut a], &[g]).unwrap();
            assert_eq!(a.value(), b.value(), "step {step}");
        }
        let slots: Vec<(String, Tensor)> = scheduled
            .slots()
            .into_iter()
            .map(|(n, t)| (n, t.clone()))
            .collect();
        assert_eq!(slots.len(), 2);
        // Restoring the state resumes the schedule at the restored step.
        let mut restored = Scheduled::new(Adam::default(), schedule);
        restored.set_state(6, &slots, &[vec![2]]).unwrap();
        assert_eq!(restored.iterations(), 6);
        assert_eq!(restored.learning_rate(), schedule.learning_rate(6));
        assert_eq!(
            restored.optimizer().learning_rate(),
            schedule.learning_rate(6)
        );
    }

    #[test]
    fn errors_leave_the_optimizer_unchanged_and_set_learning_rate_fixes_it() {
        let mut sgd = Scheduled::new(
            Sgd::new(0.1),
            InverseTimeDecay::new(1.0, 1, 1.0, false).unwrap(),
        );
        let mut w = Variable::new("w", Tensor::zeros(&[1]));
        sgd.apply_gradients(&mut [&mut w], &[one()]).unwrap();
        assert_eq!(sgd.optimizer().learning_rate(), 1.0);
        let bad = Tensor::zeros(&[2]);
        assert!(sgd.apply_gradients(&mut [&mut w], &[bad]).is_err());
        assert_eq!(sgd.iterations(), 1);
        assert_eq!(sgd.optimizer().learning_rate(), 1.0);
        assert_eq!(sgd.learning_rate(), 0.5);

        sgd.set_learning_rate(0.25);
        assert_eq!(sgd.schedule().name(), "Constant");
        for _ in 0..3 {
            sgd.apply_gradients(&mut [&mut w], &[one()]).unwrap();
        }
        assert_eq!(w.value().to_vec(), [-1.75]);
        let inner = sgd.into_inner();
        assert_eq!(inner.learning_rate(), 0.25);
    }

    /// Issue 11, item 11: schedules and scheduled optimisers show their
    /// values as given: counts as integers, flags as booleans, lists as lists.
    #[test]
    fn describe_shows_values_as_given() {
        let exp = ExponentialDecay::new(0.1, 100, 0.96, true).unwrap();
        assert_eq!(
            exp.describe(),
            "ExponentialDecay(initial_learning_rate=0.1, decay_steps=100, decay_rate=0.96, staircase=true)"
        );
        assert_eq!(
            InverseTimeDecay::new(0.5, 10, 0.1, false)
                .unwrap()
                .describe(),
            "InverseTimeDecay(initial_learning_rate=0.5, decay_steps=10, decay_rate=0.1, staircase=false)"
        );
        assert_eq!(
            Constant::new(0.001).unwrap().describe(),
            "Constant(learning_rate=0.001)"
        );
        assert_eq!(
            CyclicalLearningRate::new(0.001, 0.006, 2000, CyclicalMode::ExpRange { gamma: 0.99 })
                .unwrap()
                .describe(),
            "CyclicalLearningRate(initial_learning_rate=0.001, maximal_learning_rate=0.006, step_size=2000, mode=exp_range, gamma=0.99)"
        );
        assert_eq!(
            Scheduled::new(Sgd::new(0.0).with_momentum(0.9, false), exp).describe(),
            "SGD(learning_rate=ExponentialDecay(initial_learning_rate=0.1, decay_steps=100, \
             decay_rate=0.96, staircase=true), momentum=0.9, nesterov=false)"
        );
        // Every schedule's typed values name config's keys (lists grouped).
        for s in [
            Box::new(exp) as Box<dyn LearningRateSchedule>,
            Box::new(PiecewiseConstantDecay::new(vec![5], vec![0.5, 0.25]).unwrap()),
        ] {
            let keys: Vec<String> = s
                .config()
                .into_iter()
                .map(|(k, _)| k.split('/').next().unwrap_or_default().to_string())
                .collect();
            for (k, _) in s.hyperparameters() {
                assert!(keys.contains(&k), "{}: {k}", s.name());
            }
        }
    }
}
