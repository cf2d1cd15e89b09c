//! [`Var`]: a value recorded on a tape, and the differentiable ops on it.
//!
//! Each op computes its value with hebb-tensor and, when a watched value
//! flows into it, records its backward rule. The rules follow TensorFlow's
//! registered gradients (`math_grad.py`, `nn_grad.py`): broadcasting ops sum
//! the gradient back to each operand's shape; `matmul` gives `dA = g·Bᵀ`,
//! `dB = Aᵀ·g`; `div` gives `g/b` and `g·((-a/b)/b)`; `log` gives `g·(1/x)`;
//! `log1p` gives `g·(1/(1 + x))`;
//! `sigmoid` `g·y·(1-y)`; `tanh` `g·(1-y²)`; `relu` passes `g` where `x > 0`;
//! `clip` passes `g` where `min <= x <= max`; `softmax` gives
//! `(g - Σ_last g·y)·y`; `mean` divides the broadcast gradient by the count.

use hebb_tensor::Tensor;

use crate::tape::Node;
use crate::{GradientTape, Result};

mod pool;

/// A handle to a value on a [`GradientTape`]: cheap to copy, tied to the
/// tape's lifetime. Ops return new `Var`s on the same tape; combining `Var`s
/// of different tapes is an [`Error::ForeignVar`](crate::Error::ForeignVar).
#[derive(Clone, Copy)]
pub struct Var<'t> {
    pub(crate) tape: &'t GradientTape,
    pub(crate) id: usize,
}

impl std::fmt::Debug for Var<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Var")
            .field("id", &self.id)
            .field("shape", &self.shape())
            .finish()
    }
}

/// `1.0` where `x > 0`, else `0.0`.
fn positive(x: &Tensor) -> Result<Tensor> {
    Ok(x.greater(&Tensor::scalar(0.0))?)
}

/// `Some(f())` when `need`, else `None` without calling `f`.
fn when(need: bool, f: impl FnOnce() -> hebb_tensor::Result<Tensor>) -> Result<Option<Tensor>> {
    if need { Ok(Some(f()?)) } else { Ok(None) }
}

/// Broadcasts `g` (the gradient of a reduction along `axis`) back to `shape`.
fn unreduce(g: &Tensor, shape: &[usize], axis: usize, keepdims: bool) -> Result<Tensor> {
    let g = if keepdims {
        g.clone()
    } else {
        let mut kept = shape.to_vec();
        kept[axis] = 1;
        g.reshape(&kept)?
    };
    Ok(Tensor::full_on(shape, 0.0, g.device())?.add(&g)?)
}

// `add`, `sub`, `mul`, `div` and `neg` return `Result` (shapes can
// mismatch), so they cannot be the `std::ops` traits.
#[allow(clippy::should_implement_trait)]
impl<'t> Var<'t> {
    pub(crate) fn new(tape: &'t GradientTape, id: usize) -> Self {
        Self { tape, id }
    }

    /// The value (a cheap clone of the recorded tensor).
    pub fn value(&self) -> Tensor {
        self.tape.nodes.borrow()[self.id].value.clone()
    }

    /// The value's shape.
    pub fn shape(&self) -> Vec<usize> {
        self.tape.nodes.borrow()[self.id].value.shape().to_vec()
    }

