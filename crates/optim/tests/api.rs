//! Defaults, names, configuration, slots, step counting and errors.

mod common;

use common::Config;
use hebb_autograd::Variable;
use hebb_optim::{
    Adadelta, Adagrad, Adam, Error, KNOWN_OPTIMIZERS, Optimizer, RmsProp, Sgd, from_name,
};
use hebb_tensor::Tensor;

fn var(name: &str, shape: &[usize]) -> Variable {
    let n: usize = shape.iter().product();
    Variable::new(
        name,
        Tensor::from_vec((1..=n).map(|i| i as f32).collect(), shape).unwrap(),
    )
}

fn config_of(opt: &dyn Optimizer) -> Vec<(&'static str, f64)> {
    opt.config()
}

/// The defaults of keras/src/optimizers/{sgd,adagrad,adadelta,rmsprop,adam}.py.
#[test]
fn defaults_are_keras_defaults() {
    let lr = |x: f32| f64::from(x);
    assert_eq!(
        config_of(&Sgd::default()),
        vec![
            ("learning_rate", lr(0.01)),
            ("momentum", 0.0),
            ("nesterov", 0.0)
        ]
    );
    assert_eq!(
        config_of(&Adagrad::default()),
        vec![
            ("learning_rate", lr(0.001)),
            ("initial_accumulator_value", 0.1),
            ("epsilon", 1e-7)
        ]
    );
    assert_eq!(
        config_of(&Adadelta::default()),
        vec![
            ("learning_rate", lr(0.001)),
            ("rho", 0.95),
            ("epsilon", 1e-7)
        ]
    );
    assert_eq!(
        config_of(&RmsProp::default()),
        vec![
            ("learning_rate", lr(0.001)),
            ("rho", 0.9),
            ("momentum", 0.0),
            ("epsilon", 1e-7),
            ("centered", 0.0)
        ]
    );
    assert_eq!(
        config_of(&Adam::default()),
        vec![
            ("learning_rate", lr(0.001)),
            ("beta_1", 0.9),
            ("beta_2", 0.999),
            ("epsilon", 1e-7),
            ("amsgrad", 0.0)
        ]
    );
    // Keras reports the float32 learning rate widened.
    assert_eq!(Adam::default().config()[0].1, 0.0010000000474974513);
    // Getters agree.
    let adam = Adam::default();
    assert_eq!(
        (adam.beta_1(), adam.beta_2(), adam.epsilon(), adam.amsgrad()),
        (0.9, 0.999, 1e-7, false)
    );
    let rms = RmsProp::default();
    assert_eq!(
        (rms.rho(), rms.momentum(), rms.epsilon(), rms.centered()),
        (0.9, 0.0, 1e-7, false)
    );
    let sgd = Sgd::default();
    assert_eq!(
        (sgd.learning_rate(), sgd.momentum(), sgd.nesterov()),
        (0.01, 0.0, false)
    );
    let ada = Adagrad::default();
    assert_eq!(
        (ada.initial_accumulator_value(), ada.epsilon()),
        (0.1, 1e-7)
    );
    let add = Adadelta::default();
    assert_eq!((add.rho(), add.epsilon()), (0.95, 1e-7));
}

#[test]
fn builders_set_every_hyperparameter() {
    let sgd = Sgd::new(0.5).with_momentum(0.06, true);
    assert_eq!(
        sgd.config(),
        vec![
            ("learning_rate", 0.5),
            ("momentum", 0.06),
            ("nesterov", 1.0)
        ]
    );
    let rms = RmsProp::new(0.5)
        .with_rho(0.8)
        .with_momentum(0.05)
        .with_epsilon(1e-6)
        .with_centered(true);
    assert_eq!(
        rms.config(),
        vec![
            ("learning_rate", 0.5),
            ("rho", 0.8),
            ("momentum", 0.05),
            ("epsilon", 1e-6),
            ("centered", 1.0)
        ]
    );
    let adam = Adam::new(0.5)
        .with_beta_1(0.5)
        .with_beta_2(0.67)
        .with_epsilon(1e-5)
        .with_amsgrad(true);
    assert_eq!(
        adam.config(),
        vec![
            ("learning_rate", 0.5),
            ("beta_1", 0.5),
            ("beta_2", 0.67),
            ("epsilon", 1e-5),
            ("amsgrad", 1.0)
        ]
    );
    let ada = Adagrad::new(0.5)
        .with_initial_accumulator_value(0.2)
        .with_epsilon(1e-5);
    assert_eq!(
        ada.config(),
        vec![
            ("learning_rate", 0.5),
            ("initial_accumulator_value", 0.2),
            ("epsilon", 1e-5)
        ]
    );
    let add = Adadelta::new(0.5).with_rho(0.9).with_epsilon(1e-5);
    assert_eq!(
        add.config(),
        vec![("learning_rate", 0.5), ("rho", 0.9), ("epsilon", 1e-5)]
    );
}

