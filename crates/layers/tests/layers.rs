//! Value, semantics and error tests for hebb-layers: the losses against
//! hand-computed `f64` numbers with tf.keras' semantics (normalisation and
//! clipping), the zero gradient of the step function, RReLU's training
//! slopes as the tape sees them, derivatives at the kinks, metrics, and the
//! errors each constructor and function returns.

use hebb_autograd::GradientTape;
use hebb_layers::{Activation, Dense, Error, Layer, PRelu, RRelu, losses, metrics};
use hebb_tensor::Tensor;

fn t(v: &[f32], s: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), s).unwrap()
}

/// `|got - want| <= tol · max(1, |want|)`, element by element.
#[track_caller]
fn assert_close(got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (f64::from(g) - w).abs() <= tol * w.abs().max(1.0),
            "element {i}: got {g}, want {w} ({got:?} vs {want:?})"
        );
    }
}

/// Keras' `epsilon()` as the `f32` the library uses, widened.
fn eps() -> f64 {
    f64::from(losses::EPSILON)
}

// ------------------------------------------------------------------ losses

#[test]
fn categorical_crossentropy_normalises_unnormalised_predictions() {
    // [2, 6, 2] / 10 = [0.2, 0.6, 0.2]; [1, 1, 2] / 4 = [0.25, 0.25, 0.5].
    let tape = GradientTape::new();
    let y = tape.constant(t(&[0., 1., 0., 1., 0., 0.], &[2, 3]));
    let p = tape.constant(t(&[2., 6., 2., 1., 1., 2.], &[2, 3]));
    let l = losses::categorical_crossentropy(y, p).unwrap();
    assert_eq!(l.shape(), vec![2]);
    assert_close(
        &l.value().to_vec(),
        &[-(0.6f64.ln()), -(0.25f64.ln())],
        1e-6,
    );
}

#[test]
fn categorical_crossentropy_clips_a_zero_probability() {
    // Row 0: the true class has probability 0 -> clipped to 1e-7.
    // Row 1: the zero is in another class and does not count.
    let tape = GradientTape::new();
    let y = tape.constant(t(&[1., 0., 0., 0., 1., 0.], &[2, 3]));
    let p = tape.watch_tensor(t(&[0., 3., 1., 0., 3., 1.], &[2, 3]));
    let l = losses::categorical_crossentropy(y, p).unwrap();
    let want = [-eps().ln(), -(0.75f64.ln())];
    assert!((want[0] - 16.118_095_65).abs() < 1e-6);
    assert_close(&l.value().to_vec(), &want, 1e-6);
    // The clip passes no gradient: row 0's loss is constant in y_pred.
    // Row 1: d(-ln(p1/S))/dp_j = 1/S - [j = 1]/p1 with S = 4, p1 = 3.
    let g = tape.gradient(l, &[p]).unwrap().remove(0).to_vec();
    assert_close(&g[..3], &[0.0; 3], 0.0);
    assert_close(&g[3..], &[0.25, 0.25 - 1.0 / 3.0, 0.25], 1e-6);
}

#[test]
fn binary_crossentropy_is_finite_at_zero_and_one() {
    // Per sample (k = 1): p clipped to [1e-7, 1 - 1e-7] in f32, then
    // Keras 3: -(y ln p + (1 - y) ln(1 - p)) with p clipped to [1e-7, 1 - 1e-7].
    let tape = GradientTape::new();
    let y = tape.constant(t(&[1., 0., 0., 1.], &[4, 1]));
    let p = tape.watch_tensor(t(&[0., 1., 0., 1.], &[4, 1]));
    let l = losses::binary_crossentropy(y, p).unwrap();
    let lo = eps();
    let hi = f64::from(1.0f32 - losses::EPSILON); // 1 - 2^-23 in f32
    let want = [
        -lo.ln(),         // y = 1, p = 0: -ln(1e-7) ≈ 16.1181
        -(1.0 - hi).ln(), // y = 0, p = 1: -ln(2^-23) ≈ 15.9424
        -(1.0 - lo).ln(), // ≈ 0
        -hi.ln(),         // ≈ 0
    ];
    assert!((want[0] - 16.118_096).abs() < 1e-5 && (want[1] - 15.942_385).abs() < 1e-5);
    let got = l.value().to_vec();
    assert_close(&got, &want, 1e-6);
    let g = tape
        .gradient(l.mean_all(), &[p])
        .unwrap()
        .remove(0)
        .to_vec();
    assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
}

