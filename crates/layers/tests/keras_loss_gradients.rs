//! Property-based gradient checks ([`GradCheck`], central differences) for
//! the Keras 3 losses added beside the lecture's: sparse categorical
//! cross-entropy, the `from_logits` cross-entropies, mean absolute
//! (percentage) error and the hinge losses, each also through [`Loss::call`].
//!
//! Conventions as in `tests/gradients.rs`: values in `[-1.9, 1.9]` so that
//! `x ± h` is exact; the probability cross-entropies and the percentage
//! error, whose third derivatives are large, use `h = 2^-10`; functions
//! with kinks get inputs at least `2h` from them:
//!
//! - `|y - p|` (MAE, MAPE): `y` on the grid `k/32`, `p` off it, `(k + 1/2)/32`;
//! - `max(|y|, ε)` (MAPE): `|y| >= 1/2`;
//! - `max(1 - y p, 0)` (hinge) with `y = ±1`: the kink is at `p = ±1`, on the grid;
//! - categorical hinge: distinct off-grid predictions for the other classes
//!   (no two candidates of the inner max within `2h`, the target's entry
//!   there being 0) and the target's on the grid but not 1, so that
//!   `max - pos + 1` is either `(m + 1/2)/32` or `1 - k/32 != 0`, at least
//!   `1/64` from the kink at 0.

use std::ops::RangeInclusive;

use hebb_autograd::gradcheck::GradCheck;
use hebb_autograd::{GradientTape, Var};
use hebb_layers::losses::{self, Loss};
use hebb_tensor::Tensor;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

type TestResult = std::result::Result<(), TestCaseError>;

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(64)
}

/// The smaller step for the logarithms and the percentage error.
fn fine() -> GradCheck {
    GradCheck {
        h: 1.0 / 1024.0,
        ..GradCheck::default()
    }
}

fn between(lo: f32, hi: f32) -> BoxedStrategy<f32> {
    (lo..=hi).boxed()
}

/// `(k + 1/2)/32` in `[-1.89, 1.89]`.
fn off_grid() -> BoxedStrategy<f32> {
    (-61i32..=60).prop_map(|k| (k as f32 + 0.5) / 32.0).boxed()
}

/// `k/32` in `[-1.875, 1.875]`.
fn on_grid() -> BoxedStrategy<f32> {
    (-60i32..=60).prop_map(|k| k as f32 / 32.0).boxed()
}

/// `±k/32` with `|k/32| in [0.5, 1.875]`.
fn on_grid_away_from_zero() -> BoxedStrategy<f32> {
    (16i32..=60, any::<bool>())
        .prop_map(|(k, neg)| {
            if neg {
                -k as f32 / 32.0
            } else {
                k as f32 / 32.0
            }
        })
        .boxed()
}

fn tensor(shape: Vec<usize>, elem: BoxedStrategy<f32>) -> impl Strategy<Value = Tensor> {
    let n = shape.iter().product::<usize>();
    prop::collection::vec(elem, n).prop_map(move |data| Tensor::from_vec(data, &shape).unwrap())
}

/// A `[batch, k]` shape.
fn matrix(
    batch: RangeInclusive<usize>,
    k: RangeInclusive<usize>,
) -> impl Strategy<Value = Vec<usize>> {
    (batch, k).prop_map(|(b, k)| vec![b, k])
}

fn pair(
    shape: impl Strategy<Value = Vec<usize>>,
    a: BoxedStrategy<f32>,
    b: BoxedStrategy<f32>,
) -> impl Strategy<Value = (Tensor, Tensor)> {
    shape.prop_flat_map(move |s| (tensor(s.clone(), a.clone()), tensor(s, b.clone())))
}

/// `[batch, classes]` values from `elem` and one class index (as `f32`) per row.
fn sparse_case(elem: BoxedStrategy<f32>) -> impl Strategy<Value = (Tensor, Tensor)> {
    (1usize..=4, 2usize..=6).prop_flat_map(move |(batch, classes)| {
        (
            tensor(vec![batch, classes], elem.clone()),
            prop::collection::vec(0..classes, batch).prop_map(move |l| {
                Tensor::from_vec(l.iter().map(|&c| c as f32).collect(), &[batch]).unwrap()
            }),
        )
    })
}

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