#[test]
fn from_name_knows_keras_names_case_insensitively() {
    let cases = [
        ("sgd", "SGD", 0.01),
        ("SGD", "SGD", 0.01),
        ("adagrad", "Adagrad", 0.001),
        ("Adadelta", "Adadelta", 0.001),
        ("RMSprop", "RMSprop", 0.001),
        ("rmsprop", "RMSprop", 0.001),
        ("ADAM", "Adam", 0.001),
    ];
    for (name, class, lr) in cases {
        let opt = from_name(name).unwrap();
        assert_eq!(opt.name(), class);
        assert_eq!(opt.learning_rate(), lr);
        assert_eq!(opt.iterations(), 0);
        assert!(opt.slots().is_empty());
    }
    // Each known name gives the type's defaults.
    for name in KNOWN_OPTIMIZERS {
        let opt = from_name(name).unwrap();
        let default: Box<dyn Optimizer> = match name {
            "sgd" => Box::new(Sgd::default()),
            "adagrad" => Box::new(Adagrad::default()),
            "adadelta" => Box::new(Adadelta::default()),
            "rmsprop" => Box::new(RmsProp::default()),
            _ => Box::new(Adam::default()),
        };
        assert_eq!(opt.config(), default.config(), "{name}");
        assert_eq!(opt.name(), default.name());
    }
}

#[test]
fn from_name_rejects_unknown_names_listing_known_ones() {
    let err = from_name("nadam").unwrap_err();
    assert_eq!(
        err,
        Error::UnknownOptimizer {
            name: "nadam".into(),
            known: vec!["sgd", "adagrad", "adadelta", "rmsprop", "adam"],
        }
    );
    assert_eq!(
        err.to_string(),
        "unknown optimizer \"nadam\"; known optimizers: sgd, adagrad, adadelta, rmsprop, adam"
    );
}

#[test]
fn gradient_count_mismatch() {
    for (label, config) in Config::all() {
        let mut opt = config.build();
        let (mut w, mut b) = (var("dense/kernel", &[2, 2]), var("dense/bias", &[2]));
        let err = opt
            .apply_gradients(&mut [&mut w, &mut b], &[Tensor::zeros(&[2, 2])])
            .unwrap_err();
        assert_eq!(
            err,
            Error::GradientCount {
                optimizer: opt.name(),
                variables: 2,
                gradients: 1
            },
            "{label}"
        );
        assert_eq!(opt.iterations(), 0);
    }
    let err = Adam::default()
        .apply_gradients(&mut [], &[Tensor::zeros(&[1])])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Adam.apply_gradients: got 1 gradients for 0 variables"
    );
}

#[test]
fn gradient_shape_mismatch_names_the_variable_and_both_shapes() {
    for (label, config) in Config::all() {
        let mut opt = config.build();
        let (mut w, mut b) = (var("dense/kernel", &[2, 3]), var("dense/bias", &[3]));
        let before = (w.value().clone(), b.value().clone());
        let err = opt
            .apply_gradients(
                &mut [&mut w, &mut b],
                &[Tensor::ones(&[2, 3]), Tensor::ones(&[1, 3])],
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}.apply_gradients: the gradient of variable dense/bias has shape [1, 3], \
                 but the variable has shape [3]",
                opt.name()
            ),
            "{label}"
        );
        // Nothing changed, not even the first variable.
        assert_eq!((w.value(), b.value()), (&before.0, &before.1), "{label}");
        assert_eq!(opt.iterations(), 0);
        assert!(opt.slots().is_empty());
    }
}

#[test]
fn variables_in_another_order_are_an_error() {
    for (label, config) in Config::all() {
        let mut opt = config.build();
        let (mut w, mut b) = (var("dense/kernel", &[2, 3]), var("dense/bias", &[3]));
        let (gw, gb) = (Tensor::ones(&[2, 3]), Tensor::ones(&[3]));
        opt.apply_gradients(&mut [&mut w, &mut b], &[gw.clone(), gb.clone()])
            .unwrap();
        let err = opt
            .apply_gradients(&mut [&mut b, &mut w], &[gb.clone(), gw.clone()])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}.apply_gradients: variable 0 (dense/bias) has shape [3], but slot 0 was built \
                 for shape [2, 3]; pass the variables in the same order at every call",
                opt.name()
            ),
            "{label}"
        );
        let err = opt
            .apply_gradients(&mut [&mut w], std::slice::from_ref(&gw))
            .unwrap_err();
        assert_eq!(
            err,
            Error::VariableCount {
                optimizer: opt.name(),
                built: 2,
                got: 1
            },
            "{label}"
        );
        assert_eq!(opt.iterations(), 1, "{label}");
        // The right order still works.
        opt.apply_gradients(&mut [&mut w, &mut b], &[gw, gb])
            .unwrap();
        assert_eq!(opt.iterations(), 2, "{label}");
    }
}