#[test]
fn binary_crossentropy_averages_over_the_last_axis() {
    let tape = GradientTape::new();
    let y = tape.constant(t(&[1., 0., 0.3, 0.7], &[2, 2]));
    let p = tape.constant(t(&[0.9, 0.2, 0.6, 0.5], &[2, 2]));
    let l = losses::binary_crossentropy(y, p).unwrap();
    let bce = |y: f64, p: f64| -(y * p.ln() + (1.0 - y) * (1.0 - p).ln());
    let want = [
        (bce(1.0, 0.9) + bce(0.0, 0.2)) / 2.0,
        (bce(0.3, 0.6) + bce(0.7, 0.5)) / 2.0,
    ];
    assert_eq!(l.shape(), vec![2]);
    assert_close(&l.value().to_vec(), &want, 1e-6);
}

#[test]
fn mean_squared_error_is_a_per_sample_mean() {
    let tape = GradientTape::new();
    let y = tape.constant(t(&[0., 1., 2., 1., -1., 0.5], &[2, 3]));
    let p = tape.constant(t(&[0.5, 1., 0., 0., 0., 0.], &[2, 3]));
    let l = losses::mean_squared_error(y, p).unwrap();
    assert_eq!(l.shape(), vec![2]);
    assert_close(&l.value().to_vec(), &[4.25 / 3.0, 2.25 / 3.0], 1e-6);
    // Half squared error: 1/2 Σ over everything, a scalar.
    let h = losses::half_squared_error(y, p).unwrap();
    assert_eq!(h.shape(), Vec::<usize>::new());
    assert_close(&h.value().to_vec(), &[3.25], 1e-6);
    // A single sample [k] gives a scalar, like tf.keras.losses.mse.
    let y1 = tape.constant(t(&[1., 2.], &[2]));
    let p1 = tape.constant(t(&[0., 0.], &[2]));
    let m = losses::mean_squared_error(y1, p1).unwrap();
    assert_eq!(m.shape(), Vec::<usize>::new());
    assert_close(&m.value().to_vec(), &[2.5], 1e-6);
}

#[test]
fn losses_name_both_shapes_on_mismatch() {
    let tape = GradientTape::new();
    let a = tape.constant(Tensor::zeros(&[2, 3]));
    let b = tape.constant(Tensor::full(&[2, 4], 0.5));
    type Loss = for<'t> fn(
        hebb_autograd::Var<'t>,
        hebb_autograd::Var<'t>,
    ) -> hebb_layers::Result<hebb_autograd::Var<'t>>;
    let all: [(&str, Loss); 4] = [
        ("categorical_crossentropy", losses::categorical_crossentropy),
        ("binary_crossentropy", losses::binary_crossentropy),
        ("mean_squared_error", losses::mean_squared_error),
        ("half_squared_error", losses::half_squared_error),
    ];
    for (name, loss) in all {
        let err = loss(a, b).unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument { .. }),
            "{name}: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.starts_with(name) && msg.contains("[2, 3]") && msg.contains("[2, 4]"),
            "{name}: {msg}"
        );
        // Swapped operands: the message says which is which.
        let msg = loss(b, a).unwrap_err().to_string();
        assert!(
            msg.contains("y_true [2, 4]") && msg.contains("y_pred [2, 3]"),
            "{name}: {msg}"
        );
    }
    // Scalars: the per-sample losses need an axis, the half squared error does not.
    let s = tape.constant(Tensor::scalar(0.5));
    for (name, loss) in &all[..3] {
        let msg = loss(s, s).unwrap_err().to_string();
        assert!(msg.contains("rank >= 1"), "{name}: {msg}");
    }
    let h = losses::half_squared_error(s, tape.constant(Tensor::scalar(1.5))).unwrap();
    assert_eq!(h.value().item().unwrap(), 0.5);
}