    /// The tape this `Var` is recorded on.
    pub fn tape(&self) -> &'t GradientTape {
        self.tape
    }

    fn requires_grad(&self) -> bool {
        self.tape.nodes.borrow()[self.id].requires_grad
    }

    /// Records a node computed from `inputs`; `backward` is kept only if a
    /// watched value flows in.
    fn record(
        self,
        value: Tensor,
        inputs: &[Var<'t>],
        backward: impl Fn(&Tensor) -> Result<Vec<Option<Tensor>>> + 'static,
    ) -> Var<'t> {
        let requires_grad = inputs.iter().any(Var::requires_grad);
        self.tape.push(Node {
            value,
            inputs: inputs.iter().map(|v| v.id).collect(),
            backward: requires_grad.then(|| Box::new(backward) as _),
            requires_grad,
        })
    }

    /// Records a binary op whose backward rule computes the gradient of each
    /// operand only when a watched value flows into that operand.
    pub(crate) fn record_binary(
        self,
        value: Tensor,
        rhs: Var<'t>,
        backward: impl Fn(&Tensor, [bool; 2]) -> Result<[Option<Tensor>; 2]> + 'static,
    ) -> Var<'t> {
        let needs = [self.requires_grad(), rhs.requires_grad()];
        self.record(value, &[self, rhs], move |g| Ok(backward(g, needs)?.into()))
    }

    pub(crate) fn binary_inputs(self, rhs: Var<'t>, op: &'static str) -> Result<(Tensor, Tensor)> {
        self.tape.owns(rhs, op)?;
        Ok((self.value(), rhs.value()))
    }

    /// `self + rhs`, broadcasting (NumPy rules).
    ///
    /// # Errors
    /// Shape mismatch, naming both shapes; foreign `Var`.
    pub fn add(self, rhs: Var<'t>) -> Result<Var<'t>> {
        let (a, b) = self.binary_inputs(rhs, "add")?;
        let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
        Ok(self.record_binary(a.add(&b)?, rhs, move |g, [na, nb]| {
            Ok([
                when(na, || g.sum_to_shape(&sa))?,
                when(nb, || g.sum_to_shape(&sb))?,
            ])
        }))
    }

    /// `self - rhs`, broadcasting.
    ///
    /// # Errors
    /// Shape mismatch; foreign `Var`.
    pub fn sub(self, rhs: Var<'t>) -> Result<Var<'t>> {
        let (a, b) = self.binary_inputs(rhs, "sub")?;
        let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
        Ok(self.record_binary(a.sub(&b)?, rhs, move |g, [na, nb]| {
            Ok([
                when(na, || g.sum_to_shape(&sa))?,
                when(nb, || g.sum_to_shape(&sb).map(|t| t.neg()))?,
            ])
        }))
    }

    /// `self * rhs` elementwise, broadcasting.
    ///
    /// # Errors
    /// Shape mismatch; foreign `Var`.
    pub fn mul(self, rhs: Var<'t>) -> Result<Var<'t>> {
        let (a, b) = self.binary_inputs(rhs, "mul")?;
        let value = a.mul(&b)?;
        Ok(self.record_binary(value, rhs, move |g, [na, nb]| {
            Ok([
                when(na, || g.mul(&b)?.sum_to_shape(a.shape()))?,
                when(nb, || a.mul(g)?.sum_to_shape(b.shape()))?,
            ])
        }))
    }

    /// `self / rhs` elementwise, broadcasting.
    ///
    /// # Errors
    /// Shape mismatch; foreign `Var`.
    pub fn div(self, rhs: Var<'t>) -> Result<Var<'t>> {
        let (a, b) = self.binary_inputs(rhs, "div")?;
        let value = a.div(&b)?;
        Ok(self.record_binary(value, rhs, move |g, [na, nb]| {
            Ok([
                when(na, || g.div(&b)?.sum_to_shape(a.shape()))?,
                when(nb, || {
                    g.mul(&a.neg().div(&b)?.div(&b)?)?.sum_to_shape(b.shape())
                })?,
            ])
        }))
    }

    /// Elementwise maximum, broadcasting; at ties the gradient goes to `self`.
    ///
    /// # Errors
    /// Shape mismatch; foreign `Var`.
    pub fn maximum(self, rhs: Var<'t>) -> Result<Var<'t>> {
        let (a, b) = self.binary_inputs(rhs, "maximum")?;
        let value = a.maximum(&b)?;
        Ok(self.record_binary(value, rhs, move |g, [na, nb]| {
            let ga = g.mul(&a.greater_equal(&b)?)?;
            Ok([
                when(na, || ga.sum_to_shape(a.shape()))?,
                when(nb, || g.sub(&ga)?.sum_to_shape(b.shape()))?,
            ])
        }))
    }

    /// Elementwise minimum, broadcasting; at ties the gradient goes to `self`.
    ///
    /// # Errors
    /// Shape mismatch; foreign `Var`.
    pub fn minimum(self, rhs: Var<'t>) -> Result<Var<'t>> {
        let (a, b) = self.binary_inputs(rhs, "minimum")?;
        let value = a.minimum(&b)?;
        Ok(self.record_binary(value, rhs, move |g, [na, nb]| {
            let ga = g.mul(&a.less_equal(&b)?)?;
            Ok([
                when(na, || ga.sum_to_shape(a.shape()))?,
                when(nb, || g.sub(&ga)?.sum_to_shape(b.shape()))?,
            ])
        }))
    }

    /// Matrix product `[m, k] · [k, n] -> [m, n]` (`tf.matmul`). The
    /// backward pass computes `dA = g·Bᵀ` only when `A` needs a gradient (not
    /// for a network's input batch), and `dB = Aᵀ·g` only when `B` does.
    ///
    /// # Errors
    /// Rank or inner-dimension mismatch, naming both shapes; foreign `Var`.
    pub fn matmul(self, rhs: Var<'t>) -> Result<Var<'t>> {
        let (a, b) = self.binary_inputs(rhs, "matmul")?;
        let value = a.matmul(&b)?;
        Ok(self.record_binary(value, rhs, move |g, [na, nb]| {
            Ok([
                when(na, || g.matmul_with(&b, false, true))?,
                when(nb, || a.matmul_with(g, true, false))?,
            ])
        }))
    }

    fn unary(
        self,
        value: Tensor,
        backward: impl Fn(&Tensor) -> Result<Tensor> + 'static,
    ) -> Var<'t> {
        self.record(value, &[self], move |g| Ok(vec![Some(backward(g)?)]))
    }

    /// `-x`.
    pub fn neg(self) -> Var<'t> {
        let value = self.value().neg();
        self.unary(value, |g| Ok(g.neg()))
    }

    /// `x + c` for a scalar `c`.
    pub fn add_scalar(self, c: f32) -> Var<'t> {
        let value = self.value().add_scalar(c);
        self.unary(value, |g| Ok(g.clone()))
    }

    /// `x * c` for a scalar `c`.
    pub fn mul_scalar(self, c: f32) -> Var<'t> {
        let value = self.value().mul_scalar(c);
        self.unary(value, move |g| Ok(g.mul_scalar(c)))
    }

    /// `x^p`; gradient `g · p · x^(p-1)`.
    pub fn powf(self, p: f32) -> Var<'t> {
        let x = self.value();
        let value = x.powf(p);
        self.unary(value, move |g| Ok(g.mul(&x.powf(p - 1.0).mul_scalar(p))?))
    }

    /// `x²`; gradient `g · 2x`.
    pub fn square(self) -> Var<'t> {
        let x = self.value();
        let value = x.square();
        self.unary(value, move |g| Ok(g.mul(&x.mul_scalar(2.0))?))
    }

    /// `√x`; gradient `0.5 g / y`.
    pub fn sqrt(self) -> Var<'t> {
        let y = self.value().sqrt();
        let out = y.clone();
        self.unary(out, move |g| Ok(g.mul_scalar(0.5).div(&y)?))
    }

    /// `|x|`; gradient `g · sign(x)`.
    pub fn abs(self) -> Var<'t> {
        let x = self.value();
        let value = x.abs();
        self.unary(value, move |g| Ok(g.mul(&x.sign())?))
    }

    /// `e^x`; gradient `g · y`.
    pub fn exp(self) -> Var<'t> {
        let y = self.value().exp();
        let out = y.clone();
        self.unary(out, move |g| Ok(g.mul(&y)?))
    }

    /// Natural log; gradient `g · (1/x)`.
    pub fn log(self) -> Var<'t> {
        let x = self.value();
        let value = x.log();
        self.unary(value, move |g| Ok(g.mul(&x.reciprocal())?))
    }

    /// `ln(1 + x)` (`tf.math.log1p`), exact for small `x` where `(1 + x).log()`
    /// rounds to 0; gradient `g · (1/(1 + x))`.
    pub fn log1p(self) -> Var<'t> {
        let x = self.value();
        let value = x.log1p();
        self.unary(value, move |g| Ok(g.mul(&x.add_scalar(1.0).reciprocal())?))
    }

    /// Logistic sigmoid `1/(1+e^-x)`; gradient `g · y · (1 - y)` (lecture 12.5).
    pub fn sigmoid(self) -> Var<'t> {
        let y = self.value().sigmoid();
        let out = y.clone();
        self.unary(out, move |g| {
            Ok(g.mul(&y)?.mul(&y.neg().add_scalar(1.0))?)
        })
    }

    /// `tanh(x)`; gradient `g · (1 - y²)` (lecture 12.5).
    pub fn tanh(self) -> Var<'t> {
        let y = self.value().tanh();
        let out = y.clone();
        self.unary(out, move |g| Ok(g.mul(&y.square().neg().add_scalar(1.0))?))
    }

    /// `max(0, x)`; the gradient passes where `x > 0` (lecture 12.5).
    pub fn relu(self) -> Var<'t> {
        let x = self.value();
        let value = x.relu();
        self.unary(value, move |g| Ok(g.mul(&positive(&x)?)?))
    }

    /// `x >= 0 ? x : slope·x`; gradient `g` where `x > 0`, else `slope·g`
    /// (Leaky-ReLU; the lecture's `z/a` is `slope = 1/a`).
    pub fn leaky_relu(self, slope: f32) -> Var<'t> {
        let x = self.value();
        let value = x.leaky_relu(slope);
        self.unary(value, move |g| {
            // 1 where x > 0, else slope: pos + (1 - pos) * slope.
            let pos = positive(&x)?;
            Ok(g.mul(&pos.add(&pos.neg().add_scalar(1.0).mul_scalar(slope))?)?)
        })
    }

    /// Clamps to `[min, max]` (`tf.clip_by_value`); the gradient passes only
    /// where `min <= x <= max`, none where the value was clipped.
    ///
    /// # Errors
    /// `min > max` or a NaN bound.
    pub fn clip(self, min: f32, max: f32) -> Result<Var<'t>> {
        let x = self.value();
        let value = x.clip(min, max)?;
        Ok(self.unary(value, move |g| {
            let inside = x
                .greater_equal(&Tensor::scalar(min))?
                .mul(&x.less_equal(&Tensor::scalar(max))?)?;
            Ok(g.mul(&inside)?)
        }))
    }

    /// Softmax over the last axis (`tf.nn.softmax`); gradient `(g - Σ g·y)·y`.
    ///
    /// # Errors
    /// A scalar or an empty last axis.
    pub fn softmax(self) -> Result<Var<'t>> {
        let y = self.value().softmax()?;
        let out = y.clone();
        Ok(self.unary(out, move |g| {
            let last = y.rank() - 1;
            let s = g.mul(&y)?.sum(last, true)?;
            Ok(g.sub(&s)?.mul(&y)?)
        }))
    }

    /// Sum along `axis` (`tf.reduce_sum(x, axis, keepdims)`).
    ///
    /// # Errors
    /// `axis >= rank`.
    pub fn sum(self, axis: usize, keepdims: bool) -> Result<Var<'t>> {
        let x = self.value();
        let value = x.sum(axis, keepdims)?;
        let shape = x.shape().to_vec();
        Ok(self.unary(value, move |g| unreduce(g, &shape, axis, keepdims)))
    }

    /// Mean along `axis` (`tf.reduce_mean(x, axis, keepdims)`).
    ///
    /// # Errors
    /// `axis >= rank`.
    pub fn mean(self, axis: usize, keepdims: bool) -> Result<Var<'t>> {
        let x = self.value();
        let value = x.mean(axis, keepdims)?;
        let shape = x.shape().to_vec();
        let n = shape[axis] as f32;
        Ok(self.unary(value, move |g| {
            Ok(unreduce(g, &shape, axis, keepdims)?.div(&Tensor::scalar(n))?)
        }))
    }

    /// Sum of all elements, a scalar (`tf.reduce_sum(x)`).
    pub fn sum_all(self) -> Var<'t> {
        let x = self.value();
        let shape = x.shape().to_vec();
        self.unary(x.sum_all(), move |g| {
            Ok(Tensor::full_on(&shape, 0.0, g.device())?.add(g)?)
        })
    }

    /// Mean of all elements, a scalar (`tf.reduce_mean(x)`).
    pub fn mean_all(self) -> Var<'t> {
        let x = self.value();
        let shape = x.shape().to_vec();
        let n = x.len() as f32;
        self.unary(x.mean_all(), move |g| {
            Ok(Tensor::full_on(&shape, 0.0, g.device())?
                .add(g)?
                .div(&Tensor::scalar(n))?)
        })
    }

    /// The same elements in a new shape of equal element count.
    ///
    /// # Errors
    /// Element counts differ.
    pub fn reshape(self, shape: &[usize]) -> Result<Var<'t>> {
        let x = self.value();
        let original = x.shape().to_vec();
        Ok(self.unary(x.reshape(shape)?, move |g| Ok(g.reshape(&original)?)))
    }
}