#[test]
fn invalid_hyperparameters_are_rejected_at_apply() {
    let apply = |opt: &mut dyn Optimizer| {
        let mut w = var("w", &[2]);
        let before = w.value().clone();
        let r = opt.apply_gradients(&mut [&mut w], &[Tensor::ones(&[2])]);
        assert_eq!(w.value(), &before);
        r.unwrap_err().to_string()
    };
    assert_eq!(
        apply(&mut Sgd::new(-0.1)),
        "SGD: learning_rate must be finite and >= 0, got -0.10000000149011612"
    );
    assert_eq!(
        apply(&mut Sgd::new(f32::NAN)),
        "SGD: learning_rate must be finite and >= 0, got NaN"
    );
    assert_eq!(
        apply(&mut Sgd::new(0.1).with_momentum(-0.5, false)),
        "SGD: momentum must be in [0, 1], got -0.5"
    );
    assert_eq!(
        apply(&mut Sgd::new(0.1).with_momentum(1.5, true)),
        "SGD: momentum must be in [0, 1], got 1.5"
    );
    assert_eq!(
        apply(&mut Adagrad::default().with_epsilon(-1e-7)),
        "Adagrad: epsilon must be finite and >= 0, got -0.0000001"
    );
    assert_eq!(
        apply(&mut Adagrad::default().with_initial_accumulator_value(-0.1)),
        "Adagrad: initial_accumulator_value must be finite and >= 0, got -0.1"
    );
    assert_eq!(
        apply(&mut Adadelta::default().with_rho(1.0)),
        "Adadelta: rho must be in [0, 1), got 1"
    );
    assert_eq!(
        apply(&mut Adadelta::default().with_rho(-0.1)),
        "Adadelta: rho must be in [0, 1), got -0.1"
    );
    assert_eq!(
        apply(&mut RmsProp::default().with_rho(1.1)),
        "RMSprop: rho must be in [0, 1), got 1.1"
    );
    assert_eq!(
        apply(&mut RmsProp::default().with_momentum(-0.1)),
        "RMSprop: momentum must be in [0, 1], got -0.1"
    );
    assert_eq!(
        apply(&mut RmsProp::default().with_epsilon(0.0)),
        "RMSprop: epsilon must be finite and > 0, got 0"
    );
    assert_eq!(
        apply(&mut Adam::default().with_beta_1(1.0)),
        "Adam: beta_1 must be in [0, 1), got 1"
    );
    assert_eq!(
        apply(&mut Adam::default().with_beta_2(f64::NAN)),
        "Adam: beta_2 must be in [0, 1), got NaN"
    );
    assert_eq!(
        apply(&mut Adam::default().with_epsilon(-1.0)),
        "Adam: epsilon must be finite and >= 0, got -1"
    );
    // validate() is public and agrees.
    assert!(Adam::default().validate().is_ok());
    assert!(Adam::default().with_beta_1(1.0).validate().is_err());
    assert!(Sgd::default().with_momentum(1.0, true).validate().is_ok());
    assert!(RmsProp::default().with_rho(0.0).validate().is_ok());
    // A bad learning rate set later (a schedule gone wrong) is caught at the next step.
    let mut adam = Adam::default();
    adam.set_learning_rate(-1.0);
    assert_eq!(
        apply(&mut adam),
        "Adam: learning_rate must be finite and >= 0, got -1"
    );
    assert_eq!(adam.iterations(), 0);
}

