//! Hyperparameters for display: each value in the type it was given in, so
//! that a summary prints `learning_rate=0.001` (an `f32`, in `f32`'s
//! shortest form, not the `f64` widening `0.0010000000474974513` that
//! [`Optimizer::config`](crate::Optimizer::config) holds for saving) and
//! `amsgrad=false` (not `0`).

use std::fmt;

/// One hyperparameter's value, as it was given; [`fmt::Display`] writes it
/// as a reader of the code that set it would expect.
///
/// ```
/// use hebb_optim::HyperparameterValue as V;
///
/// assert_eq!(V::F32(0.001).to_string(), "0.001");
/// assert_eq!(V::F64(1e-7).to_string(), "1e-7");
/// assert_eq!(V::F64(0.0).to_string(), "0.0");
/// assert_eq!(V::Bool(false).to_string(), "false");
/// assert_eq!(V::List(vec![V::Int(100), V::Int(200)]).to_string(), "[100, 200]");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum HyperparameterValue {
    /// An `f32` (a learning rate, as Keras keeps it in a `float32`
    /// variable): its shortest decimal form that reads back as the same
    /// `f32` (`0.001`).
    F32(f32),
    /// An `f64` (Keras' Python floats: `beta_1`, `epsilon`, `momentum`):
    /// its shortest round-trip form (`0.9`, `1e-7`, `0.0`).
    F64(f64),
    /// A count (`decay_steps`, `step_size`, a boundary step).
    Int(u64),
    /// A flag (`nesterov`, `centered`, `amsgrad`, `staircase`): `true` or `false`.
    Bool(bool),
    /// A choice among names (a cyclical schedule's `mode`), shown bare.
    Name(&'static str),
    /// A list of values (`boundaries`, `values`): `[a, b, ...]`.
    List(Vec<HyperparameterValue>),
    /// An object with hyperparameters of its own (a learning-rate schedule
    /// given as `learning_rate`): `Class(key=value, ...)`, as
    /// [`describe`] writes it.
    Object {
        /// The class name, e.g. `ExponentialDecay`.
        class: &'static str,
        /// Its hyperparameters.
        config: Vec<(String, HyperparameterValue)>,
    },
}

impl fmt::Display for HyperparameterValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // `Debug` of floats is Rust's shortest round-trip form, with an
            // exponent for very small and very large magnitudes (`1e-7`).
            Self::F32(v) => write!(f, "{v:?}"),
            Self::F64(v) => write!(f, "{v:?}"),
            Self::Int(v) => write!(f, "{v}"),
            Self::Bool(v) => write!(f, "{v}"),
            Self::Name(v) => f.write_str(v),
            Self::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Self::Object { class, config } => f.write_str(&describe(class, config)),
        }
    }
}

/// `Class(key=value, ...)`: an optimiser's or a schedule's summary line,
/// as Keras' constructors read (`Adam(learning_rate=0.001, beta_1=0.9,
/// beta_2=0.999, epsilon=1e-7, amsgrad=false)`).
pub fn describe<K: AsRef<str>>(class: &str, config: &[(K, HyperparameterValue)]) -> String {
    let fields: Vec<String> = config
        .iter()
        .map(|(k, v)| format!("{}={v}", k.as_ref()))
        .collect();
    format!("{class}({})", fields.join(", "))
}