// ------------------------------------------------------------- activations

#[test]
fn step_has_zero_gradient_on_the_tape() {
    let tape = GradientTape::new();
    let z = tape.watch_tensor(t(&[-1.5, -0.5, 0., 0.5, 1.5], &[5]));
    let y = Activation::Step.apply(z).unwrap();
    assert_eq!(y.value().to_vec(), vec![0., 0., 1., 1., 1.]);
    let loss = y
        .mul(tape.constant(t(&[1., -2., 3., -4., 5.], &[5])))
        .unwrap()
        .sum_all();
    let g = tape.gradient(loss, &[z]).unwrap().remove(0);
    assert_eq!(g.to_vec(), vec![0.0; 5]);
    assert_eq!(g.shape(), &[5]);
    // Through a layer, kernel and bias get zeros too.
    let layer = Dense::from_weights(
        "step",
        t(&[1., -1.], &[1, 2]),
        t(&[0.1, 0.1], &[2]),
        Activation::Step,
    )
    .unwrap();
    let tape = GradientTape::new();
    let y = layer
        .call(&tape, tape.constant(t(&[0.5, -0.5], &[2, 1])), true)
        .unwrap();
    assert_eq!(y.value().to_vec(), vec![1., 0., 0., 1.]);
    let grads = tape
        .gradient_of(y.sum_all(), &layer.trainable_variables())
        .unwrap();
    assert_eq!(grads[0].to_vec(), vec![0.0; 2]);
    assert_eq!(grads[1].to_vec(), vec![0.0; 2]);
}

