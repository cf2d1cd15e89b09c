//! Exporting and importing optimiser configuration and state:
//! `from_config(o.name(), &o.config())` plus `set_state(o.iterations(),
//! o.slots(), shapes)` continues exactly where `o` stopped, for every
//! optimiser and configuration; bad state is refused with typed errors and
//! changes nothing.

use hebb_autograd::Variable;
use hebb_optim::{Adadelta, Adagrad, Adam, Error, Optimizer, RmsProp, Sgd, from_config};
use hebb_tensor::Tensor;
use proptest::prelude::*;

fn configurations() -> Vec<Box<dyn Optimizer>> {
    vec![
        Box::new(Sgd::new(0.1)),
        Box::new(Sgd::new(0.05).with_momentum(0.9, false)),
        Box::new(Sgd::new(0.05).with_momentum(0.8, true)),
        Box::new(Adagrad::new(0.2).with_initial_accumulator_value(0.3)),
        Box::new(Adadelta::new(1.0).with_rho(0.9)),
        Box::new(RmsProp::new(0.01)),
        Box::new(RmsProp::new(0.01).with_momentum(0.5).with_centered(true)),
        Box::new(Adam::new(0.01)),
        Box::new(Adam::new(0.003).with_beta_1(0.8).with_amsgrad(true)),
    ]
}

/// Two variables of different shapes and a deterministic gradient of step `t`.
fn variables() -> Vec<Variable> {
    vec![
        Variable::new(
            "dense/kernel",
            Tensor::from_vec((0..6).map(|i| i as f32 * 0.3 - 1.0).collect(), &[2, 3]).unwrap(),
        ),
        Variable::new(
            "dense/bias",
            Tensor::from_vec(vec![0.1, -0.2, 0.3], &[3]).unwrap(),
        ),
    ]
}

fn gradients(vars: &[Variable], t: usize) -> Vec<Tensor> {
    vars.iter()
        .map(|v| {
            let n = v.value().len();
            let g: Vec<f32> = (0..n)
                .map(|i| ((i * 7 + t * 13) % 11) as f32 / 5.0 - 1.0 + v.value().as_slice()[i] * 0.5)
                .collect();
            Tensor::from_vec(g, v.shape()).unwrap()
        })
        .collect()
}

fn step(o: &mut dyn Optimizer, vars: &mut [Variable], t: usize) {
    let g = gradients(vars, t);
    let mut refs: Vec<&mut Variable> = vars.iter_mut().collect();
    o.apply_gradients(&mut refs, &g).unwrap();
}

fn bits(vars: &[Variable]) -> Vec<Vec<u32>> {
    vars.iter()
        .map(|v| v.value().as_slice().iter().map(|x| x.to_bits()).collect())
        .collect()
}

fn shapes(vars: &[Variable]) -> Vec<Vec<usize>> {
    vars.iter().map(|v| v.shape().to_vec()).collect()
}

