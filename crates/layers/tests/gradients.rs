//! Property-based gradient checks for hebb-layers: every loss, activation
//! and layer agrees with central finite differences ([`GradCheck`]) on
//! random shapes and values, and the closed-form derivatives
//! (`Activation::derivative`, `PRelu::derivative`, `RRelu::derivative`)
//! agree with the tape.
//!
//! Conventions, as in hebb-autograd's `tests/gradients.rs`:
//!
//! - Values lie in `[-1.9, 1.9]`, so that `x ± h` is exact, as the tolerance
//!   in the `gradcheck` module doc assumes.
//! - Functions with kinks (ReLU, Leaky-ReLU, PReLU, RReLU, step) get inputs
//!   `(k + 1/2)/32`, at least `1/64 = 2h` from zero, so the central
//!   difference never crosses the kink. Where the kink is at `z = x W + b`
//!   (Dense), cases with some `|z| < 1/32` are rejected: perturbing one
//!   element of `x`, `W` (values in `[-1, 1]`) or `b` by `h = 1/128` moves
//!   `z` by at most `1/128`.
//! - Cross-entropies are checked with `h = 2^-10` (still exact to add for
//!   `|x| < 2`): the relative truncation error of a central difference of
//!   `log p` is `h²/(3p²)`, `8e-3` at `p = 0.05` with the default `h = 2^-7`
//!   (above the `1e-3` tolerance) but `1.3e-4` with `h = 2^-10`; the rounding
//!   error, `~1e-7 · |loss| / 2h <= 2e-4` for losses below 3, stays under the
//!   absolute tolerance `1e-3`.
//!
//! `Dense::forward` and `PRelu::forward` watch their own `Variable`s, which
//! a gradient check cannot perturb; so the check runs on the documented
//! expression (`act(x W + b)`, `max(z, 0) + α min(z, 0)`) with every operand
//! watched, the layer itself is checked with respect to its input, and its
//! tape gradients by variable are compared with the expression's.

use std::ops::RangeInclusive;

use hebb_autograd::gradcheck::GradCheck;
use hebb_autograd::{GradientTape, Var};
use hebb_layers::{Activation, Dense, Layer, PRelu, RRelu, losses};
use hebb_tensor::Tensor;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

type TestResult = std::result::Result<(), TestCaseError>;

// ---------------------------------------------------------------- helpers

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(64)
}

/// The check used for the cross-entropies (see the module doc).
fn log_check() -> GradCheck {
    GradCheck {
        h: 1.0 / 1024.0,
        ..GradCheck::default()
    }
}

/// Any value in `[-1.9, 1.9]`.
fn value() -> BoxedStrategy<f32> {
    (-1.9f32..=1.9).boxed()
}

/// A value in `[lo, hi]`.
fn between(lo: f32, hi: f32) -> BoxedStrategy<f32> {
    (lo..=hi).boxed()
}

/// `(k + 1/2)/32`, in `[-1.89, 1.89]`: at least `1/64` from every multiple
/// of `1/32`, zero included.
fn off_grid() -> BoxedStrategy<f32> {
    (-61i32..=60).prop_map(|k| (k as f32 + 0.5) / 32.0).boxed()
}

/// A shape of rank in `ranks`, each dimension in `1..=5`.
fn shape(ranks: RangeInclusive<usize>) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..=5, ranks)
}

/// A tensor of `shape` with elements drawn from `elem`.
fn tensor(shape: Vec<usize>, elem: BoxedStrategy<f32>) -> impl Strategy<Value = Tensor> {
    let n = shape.iter().product::<usize>();
    prop::collection::vec(elem, n).prop_map(move |data| Tensor::from_vec(data, &shape).unwrap())
}

/// A tensor of random shape (rank in `ranks`) with elements from `elem`.
fn any_tensor(
    ranks: RangeInclusive<usize>,
    elem: BoxedStrategy<f32>,
) -> impl Strategy<Value = Tensor> {
    shape(ranks).prop_flat_map(move |s| tensor(s, elem.clone()))
}

/// Two tensors of one random shape (rank in `ranks`).
fn same_shape_pair(
    ranks: RangeInclusive<usize>,
    a: BoxedStrategy<f32>,
    b: BoxedStrategy<f32>,
) -> impl Strategy<Value = (Tensor, Tensor)> {
    shape(ranks).prop_flat_map(move |s| (tensor(s.clone(), a.clone()), tensor(s, b.clone())))
}

