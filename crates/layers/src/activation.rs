//! Activation functions (lecture 12.5), on plain tensors and on the tape.
//!
//! | name | `f(z)` | `f'(z)` |
//! |---|---|---|
//! | step | `1` if `z >= 0`, else `0` | `0` (undefined at 0) |
//! | logistic | `σ(z) = 1/(1+e^-z)` | `σ(z)(1-σ(z))` |
//! | tanh | `(e^z - e^-z)/(e^z + e^-z)` | `1 - tanh²(z)` |
//! | ReLU | `max(0, z)` | `1` if `z > 0`, else `0` |
//! | Leaky-ReLU | `z` if `z >= 0`, else `z/a`, `a > 1` (Keras: `negative_slope · z`, `negative_slope = 1/a`) | `1` if `z > 0`, else `1/a` |
//! | softmax | `e^{z_i} / Σ_j e^{z_j}` over the last axis | Jacobian `y_i(δ_ij - y_j)` |
//!
//! At a kink the derivative is TensorFlow's choice (the right-hand one only
//! where `z > 0`). PReLU and RReLU have state and are the layers
//! [`PRelu`](crate::PRelu) and [`RRelu`](crate::RRelu).

use std::fmt;

use hebb_autograd::Var;
use hebb_tensor::Tensor;
use hebb_tensor::ops::softmax::softmax_row_in_place;
use hebb_tensor::ops::unary::sigmoid;

use crate::{Error, Result};

/// A stateless activation function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// The identity (`activation=None` in Keras).
    Linear,
    /// The M-P neuron's step function (lecture 12.1); its gradient is zero.
    Step,
    /// The logistic function `σ(z)` (`"sigmoid"` in Keras).
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// `max(0, z)`.
    Relu,
    /// The lecture's Leaky-ReLU: `z/a` for `z < 0`, with `a > 1`. Keras
    /// writes it with the slope instead, `negative_slope · z`
    /// (`LeakyReLU(negative_slope)`, `alpha` in Keras 2): `a = 1/negative_slope`;
    /// [`Activation::leaky_relu`] makes it from Keras' slope and
    /// [`negative_slope`](Activation::negative_slope) gives it back.
    ///
    /// hebb accepts `a ∈ (1, ∞]`, i.e. `negative_slope ∈ [0, 1)`; `a = ∞`
    /// (slope 0) is ReLU. Keras 3 accepts any `negative_slope >= 0`, but a
    /// slope of 1 or more is no longer the lecture's Leaky-ReLU (1 is the
    /// identity, more makes negative inputs steeper than positive ones), so
    /// hebb refuses it, as it refuses `a <= 1`, wherever the activation
    /// enters a model (`Sequential::add`, loading a file) and when it is applied.
    LeakyRelu {
        /// The divisor `a ∈ (1, ∞]` of negative inputs.
        a: f32,
    },
    /// Softmax over the last axis (output layers of classifiers).
    Softmax,
}

impl Activation {
    /// Leaky-ReLU with Keras' `negative_slope` (Keras 3
    /// `LeakyReLU(negative_slope=0.3)`, `keras.activations.leaky_relu(x,
    /// negative_slope=0.2)`): `LeakyRelu { a: 1 / negative_slope }`, the
    /// lecture's divisor rounded to `f32`. The slope applied to negative
    /// inputs is `1/a`, which is `negative_slope` or an `f32` neighbour of it
    /// (`0.01`, `0.1`, `0.2`, `0.3` come back exactly).
    ///
    /// A slope outside `[0, 1)` (or NaN) gives an activation that
    /// [`validate`](Self::validate) refuses, naming both forms; `0` gives
    /// `a = ∞`, which is ReLU.
    ///
    /// ```
    /// use hebb_layers::Activation;
    ///
    /// let lrelu = Activation::leaky_relu(0.1);
    /// assert_eq!(lrelu, Activation::LeakyRelu { a: 10.0 });
    /// assert_eq!(lrelu.negative_slope(), Some(0.1));
    /// assert_eq!(lrelu.to_string(), "leaky_relu (a=10, negative_slope=0.1)");
    /// assert!(Activation::leaky_relu(1.5).validate().is_err());
    /// ```
    pub fn leaky_relu(negative_slope: f32) -> Self {
        Activation::LeakyRelu {
            a: 1.0 / negative_slope,
        }
    }

    /// Keras' `negative_slope` of a Leaky-ReLU, `1/a` (`None` for the
    /// other activations).
    pub fn negative_slope(&self) -> Option<f32> {
        match *self {
            Activation::LeakyRelu { a } => Some(1.0 / a),
            _ => None,
        }
    }