#[test]
fn slots_are_named_like_keras_and_shaped_like_their_variables() {
    let expected: [(&str, Vec<&str>); 10] = [
        ("SGD", vec![]),
        ("SGD momentum", vec!["momentum"]),
        ("SGD Nesterov", vec!["momentum"]),
        ("Adagrad", vec!["accumulator"]),
        (
            "Adadelta",
            vec!["accumulated_grad", "accumulated_delta_var"],
        ),
        ("RMSprop", vec!["velocity"]),
        ("RMSprop momentum", vec!["velocity", "momentum"]),
        ("RMSprop centered", vec!["velocity", "average_gradient"]),
        ("Adam", vec!["momentum", "velocity"]),
        ("Adam amsgrad", vec!["momentum", "velocity", "velocity_hat"]),
    ];
    for ((label, config), (label2, kinds)) in Config::all().into_iter().zip(expected) {
        assert_eq!(label, label2);
        let mut opt = config.build();
        assert!(opt.slots().is_empty());
        let (mut w, mut b) = (var("dense/kernel", &[4, 3]), var("dense/bias", &[3]));
        opt.apply_gradients(
            &mut [&mut w, &mut b],
            &[Tensor::ones(&[4, 3]), Tensor::ones(&[3])],
        )
        .unwrap();
        let slots = opt.slots();
        let names: Vec<String> = slots.iter().map(|(n, _)| n.clone()).collect();
        let want: Vec<String> = kinds
            .iter()
            .flat_map(|k| [format!("{k}/0"), format!("{k}/1")])
            .collect();
        assert_eq!(names, want, "{label}");
        for (name, t) in &slots {
            let shape: &[usize] = if name.ends_with("/0") { &[4, 3] } else { &[3] };
            assert_eq!(t.shape(), shape, "{label}: {name}");
        }
    }
    // Adagrad's accumulators start at initial_accumulator_value.
    let mut ada = Adagrad::new(0.1).with_initial_accumulator_value(0.3);
    let mut w = var("w", &[2]);
    ada.apply_gradients(&mut [&mut w], &[Tensor::zeros(&[2])])
        .unwrap();
    assert_eq!(ada.slots()[0].1.to_vec(), vec![0.3, 0.3]);
}

#[test]
fn iterations_count_steps_and_empty_calls_are_no_ops() {
    for (label, config) in Config::all() {
        let mut opt = config.build();
        opt.apply_gradients(&mut [], &[]).unwrap();
        assert_eq!(
            opt.iterations(),
            0,
            "{label}: an empty call is not a step (Keras)"
        );
        let mut w = var("w", &[3]);
        for step in 1..=5 {
            opt.apply_gradients(&mut [&mut w], &[Tensor::ones(&[3])])
                .unwrap();
            assert_eq!(opt.iterations(), step, "{label}");
        }
        opt.apply_gradients(&mut [], &[]).unwrap();
        assert_eq!(opt.iterations(), 5, "{label}");
    }
}

#[test]
fn set_learning_rate_takes_effect_at_the_next_step() {
    let mut sgd = Sgd::new(0.5);
    let mut w = Variable::new("w", Tensor::scalar(1.0));
    sgd.apply_gradients(&mut [&mut w], &[Tensor::scalar(1.0)])
        .unwrap();
    assert_eq!(w.value().item().unwrap(), 0.5);
    sgd.set_learning_rate(0.25);
    assert_eq!(sgd.learning_rate(), 0.25);
    assert_eq!(sgd.config()[0], ("learning_rate", 0.25));
    sgd.apply_gradients(&mut [&mut w], &[Tensor::scalar(1.0)])
        .unwrap();
    assert_eq!(w.value().item().unwrap(), 0.25);
}

/// Every optimiser, with a learning rate suited to it, reduces
/// `f(w) = ½ Σ aᵢ wᵢ²` over 200 steps.
#[test]
fn every_optimizer_reduces_a_quadratic() {
    let a = [1.0_f32, 0.5, 4.0, 0.1, 2.0];
    let loss = |w: &[f32]| 0.5 * w.iter().zip(&a).map(|(w, a)| a * w * w).sum::<f32>();
    let cases: Vec<(&str, Box<dyn Optimizer>, f32)> = vec![
        ("SGD", Box::new(Sgd::new(0.1)), 0.05),
        (
            "SGD momentum",
            Box::new(Sgd::new(0.1).with_momentum(0.9, false)),
            0.01,
        ),
        (
            "SGD Nesterov",
            Box::new(Sgd::new(0.1).with_momentum(0.9, true)),
            0.01,
        ),
        ("Adagrad", Box::new(Adagrad::new(0.5)), 0.05),
        (
            "Adadelta",
            Box::new(Adadelta::new(1.0).with_epsilon(1e-4)),
            0.5,
        ),
        ("RMSprop", Box::new(RmsProp::new(0.05)), 0.05),
        (
            "RMSprop momentum",
            Box::new(RmsProp::new(0.01).with_momentum(0.9)),
            0.05,
        ),
        (
            "RMSprop centered",
            Box::new(RmsProp::new(0.05).with_centered(true)),
            0.05,
        ),
        ("Adam", Box::new(Adam::new(0.05)), 0.05),
        (
            "Adam amsgrad",
            Box::new(Adam::new(0.05).with_amsgrad(true)),
            0.05,
        ),
        ("Adam (Keras defaults)", Box::new(Adam::default()), 0.9),
        (
            "Adadelta (Keras defaults)",
            Box::new(Adadelta::default()),
            1.0,
        ),
    ];
    for (label, mut opt, ratio) in cases {
        let mut w = Variable::new(
            "w",
            Tensor::from_vec(vec![1.0, -2.0, 0.5, 3.0, -1.0], &[5]).unwrap(),
        );
        let start = loss(&w.value().to_vec());
        for _ in 0..200 {
            let v = w.value().to_vec();
            let g = Tensor::from_vec(v.iter().zip(&a).map(|(w, a)| a * w).collect(), &[5]).unwrap();
            opt.apply_gradients(&mut [&mut w], &[g]).unwrap();
        }
        let end = loss(&w.value().to_vec());
        assert!(
            end < start * ratio,
            "{label}: loss {start} -> {end}, wanted below {}",
            start * ratio
        );
        assert!(end.is_finite());
    }
}