#[test]
fn derivatives_at_the_kink_follow_tensorflow() {
    // At z = 0 the derivative is the left-hand one (only z > 0 counts as positive).
    let z = t(&[-1., 0., 1.], &[3]);
    let tape_grad = |f: &dyn Fn(hebb_autograd::Var<'_>) -> hebb_autograd::Var<'_>| {
        let tape = GradientTape::new();
        let zv = tape.watch_tensor(z.clone());
        let y = f(zv);
        tape.gradient(y.sum_all(), &[zv])
            .unwrap()
            .remove(0)
            .to_vec()
    };
    let relu = Activation::Relu;
    assert_eq!(relu.derivative(&z).unwrap().to_vec(), vec![0., 0., 1.]);
    assert_eq!(tape_grad(&|v| relu.apply(v).unwrap()), vec![0., 0., 1.]);
    let leaky = Activation::LeakyRelu { a: 4.0 };
    assert_eq!(leaky.derivative(&z).unwrap().to_vec(), vec![0.25, 0.25, 1.]);
    assert_eq!(
        tape_grad(&|v| leaky.apply(v).unwrap()),
        vec![0.25, 0.25, 1.]
    );
    assert_eq!(leaky.call(&z).unwrap().to_vec(), vec![-0.25, 0., 1.]);

    let mut prelu = PRelu::new("p_re_lu", &[], 0.25);
    prelu.alpha.assign(Tensor::scalar(0.3)).unwrap();
    let want = vec![0.3, 0.3, 1.];
    assert_close(
        &prelu.derivative(&z).unwrap().to_vec(),
        &[0.3, 0.3, 1.],
        1e-7,
    );
    let tape = GradientTape::new();
    let zv = tape.watch_tensor(z.clone());
    let g = tape
        .gradient(prelu.forward(&tape, zv).unwrap().sum_all(), &[zv])
        .unwrap();
    assert_eq!(g[0].to_vec(), want);

    let mut rrelu = RRelu::new(0.125, 0.375, 3).unwrap();
    assert_eq!(rrelu.inference_slope(), 0.25);
    assert_eq!(rrelu.derivative(&z).unwrap().to_vec(), vec![0.25, 0.25, 1.]);
    let tape = GradientTape::new();
    let zv = tape.watch_tensor(z.clone());
    let y = rrelu.forward(zv, false).unwrap();
    assert_eq!(y.value().to_vec(), vec![-0.25, 0., 1.]);
    let g = tape.gradient(y.sum_all(), &[zv]).unwrap();
    assert_eq!(g[0].to_vec(), vec![0.25, 0.25, 1.]);
}

#[test]
fn leaky_relu_needs_a_greater_than_one() {
    let z = t(&[-1., 1.], &[2]);
    for a in [1.0, 0.5, 0.0, -2.0, f32::NAN] {
        let act = Activation::LeakyRelu { a };
        let tape = GradientTape::new();
        let errors = [
            act.call(&z).unwrap_err(),
            act.derivative(&z).unwrap_err(),
            act.apply(tape.watch_tensor(z.clone())).unwrap_err(),
        ];
        for err in errors {
            assert!(
                matches!(
                    err,
                    Error::InvalidArgument {
                        what: "leaky_relu",
                        ..
                    }
                ),
                "{err:?}"
            );
            assert!(err.to_string().contains(&format!("got {a}")), "{err}");
        }
    }
    assert_eq!(
        Activation::LeakyRelu { a: 1.0 }
            .call(&z)
            .unwrap_err()
            .to_string(),
        "leaky_relu: the lecture's divisor a must be > 1 (Keras' negative_slope = 1/a in [0, 1)), \
         got 1 (negative_slope 1)"
    );
    assert!(Activation::LeakyRelu { a: 1.001 }.call(&z).is_ok());
}

/// Issue 11, item 13: Keras' `negative_slope` beside the lecture's divisor `a`.
#[test]
fn leaky_relu_takes_keras_negative_slope_too() {
    // Keras' usual slopes come back exactly through a = 1/slope.
    for slope in [0.01f32, 0.1, 0.2, 0.3, 0.5] {
        let act = Activation::leaky_relu(slope);
        assert_eq!(act, Activation::LeakyRelu { a: 1.0 / slope });
        assert_eq!(act.negative_slope(), Some(slope), "{slope}");
        act.validate().unwrap();
    }
    // Applied as Keras applies it: slope · z below 0.
    let z = t(&[-2., -0.5, 0., 3.], &[4]);
    let y = Activation::leaky_relu(0.2).call(&z).unwrap().to_vec();
    assert_eq!(y, vec![-0.4, -0.1, 0., 3.]);
    // Slope 0 is ReLU (a = inf), as Keras' negative_slope=0 is.
    let relu_like = Activation::leaky_relu(0.0);
    assert_eq!(relu_like, Activation::LeakyRelu { a: f32::INFINITY });
    assert_eq!(relu_like.call(&z).unwrap().to_vec(), vec![0., 0., 0., 3.]);
    assert_eq!(
        relu_like.to_string(),
        "leaky_relu (a=inf, negative_slope=0)"
    );
    // Slopes of 1 or more, negative or NaN are refused, in both notations.
    for slope in [1.0f32, 2.0, -0.1, f32::NAN] {
        let err = Activation::leaky_relu(slope).validate().unwrap_err();
        assert!(
            err.to_string().contains("negative_slope = 1/a in [0, 1)"),
            "{slope}: {err}"
        );
    }
    // Summaries show both parameters; the other activations show their names.
    assert_eq!(
        Activation::LeakyRelu { a: 10.0 }.to_string(),
        "leaky_relu (a=10, negative_slope=0.1)"
    );
    assert_eq!(
        Activation::leaky_relu(0.01).to_string(),
        "leaky_relu (a=100, negative_slope=0.01)"
    );
    assert_eq!(Activation::Relu.to_string(), "relu");
    assert_eq!(Activation::Relu.negative_slope(), None);
}

#[test]
fn softmax_of_a_scalar_is_an_error() {
    let s = Tensor::scalar(1.0);
    assert!(Activation::Softmax.call(&s).is_err());
    assert!(Activation::Softmax.derivative(&s).is_err());
    let tape = GradientTape::new();
    assert!(Activation::Softmax.apply(tape.watch_tensor(s)).is_err());
    // Rows sum to one.
    let y = Activation::Softmax
        .call(&t(&[1., 2., 3., -1., 0., 1.], &[2, 3]))
        .unwrap();
    let y = y.to_vec();
    assert!((y[0] + y[1] + y[2] - 1.0).abs() < 1e-6 && (y[3] + y[4] + y[5] - 1.0).abs() < 1e-6);
    let e = [1f64.exp(), 2f64.exp(), 3f64.exp()];
    let s: f64 = e.iter().sum();
    assert_close(&y[..3], &[e[0] / s, e[1] / s, e[2] / s], 1e-6);
}

#[test]
fn activation_names_are_keras_names() {
    let names: Vec<&str> = [
        Activation::Linear,
        Activation::Step,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::LeakyRelu { a: 5.0 },
        Activation::Softmax,
    ]
    .iter()
    .map(Activation::name)
    .collect();
    assert_eq!(
        names,
        [
            "linear",
            "step",
            "sigmoid",
            "tanh",
            "relu",
            "leaky_relu",
            "softmax"
        ]
    );
}

// -------------------------------------------------------------------- RReLU

#[test]
fn rrelu_training_gradient_is_the_applied_slope() {
    let (lower, upper) = (0.125f32, 1.0 / 3.0);
    let mut layer = RRelu::new(lower, upper, 612).unwrap();
    // (k + 1/2)/32 for k in -61..=60: never zero, both signs.
    let data: Vec<f32> = (-61..=60).map(|k| (k as f32 + 0.5) / 32.0).collect();
    let z = t(&data, &[2, 61]);
    let tape = GradientTape::new();
    let zv = tape.watch_tensor(z.clone());
    let y = layer.forward(zv, true).unwrap();
    let g = tape
        .gradient(y.sum_all(), &[zv])
        .unwrap()
        .remove(0)
        .to_vec();
    let y = y.value().to_vec();
    let mut slopes = Vec::new();
    for ((&z, &y), &g) in data.iter().zip(&y).zip(&g) {
        if z > 0.0 {
            assert_eq!((y, g), (z, 1.0), "z = {z}");
        } else {
            let applied = y / z;
            assert!(
                (g - applied).abs() <= 1e-6 * applied,
                "z = {z}: gradient {g}, y/z {applied}"
            );
            assert!((lower..=upper).contains(&g), "z = {z}: slope {g}");
            slopes.push(g);
        }
    }
    // Each element draws its own slope.
    slopes.sort_by(f32::total_cmp);
    slopes.dedup();
    assert!(slopes.len() > 50, "{} distinct slopes", slopes.len());

    // Fresh slopes on each call; the same seed gives the same bits.
    let mut again = RRelu::new(lower, upper, 612).unwrap();
    let first = again.call(&z, true).unwrap().to_vec();
    assert_eq!(first, y);
    let second = again.call(&z, true).unwrap().to_vec();
    assert_ne!(first, second);
}

#[test]
fn rrelu_rejects_bad_bounds() {
    for (lower, upper) in [
        (0.5, 0.25),
        (-0.1, 0.5),
        (0.1, 1.5),
        (1.5, 2.0),
        (f32::NAN, 0.5),
        (0.1, f32::NAN),
    ] {
        let err = RRelu::new(lower, upper, 0).unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument { what: "rrelu", .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains(&format!("got lower={lower}, upper={upper}")),
            "{err}"
        );
    }
    assert_eq!(
        RRelu::new(0.5, 0.25, 0).unwrap_err().to_string(),
        "rrelu: need 0 <= lower <= upper <= 1, got lower=0.5, upper=0.25"
    );
    for (lower, upper) in [(0.0, 0.0), (1.0, 1.0), (0.125, 1.0 / 3.0), (0.0, 1.0)] {
        assert!(RRelu::new(lower, upper, 0).is_ok(), "{lower}, {upper}");
    }
}

// -------------------------------------------------------------------- PReLU

#[test]
fn prelu_values_and_alpha_gradient() {
    // One slope per unit, broadcast over the batch; ∂y/∂α = Σ_batch min(z, 0).
    let mut layer = PRelu::new("p_re_lu", &[2], 0.0);
    assert_eq!(layer.alpha.name(), "p_re_lu/alpha");
    assert_eq!(layer.alpha.value().to_vec(), vec![0.0, 0.0]);
    layer.alpha.assign(t(&[0.25, 0.5], &[2])).unwrap();
    let z = t(&[-2., 3., -4., -1.], &[2, 2]);
    assert_eq!(layer.call(&z).unwrap().to_vec(), vec![-0.5, 3., -1., -0.5]);
    let tape = GradientTape::new();
    let y = layer.forward(&tape, tape.constant(z)).unwrap();
    assert_eq!(y.value().to_vec(), vec![-0.5, 3., -1., -0.5]);
    let g = tape.gradient_of(y.sum_all(), &[&layer.alpha]).unwrap();
    assert_eq!(g[0].to_vec(), vec![-6., -1.]);
}

#[test]
fn prelu_with_alpha_of_the_wrong_shape_is_an_error() {
    let layer = PRelu::new("p_re_lu", &[3], 0.25);
    let z = Tensor::full(&[2, 4], -1.0);
    assert!(layer.call(&z).is_err());
    assert!(layer.derivative(&z).is_err());
    let tape = GradientTape::new();
    let err = layer.forward(&tape, tape.constant(z)).unwrap_err();
    assert!(err.to_string().contains("[3]"), "{err}");
}

// -------------------------------------------------------------------- Dense

#[test]
fn dense_forward_value_and_variables() {
    // x W + b for x = [1, 2], W = [[1, 2, 3], [4, 5, 6]], b = [0.5, -0.5, 0].
    let layer = Dense::from_weights(
        "dense_3",
        t(&[1., 2., 3., 4., 5., 6.], &[2, 3]),
        t(&[0.5, -0.5, 0.], &[3]),
        Activation::Relu,
    )
    .unwrap();
    assert_eq!(
        (Layer::name(&layer), layer.input_dim(), layer.units()),
        ("dense_3", Some(2), 3)
    );
    let names: Vec<&str> = layer
        .trainable_variables()
        .iter()
        .map(|v| v.name())
        .collect();
    assert_eq!(names, ["dense_3/kernel", "dense_3/bias"]);
    let x = t(&[1., 2., -1., -1.], &[2, 2]);
    let tape = GradientTape::new();
    let y = layer.call(&tape, tape.constant(x.clone()), true).unwrap();
    // Row 0: [9.5, 11.5, 15]; row 1: relu([-4.5, -7.5, -9]) = 0.
    assert_eq!(y.value().to_vec(), vec![9.5, 11.5, 15., 0., 0., 0.]);
    assert_eq!(layer.predict(&x).unwrap().to_vec(), y.value().to_vec());
    // dΣy/dW = xᵀ · mask, dΣy/db = Σ_batch mask; row 1 is switched off.
    let g = tape
        .gradient_of(y.sum_all(), &layer.trainable_variables())
        .unwrap();
    assert_eq!(g[0].to_vec(), vec![1., 1., 1., 2., 2., 2.]);
    assert_eq!(g[1].to_vec(), vec![1., 1., 1.]);
}

#[test]
fn dense_errors_name_the_layer() {
    let err = Dense::from_weights(
        "dense_9",
        Tensor::zeros(&[4]),
        Tensor::zeros(&[4]),
        Activation::Linear,
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Shape { layer, .. } if layer == "dense_9"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "layer dense_9: kernel must be [in, units] and bias [units]; got kernel [4] and bias [4]"
    );
    let err = Dense::from_weights(
        "d",
        Tensor::zeros(&[4, 3]),
        Tensor::zeros(&[3, 1]),
        Activation::Linear,
    )
    .unwrap_err();
    assert!(err.to_string().contains("bias [3, 1]"), "{err}");

    let layer = Dense::from_weights(
        "dense_7",
        Tensor::zeros(&[4, 3]),
        Tensor::zeros(&[3]),
        Activation::Tanh,
    )
    .unwrap();
    for bad in [vec![2, 5], vec![4], vec![2, 4, 1], vec![]] {
        let want = format!("layer dense_7: expected input [batch, 4], got {bad:?}");
        let x = Tensor::zeros(&bad);
        assert_eq!(layer.predict(&x).unwrap_err().to_string(), want);
        let tape = GradientTape::new();
        let err = layer.call(&tape, tape.watch_tensor(x), true).unwrap_err();
        assert!(
            matches!(&err, Error::Shape { layer, .. } if layer == "dense_7"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), want);
    }
    // A bad activation is reported by forward and call.
    let layer = Dense::from_weights(
        "d",
        Tensor::zeros(&[1, 1]),
        Tensor::zeros(&[1]),
        Activation::LeakyRelu { a: 0.5 },
    )
    .unwrap();
    assert!(layer.predict(&Tensor::zeros(&[1, 1])).is_err());
    let tape = GradientTape::new();
    assert!(
        layer
            .call(&tape, tape.constant(Tensor::zeros(&[1, 1])), true)
            .is_err()
    );
}

// ------------------------------------------------------------------ metrics

#[test]
fn accuracy_follows_the_lecture() {
    let p = t(
        &[0.1, 0.7, 0.2, 0.5, 0.3, 0.2, 0.3, 0.3, 0.4, 0.9, 0.05, 0.05],
        &[4, 3],
    );
    assert_eq!(metrics::accuracy(&p, &[1, 0, 2, 1]).unwrap(), 0.75);
    assert_eq!(metrics::accuracy(&p, &[0, 1, 0, 1]).unwrap(), 0.0);
    // tf.argmax picks the first of equal maxima.
    let tie = t(&[0.5, 0.5], &[1, 2]);
    assert_eq!(metrics::accuracy(&tie, &[0]).unwrap(), 1.0);
    let err = metrics::accuracy(&p, &[0, 1]).unwrap_err().to_string();
    assert!(err.contains("[4, 3]") && err.contains("2 labels"), "{err}");
    assert!(metrics::accuracy(&t(&[0.5; 3], &[3]), &[0, 0, 0]).is_err());
}

#[test]
fn binary_accuracy_counts_thresholded_hits() {
    let p = t(&[0.1, 0.7, 0.4, 0.9], &[4, 1]);
    assert_eq!(
        metrics::binary_accuracy(&p, &[0., 1., 1., 1.], 0.5).unwrap(),
        0.75
    );
    assert_eq!(
        metrics::binary_accuracy(&p, &[0., 1., 1., 1.], 0.3).unwrap(),
        1.0
    );
    let err = metrics::binary_accuracy(&p, &[0.], 0.5)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[4, 1]") && err.contains("1 labels"), "{err}");
}

/// tf.keras' `binary_accuracy` predicts 1 only where `y_pred > threshold`
/// (`math_ops.cast(y_pred > threshold, ...)`), so a prediction equal to the
/// threshold counts as 0; hebb counts `p >= threshold` as 1.
#[test]
fn binary_accuracy_at_the_threshold_predicts_zero_like_keras() {
    let p = t(&[0.5], &[1, 1]);
    assert_eq!(metrics::binary_accuracy(&p, &[0.], 0.5).unwrap(), 1.0);
    assert_eq!(metrics::binary_accuracy(&p, &[1.], 0.5).unwrap(), 0.0);
}