    /// The Keras-style name: `linear`, `step`, `sigmoid`, `tanh`, `relu`, `leaky_relu`, `softmax`.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Step => "step",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Softmax => "softmax",
        }
    }

    /// Checks the hyperparameters (Leaky-ReLU's `a > 1`, i.e.
    /// `negative_slope = 1/a` in `[0, 1)`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the activation and the bad value in
    /// both forms, e.g. `leaky_relu: the lecture's divisor a must be > 1
    /// (Keras' negative_slope = 1/a in [0, 1)), got 0.01 (negative_slope 100)`.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Activation::LeakyRelu { a } if a.is_nan() || a <= 1.0 => Err(Error::InvalidArgument {
                what: "leaky_relu",
                detail: format!(
                    "the lecture's divisor a must be > 1 (Keras' negative_slope = 1/a in [0, 1)), \
                     got {a} (negative_slope {})",
                    1.0 / a
                ),
            }),
            _ => Ok(()),
        }
    }

    /// `f(z)` elementwise (softmax: over the last axis). Shape preserved.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for Leaky-ReLU with `a <= 1`; softmax of a scalar.
    pub fn call(&self, z: &Tensor) -> Result<Tensor> {
        self.validate()?;
        Ok(match *self {
            Activation::Linear => z.clone(),
            Activation::Step => z.step(),
            Activation::Sigmoid => z.sigmoid(),
            Activation::Tanh => z.tanh(),
            Activation::Relu => z.relu(),
            Activation::LeakyRelu { a } => z.leaky_relu(1.0 / a),
            Activation::Softmax => z.softmax()?,
        })
    }

    /// `f'(z)` elementwise, the factor the chain rule multiplies by (lecture
    /// 12.4, 12.5). For softmax it is the Jacobian's diagonal `y(1 - y)`.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub fn derivative(&self, z: &Tensor) -> Result<Tensor> {
        self.validate()?;
        let ones = z.ones_like();
        Ok(match *self {
            Activation::Linear => ones,
            Activation::Step => z.zeros_like(),
            Activation::Sigmoid | Activation::Softmax => {
                let y = self.call(z)?;
                y.mul(&ones.sub(&y)?)?
            }
            Activation::Tanh => ones.sub(&z.tanh().square())?,
            Activation::Relu => z.greater(&Tensor::scalar(0.0))?,
            Activation::LeakyRelu { a } => {
                let pos = z.greater(&Tensor::scalar(0.0))?;
                pos.add(&ones.sub(&pos)?.mul_scalar(1.0 / a))?
            }
        })
    }

    /// `f(z)` in place on a row-major `[rows, width]` buffer (softmax: per
    /// row of `width`), with the same rounding as [`call`](Self::call); for
    /// training loops that keep their own buffers.
    ///
    /// # Errors
    /// As [`call`](Self::call); [`Error::InvalidArgument`] if `width` is 0 or
    /// does not divide the buffer's length.
    pub fn apply_in_place(&self, z: &mut [f32], width: usize) -> Result<()> {
        self.validate()?;
        check_width(self.name(), z.len(), width)?;
        // Compiled for the CPU's widest vectors (AVX-512/AVX2), chosen at run time.
        pulp::Arch::new().dispatch(|| match *self {
            Activation::Linear => {}
            Activation::Step => z
                .iter_mut()
                .for_each(|v| *v = if *v >= 0.0 { 1.0 } else { 0.0 }),
            Activation::Sigmoid => z.iter_mut().for_each(|v| *v = sigmoid(*v)),
            Activation::Tanh => z.iter_mut().for_each(|v| *v = v.tanh()),
            // NaN stays NaN, as in tf.nn.relu.
            Activation::Relu => z
                .iter_mut()
                .for_each(|v| *v = if *v < 0.0 { 0.0 } else { *v }),
            Activation::LeakyRelu { a } => {
                let slope = 1.0 / a;
                z.iter_mut()
                    .for_each(|v| *v = if *v < 0.0 { *v * slope } else { *v });
            }
            Activation::Softmax => z.chunks_exact_mut(width).for_each(|row| {
                softmax_row_in_place(row);
            }),
        });
        Ok(())
    }

    /// The backward pass in place: `delta` (`dL/dy`, `[rows, width]`) becomes
    /// `dL/dz`, given the outputs `y = f(z)`, by the rules of
    /// [`apply`](Self::apply): `g·y·(1 - y)` (sigmoid), `g·(1 - y²)` (tanh),
    /// `g` where `y > 0` else `0` (ReLU) or `g/a` (Leaky-ReLU, `y > 0` exactly
    /// where `z > 0`), `(g - Σ g·y)·y` per row (softmax), `0` (step).
    ///
    /// # Errors
    /// As [`apply_in_place`](Self::apply_in_place); [`Error::InvalidArgument`]
    /// if `y` and `delta` differ in length.
    pub fn backprop_in_place(&self, y: &[f32], delta: &mut [f32], width: usize) -> Result<()> {
        self.validate()?;
        check_width(self.name(), delta.len(), width)?;
        if y.len() != delta.len() {
            return Err(Error::InvalidArgument {
                what: "backprop_in_place",
                detail: format!(
                    "outputs hold {} values but the gradient {}",
                    y.len(),
                    delta.len()
                ),
            });
        }
        pulp::Arch::new().dispatch(|| match *self {
            Activation::Linear => {}
            Activation::Step => delta.fill(0.0),
            Activation::Sigmoid => delta
                .iter_mut()
                .zip(y)
                .for_each(|(g, &y)| *g = *g * y * (1.0 - y)),
            Activation::Tanh => delta
                .iter_mut()
                .zip(y)
                .for_each(|(g, &y)| *g *= 1.0 - y * y),
            Activation::Relu => delta
                .iter_mut()
                .zip(y)
                .for_each(|(g, &y)| *g *= if y > 0.0 { 1.0 } else { 0.0 }),
            Activation::LeakyRelu { a } => {
                let slope = 1.0 / a;
                delta
                    .iter_mut()
                    .zip(y)
                    .for_each(|(g, &y)| *g *= if y > 0.0 { 1.0 } else { slope });
            }
            Activation::Softmax => {
                for (g, y) in delta.chunks_exact_mut(width).zip(y.chunks_exact(width)) {
                    let s: f32 = g.iter().zip(y).map(|(g, y)| g * y).sum();
                    g.iter_mut().zip(y).for_each(|(g, &y)| *g = (*g - s) * y);
                }
            }
        });
        Ok(())
    }

    /// The backward pass on tensors of any device: `dL/dz` `[rows, width]`
    /// from `dL/dy` (`delta`) and the outputs `y = f(z)`, by the rules of
    /// [`backprop_in_place`](Self::backprop_in_place), with the same
    /// rounding except for softmax's row sums (summed in another order).
    /// Used where the buffers live on a GPU.
    ///
    /// # Errors
    /// As [`call`](Self::call); shape errors if `y` and `delta` differ;
    /// device errors if they are on different devices.
    pub fn backprop(&self, y: &Tensor, delta: &Tensor) -> Result<Tensor> {
        self.validate()?;
        let zero = || Tensor::full_on(&[], 0.0, y.device());
        Ok(match *self {
            Activation::Linear => delta.clone(),
            Activation::Step => delta.zeros_like(),
            // (g·y)·(1 - y), in the in-place kernel's order.
            Activation::Sigmoid => delta.mul(y)?.mul(&y.neg().add_scalar(1.0))?,
            Activation::Tanh => delta.mul(&y.square().neg().add_scalar(1.0))?,
            Activation::Relu => delta.mul(&y.greater(&zero()?)?)?,
            Activation::LeakyRelu { a } => {
                // m + (1 - m)·slope is exactly 1 or exactly the slope.
                let m = y.greater(&zero()?)?;
                delta.mul(&m.add(&m.neg().add_scalar(1.0).mul_scalar(1.0 / a))?)?
            }
            Activation::Softmax => {
                let s = delta.mul(y)?.sum(y.rank().saturating_sub(1), true)?;
                delta.sub(&s)?.mul(y)?
            }
        })
    }

    /// `f(z)` recorded on `z`'s tape. The step function breaks the chain
    /// (its gradient is zero almost everywhere).
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub fn apply<'t>(&self, z: Var<'t>) -> Result<Var<'t>> {
        self.validate()?;
        Ok(match *self {
            Activation::Linear => z,
            Activation::Step => z.tape().constant(z.value().step()),
            Activation::Sigmoid => z.sigmoid(),
            Activation::Tanh => z.tanh(),
            Activation::Relu => z.relu(),
            Activation::LeakyRelu { a } => z.leaky_relu(1.0 / a),
            Activation::Softmax => z.softmax()?,
        })
    }
}