#[test]
fn optimizers_are_usable_as_trait_objects_and_cloned() {
    let mut adam = Adam::new(0.1);
    let mut w = var("w", &[2]);
    adam.apply_gradients(&mut [&mut w], &[Tensor::ones(&[2])])
        .unwrap();
    // A clone carries the state: both continue identically.
    let mut copy = adam.clone();
    let mut w2 = w.clone();
    adam.apply_gradients(&mut [&mut w], &[Tensor::ones(&[2])])
        .unwrap();
    copy.apply_gradients(&mut [&mut w2], &[Tensor::ones(&[2])])
        .unwrap();
    assert_eq!(w.value(), w2.value());
    assert_eq!(copy.iterations(), 2);
    let boxed: Box<dyn Optimizer> = Box::new(adam);
    assert!(format!("{boxed:?}").starts_with("Adam"));
}

/// Issue 11, item 11: summaries print each hyperparameter as it was given
/// (`learning_rate=0.001`, not the f64 widening `0.0010000000474974513`
/// that `config` keeps for saving) and flags as booleans (not `0`/`1`).
#[test]
fn describe_shows_values_as_given_and_flags_as_booleans() {
    assert_eq!(
        Adam::default().describe(),
        "Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=false)"
    );
    assert_eq!(
        Adam::new(0.003).with_amsgrad(true).describe(),
        "Adam(learning_rate=0.003, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=true)"
    );
    assert_eq!(
        Sgd::default().describe(),
        "SGD(learning_rate=0.01, momentum=0.0, nesterov=false)"
    );
    assert_eq!(
        Sgd::new(0.1).with_momentum(0.9, true).describe(),
        "SGD(learning_rate=0.1, momentum=0.9, nesterov=true)"
    );
    assert_eq!(
        RmsProp::default().describe(),
        "RMSprop(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=false)"
    );
    assert_eq!(
        Adagrad::default().describe(),
        "Adagrad(learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7)"
    );
    assert_eq!(
        Adadelta::default().describe(),
        "Adadelta(learning_rate=0.001, rho=0.95, epsilon=1e-7)"
    );
    // A rate that is not a short decimal in f32 shows f32's shortest form.
    assert_eq!(
        Sgd::new(1.0 / 3.0).describe(),
        "SGD(learning_rate=0.33333334, momentum=0.0, nesterov=false)"
    );
}

/// `hyperparameters` and `config` name the same values in the same order:
/// the display form is the saved form, typed.
#[test]
fn hyperparameters_agree_with_config() {
    use hebb_optim::HyperparameterValue as V;
    for name in KNOWN_OPTIMIZERS {
        for config in [
            from_name(name).unwrap(),
            Box::new(Sgd::new(0.2).with_momentum(0.5, true)) as Box<dyn Optimizer>,
            Box::new(RmsProp::new(0.2).with_centered(true)),
            Box::new(Adam::new(0.2).with_amsgrad(true)),
        ] {
            let typed = config.hyperparameters();
            let saved = config.config();
            assert_eq!(typed.len(), saved.len(), "{}", config.name());
            for ((k, v), (k2, w)) in typed.iter().zip(&saved) {
                assert_eq!(k, k2, "{}", config.name());
                let widened = match v {
                    V::F32(x) => f64::from(*x),
                    V::F64(x) => *x,
                    V::Bool(b) => f64::from(u8::from(*b)),
                    other => panic!("{} {k}: unexpected {other:?}", config.name()),
                };
                assert_eq!(widened, *w, "{} {k}", config.name());
            }
        }
    }
}
