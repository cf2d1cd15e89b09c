//! Property-based gradient checks of the pooling ops on `Var`
//! (`max_pool2d`, `avg_pool2d`, `global_max_pool2d`, `global_avg_pool2d`)
//! against central finite differences ([`GradCheck`]), on random
//! channels-last shapes, pools, strides and paddings.
//!
//! Values are multiples of `1/128` in `[-1.9, 1.9]`, so that `x ± h`
//! (`h = 2^-7`) is exact. Max pooling is not differentiable where two
//! window values tie, so its inputs are distinct values at least `3/128`
//! apart (a shuffled ladder): a step of `h` never changes which value is a
//! window's maximum.

use hebb_autograd::gradcheck::GradCheck;
use hebb_autograd::{GradientTape, Result, Var};
use hebb_tensor::Tensor;
use hebb_tensor::ops::Padding;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(48)
}

/// `[n, h, w, c]` with at most 2 · 5 · 5 · 3 = 150 elements, a pool and
/// strides in `1..=3` (so strides below, equal to and above the pool), and a
/// padding; `valid` cases whose pool does not fit are made `same`.
fn geometry() -> impl Strategy<Value = ([usize; 4], [usize; 2], [usize; 2], Padding)> {
    (
        [1usize..=2, 1usize..=5, 1usize..=5, 1usize..=3],
        [1usize..=3, 1usize..=3],
        [1usize..=3, 1usize..=3],
        any::<bool>(),
    )
        .prop_map(|(s, pool, strides, same)| {
            let fits = pool[0] <= s[1] && pool[1] <= s[2];
            let padding = if same || !fits {
                Padding::Same
            } else {
                Padding::Valid
            };
            (s, pool, strides, padding)
        })
}

/// Any values on the `1/128` grid in `[-1.9, 1.9]`.
fn values(len: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec((-243i32..=243).prop_map(|k| k as f32 / 128.0), len)
}

/// `len` distinct values `3/128` apart, centred on 0, shuffled.
fn distinct(len: usize) -> impl Strategy<Value = Vec<f32>> {
    let ladder: Vec<f32> = (0..len)
        .map(|k| (3 * k as i32 - 3 * (len as i32 / 2)) as f32 / 128.0)
        .collect();
    Just(ladder).prop_shuffle()
}

fn check(
    op: &str,
    x: &Tensor,
    f: impl for<'t> Fn(&'t GradientTape, &[Var<'t>]) -> Result<Var<'t>>,
) -> std::result::Result<(), TestCaseError> {
    let mismatch = GradCheck::default()
        .run(std::slice::from_ref(x), f)
        .map_err(|e| TestCaseError::fail(format!("{op}: {e}")))?;
    prop_assert!(mismatch.is_none(), "{op} on {:?}: {mismatch:?}", x.shape());
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn max_pool2d((s, pool, strides, padding, data) in geometry().prop_flat_map(|(s, p, st, pad)| {
        (Just(s), Just(p), Just(st), Just(pad), distinct(s.iter().product()))
    })) {
        let x = Tensor::from_vec(data, &s).unwrap();
        check("max_pool2d", &x, |_, v| v[0].max_pool2d(pool, strides, padding))?;
    }

    #[test]
    fn avg_pool2d((s, pool, strides, padding, data) in geometry().prop_flat_map(|(s, p, st, pad)| {
        (Just(s), Just(p), Just(st), Just(pad), values(s.iter().product()))
    })) {
        let x = Tensor::from_vec(data, &s).unwrap();
        check("avg_pool2d", &x, |_, v| v[0].avg_pool2d(pool, strides, padding))?;
    }

    #[test]
    fn global_max_pool2d((s, data) in geometry().prop_flat_map(|(s, ..)| {
        (Just(s), distinct(s.iter().product()))
    })) {
        let x = Tensor::from_vec(data, &s).unwrap();
        check("global_max_pool2d", &x, |_, v| v[0].global_max_pool2d())?;
    }

    #[test]
    fn global_avg_pool2d((s, data) in geometry().prop_flat_map(|(s, ..)| {
        (Just(s), values(s.iter().product()))
    })) {
        let x = Tensor::from_vec(data, &s).unwrap();
        check("global_avg_pool2d", &x, |_, v| v[0].global_avg_pool2d())?;
    }
}

/// The tape's values are the tensor ops' (same kernels), and a tie sends
/// the whole gradient to the first maximum.
#[test]
fn values_and_tie_gradient() {
    let x = Tensor::from_vec(vec![2.0, 1.0, 2.0, 2.0], &[1, 2, 2, 1]).unwrap();
    let tape = GradientTape::new();
    let v = tape.watch_tensor(x.clone());
    let y = v.max_pool2d([2, 2], [2, 2], Padding::Valid).unwrap();
    assert_eq!(
        y.value(),
        x.max_pool2d([2, 2], [2, 2], Padding::Valid).unwrap()
    );
    let g = tape.gradient(y, &[v]).unwrap();
    assert_eq!(g[0].to_vec(), [1.0, 0.0, 0.0, 0.0]);
    let y = v.global_avg_pool2d().unwrap();
    assert_eq!(y.shape(), [1, 1]);
    assert_eq!(tape.gradient(y, &[v]).unwrap()[0].to_vec(), [0.25; 4]);
    assert!(v.max_pool2d([3, 1], [1, 1], Padding::Valid).is_err());
}