impl fmt::Display for Activation {
    /// The [`name`](Activation::name), and for Leaky-ReLU both of its
    /// parameters, the lecture's and Keras': `leaky_relu (a=10, negative_slope=0.1)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Activation::LeakyRelu { a } => {
                write!(f, "leaky_relu (a={a}, negative_slope={})", 1.0 / a)
            }
            _ => f.write_str(self.name()),
        }
    }
}

/// `width` must be positive and divide `len`.
fn check_width(what: &'static str, len: usize, width: usize) -> Result<()> {
    if width == 0 || !len.is_multiple_of(width) {
        return Err(Error::InvalidArgument {
            what,
            detail: format!("a buffer of {len} values is not rows of width {width}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivative_matches_lecture_formulas() {
        let z = Tensor::from_vec(vec![-2., -1., 0., 1., 2.], &[5]).unwrap();
        let d = Activation::Sigmoid.derivative(&z).unwrap().to_vec();
        assert!((d[2] - 0.25).abs() < 1e-7);
        let d = Activation::Tanh.derivative(&z).unwrap().to_vec();
        assert!((d[2] - 1.0).abs() < 1e-7 && (d[3] - 0.419_974_3).abs() < 1e-6);
        assert_eq!(
            Activation::Relu.derivative(&z).unwrap().to_vec(),
            vec![0., 0., 0., 1., 1.]
        );
        let lr = Activation::LeakyRelu { a: 4.0 };
        assert_eq!(lr.call(&z).unwrap().to_vec(), vec![-0.5, -0.25, 0., 1., 2.]);
        assert_eq!(
            lr.derivative(&z).unwrap().to_vec(),
            vec![0.25, 0.25, 0.25, 1., 1.]
        );
        assert!(Activation::LeakyRelu { a: 0.5 }.call(&z).is_err());
        assert_eq!(
            Activation::Step.derivative(&z).unwrap().to_vec(),
            vec![0.; 5]
        );
    }

    /// The in-place forward and backward passes give the bits of `call` and
    /// of the tape's gradient (softmax's row sum may round differently).
    #[test]
    fn in_place_passes_match_call_and_the_tape() {
        use hebb_autograd::GradientTape;
        let z: Vec<f32> = (0..24).map(|i| (i as f32 - 11.5) * 0.37).collect();
        let g: Vec<f32> = (0..24).map(|i| ((i * 7 % 5) as f32 - 2.0) * 0.3).collect();
        let zt = Tensor::from_vec(z.clone(), &[4, 6]).unwrap();
        for act in [
            Activation::Linear,
            Activation::Step,
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Relu,
            Activation::LeakyRelu { a: 3.0 },
            Activation::Softmax,
        ] {
            let mut y = z.clone();
            act.apply_in_place(&mut y, 6).unwrap();
            assert_eq!(y, act.call(&zt).unwrap().to_vec(), "{}", act.name());
            let tape = GradientTape::new();
            let zv = tape.watch_tensor(zt.clone());
            let out = act.apply(zv).unwrap();
            let target = out
                .mul(tape.constant(Tensor::from_vec(g.clone(), &[4, 6]).unwrap()))
                .unwrap()
                .sum_all();
            let expected = tape.gradient(target, &[zv]).unwrap().remove(0).to_vec();
            let mut delta = g.clone();
            act.backprop_in_place(&y, &mut delta, 6).unwrap();
            // The tensor backward pass (what GPUs run) agrees with it.
            let yt = Tensor::from_vec(y.clone(), &[4, 6]).unwrap();
            let gt = Tensor::from_vec(g.clone(), &[4, 6]).unwrap();
            let on_tensors = act.backprop(&yt, &gt).unwrap().to_vec();
            for (i, (a, b)) in on_tensors.iter().zip(&delta).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-7,
                    "{} backprop [{i}]: {a} vs {b}",
                    act.name()
                );
            }
            for (i, (a, b)) in delta.iter().zip(&expected).enumerate() {
                let exact = act != Activation::Softmax;
                assert!(
                    if exact {
                        a.to_bits() == b.to_bits() || (*a == 0.0 && *b == 0.0)
                    } else {
                        (a - b).abs() < 1e-7
                    },
                    "{} [{i}]: {a} vs {b}",
                    act.name()
                );
            }
        }
        let mut short = vec![0.0; 5];
        assert!(Activation::Softmax.apply_in_place(&mut short, 3).is_err());
        assert!(
            Activation::Relu
                .backprop_in_place(&[0.0; 4], &mut short, 1)
                .is_err()
        );
    }
}