fn check(
    what: &str,
    inputs: &[Tensor],
    f: impl for<'t> Fn(&'t GradientTape, &[Var<'t>]) -> hebb_layers::Result<Var<'t>>,
) -> TestResult {
    check_with(GradCheck::default(), what, inputs, f)
}

/// Categorical-hinge inputs: one-hot labels and, per row, distinct off-grid
/// predictions `(k + 1/2)/32`, the target's on the grid, `k/32 != 1`.
fn categorical_hinge_case() -> impl Strategy<Value = (Tensor, Tensor)> {
    (1usize..=4, 2usize..=5).prop_flat_map(|(batch, classes)| {
        (
            prop::collection::vec(
                prop::sample::subsequence((-61i32..=60).collect::<Vec<_>>(), classes)
                    .prop_shuffle(),
                batch,
            ),
            prop::collection::vec(0..classes, batch),
        )
            .prop_map(move |(rows, labels)| {
                let mut pred = Vec::with_capacity(batch * classes);
                for (row, &label) in rows.iter().zip(&labels) {
                    for (j, &k) in row.iter().enumerate() {
                        pred.push(if j != label {
                            (k as f32 + 0.5) / 32.0
                        } else if k == 32 {
                            33.0 / 32.0
                        } else {
                            k as f32 / 32.0
                        });
                    }
                }
                (
                    Tensor::one_hot(&labels, classes).unwrap(),
                    Tensor::from_vec(pred, &[batch, classes]).unwrap(),
                )
            })
    })
}

proptest! {
    #![proptest_config(config())]

    /// Probabilities in `[0.05, 0.95]` (inside the clip range, not normalised), labels constant.
    #[test]
    fn sparse_categorical_crossentropy_wrt_y_pred((y_pred, labels) in sparse_case(between(0.05, 0.95))) {
        check_with(fine(), "sparse_categorical_crossentropy", std::slice::from_ref(&y_pred), |tape, v| {
            losses::sparse_categorical_crossentropy(tape.constant(labels.clone()), v[0])
        })?;
        check_with(fine(), "Loss::SparseCategoricalCrossentropy", std::slice::from_ref(&y_pred), |tape, v| {
            Loss::SparseCategoricalCrossentropy { from_logits: false }
                .call(tape.constant(labels.clone()), v[0])
        })?;
    }

    #[test]
    fn sparse_categorical_crossentropy_from_logits_wrt_y_pred(
        (y_pred, labels) in sparse_case(between(-1.9, 1.9))
    ) {
        check("sparse_categorical_crossentropy_from_logits", &[y_pred], |tape, v| {
            losses::sparse_categorical_crossentropy_from_logits(tape.constant(labels.clone()), v[0])
        })?;
    }

    /// Soft labels in `[0, 1]` and logits, both watched.
    #[test]
    fn categorical_crossentropy_from_logits_wrt_both(
        (y_true, y_pred) in pair(matrix(1..=4, 2..=6), between(0.0, 1.0), between(-1.9, 1.9))
    ) {
        check("categorical_crossentropy_from_logits", &[y_true, y_pred], |_, v| {
            losses::categorical_crossentropy_from_logits(v[0], v[1])
        })?;
    }

    /// Soft labels in `[0, 1]` and logits, both watched; also through `Loss`.
    #[test]
    fn binary_crossentropy_from_logits_wrt_both(
        (y_true, y_pred) in pair(matrix(1..=4, 1..=5), between(0.0, 1.0), between(-1.9, 1.9))
    ) {
        check("binary_crossentropy_from_logits", &[y_true.clone(), y_pred.clone()], |_, v| {
            losses::binary_crossentropy_from_logits(v[0], v[1])
        })?;
        check("Loss::BinaryCrossentropy", &[y_true.clone(), y_pred.clone()], |_, v| {
            Loss::BinaryCrossentropy { from_logits: true }.call(v[0], v[1])
        })?;
    }

    #[test]
    fn mean_absolute_error_wrt_both(
        (y_true, y_pred) in pair(matrix(1..=4, 1..=5), on_grid(), off_grid())
    ) {
        check("mean_absolute_error", &[y_true, y_pred], |_, v| {
            losses::mean_absolute_error(v[0], v[1])
        })?;
    }

    /// Checked as `mape / 100`: the per-sample values reach `100 · 3.8 / 0.5 = 760`,
    /// whose `f32` rounding (`~5e-5`) divided by `2h` would exceed the
    /// absolute tolerance where the weighted sum `L` is small; the scaling
    /// is exact in the chain rule and leaves every rule of the loss checked.
    #[test]
    fn mean_absolute_percentage_error_wrt_both(
        (y_true, y_pred) in pair(matrix(1..=4, 1..=5), on_grid_away_from_zero(), off_grid())
    ) {
        check_with(fine(), "mean_absolute_percentage_error / 100", &[y_true, y_pred], |_, v| {
            Ok(losses::mean_absolute_percentage_error(v[0], v[1])?.mul_scalar(0.01))
        })?;
    }

    /// Labels `±1` with at least one `-1`, both watched: perturbing them
    /// keeps them out of `{0, 1}`, so the `2y - 1` mapping stays off (all-ones
    /// labels are binary and mapped, a jump the central difference would see).
    #[test]
    fn hinge_wrt_both(
        (y_true, y_pred) in pair(
            matrix(1..=4, 1..=5),
            prop_oneof![Just(-1.0f32), Just(1.0f32)].boxed(),
            off_grid(),
        )
        .prop_filter("a -1 label", |(y, _)| y.to_vec().contains(&-1.0))
    ) {
        check("hinge", &[y_true, y_pred], |_, v| losses::hinge(v[0], v[1]))?;
    }

    /// Labels `{0, 1}` (mapped to `±1`) as constants.
    #[test]
    fn hinge_binary_labels_wrt_y_pred(
        (y_true, y_pred) in pair(
            matrix(1..=4, 1..=5),
            prop_oneof![Just(0.0f32), Just(1.0f32)].boxed(),
            off_grid(),
        )
    ) {
        check("hinge", std::slice::from_ref(&y_pred), |tape, v| losses::hinge(tape.constant(y_true.clone()), v[0]))?;
        check("Loss::Hinge", std::slice::from_ref(&y_pred), |tape, v| {
            Loss::Hinge.call(tape.constant(y_true.clone()), v[0])
        })?;
    }

    #[test]
    fn categorical_hinge_wrt_y_pred((y_true, y_pred) in categorical_hinge_case()) {
        check("categorical_hinge", &[y_pred], |tape, v| {
            losses::categorical_hinge(tape.constant(y_true.clone()), v[0])
        })?;
    }
}
