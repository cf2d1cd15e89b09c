//! Property-based gradient checks: for every differentiable op on `Var`, the
//! tape's gradient agrees with central finite differences ([`GradCheck`]) on
//! random shapes and values.
//!
//! Values lie in `[-1.9, 1.9]`, so that `x ± h` (`h = 2^-7`) is exact, as the
//! tolerance in the `gradcheck` module doc assumes. Ops with kinks (`relu`,
//! `leaky_relu`, `abs`, `clip`, `maximum`, `minimum`) get inputs on two
//! interleaved grids, `k/32` and `(k + 1/2)/32`, so that every input is at
//! least `2h = 1/64` from every kink and the finite difference never crosses
//! one.

use std::ops::RangeInclusive;

use hebb_autograd::gradcheck::GradCheck;
use hebb_autograd::{GradientTape, Result, Var};
use hebb_tensor::Tensor;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

// ---------------------------------------------------------------- helpers

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(64)
}

/// Any value in `[-1.9, 1.9]`.
fn value() -> BoxedStrategy<f32> {
    (-1.9f32..=1.9).boxed()
}

/// A value in `[lo, hi]`.
fn between(lo: f32, hi: f32) -> BoxedStrategy<f32> {
    (lo..=hi).boxed()
}

/// A value of magnitude in `[0.5, 1.9]`, either sign: a safe denominator.
fn away_from_zero() -> BoxedStrategy<f32> {
    (any::<bool>(), 0.5f32..=1.9)
        .prop_map(|(negative, m)| if negative { -m } else { m })
        .boxed()
}

/// `k/32` for `|k| <= 60`: a grid point (kinks and clip bounds live here).
fn on_grid() -> BoxedStrategy<f32> {
    (-60i32..=60).prop_map(|k| k as f32 / 32.0).boxed()
}

/// `(k + 1/2)/32`, in `[-1.89, 1.89]`: at least `1/64` from every grid point,
/// zero included.
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

/// Shape patterns for binary ops; `m, n` in `1..=5`.
#[derive(Debug, Clone, Copy)]
enum Bcast {
    /// Equal shapes of rank 0..=3.
    Same,
    /// `[m, n] op [n]`.
    Row,
    /// `[m, n] op [m, 1]`.
    Col,
    /// `[m, n] op []`.
    Scalar,
    /// `[n] op [m, n]`.
    RowLhs,
    /// `[m, 1] op [1, n]`: both operands broadcast.
    Outer,
}

fn shapes(pattern: Bcast) -> BoxedStrategy<(Vec<usize>, Vec<usize>)> {
    let pair = move |(m, n): (usize, usize)| match pattern {
        Bcast::Same => unreachable!(),
        Bcast::Row => (vec![m, n], vec![n]),
        Bcast::Col => (vec![m, n], vec![m, 1]),
        Bcast::Scalar => (vec![m, n], vec![]),
        Bcast::RowLhs => (vec![n], vec![m, n]),
        Bcast::Outer => (vec![m, 1], vec![1, n]),
    };
    match pattern {
        Bcast::Same => shape(0..=3).prop_map(|s| (s.clone(), s)).boxed(),
        _ => (1usize..=5, 1usize..=5).prop_map(pair).boxed(),
    }
}

/// Two operands in `pattern`, elements from `lhs` and `rhs`.
fn operands(
    pattern: Bcast,
    lhs: BoxedStrategy<f32>,
    rhs: BoxedStrategy<f32>,
) -> impl Strategy<Value = (Tensor, Tensor)> {
    shapes(pattern)
        .prop_flat_map(move |(sa, sb)| (tensor(sa, lhs.clone()), tensor(sb, rhs.clone())))
}