fn owned_slots(o: &dyn Optimizer) -> Vec<(String, Tensor)> {
    o.slots().into_iter().map(|(n, t)| (n, t.clone())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn a_rebuilt_optimizer_continues_bit_for_bit(which in 0usize..9, before in 0usize..5, after in 1usize..5) {
        let mut original = configurations().remove(which);
        let mut vars = variables();
        for t in 0..before {
            step(original.as_mut(), &mut vars, t);
        }
        let pairs = original.config();
        let mut copy = from_config(original.name(), &pairs).unwrap();
        prop_assert_eq!(copy.config(), pairs);
        copy.set_state(original.iterations(), &owned_slots(original.as_ref()), &shapes(&vars)).unwrap();
        prop_assert_eq!(copy.iterations(), original.iterations());
        let mut copied_vars = vars.clone();
        for t in before..before + after {
            step(original.as_mut(), &mut vars, t);
            step(copy.as_mut(), &mut copied_vars, t);
        }
        prop_assert_eq!(bits(&vars), bits(&copied_vars));
        prop_assert_eq!(copy.iterations(), original.iterations());
    }
}

#[test]
fn bad_state_is_refused_and_changes_nothing() {
    let mut adam = Adam::new(0.01);
    let mut vars = variables();
    step(&mut adam, &mut vars, 0);
    let slots = owned_slots(&adam);
    let shapes = shapes(&vars);
    let mut fresh = Adam::new(0.01);

    // A slot of another kind (Adam without AMSGrad has no velocity_hat).
    let mut extra = slots.clone();
    extra.push(("velocity_hat/0".into(), Tensor::zeros(&[2, 3])));
    let err = fresh.set_state(1, &extra, &shapes).unwrap_err();
    assert!(
        matches!(&err, Error::UnexpectedSlot { slot, .. } if slot == "velocity_hat/0"),
        "{err:?}"
    );
    assert!(err.to_string().contains("momentum,velocity"), "{err}");

    // An index past the variables, a malformed name.
    for bad in ["momentum/2", "momentum/01", "momentum", "momentum/x"] {
        let mut s = slots.clone();
        s.push((bad.into(), Tensor::zeros(&[3])));
        assert!(
            matches!(
                fresh.set_state(1, &s, &shapes),
                Err(Error::UnexpectedSlot { .. })
            ),
            "{bad}"
        );
    }

    // A missing slot after steps.
    let missing: Vec<_> = slots
        .iter()
        .filter(|(n, _)| n != "velocity/1")
        .cloned()
        .collect();
    let err = fresh.set_state(1, &missing, &shapes).unwrap_err();
    assert!(
        matches!(&err, Error::MissingSlot { slot, .. } if slot == "velocity/1"),
        "{err:?}"
    );
    // Steps taken but no slots at all: the moments would restart at zero.
    assert!(matches!(
        fresh.set_state(3, &[], &shapes),
        Err(Error::MissingSlot { .. })
    ));

    // A slot of the wrong shape, a slot given twice.
    let mut wrong = slots.clone();
    wrong[0].1 = Tensor::zeros(&[3, 2]);
    let err = fresh.set_state(1, &wrong, &shapes).unwrap_err();
    assert!(
        matches!(&err, Error::StateShape { expected, got, .. } if expected == &vec![2, 3] && got == &vec![3, 2]),
        "{err:?}"
    );
    let mut twice = slots.clone();
    twice.push(slots[0].clone());
    assert!(matches!(
        fresh.set_state(1, &twice, &shapes),
        Err(Error::DuplicateSlot { .. })
    ));

    // Nothing changed: the fresh optimiser still takes its first step as a fresh one does.
    assert_eq!(fresh.iterations(), 0);
    assert!(fresh.slots().is_empty());
    let mut a = variables();
    let mut b = variables();
    step(&mut fresh, &mut a, 0);
    step(&mut Adam::new(0.01), &mut b, 0);
    assert_eq!(bits(&a), bits(&b));

    // A fresh state (no steps, no slots) is accepted; SGD without momentum has no slots at all.
    Adam::new(0.01).set_state(0, &[], &shapes).unwrap();
    Sgd::new(0.1).set_state(42, &[], &shapes).unwrap();
}

#[test]
fn from_config_checks_names_and_values() {
    assert!(matches!(
        from_config("Adam", &[("momentum", 0.9)]),
        Err(Error::UnknownHyperparameter { .. })
    ));
    assert!(matches!(
        from_config("Nadam", &[]),
        Err(Error::UnknownOptimizer { .. })
    ));
    assert!(matches!(
        from_config("adam", &[("beta_1", 1.5)]),
        Err(Error::Hyperparameter { name: "beta_1", .. })
    ));
    let rms = from_config("RMSprop", &[("learning_rate", 0.5), ("centered", 1.0)]).unwrap();
    assert_eq!(rms.name(), "RMSprop");
    assert_eq!(rms.learning_rate(), 0.5);
    assert!(rms.config().contains(&("centered", 1.0)));
    // Missing names keep Keras' defaults.
    assert_eq!(
        from_config("sgd", &[]).unwrap().config(),
        Sgd::default().config()
    );
}