/// Leaky-ReLU with the lecture's divisor `a ∈ [1.5, 20)`.
fn leaky() -> BoxedStrategy<Activation> {
    (1.5f32..20.0)
        .prop_map(|a| Activation::LeakyRelu { a })
        .boxed()
}

/// RReLU bounds `0 <= lower <= upper <= 1` and a seed.
fn rrelu() -> impl Strategy<Value = RRelu> {
    (0.0f32..=1.0, 0.0f32..=1.0, any::<u64>())
        .prop_map(|(a, b, seed)| RRelu::new(a.min(b), a.max(b), seed).unwrap())
}

/// hebb-layers' error as hebb-autograd's, for [`GradCheck::run`].
fn lift(e: hebb_layers::Error) -> hebb_autograd::Error {
    match e {
        hebb_layers::Error::Autograd(e) => e,
        other => hebb_tensor::Error::InvalidArgument {
            op: "hebb-layers",
            reason: other.to_string(),
        }
        .into(),
    }
}

/// Runs `gc` with every input watched; fails the case with the function,
/// the input shapes and the worst mismatch.
fn check_with(
    gc: GradCheck,
    what: &str,
    inputs: &[Tensor],
    f: impl for<'t> Fn(&'t GradientTape, &[Var<'t>]) -> hebb_layers::Result<Var<'t>>,
) -> TestResult {
    let shapes: Vec<&[usize]> = inputs.iter().map(Tensor::shape).collect();
    match gc.run(inputs, |tape, vars| f(tape, vars).map_err(lift)) {
        Ok(None) => Ok(()),
        Ok(Some(m)) => Err(TestCaseError::fail(format!(
            "{what}: shapes {shapes:?}: {m:?}"
        ))),
        Err(e) => Err(TestCaseError::fail(format!(
            "{what}: shapes {shapes:?}: error: {e}"
        ))),
    }
}

/// [`check_with`] the default settings.
fn check(
    what: &str,
    inputs: &[Tensor],
    f: impl for<'t> Fn(&'t GradientTape, &[Var<'t>]) -> hebb_layers::Result<Var<'t>>,
) -> TestResult {
    check_with(GradCheck::default(), what, inputs, f)
}

/// Fixed weights in `[-1, 1)` for a scalar `Σ w·y` (a plain sum would hide
/// errors in softmax, whose rows sum to 1).
fn weights(shape: &[usize]) -> Tensor {
    let n = shape.iter().product::<usize>();
    let data = (0..n)
        .map(|i| ((i * 37 + 11) % 64) as f32 / 32.0 - 1.0)
        .collect();
    Tensor::from_vec(data, shape).unwrap()
}

/// `|a - b| <= tol · max(1, |b|)` elementwise, with shapes equal.
fn assert_close(what: &str, a: &Tensor, b: &Tensor, tol: f32) -> TestResult {
    prop_assert_eq!(a.shape(), b.shape(), "{}: shapes", what);
    for (i, (&x, &y)) in a.to_vec().iter().zip(&b.to_vec()).enumerate() {
        prop_assert!(
            (x - y).abs() <= tol * y.abs().max(1.0),
            "{}: element {}: {} vs {}",
            what,
            i,
            x,
            y
        );
    }
    Ok(())
}

/// Same shape and the same bits.
fn assert_bits(what: &str, a: &Tensor, b: &Tensor) -> TestResult {
    prop_assert_eq!(a.shape(), b.shape(), "{}: shapes", what);
    let bits = |t: &Tensor| t.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    prop_assert_eq!(
        bits(a),
        bits(b),
        "{}: {:?} vs {:?}",
        what,
        a.to_vec(),
        b.to_vec()
    );
    Ok(())
}

// ---------------------------------------------------------------- losses

/// `[batch, classes]` predictions in `[0.2, 1.9]` (not normalised: the loss
/// divides by the row sum) and one label per row. With `classes <= 6` every
/// normalised value lies in `[0.02, 0.91]`, far from the clip bounds.
fn cce_case() -> impl Strategy<Value = (Tensor, Vec<usize>, usize)> {
    (1usize..=4, 2usize..=6).prop_flat_map(|(batch, classes)| {
        (
            tensor(vec![batch, classes], between(0.2, 1.9)),
            prop::collection::vec(0..classes, batch),
            Just(classes),
        )
    })
}

/// `[batch, k]` probabilities in `[0.05, 0.95]` and hard labels.
fn bce_case() -> impl Strategy<Value = (Tensor, Tensor)> {
    (1usize..=4, 1usize..=5).prop_flat_map(|(batch, k)| {
        (
            tensor(vec![batch, k], between(0.05, 0.95)),
            tensor(
                vec![batch, k],
                any::<bool>()
                    .prop_map(|b| if b { 1.0 } else { 0.0 })
                    .boxed(),
            ),
        )
    })
}

proptest! {
    #![proptest_config(config())]

    /// `y_true` a one-hot constant, `y_pred` watched.
    #[test]
    fn categorical_crossentropy_wrt_y_pred((y_pred, labels, classes) in cce_case()) {
        let onehot = Tensor::one_hot(&labels, classes).unwrap();
        check_with(log_check(), "categorical_crossentropy", &[y_pred], |tape, v| {
            losses::categorical_crossentropy(tape.constant(onehot.clone()), v[0])
        })?;
    }

    /// Soft labels in `[0, 1]` watched as well as the predictions.
    #[test]
    fn categorical_crossentropy_wrt_both(
        (y_true, y_pred) in (1usize..=4, 2usize..=6).prop_flat_map(|(b, c)| {
            (tensor(vec![b, c], between(0.0, 1.0)), tensor(vec![b, c], between(0.2, 1.9)))
        })
    ) {
        check_with(log_check(), "categorical_crossentropy", &[y_true, y_pred], |_, v| {
            losses::categorical_crossentropy(v[0], v[1])
        })?;
    }

    /// Hard labels `{0, 1}` as constants, `y_pred` watched.
    #[test]
    fn binary_crossentropy_wrt_y_pred((y_pred, y_true) in bce_case()) {
        check_with(log_check(), "binary_crossentropy", &[y_pred], |tape, v| {
            losses::binary_crossentropy(tape.constant(y_true.clone()), v[0])
        })?;
    }

    /// Soft labels in `[0, 1]` watched as well as the predictions.
    #[test]
    fn binary_crossentropy_wrt_both(
        (y_true, y_pred) in same_shape_pair(1..=3, between(0.0, 1.0), between(0.05, 0.95))
    ) {
        check_with(log_check(), "binary_crossentropy", &[y_true, y_pred], |_, v| {
            losses::binary_crossentropy(v[0], v[1])
        })?;
    }

    #[test]
    fn mean_squared_error_wrt_both((y_true, y_pred) in same_shape_pair(1..=3, value(), value())) {
        check("mean_squared_error", &[y_true, y_pred], |_, v| {
            losses::mean_squared_error(v[0], v[1])
        })?;
    }

    #[test]
    fn half_squared_error_wrt_both((y_true, y_pred) in same_shape_pair(0..=3, value(), value())) {
        check("half_squared_error", &[y_true, y_pred], |_, v| {
            losses::half_squared_error(v[0], v[1])
        })?;
    }
}

// ----------------------------------------------------------- activations

fn check_activation(act: Activation, z: Tensor) -> TestResult {
    check(&format!("{act:?}"), &[z], |_, v| act.apply(v[0]))
}

/// `Activation::derivative(z)` equals the tape's `∂Σ apply(z)/∂z`
/// elementwise (both follow TensorFlow's rules, so up to rounding).
fn check_derivative(act: Activation, z: Tensor) -> TestResult {
    let tape = GradientTape::new();
    let zv = tape.watch_tensor(z.clone());
    let y = act.apply(zv)?;
    let g = tape.gradient(y.sum_all(), &[zv])?.remove(0);
    assert_close(
        &format!("{act:?} derivative"),
        &act.derivative(&z)?,
        &g,
        1e-6,
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn apply_linear(z in any_tensor(0..=3, value())) {
        check_activation(Activation::Linear, z)?;
    }

    /// Piecewise constant: away from 0 both the tape and the difference give 0.
    #[test]
    fn apply_step(z in any_tensor(0..=3, off_grid())) {
        check_activation(Activation::Step, z)?;
    }

    #[test]
    fn apply_sigmoid(z in any_tensor(0..=3, value())) {
        check_activation(Activation::Sigmoid, z)?;
    }

    #[test]
    fn apply_tanh(z in any_tensor(0..=3, value())) {
        check_activation(Activation::Tanh, z)?;
    }

    #[test]
    fn apply_relu(z in any_tensor(0..=3, off_grid())) {
        check_activation(Activation::Relu, z)?;
    }

    #[test]
    fn apply_leaky_relu(z in any_tensor(0..=3, off_grid()), act in leaky()) {
        check_activation(act, z)?;
    }

    #[test]
    fn apply_softmax(z in any_tensor(1..=3, value())) {
        check_activation(Activation::Softmax, z)?;
    }

    #[test]
    fn derivative_linear(z in any_tensor(0..=3, value())) {
        check_derivative(Activation::Linear, z)?;
    }

    #[test]
    fn derivative_step(z in any_tensor(0..=3, off_grid())) {
        check_derivative(Activation::Step, z)?;
    }

    #[test]
    fn derivative_sigmoid(z in any_tensor(0..=3, value())) {
        check_derivative(Activation::Sigmoid, z)?;
    }

    #[test]
    fn derivative_tanh(z in any_tensor(0..=3, value())) {
        check_derivative(Activation::Tanh, z)?;
    }

    #[test]
    fn derivative_relu(z in any_tensor(0..=3, off_grid())) {
        check_derivative(Activation::Relu, z)?;
    }

    #[test]
    fn derivative_leaky_relu(z in any_tensor(0..=3, off_grid()), act in leaky()) {
        check_derivative(act, z)?;
    }

    /// Softmax is not elementwise; its `derivative` is the Jacobian's
    /// diagonal `∂y_rc/∂z_rc`, which the tape gives as the `(r, c)` entry of
    /// `∂Σ_r y_rc/∂z` (rows are independent).
    #[test]
    fn derivative_softmax_is_jacobian_diagonal(
        z in (1usize..=4, 1usize..=5).prop_flat_map(|(b, c)| tensor(vec![b, c], value()))
    ) {
        let (batch, classes) = (z.shape()[0], z.shape()[1]);
        let d = Activation::Softmax.derivative(&z)?.to_vec();
        for c in 0..classes {
            let tape = GradientTape::new();
            let zv = tape.watch_tensor(z.clone());
            let pick = tape.constant(Tensor::one_hot(&vec![c; batch], classes)?);
            let y = Activation::Softmax.apply(zv)?.mul(pick)?.sum_all();
            let g = tape.gradient(y, &[zv])?.remove(0).to_vec();
            for r in 0..batch {
                let (a, b) = (d[r * classes + c], g[r * classes + c]);
                prop_assert!((a - b).abs() <= 1e-6, "row {} class {}: {} vs {}", r, c, a, b);
            }
        }
    }
}

// ------------------------------------------------------------------ Dense

/// `x [batch, in]`, `kernel [in, units]`, `bias [units]`, all in `[-1, 1]`,
/// dimensions `1..=4`, with every `z = x W + b` at least `1/32` from 0.
fn dense_case() -> impl Strategy<Value = (Tensor, Tensor, Tensor)> {
    (1usize..=4, 1usize..=4, 1usize..=4)
        .prop_flat_map(|(batch, inputs, units)| {
            (
                tensor(vec![batch, inputs], between(-1.0, 1.0)),
                tensor(vec![inputs, units], between(-1.0, 1.0)),
                tensor(vec![units], between(-1.0, 1.0)),
            )
        })
        .prop_filter("some z = xW + b within 1/32 of a kink", |(x, k, b)| {
            let z = x.matmul(k).unwrap().add(b).unwrap();
            z.to_vec().iter().all(|v| v.abs() >= 1.0 / 32.0)
        })
}

/// `activation(x W + b)` with `x`, `W`, `b` all watched: `Dense::forward`'s
/// computation, with the kernel and bias as gradcheck inputs.
fn check_dense_expression(act: Activation, x: Tensor, k: Tensor, b: Tensor) -> TestResult {
    check(&format!("dense {act:?}"), &[x, k, b], |_, v| {
        act.apply(v[0].matmul(v[1])?.add(v[2])?)
    })
}

/// `Dense::forward` itself with respect to its input.
fn check_dense_forward_x(act: Activation, x: Tensor, k: Tensor, b: Tensor) -> TestResult {
    let layer = Dense::from_weights("dense", k, b, act)?;
    check(&format!("Dense::forward {act:?}"), &[x], |tape, v| {
        layer.call(tape, v[0], true)
    })
}

/// `Dense::forward` + `gradient_of(loss, trainable_variables)` gives the
/// same output and the same bits as the expression's gradients by `x`, `W`, `b`.
fn check_dense_variables(act: Activation, x: Tensor, k: Tensor, b: Tensor) -> TestResult {
    let layer = Dense::from_weights("dense", k.clone(), b.clone(), act)?;
    let tape = GradientTape::new();
    let xv = tape.watch_tensor(x.clone());
    let y = layer.call(&tape, xv, true)?;
    let w = tape.constant(weights(&y.shape()));
    let loss = y.mul(w)?.sum_all();
    let by_var = tape.gradient_of(loss, &layer.trainable_variables())?;
    let by_x = tape.gradient(loss, &[xv])?.remove(0);

    let tape2 = GradientTape::new();
    let (xv2, kv, bv) = (
        tape2.watch_tensor(x),
        tape2.watch_tensor(k),
        tape2.watch_tensor(b),
    );
    let y2 = act.apply(xv2.matmul(kv)?.add(bv)?)?;
    let w2 = tape2.constant(weights(&y2.shape()));
    let loss2 = y2.mul(w2)?.sum_all();
    let manual = tape2.gradient(loss2, &[xv2, kv, bv])?;

    assert_bits("output", &y.value(), &y2.value())?;
    assert_bits("d/dx", &by_x, &manual[0])?;
    assert_bits("d/dkernel", &by_var[0], &manual[1])?;
    assert_bits("d/dbias", &by_var[1], &manual[2])?;
    // Inference agrees with the tape's forward value.
    assert_close(
        "Dense::predict",
        &layer.predict(&xv.value())?,
        &y.value(),
        1e-6,
    )
}

/// For each activation `<act>`: `dense::<act>::expression_gradcheck`,
/// `dense::<act>::forward_gradcheck_wrt_input`,
/// `dense::<act>::forward_variable_gradients_match_expression`.
macro_rules! dense_tests {
    ($($name:ident: $act:expr;)*) => {
        mod dense {
            use super::*;
            $(
                mod $name {
                    use super::*;

                    proptest! {
                        #![proptest_config(config())]

                        #[test]
                        fn expression_gradcheck((x, k, b) in dense_case(), act in $act) {
                            check_dense_expression(act, x, k, b)?;
                        }

                        #[test]
                        fn forward_gradcheck_wrt_input((x, k, b) in dense_case(), act in $act) {
                            check_dense_forward_x(act, x, k, b)?;
                        }

                        #[test]
                        fn forward_variable_gradients_match_expression(
                            (x, k, b) in dense_case(),
                            act in $act,
                        ) {
                            check_dense_variables(act, x, k, b)?;
                        }
                    }
                }
            )*
        }
    };
}

dense_tests! {
    linear: Just(Activation::Linear);
    step: Just(Activation::Step);
    sigmoid: Just(Activation::Sigmoid);
    tanh: Just(Activation::Tanh);
    relu: Just(Activation::Relu);
    leaky_relu: leaky();
    softmax: Just(Activation::Softmax);
}

// ------------------------------------------------------------------ PReLU

/// `z [batch, units]` off the grid and `α` of shape `[]` (`shared`) or `[units]`.
fn prelu_case(shared: bool) -> impl Strategy<Value = (Tensor, Tensor)> {
    (1usize..=4, 1usize..=5).prop_flat_map(move |(batch, units)| {
        let alpha_shape = if shared { vec![] } else { vec![units] };
        (
            tensor(vec![batch, units], off_grid()),
            tensor(alpha_shape, value()),
        )
    })
}

/// `max(z, 0) + α · min(z, 0)`, written independently of `PRelu::forward`.
fn prelu_expression<'t>(
    tape: &'t GradientTape,
    z: Var<'t>,
    alpha: Var<'t>,
) -> hebb_layers::Result<Var<'t>> {
    let zero = tape.constant(Tensor::scalar(0.0));
    Ok(z.maximum(zero)?.add(alpha.mul(z.minimum(zero)?)?)?)
}

/// A `PRelu` whose `alpha` holds `alpha`.
fn prelu_with(alpha: &Tensor) -> PRelu {
    let mut layer = PRelu::new("p_re_lu", alpha.shape(), 0.0);
    layer.alpha.assign(alpha.clone()).unwrap();
    layer
}

fn check_prelu(z: Tensor, alpha: Tensor) -> TestResult {
    // The expression, both operands watched.
    check(
        "max(z, 0) + α min(z, 0)",
        &[z.clone(), alpha.clone()],
        |tape, v| prelu_expression(tape, v[0], v[1]),
    )?;

    // PRelu::forward with respect to z.
    let layer = prelu_with(&alpha);
    check("PRelu::forward", std::slice::from_ref(&z), |tape, v| {
        layer.forward(tape, v[0])
    })?;

    // PRelu::forward's gradients by z and by its variable equal the expression's.
    let w = weights(z.shape());
    let tape = GradientTape::new();
    let zv = tape.watch_tensor(z.clone());
    let y = layer.forward(&tape, zv)?;
    let loss = y.mul(tape.constant(w.clone()))?.sum_all();
    let by_z = tape.gradient(loss, &[zv])?.remove(0);
    let by_alpha = tape.gradient_of(loss, &[&layer.alpha])?.remove(0);

    let tape2 = GradientTape::new();
    let (zv2, av) = (tape2.watch_tensor(z.clone()), tape2.watch_tensor(alpha));
    let y2 = prelu_expression(&tape2, zv2, av)?;
    let loss2 = y2.mul(tape2.constant(w))?.sum_all();
    let manual = tape2.gradient(loss2, &[zv2, av])?;

    assert_close("PRelu value", &y.value(), &y2.value(), 1e-6)?;
    assert_close("PRelu::call", &layer.call(&z)?, &y2.value(), 1e-6)?;
    assert_close("PRelu d/dz", &by_z, &manual[0], 1e-6)?;
    assert_close("PRelu d/dalpha", &by_alpha, &manual[1], 1e-5)?;

    // PRelu::derivative equals the tape's ∂Σy/∂z elementwise.
    let tape3 = GradientTape::new();
    let zv3 = tape3.watch_tensor(z.clone());
    let g = tape3
        .gradient(layer.forward(&tape3, zv3)?.sum_all(), &[zv3])?
        .remove(0);
    assert_close("PRelu::derivative", &layer.derivative(&z)?, &g, 1e-6)
}

proptest! {
    #![proptest_config(config())]

    /// One slope shared by all units (`alpha` of shape `[]`).
    #[test]
    fn prelu_shared_alpha((z, alpha) in prelu_case(true)) {
        check_prelu(z, alpha)?;
    }

    /// One slope per unit (`alpha` of shape `[units]`, Keras' default).
    #[test]
    fn prelu_per_unit_alpha((z, alpha) in prelu_case(false)) {
        check_prelu(z, alpha)?;
    }
}

// ------------------------------------------------------------------ RReLU

proptest! {
    #![proptest_config(config())]

    /// Inference: a Leaky-ReLU with the mean slope.
    #[test]
    fn rrelu_inference(z in any_tensor(0..=3, off_grid()), layer in rrelu()) {
        check("RRelu::forward(inference)", std::slice::from_ref(&z), |_, v| {
            layer.clone().forward(v[0], false)
        })?;
        let tape = GradientTape::new();
        let zv = tape.watch_tensor(z.clone());
        let y = layer.clone().forward(zv, false)?;
        let g = tape.gradient(y.sum_all(), &[zv])?.remove(0);
        assert_close("RRelu::derivative", &layer.derivative(&z)?, &g, 1e-6)?;
        assert_close("RRelu::call", &layer.clone().call(&z, false)?, &y.value(), 0.0)?;
    }

    /// Training: every evaluation clones the layer, so it draws the same
    /// slopes, and the function checked is `z ↦ leaky(z, fixed slopes)`.
    #[test]
    fn rrelu_training(z in any_tensor(0..=3, off_grid()), layer in rrelu()) {
        check("RRelu::forward(training)", std::slice::from_ref(&z), |_, v| {
            layer.clone().forward(v[0], true)
        })?;
    }
}
