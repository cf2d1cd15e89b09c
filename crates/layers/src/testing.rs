//! Helpers of the layers' unit tests: seeded random tensors, the tape's
//! values and gradients a layer's step is compared with, and tolerant
//! comparisons.

use hebb_autograd::GradientTape;
use hebb_tensor::Tensor;
use hebb_tensor::random::chacha;
use rand::Rng;

use crate::{Layer, Pass, Result};

/// A tensor of `shape` drawn uniformly from `[lo, hi)` with generator seed `seed`.
pub(crate) fn uniform(shape: &[usize], seed: u64, lo: f32, hi: f32) -> Tensor {
    let mut rng = chacha(seed);
    let n = shape.iter().product();
    Tensor::from_vec((0..n).map(|_| rng.random_range(lo..hi)).collect(), shape).unwrap()
}

/// A tensor of `shape` drawn uniformly from `[-1, 1)` with seed `seed`.
pub(crate) fn random(shape: &[usize], seed: u64) -> Tensor {
    uniform(shape, seed, -1.0, 1.0)
}

/// What the tape gives for a layer's [`Layer::call`] on `x` and the loss
/// `L = Σ g · y`: the output `y`, `dL/dx` and `dL/dw` for every weight of
/// [`Layer::weights`] (the regulariser's penalty is not on the tape).
pub(crate) struct TapeReference {
    pub y: Tensor,
    pub dx: Tensor,
    pub dweights: Vec<Tensor>,
}

/// See [`TapeReference`].
pub(crate) fn tape_reference(
    layer: &dyn Layer,
    x: &Tensor,
    g: &Tensor,
    training: bool,
) -> Result<TapeReference> {
    let tape = GradientTape::new();
    let xv = tape.watch_tensor(x.clone());
    let yv = layer.call(&tape, xv, training)?;
    let loss = yv.mul(tape.constant(g.clone()))?.sum_all();
    let dx = tape.gradient(loss, &[xv])?.remove(0);
    let dweights = tape.gradient_of(loss, &layer.weights())?;
    Ok(TapeReference {
        y: yv.value(),
        dx,
        dweights,
    })
}

/// The step's output and input gradient: [`Layer::forward`] of `x`, then
/// [`Layer::backward`] of the output gradient `g` (the weights' gradients
/// are left in [`Layer::gradients`]).
pub(crate) fn run_step(
    layer: &mut dyn Layer,
    x: &Tensor,
    g: &Tensor,
    pass: Pass,
) -> Result<(Tensor, Tensor)> {
    let y = layer.forward(x, pass)?.clone();
    let mut grad_out = g.clone();
    let mut grad_in = Tensor::zeros(&[0]);
    layer.backward(x, &mut grad_out, Some(&mut grad_in), pass)?;
    Ok((y, grad_in))
}

/// Asserts `a` and `b` have one shape and `|a - b| <= tol · (1 + |b|)`
/// elementwise, naming `what` and the first element that differs.
pub(crate) fn assert_close(what: &str, a: &Tensor, b: &Tensor, tol: f32) {
    assert_eq!(a.shape(), b.shape(), "{what}");
    for (i, (x, y)) in a.as_slice().iter().zip(b.as_slice()).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}