/// Runs the gradient check with every input watched; fails the case with
/// the op, the input shapes and the worst mismatch.
fn check(
    op: &str,
    inputs: &[Tensor],
    f: impl for<'t> Fn(&'t GradientTape, &[Var<'t>]) -> Result<Var<'t>>,
) -> std::result::Result<(), TestCaseError> {
    let shapes: Vec<&[usize]> = inputs.iter().map(Tensor::shape).collect();
    match GradCheck::default().run(inputs, f) {
        Ok(None) => Ok(()),
        Ok(Some(m)) => Err(TestCaseError::fail(format!(
            "{op}: shapes {shapes:?}: {m:?}"
        ))),
        Err(e) => Err(TestCaseError::fail(format!(
            "{op}: shapes {shapes:?}: error: {e}"
        ))),
    }
}

/// [`check`] for a binary op, both operands watched.
fn check_binary(
    op: &str,
    a: Tensor,
    b: Tensor,
    f: impl for<'t> Fn(Var<'t>, Var<'t>) -> Result<Var<'t>>,
) -> std::result::Result<(), TestCaseError> {
    check(op, &[a, b], |_, v| f(v[0], v[1]))
}

// ---------------------------------------------------------- binary ops

/// For each op, one test per shape pattern: `<op>::same_shape`,
/// `<op>::mn_n`, `<op>::mn_m1`, `<op>::mn_scalar`, `<op>::n_mn`,
/// `<op>::m1_1n`.
macro_rules! binary_op_tests {
    ($($op:ident: lhs = $lhs:expr, rhs = $rhs:expr;)*) => {$(
        mod $op {
            use super::*;

            proptest! {
                #![proptest_config(config())]

                #[test]
                fn same_shape((a, b) in operands(Bcast::Same, $lhs, $rhs)) {
                    check_binary(stringify!($op), a, b, |x, y| x.$op(y))?;
                }

                #[test]
                fn mn_n((a, b) in operands(Bcast::Row, $lhs, $rhs)) {
                    check_binary(stringify!($op), a, b, |x, y| x.$op(y))?;
                }

                #[test]
                fn mn_m1((a, b) in operands(Bcast::Col, $lhs, $rhs)) {
                    check_binary(stringify!($op), a, b, |x, y| x.$op(y))?;
                }

                #[test]
                fn mn_scalar((a, b) in operands(Bcast::Scalar, $lhs, $rhs)) {
                    check_binary(stringify!($op), a, b, |x, y| x.$op(y))?;
                }

                #[test]
                fn n_mn((a, b) in operands(Bcast::RowLhs, $lhs, $rhs)) {
                    check_binary(stringify!($op), a, b, |x, y| x.$op(y))?;
                }

                #[test]
                fn m1_1n((a, b) in operands(Bcast::Outer, $lhs, $rhs)) {
                    check_binary(stringify!($op), a, b, |x, y| x.$op(y))?;
                }
            }
        }
    )*};
}

binary_op_tests! {
    add: lhs = value(), rhs = value();
    sub: lhs = value(), rhs = value();
    mul: lhs = value(), rhs = value();
    div: lhs = value(), rhs = away_from_zero();
    // Operands on interleaved grids differ by at least 1/64 everywhere.
    maximum: lhs = on_grid(), rhs = off_grid();
    minimum: lhs = off_grid(), rhs = on_grid();
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn matmul((a, b) in (1usize..=6, 1usize..=6, 1usize..=6).prop_flat_map(|(m, k, n)| {
        (tensor(vec![m, k], value()), tensor(vec![k, n], value()))
    })) {
        check_binary("matmul", a, b, |x, y| x.matmul(y))?;
    }
}

// ----------------------------------------------------------- unary ops

/// One test per op on a tensor of rank 0..=3 (`ranks` overrides).
macro_rules! unary_op_tests {
    ($($name:ident: $elem:expr $(, ranks = $ranks:expr)? => |$x:ident| $body:expr;)*) => {
        proptest! {
            #![proptest_config(config())]
            $(
                #[test]
                fn $name(t in any_tensor(unary_op_tests!(@ranks $($ranks)?), $elem)) {
                    check(stringify!($name), &[t], |_, v| {
                        let $x = v[0];
                        $body
                    })?;
                }
            )*
        }
    };
    (@ranks) => { 0..=3 };
    (@ranks $ranks:expr) => { $ranks };
}

unary_op_tests! {
    neg: value() => |x| Ok(x.neg());
    square: value() => |x| Ok(x.square());
    sqrt: between(0.2, 1.9) => |x| Ok(x.sqrt());
    abs: off_grid() => |x| Ok(x.abs());
    exp: value() => |x| Ok(x.exp());
    log: between(0.2, 1.9) => |x| Ok(x.log());
    log1p: between(-0.8, 1.9) => |x| Ok(x.log1p());
    sigmoid: value() => |x| Ok(x.sigmoid());
    tanh: value() => |x| Ok(x.tanh());
    relu: off_grid() => |x| Ok(x.relu());
    sum_all: value() => |x| Ok(x.sum_all());
    mean_all: value() => |x| Ok(x.mean_all());
    softmax_rank1: value(), ranks = 1..=1 => |x| x.softmax();
    softmax_rank2: value(), ranks = 2..=2 => |x| x.softmax();
    softmax_rank3: value(), ranks = 3..=3 => |x| x.softmax();
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn add_scalar(t in any_tensor(0..=3, value()), c in -2.0f32..=2.0) {
        check(&format!("add_scalar({c})"), &[t], |_, v| Ok(v[0].add_scalar(c)))?;
    }

    #[test]
    fn mul_scalar(t in any_tensor(0..=3, value()), c in -2.0f32..=2.0) {
        check(&format!("mul_scalar({c})"), &[t], |_, v| Ok(v[0].mul_scalar(c)))?;
    }

    #[test]
    fn powf(t in any_tensor(0..=3, between(0.5, 1.9)), p in -2.0f32..=3.0) {
        check(&format!("powf({p})"), &[t], |_, v| Ok(v[0].powf(p)))?;
    }

    #[test]
    fn leaky_relu(t in any_tensor(0..=3, off_grid()), slope in 0.01f32..0.99) {
        check(&format!("leaky_relu({slope})"), &[t], |_, v| Ok(v[0].leaky_relu(slope)))?;
    }

    /// Bounds on the grid, at least 1/8 apart; inputs off it, so some are
    /// clipped on each side and none is within 1/64 of a bound.
    #[test]
    fn clip(t in any_tensor(0..=3, off_grid()), lo in -48i32..=16, width in 4i32..=64) {
        let (min, max) = (lo as f32 / 32.0, (lo + width) as f32 / 32.0);
        check(&format!("clip({min}, {max})"), &[t], |_, v| v[0].clip(min, max))?;
    }

    /// Every axis, with and without `keepdims`.
    #[test]
    fn sum(t in any_tensor(1..=3, value())) {
        for axis in 0..t.rank() {
            for keepdims in [false, true] {
                let op = format!("sum(axis {axis}, keepdims {keepdims})");
                check(&op, std::slice::from_ref(&t), |_, v| v[0].sum(axis, keepdims))?;
            }
        }
    }

    /// Every axis, with and without `keepdims`.
    #[test]
    fn mean(t in any_tensor(1..=3, value())) {
        for axis in 0..t.rank() {
            for keepdims in [false, true] {
                let op = format!("mean(axis {axis}, keepdims {keepdims})");
                check(&op, std::slice::from_ref(&t), |_, v| v[0].mean(axis, keepdims))?;
            }
        }
    }

    /// To the reversed shape, and flat; the softmax after it makes the
    /// result depend on the new shape, not only on the element order.
    #[test]
    fn reshape(t in any_tensor(0..=3, value())) {
        let reversed: Vec<usize> = t.shape().iter().rev().copied().collect();
        let flat = [t.len()];
        let input = std::slice::from_ref(&t);
        check(&format!("reshape to {reversed:?}"), input, |_, v| v[0].reshape(&reversed))?;
        let op = format!("reshape to {flat:?}, softmax");
        check(&op, input, |_, v| v[0].reshape(&flat)?.softmax())?;
    }
}

// ------------------------------------------------------------ composite

/// A dense layer, softmax and mean cross-entropy against one-hot labels:
/// `mean(-Σ_class onehot · log(clip(softmax(x W + b), 1e-7, 1 - 1e-7)))`,
/// all of `x`, `W`, `b` watched. Values in `[-1, 1]` and `k <= 4` keep the
/// logits within 5 of zero, so no probability comes near a clip bound.
fn dense_softmax_xent() -> impl Strategy<Value = (Tensor, Tensor, Tensor, Vec<usize>)> {
    (1usize..=5, 1usize..=4, 2usize..=5).prop_flat_map(|(m, k, n)| {
        (
            tensor(vec![m, k], between(-1.0, 1.0)),
            tensor(vec![k, n], between(-1.0, 1.0)),
            tensor(vec![n], between(-1.0, 1.0)),
            prop::collection::vec(0..n, m),
        )
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn composite_dense_softmax_cross_entropy((x, w, b, labels) in dense_softmax_xent()) {
        let depth = b.len();
        let onehot = Tensor::one_hot(&labels, depth).unwrap();
        check("dense + softmax + cross-entropy", &[x, w, b], |tape, v| {
            let probs = v[0].matmul(v[1])?.add(v[2])?.softmax()?;
            let log_p = probs.clip(1e-7, 1.0 - 1e-7)?.log();
            Ok(log_p.mul(tape.constant(onehot.clone()))?.sum(1, false)?.neg().mean_all())
        })?;
    }
}
