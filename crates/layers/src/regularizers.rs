//! [`Regularizer`]: weight penalties added to the loss (Keras
//! `keras.regularizers`: `L1`, `L2`, `L1L2`).
//!
//! `penalty(w) = l1 · Σ|w| + l2 · Σ w²`, with gradient
//! `l1 · sign(w) + 2 · l2 · w` (`sign(0) = 0`, as TensorFlow's). Keras adds
//! every layer's penalty to the loss `fit` minimises and `evaluate` reports.

use hebb_tensor::Tensor;

use crate::{Error, Result};

/// A weight penalty (Keras `kernel_regularizer=`); see the module docs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Regularizer {
    /// The L1 factor (Keras `l1`).
    pub l1: f32,
    /// The L2 factor (Keras `l2`).
    pub l2: f32,
}

impl Regularizer {
    /// Keras `regularizers.L1(l1)` (Keras' default factor is 0.01).
    pub fn l1(l1: f32) -> Self {
        Self { l1, l2: 0.0 }
    }

    /// Keras `regularizers.L2(l2)` (Keras' default factor is 0.01).
    pub fn l2(l2: f32) -> Self {
        Self { l1: 0.0, l2 }
    }

    /// Keras `regularizers.L1L2(l1, l2)`.
    pub fn l1_l2(l1: f32, l2: f32) -> Self {
        Self { l1, l2 }
    }

    /// Checks the factors: finite and not negative.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the factor.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("l1", self.l1), ("l2", self.l2)] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::InvalidArgument {
                    what: "kernel_regularizer",
                    detail: format!("{name} must be a finite number >= 0, got {v}"),
                });
            }
        }
        Ok(())
    }

    /// Keras' class name: `L1`, `L2` or `L1L2`.
    pub fn class_name(&self) -> &'static str {
        match (self.l1 != 0.0, self.l2 != 0.0) {
            (true, false) => "L1",
            (false, true) => "L2",
            _ => "L1L2",
        }
    }

    /// The Keras serialisation (`{"module": "keras.regularizers",
    /// "class_name": "L2", "config": {"l2": 0.01}}`).
    pub fn to_keras(&self) -> serde_json::Value {
        let config = match self.class_name() {
            "L1" => serde_json::json!({ "l1": self.l1 }),
            "L2" => serde_json::json!({ "l2": self.l2 }),
            _ => serde_json::json!({ "l1": self.l1, "l2": self.l2 }),
        };
        serde_json::json!({
            "module": "keras.regularizers",
            "class_name": self.class_name(),
            "config": config,
            "registered_name": null,
        })
    }

    /// Reads a Keras serialisation (`null` is none; also the short forms
    /// `"l1"`, `"l2"`, `"l1_l2"` with Keras' default factor 0.01).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for another class or bad factors.
    pub fn from_keras(value: &serde_json::Value) -> Result<Option<Self>> {
        let bad = |detail: String| Error::InvalidArgument {
            what: "kernel_regularizer",
            detail,
        };
        let r = match value {
            serde_json::Value::Null => return Ok(None),
            serde_json::Value::String(s) => match s.as_str() {
                "l1" | "L1" => Self::l1(0.01),
                "l2" | "L2" => Self::l2(0.01),
                "l1_l2" | "L1L2" => Self::l1_l2(0.01, 0.01),
                other => return Err(bad(format!("unknown regularizer {other:?}"))),
            },
            serde_json::Value::Object(o) => {
                let class = o.get("class_name").and_then(|c| c.as_str()).unwrap_or("");
                let config = o.get("config").cloned().unwrap_or_default();
                let factor = |key: &str| -> Result<f32> {
                    match config.get(key) {
                        None | Some(serde_json::Value::Null) => Ok(0.0),
                        Some(v) => v
                            .as_f64()
                            .map(|f| f as f32)
                            .ok_or_else(|| bad(format!("{key} is not a number: {v}"))),
                    }
                };
                match class {
                    "L1" | "L2" | "L1L2" => Self::l1_l2(factor("l1")?, factor("l2")?),
                    other => {
                        return Err(bad(format!(
                            "hebb has the L1, L2 and L1L2 regularizers, not {other:?}"
                        )));
                    }
                }
            }
            other => return Err(bad(format!("cannot read {other}"))),
        };
        r.validate()?;
        Ok(Some(r))
    }

    /// `l1 · Σ|w| + l2 · Σ w²`, summed in `f64` and rounded once.
    pub fn penalty(&self, w: &Tensor) -> f32 {
        let (mut a, mut s) = (0.0f64, 0.0f64);
        for &v in w.as_slice() {
            a += f64::from(v.abs());
            s += f64::from(v) * f64::from(v);
        }
        (f64::from(self.l1) * a + f64::from(self.l2) * s) as f32
    }

    /// Adds the penalty's gradient `l1 · sign(w) + 2 · l2 · w` to `grad`
    /// (both host slices of the weight's length).
    pub fn add_gradient(&self, w: &[f32], grad: &mut [f32]) {
        for (g, &v) in grad.iter_mut().zip(w) {
            let sign = if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                0.0
            };
            *g += self.l1 * sign + 2.0 * self.l2 * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn penalty_and_gradient() {
        let w = Tensor::from_vec(vec![1.0, -2.0, 0.0], &[3]).unwrap();
        let r = Regularizer::l1_l2(0.1, 0.01);
        assert!((r.penalty(&w) - (0.1 * 3.0 + 0.01 * 5.0)).abs() < 1e-7);
        let mut g = vec![0.0; 3];
        r.add_gradient(w.as_slice(), &mut g);
        assert_eq!(g, vec![0.1 + 0.02, -0.1 - 0.04, 0.0]);
    }

    #[test]
    fn keras_round_trip() {
        for r in [
            Regularizer::l1(0.5),
            Regularizer::l2(0.01),
            Regularizer::l1_l2(0.1, 0.2),
        ] {
            assert_eq!(Regularizer::from_keras(&r.to_keras()).unwrap(), Some(r));
        }
        assert_eq!(
            Regularizer::from_keras(&serde_json::json!("l2")).unwrap(),
            Some(Regularizer::l2(0.01))
        );
        assert!(Regularizer::from_keras(&serde_json::json!({"class_name": "Orthogonal"})).is_err());
        assert!(Regularizer::l2(-1.0).validate().is_err());
    }
}
