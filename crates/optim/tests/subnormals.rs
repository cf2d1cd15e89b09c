//! Optimiser state never holds subnormal numbers (TensorFlow's CPU kernels
//! run with flush-to-zero; subnormal arithmetic is ~100x slower on x86).

use hebb_autograd::Variable;
use hebb_optim::{Adadelta, Adam, Optimizer, RmsProp, Sgd};
use hebb_tensor::Tensor;

/// One gradient, then zeros for `steps` steps: the moving averages decay
/// geometrically through the subnormal range.
fn decayed_slots(mut opt: Box<dyn Optimizer>, steps: usize) -> Vec<f32> {
    let mut w = Variable::new("w", Tensor::full(&[8], 1.0));
    let first = Tensor::full(&[8], 1e-3);
    let zero = Tensor::zeros(&[8]);
    opt.apply_gradients(&mut [&mut w], std::slice::from_ref(&first))
        .unwrap();
    for _ in 0..steps {
        opt.apply_gradients(&mut [&mut w], std::slice::from_ref(&zero))
            .unwrap();
    }
    assert!(w.value().to_vec().iter().all(|v| v.is_finite()));
    opt.slots().iter().flat_map(|(_, t)| t.to_vec()).collect()
}

#[test]
fn slots_are_flushed_to_zero_not_subnormal() {
    // Step counts at which, without flushing, a moving average would sit in
    // the subnormal range (e.g. Adam's m = 1e-4 * 0.9^800 ~ 5e-41).
    let optimizers: Vec<(Box<dyn Optimizer>, usize)> = vec![
        (Box::new(Adam::default()), 800),
        (Box::new(RmsProp::default()), 800),
        (Box::new(Adadelta::default()), 1500),
        (Box::new(Sgd::new(0.01).with_momentum(0.9, false)), 800),
    ];
    for (opt, steps) in optimizers {
        let name = opt.name();
        let slots = decayed_slots(opt, steps);
        assert!(
            slots
                .iter()
                .all(|v| *v == 0.0 || v.abs() >= f32::MIN_POSITIVE),
            "{name}: subnormal slot values {slots:?}"
        );
        // The decay really reached zero for the fast-decaying averages.
        assert!(slots.contains(&0.0), "{name}: {slots:?}");
    }
}
