//! The intended use: gradients from `hebb_autograd::GradientTape` for a
//! Dense-like layer `y = x·W + b`, then `apply_gradients`.

use hebb_autograd::{GradientTape, Variable};
use hebb_optim::{Adam, Optimizer, Sgd};
use hebb_tensor::Tensor;

struct Problem {
    x: Tensor,
    y: Tensor,
}

impl Problem {
    fn new() -> Self {
        // 4 samples, 3 features, 2 outputs.
        let x = Tensor::from_vec(
            vec![
                0.5, -1.0, 2.0, 1.5, 0.0, -0.5, -1.0, 1.0, 0.25, 0.0, 2.0, -2.0,
            ],
            &[4, 3],
        )
        .unwrap();
        let y = Tensor::from_vec(vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0], &[4, 2]).unwrap();
        Self { x, y }
    }

    /// Mean squared error of `x·W + b` and its gradients for `[W, b]`.
    fn loss_and_grads(&self, w: &Variable, b: &Variable) -> (f32, Vec<Tensor>) {
        let tape = GradientTape::new();
        let pred = tape
            .constant(self.x.clone())
            .matmul(tape.watch(w))
            .unwrap()
            .add(tape.watch(b))
            .unwrap();
        let loss = pred
            .sub(tape.constant(self.y.clone()))
            .unwrap()
            .square()
            .mean_all();
        let grads = tape.gradient_of(loss, &[w, b]).unwrap();
        (loss.value().item().unwrap(), grads)
    }
}

fn layer() -> (Variable, Variable) {
    let w = Variable::new(
        "dense/kernel",
        Tensor::from_vec(vec![0.1, -0.2, 0.3, 0.0, -0.1, 0.2], &[3, 2]).unwrap(),
    );
    let b = Variable::new("dense/bias", Tensor::zeros(&[2]));
    (w, b)
}

#[test]
fn sgd_step_from_tape_gradients_is_w_minus_lr_g() {
    let p = Problem::new();
    let (mut w, mut b) = layer();
    let (_, grads) = p.loss_and_grads(&w, &b);
    assert_eq!(grads[0].shape(), &[3, 2]);
    assert_eq!(grads[1].shape(), &[2]);
    let want_w: Vec<f32> = w
        .value()
        .to_vec()
        .iter()
        .zip(grads[0].to_vec())
        .map(|(w, g)| w - g * 0.1)
        .collect();
    let want_b: Vec<f32> = b
        .value()
        .to_vec()
        .iter()
        .zip(grads[1].to_vec())
        .map(|(b, g)| b - g * 0.1)
        .collect();
    let mut sgd = Sgd::new(0.1);
    sgd.apply_gradients(&mut [&mut w, &mut b], &grads).unwrap();
    assert_eq!(w.value().to_vec(), want_w);
    assert_eq!(b.value().to_vec(), want_b);
}

#[test]
fn adam_training_loop_reduces_the_loss() {
    let p = Problem::new();
    let (mut w, mut b) = layer();
    let mut adam = Adam::new(0.05);
    let (first, _) = p.loss_and_grads(&w, &b);
    let mut last = first;
    for _ in 0..100 {
        let (loss, grads) = p.loss_and_grads(&w, &b);
        adam.apply_gradients(&mut [&mut w, &mut b], &grads).unwrap();
        last = loss;
    }
    assert_eq!(adam.iterations(), 100);
    assert!(last < first * 0.5, "loss {first} -> {last}");
}

/// A tape that is still alive keeps the values it recorded: the update
/// copies the variable's storage first (copy-on-write) and the tape is
/// unaffected.
#[test]
fn a_live_tape_keeps_its_recorded_values() {
    let p = Problem::new();
    let (mut w, mut b) = layer();
    let tape = GradientTape::new();
    let wv = tape.watch(&w);
    let pred = tape
        .constant(p.x.clone())
        .matmul(wv)
        .unwrap()
        .add(tape.watch(&b))
        .unwrap();
    let loss = pred
        .sub(tape.constant(p.y.clone()))
        .unwrap()
        .square()
        .mean_all();
    let grads = tape.gradient_of(loss, &[&w, &b]).unwrap();
    let recorded = wv.value();
    let before = w.value().clone();
    Sgd::new(0.1)
        .apply_gradients(&mut [&mut w, &mut b], &grads)
        .unwrap();
    assert_ne!(w.value(), &before);
    assert_eq!(wv.value(), recorded);
    assert_eq!(recorded, before);
}
