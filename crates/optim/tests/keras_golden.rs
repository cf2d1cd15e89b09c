//! The numbers in Keras 3's own optimizer tests
//! (keras/src/optimizers/{sgd,adagrad,adadelta,rmsprop,adam}_test.py:
//! `test_single_step` and `test_correctness_with_golden`) and the example in
//! the RMSprop docstring, with Keras' tolerances (`assertAllClose` checks
//! `|got - want| <= atol + rtol·|want|`).

use hebb_autograd::Variable;
use hebb_optim::{Adadelta, Adagrad, Adam, Optimizer, RmsProp, Sgd};
use hebb_tensor::Tensor;

fn assert_all_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (f64::from(g) - w).abs() <= tol + tol * w.abs(),
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

/// `test_single_step`: one step from `[1, 2, 3, 4]` with gradient `[1, 6, 7, 2]`, lr 0.5.
fn single_step(mut opt: impl Optimizer, want: [f64; 4]) {
    let mut w = Variable::new(
        "w",
        Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[4]).unwrap(),
    );
    let g = Tensor::from_vec(vec![1.0, 6.0, 7.0, 2.0], &[4]).unwrap();
    let name = opt.name();
    opt.apply_gradients(&mut [&mut w], &[g]).unwrap();
    assert_all_close(&w.value().to_vec(), &want, 1e-4, name);
}

#[test]
fn single_steps() {
    single_step(Sgd::new(0.5), [0.5, -1.0, -0.5, 3.0]);
    single_step(Adagrad::new(0.5), [0.5233, 1.5007, 2.5005, 3.5061]);
    single_step(Adadelta::new(0.5), [0.9993, 1.9993, 2.9993, 3.9993]);
    single_step(RmsProp::new(0.5), [-0.5811, 0.4189, 1.4189, 2.4189]);
    single_step(Adam::new(0.5), [0.5, 1.5, 2.5, 3.5]);
}

/// `test_correctness_with_golden`: from ones, a first step with gradient
/// 0.01 everywhere, then steps with gradient `arange(0.1, 1.1, 0.1)`; the
/// golden rows are the weights before each of those steps.
fn golden(mut opt: impl Optimizer, golden: &[[f64; 10]]) {
    let name = opt.name();
    let mut x = Variable::new("x", Tensor::ones(&[10]));
    let first = Tensor::full(&[10], 0.01);
    let grads = Tensor::from_f64(
        &(1..=10).map(|i| f64::from(i) * 0.1).collect::<Vec<_>>(),
        &[10],
    )
    .unwrap();
    opt.apply_gradients(&mut [&mut x], &[first]).unwrap();
    for (i, row) in golden.iter().enumerate() {
        assert_all_close(
            &x.value().to_vec(),
            row,
            5e-4,
            &format!("{name} golden row {i}"),
        );
        opt.apply_gradients(&mut [&mut x], std::slice::from_ref(&grads))
            .unwrap();
    }
}

fn tile(column: [f64; 5]) -> Vec<[f64; 10]> {
    column.iter().map(|&v| [v; 10]).collect()
}

#[test]
fn sgd_nesterov_golden() {
    // SGD(nesterov=True) with the default momentum 0.0: plain SGD, lr 0.01.
    let rows: Vec<[f64; 10]> = (0..5)
        .map(|k| {
            let mut row = [0.0; 10];
            for (i, r) in row.iter_mut().enumerate() {
                // 0.9999 after the first step, then 0.001·(i+1) less per step.
                *r = 0.9999 - k as f64 * 0.001 * (i + 1) as f64;
            }
            row
        })
        .collect();
    assert_eq!(rows[1][9], 0.9999 - 0.01);
    golden(Sgd::default().with_momentum(0.0, true), &rows);
}

#[test]
fn adagrad_golden() {
    let rows = [
        [
            0.9963, 0.9963, 0.9963, 0.9963, 0.9963, 0.9963, 0.9963, 0.9963, 0.9963, 0.9963,
        ],
        [
            0.9604, 0.9278, 0.9003, 0.8784, 0.8615, 0.8487, 0.8388, 0.8313, 0.8255, 0.8209,
        ],
        [
            0.9251, 0.8629, 0.8137, 0.7768, 0.7497, 0.7298, 0.7151, 0.704, 0.6956, 0.6891,
        ],
        [
            0.8903, 0.8012, 0.7342, 0.6862, 0.6521, 0.6277, 0.6099, 0.5967, 0.5867, 0.579,
        ],
        [
            0.856, 0.7422, 0.6604, 0.6037, 0.5644, 0.5367, 0.5168, 0.5021, 0.491, 0.4825,
        ],
    ];
    golden(
        Adagrad::new(0.2)
            .with_initial_accumulator_value(0.3)
            .with_epsilon(1e-6),
        &rows,
    );
}

#[test]
fn adadelta_golden() {
    golden(
        Adadelta::new(1.0).with_rho(0.8).with_epsilon(1e-6),
        &tile([0.9978, 0.9947, 0.9915, 0.9882, 0.9849]),
    );
}

#[test]
fn rmsprop_centered_golden() {
    golden(
        RmsProp::default().with_centered(true),
        &tile([0.9967, 0.9933, 0.9908, 0.9885, 0.9864]),
    );
}

#[test]
fn adam_amsgrad_golden() {
    golden(
        Adam::default().with_amsgrad(true),
        &tile([0.999, 0.9982, 0.9974, 0.9965, 0.9955]),
    );
}

/// The RMSprop docstring: `RMSprop(learning_rate=0.1)`, `var1 = 10.0`,
/// loss `var1²/2`, one `minimize` step gives `9.683772`.
#[test]
fn rmsprop_docstring_example() {
    let mut w = Variable::new("var1", Tensor::scalar(10.0));
    let g = w.value().clone();
    let mut opt = RmsProp::new(0.1);
    opt.apply_gradients(&mut [&mut w], &[g]).unwrap();
    assert_eq!(w.value().item().unwrap(), 9.683772);
}
