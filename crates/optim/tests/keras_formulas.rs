//! Three steps of every optimiser on `f(w) = ½ Σ aᵢ wᵢ²` (gradient `aᵢ wᵢ`,
//! computed here without a tape), against the Keras 3 update rules written
//! out in f64 (tests/common/mod.rs). Two variables, a `[2, 2]` kernel and a
//! `[3]` bias, so slot `i` must follow variable `i`.

mod common;

use common::{Config, assert_close};
use hebb_autograd::Variable;
use hebb_tensor::Tensor;

const W0: [f32; 7] = [1.0, -2.0, 0.5, 3.0, 0.25, -1.5, 2.0];
const A: [f32; 7] = [1.0, 0.5, 4.0, 0.1, 2.0, 1.0, 0.3];
const SIZES: [usize; 2] = [4, 3];

fn gradient(w: &Variable, a: &[f32]) -> Tensor {
    let g: Vec<f32> = w
        .value()
        .to_vec()
        .iter()
        .zip(a)
        .map(|(w, a)| a * w)
        .collect();
    Tensor::from_vec(g, w.shape()).unwrap()
}

fn run(name: &str, config: Config) {
    let mut opt = config.build();
    let mut kernel = Variable::new(
        "dense/kernel",
        Tensor::from_vec(W0[..4].to_vec(), &[2, 2]).unwrap(),
    );
    let mut bias = Variable::new(
        "dense/bias",
        Tensor::from_vec(W0[4..].to_vec(), &[3]).unwrap(),
    );
    let mut reference = config.reference(W0.len());
    let mut w_ref: Vec<f64> = W0.iter().map(|&w| f64::from(w)).collect();
    let a_ref: Vec<f64> = A.iter().map(|&a| f64::from(a)).collect();
    let scale: Vec<f64> = W0.iter().map(|w| f64::from(w.abs())).collect();

    for step in 1..=3 {
        let grads = [gradient(&kernel, &A[..4]), gradient(&bias, &A[4..])];
        opt.apply_gradients(&mut [&mut kernel, &mut bias], &grads)
            .unwrap();
        let g_ref: Vec<f64> = w_ref.iter().zip(&a_ref).map(|(w, a)| a * w).collect();
        reference.step(&mut w_ref, &g_ref);

        assert_eq!(opt.iterations(), step);
        let mut got = kernel.value().to_vec();
        got.extend(bias.value().to_vec());
        for (i, (&g, &w)) in got.iter().zip(&w_ref).enumerate() {
            let tol = 1e-6 * (w.abs() + scale[i]);
            assert!(
                (f64::from(g) - w).abs() <= tol,
                "{name}, step {step}, w[{i}]: got {g}, want {w}"
            );
        }
        // The weights really moved: a wrong rule cannot hide in the tolerance.
        if step == 1 {
            let moved = got
                .iter()
                .zip(&W0)
                .map(|(g, w)| (g - w).abs())
                .fold(0.0, f32::max);
            assert!(moved > 1e-2, "{name}: largest step {moved}");
        }
    }

    // Slots: names "{kind}/{i}", shapes of variable i, values of the reference.
    let slots = opt.slots();
    assert_eq!(
        slots.len(),
        2 * reference.slots.len(),
        "{name}: slots {:?}",
        slots.iter().map(|s| &s.0).collect::<Vec<_>>()
    );
    for (k, (kind, want)) in reference.slots.iter().enumerate() {
        let scale = want.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let mut offset = 0;
        for (i, (size, shape)) in SIZES.iter().zip([&[2usize, 2][..], &[3][..]]).enumerate() {
            let (slot_name, tensor) = &slots[2 * k + i];
            assert_eq!(slot_name, &format!("{kind}/{i}"), "{name}");
            assert_eq!(tensor.shape(), shape, "{name}: {slot_name}");
            assert_close(
                &format!("{name}: {slot_name}"),
                &tensor.to_vec(),
                &want[offset..offset + size],
                1e-5,
                scale,
            );
            offset += size;
        }
    }
}

#[test]
fn sgd() {
    run("SGD", Config::all()[0].1);
}

#[test]
fn sgd_momentum() {
    run("SGD momentum", Config::all()[1].1);
}

#[test]
fn sgd_nesterov() {
    run("SGD Nesterov", Config::all()[2].1);
}

#[test]
fn adagrad() {
    run("Adagrad", Config::all()[3].1);
}

#[test]
fn adadelta() {
    run("Adadelta", Config::all()[4].1);
}

#[test]
fn rmsprop() {
    run("RMSprop", Config::all()[5].1);
}

#[test]
fn rmsprop_momentum() {
    run("RMSprop momentum", Config::all()[6].1);
}

#[test]
fn rmsprop_centered() {
    run("RMSprop centered", Config::all()[7].1);
}

#[test]
fn adam() {
    run("Adam", Config::all()[8].1);
}

#[test]
fn adam_amsgrad() {
    run("Adam amsgrad", Config::all()[9].1);
}

/// With these numbers `v` shrinks for the first weight at step 2 (its
/// gradient drops from 1 to about 0.03), so AMSGrad's `v̂ = max(v̂, v)`
/// changes the result: the amsgrad case above tests the maximum.
#[test]
fn amsgrad_differs_from_adam_here() {
    let Config::Adam {
        lr,
        beta_1,
        beta_2,
        epsilon,
        ..
    } = Config::all()[9].1
    else {
        unreachable!()
    };
    let plain = Config::Adam {
        lr,
        beta_1,
        beta_2,
        epsilon,
        amsgrad: false,
    };
    let mut results = Vec::new();
    for config in [plain, Config::all()[9].1] {
        let mut opt = config.build();
        let mut w = Variable::new("w", Tensor::from_vec(W0.to_vec(), &[7]).unwrap());
        for _ in 0..3 {
            let g = gradient(&w, &A);
            opt.apply_gradients(&mut [&mut w], &[g]).unwrap();
        }
        results.push(w.value().to_vec());
    }
    assert_ne!(results[0][0], results[1][0]);
}
