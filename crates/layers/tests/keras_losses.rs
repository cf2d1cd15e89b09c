//! The Keras 3 losses (`keras/src/losses/losses.py` with the TensorFlow
//! backend, `keras/src/backend/tensorflow/nn.py`) against values computed by
//! hand, including Keras' clipping, and [`Loss`] by name.

use hebb_autograd::GradientTape;
use hebb_layers::losses::{self, EPSILON, Loss};
use hebb_tensor::Tensor;

fn t(v: &[f32], s: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), s).unwrap()
}

fn close(got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (f64::from(*g) - w).abs() <= tol * w.abs().max(1.0),
            "{got:?} vs {want:?}"
        );
    }
}

#[test]
fn sparse_categorical_crossentropy_keras_docstring() {
    // keras.losses.sparse_categorical_crossentropy([1, 2], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]])
    // = [0.0513, 2.303]: the 0 is clipped to 1e-7, which also enters log Σ p.
    let tape = GradientTape::new();
    let y = tape.constant(t(&[1., 2.], &[2]));
    let p = tape.constant(t(&[0.05, 0.95, 0.0, 0.1, 0.8, 0.1], &[2, 3]));
    let l = losses::sparse_categorical_crossentropy(y, p)
        .unwrap()
        .value()
        .to_vec();
    close(
        &l,
        &[-(0.95f64.ln()) + (1.0 + 1e-7f64).ln(), -(0.1f64.ln())],
        1e-6,
    );
    // [batch, 1] labels are squeezed, as Keras does.
    let y1 = tape.constant(t(&[1., 2.], &[2, 1]));
    let l1 = losses::sparse_categorical_crossentropy(y1, p)
        .unwrap()
        .value();
    assert_eq!(l1.to_vec(), l);
}

#[test]
fn sparse_categorical_crossentropy_clips_then_normalises() {
    let tape = GradientTape::new();
    // A confident wrong prediction: p_y = 0 is clipped to ε, 1 to 1 - ε.
    let l = losses::sparse_categorical_crossentropy(
        tape.constant(t(&[1.], &[1])),
        tape.constant(t(&[1.0, 0.0], &[1, 2])),
    )
    .unwrap()
    .value()
    .item()
    .unwrap();
    close(&[l], &[-(1e-7f64.ln())], 1e-5);
    // Unnormalised rows: -log p_y + log Σ p = log 2 here, not -log 0.2.
    let l = losses::sparse_categorical_crossentropy(
        tape.constant(t(&[0.], &[1])),
        tape.constant(t(&[0.2, 0.2], &[1, 2])),
    )
    .unwrap()
    .value()
    .item()
    .unwrap();
    close(&[l], &[std::f64::consts::LN_2], 1e-6);
    // Rows that sum to 1 agree with categorical_crossentropy on one-hot labels.
    let p = t(&[0.2, 0.5, 0.3, 0.7, 0.1, 0.2], &[2, 3]);
    let sparse = losses::sparse_categorical_crossentropy(
        tape.constant(t(&[1., 0.], &[2])),
        tape.constant(p.clone()),
    )
    .unwrap()
    .value()
    .to_vec();
    let dense = losses::categorical_crossentropy(
        tape.constant(Tensor::one_hot(&[1, 0], 3).unwrap()),
        tape.constant(p),
    )
    .unwrap()
    .value()
    .to_vec();
    close(&sparse, &[f64::from(dense[0]), f64::from(dense[1])], 1e-6);
}

#[test]
fn sparse_categorical_crossentropy_gradient_and_clip() {
    // d/dp_j (-log p_y + log Σ p) = -[j = y]/p_y + 1/Σ p; clipped elements get none.
    let tape = GradientTape::new();
    let p = tape.watch_tensor(t(&[0.2, 0.6, 0.0], &[1, 3]));
    let loss = losses::sparse_categorical_crossentropy(tape.constant(t(&[1.], &[1])), p).unwrap();
    let g = tape.gradient(loss, &[p]).unwrap()[0].to_vec();
    let s = 0.8 + f64::from(EPSILON);
    close(&g[..2], &[1.0 / s, -1.0 / 0.6 + 1.0 / s], 1e-5);
    assert_eq!(g[2], 0.0);
}

#[test]
fn sparse_label_errors_name_the_label() {
    let tape = GradientTape::new();
    let p = tape.constant(t(&[0.2, 0.3, 0.5, 0.1, 0.1, 0.8], &[2, 3]));
    for (labels, bad) in [
        (vec![0., 3.], "label 3 at position 1"),
        (vec![1.5, 0.], "label 1.5 at position 0"),
        (vec![-1., 0.], "label -1 at position 0"),
        (vec![f32::NAN, 0.], "label NaN at position 0"),
    ] {
        for f in [
            losses::sparse_categorical_crossentropy,
            losses::sparse_categorical_crossentropy_from_logits,
        ] {
            let err = f(tape.constant(t(&labels, &[2])), p)
                .unwrap_err()
                .to_string();
            assert!(err.contains(bad) && err.contains("0..3"), "{err}");
        }
    }
    let err = losses::sparse_categorical_crossentropy(tape.constant(t(&[0., 1., 2.], &[3])), p)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[3]") && err.contains("[2, 3]"), "{err}");
}

#[test]
fn categorical_crossentropy_from_logits_values() {
    let tape = GradientTape::new();
    let z = t(&[1., 2., 3., 1000., 0., 0.], &[2, 3]);
    let y = t(&[0., 0., 1., 0., 1., 0.], &[2, 3]);
    let l =
        losses::categorical_crossentropy_from_logits(tape.constant(y.clone()), tape.constant(z))
            .unwrap()
            .value()
            .to_vec();
    // log(e + e² + e³) - 3; a huge logit stays finite: 1000 - 0 (+ log(1 + 2e^-1000)).
    let lse = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
    close(&l, &[lse - 3.0, 1000.0], 1e-6);
    // Sparse labels give the same.
    let ls = losses::sparse_categorical_crossentropy_from_logits(
        tape.constant(t(&[2., 1.], &[2])),
        tape.constant(t(&[1., 2., 3., 1000., 0., 0.], &[2, 3])),
    )
    .unwrap()
    .value()
    .to_vec();
    assert_eq!(ls, l);
    // And they agree with the probability form on softmax outputs.
    let z = t(&[0.5, -1.0, 2.0], &[1, 3]);
    let from_p = losses::categorical_crossentropy(
        tape.constant(t(&[0., 1., 0.], &[1, 3])),
        tape.constant(z.softmax().unwrap()),
    )
    .unwrap()
    .value()
    .item()
    .unwrap();
    let from_z = losses::categorical_crossentropy_from_logits(
        tape.constant(t(&[0., 1., 0.], &[1, 3])),
        tape.constant(z),
    )
    .unwrap()
    .value()
    .item()
    .unwrap();
    assert!((from_p - from_z).abs() < 1e-5, "{from_p} vs {from_z}");
}

#[test]
fn categorical_crossentropy_from_logits_gradient_is_softmax_minus_labels() {
    let tape = GradientTape::new();
    let z = tape.watch_tensor(t(&[0.5, -1.0, 2.0], &[1, 3]));
    let y = t(&[0.2, 0.8, 0.0], &[1, 3]);
    let loss = losses::categorical_crossentropy_from_logits(tape.constant(y.clone()), z).unwrap();
    let g = tape.gradient(loss, &[z]).unwrap()[0].to_vec();
    let s = z.value().softmax().unwrap().to_vec();
    let want: Vec<f64> = s
        .iter()
        .zip(y.to_vec())
        .map(|(&s, y)| f64::from(s - y))
        .collect();
    close(&g, &want, 1e-6);
}

#[test]
fn binary_crossentropy_from_logits_values_and_gradient_at_zero() {
    let tape = GradientTape::new();
    let x = tape.watch_tensor(t(&[0.0, 2.0, -3.0, 100.0, -100.0, 0.5], &[2, 3]));
    let z = tape.constant(t(&[1., 0., 1., 1., 1., 0.5], &[2, 3]));
    let loss = losses::binary_crossentropy_from_logits(z, x).unwrap();
    let sp = |v: f64| (1.0 + v.exp()).ln(); // softplus
    // Per element: softplus(x) - x z.
    let e = [
        sp(0.0),
        sp(2.0),
        sp(-3.0) + 3.0,
        sp(-100.0),
        100.0 + sp(-100.0),
        sp(0.5) - 0.25,
    ];
    close(
        &loss.value().to_vec(),
        &[(e[0] + e[1] + e[2]) / 3.0, (e[3] + e[4] + e[5]) / 3.0],
        1e-6,
    );
    // ∂/∂x = (σ(x) - z)/k, including x = 0 (TensorFlow's branch choice).
    let g = tape.gradient(loss, &[x]).unwrap()[0].to_vec();
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let want = [
        (sig(0.0) - 1.0) / 3.0,
        sig(2.0) / 3.0,
        (sig(-3.0) - 1.0) / 3.0,
        (sig(100.0) - 1.0) / 3.0,
        (sig(-100.0) - 1.0) / 3.0,
        (sig(0.5) - 0.5) / 3.0,
    ];
    close(&g, &want, 1e-6);
    // Agrees with the probability form away from the clip bounds.
    let logits = t(&[-1.0, 0.3, 1.2], &[1, 3]);
    let labels = t(&[0., 1., 1.], &[1, 3]);
    let a = losses::binary_crossentropy_from_logits(
        tape.constant(labels.clone()),
        tape.constant(logits.clone()),
    )
    .unwrap()
    .value()
    .item()
    .unwrap();
    let b = losses::binary_crossentropy(tape.constant(labels), tape.constant(logits.sigmoid()))
        .unwrap()
        .value()
        .item()
        .unwrap();
    assert!((a - b).abs() < 1e-5, "{a} vs {b}");
}

/// Issue 11: `log(1 + exp(-|x|))` rounded `1 + 2e-9` to 1 and lost the
/// loss of a confident right prediction; `log1p` keeps it, as TensorFlow's
/// `sigmoid_cross_entropy_with_logits` does (and hebb's fused step did).
#[test]
fn binary_crossentropy_from_logits_keeps_small_losses() {
    let tape = GradientTape::new();
    let x = tape.watch_tensor(t(&[20.0], &[1, 1]));
    let y = tape.constant(t(&[1.0], &[1, 1]));
    let loss = Loss::BinaryCrossentropy { from_logits: true }
        .call(y, x)
        .unwrap();
    let l = loss.value().item().unwrap();
    assert!(
        ((f64::from(l) - 2.061_153_7e-9) / 2.061_153_7e-9).abs() < 1e-6,
        "{l:e}"
    );
    // The gradient σ(20) - 1 = -2.0611537e-9.
    let g = tape.gradient(loss.mean_all(), &[x]).unwrap()[0]
        .item()
        .unwrap();
    assert!(
        ((f64::from(g) + 2.061_153_7e-9) / 2.061_153_7e-9).abs() < 1e-6,
        "{g:e}"
    );
    // The fused form gives the same loss.
    let (fused, _) = t(&[20.0], &[1, 1])
        .sigmoid_cross_entropy(&t(&[1.0], &[1, 1]))
        .unwrap();
    assert_eq!(fused.to_vec(), vec![l]);
}

/// Issue 11: an all-zero probability row gave NaN (Keras too); it is
/// clipped and then normalised, as the sparse loss treats it: `ln 3` for 3
/// classes, no gradient, and the value the sparse loss gives.
#[test]
fn categorical_crossentropy_of_an_all_zero_row_is_finite() {
    let tape = GradientTape::new();
    let y = tape.constant(t(&[1., 0., 0., 0., 1., 0.], &[2, 3]));
    let p = tape.watch_tensor(t(&[0., 0., 0., 0.2, 0.5, 0.3], &[2, 3]));
    let loss = Loss::CategoricalCrossentropy { from_logits: false }
        .call(y, p)
        .unwrap();
    let l = loss.value().to_vec();
    close(&l, &[3f64.ln(), -(0.5f64.ln())], 1e-6);
    assert!((l[0] - 1.098_612_3).abs() < 1e-6, "{}", l[0]);
    let sparse = Loss::SparseCategoricalCrossentropy { from_logits: false }
        .call(
            tape.constant(t(&[0.], &[1])),
            tape.constant(t(&[0., 0., 0.], &[1, 3])),
        )
        .unwrap()
        .value()
        .item()
        .unwrap();
    assert!((l[0] - sparse).abs() < 1e-6, "{} vs sparse {sparse}", l[0]);
    let g = tape.gradient(loss.mean_all(), &[p]).unwrap()[0].to_vec();
    assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
    assert_eq!(g[..3], [0.0; 3], "the clipped zeros pass no gradient");
    // The other row's gradient is the one it had alone: -y/p·(1/2) + 1/(2 Σp).
    close(&g[3..], &[0.5, 0.5 - 1.0, 0.5], 1e-6);
    // Soft labels weight ln k by their mass.
    let soft = losses::categorical_crossentropy(
        tape.constant(t(&[0.5, 0.25, 0.25, 0.0], &[1, 4])),
        tape.constant(t(&[0.0; 4], &[1, 4])),
    )
    .unwrap()
    .value()
    .to_vec();
    close(&soft, &[4f64.ln()], 1e-6);
}

#[test]
fn regression_and_hinge_values() {
    let tape = GradientTape::new();
    let c = |v: &[f32], s: &[usize]| tape.constant(t(v, s));
    let mae = losses::mean_absolute_error(
        c(&[1., 2., 3., 4.], &[2, 2]),
        c(&[1.5, 1., 3., 5.], &[2, 2]),
    )
    .unwrap()
    .value()
    .to_vec();
    close(&mae, &[0.75, 0.5], 1e-7);
    // 100 · mean(|(y - p) / max(|y|, ε)|); y = 0 divides by ε.
    let mape = losses::mean_absolute_percentage_error(
        c(&[2., -4., 0.], &[3, 1]),
        c(&[1., -5., 1e-7], &[3, 1]),
    )
    .unwrap()
    .value()
    .to_vec();
    close(&mape, &[50.0, 25.0, 100.0], 1e-5);
    // Labels {0, 1} become {-1, 1}: max(1 + 0.3, 0), max(1 - 0.4, 0).
    let h = losses::hinge(
        c(&[0., 1., 1., 1.], &[2, 2]),
        c(&[0.3, 0.4, 2.0, -0.5], &[2, 2]),
    )
    .unwrap()
    .value()
    .to_vec();
    close(&h, &[0.95, 0.75], 1e-6);
    // Labels already in {-1, 1} are used as they are; others too.
    let h = losses::hinge(
        c(&[-1., 1., 0.5, -2.], &[2, 2]),
        c(&[0.3, 0.4, 1.0, 0.25], &[2, 2]),
    )
    .unwrap()
    .value()
    .to_vec();
    close(&h, &[0.95, 1.0], 1e-6);
    // max(max((1 - y) p) - Σ y p + 1, 0).
    let ch = losses::categorical_hinge(
        c(&[0., 1., 0., 0., 1., 0., 1., 0., 0.], &[3, 3]),
        c(&[0.3, 0.5, 0.2, 0.1, 0.9, 0.0, 0.0, 2.0, 0.0], &[3, 3]),
    )
    .unwrap()
    .value()
    .to_vec();
    close(&ch, &[0.8, 0.2, 3.0], 1e-6);
    let ch = losses::categorical_hinge(c(&[0., 1., 0.], &[1, 3]), c(&[0., 2., 0.], &[1, 3]))
        .unwrap()
        .value()
        .to_vec();
    assert_eq!(ch, vec![0.0]);
}

#[test]
fn categorical_hinge_shares_the_gradient_at_ties() {
    // neg = max(0.4, 0, 0.4): TensorFlow's reduce_max gradient splits it.
    let tape = GradientTape::new();
    let p = tape.watch_tensor(t(&[0.4, 0.5, 0.4], &[1, 3]));
    let loss = losses::categorical_hinge(tape.constant(t(&[0., 1., 0.], &[1, 3])), p).unwrap();
    assert!((loss.value().item().unwrap() - 0.9).abs() < 1e-6);
    let g = tape.gradient(loss, &[p]).unwrap()[0].to_vec();
    assert_eq!(g, vec![0.5, -1.0, 0.5]);
}

#[test]
fn loss_by_name() {
    for (name, want) in [
        ("mse", Loss::MeanSquaredError),
        ("MeanSquaredError", Loss::MeanSquaredError),
        ("mae", Loss::MeanAbsoluteError),
        ("MAPE", Loss::MeanAbsolutePercentageError),
        ("bce", Loss::BinaryCrossentropy { from_logits: false }),
        (
            "categorical_crossentropy",
            Loss::CategoricalCrossentropy { from_logits: false },
        ),
        (
            "SparseCategoricalCrossentropy",
            Loss::SparseCategoricalCrossentropy { from_logits: false },
        ),
        ("hinge", Loss::Hinge),
        ("categorical_hinge", Loss::CategoricalHinge),
    ] {
        assert_eq!(Loss::from_name(name).unwrap(), want, "{name}");
    }
    for &name in Loss::NAMES {
        let loss = Loss::from_name(name).unwrap();
        assert_eq!(Loss::from_name(loss.name()).unwrap(), loss);
        assert!(!loss.from_logits());
    }
    let err = Loss::from_name("cross_entropy").unwrap_err().to_string();
    assert!(
        err.contains("cross_entropy")
            && err.contains("sparse_categorical_crossentropy")
            && err.contains("mse"),
        "{err}"
    );
    // Case-sensitive, as keras.losses.get.
    assert!(Loss::from_name("Mse").is_err());
    let l = Loss::from_name("sparse_categorical_crossentropy")
        .unwrap()
        .with_from_logits(true)
        .unwrap();
    assert!(l.from_logits() && l.is_sparse());
    assert_eq!(l.name(), "sparse_categorical_crossentropy");
    assert!(Loss::MeanSquaredError.with_from_logits(true).is_err());
    assert_eq!(Loss::Hinge.with_from_logits(false).unwrap(), Loss::Hinge);
}

#[test]
fn loss_call_dispatches_and_fits_ranks() {
    let tape = GradientTape::new();
    let c = |v: &[f32], s: &[usize]| tape.constant(t(v, s));
    // [batch] labels meet [batch, 1] predictions as [batch, 1].
    let mse = Loss::MeanSquaredError
        .call(c(&[1., 0.], &[2]), c(&[0.5, 0.25], &[2, 1]))
        .unwrap();
    assert_eq!(mse.shape(), vec![2]);
    close(&mse.value().to_vec(), &[0.25, 0.0625], 1e-7);
    let bce = Loss::BinaryCrossentropy { from_logits: true }
        .call(c(&[1.], &[1]), c(&[0.], &[1, 1]))
        .unwrap();
    close(&bce.value().to_vec(), &[std::f64::consts::LN_2], 1e-6);
    let sparse = Loss::SparseCategoricalCrossentropy { from_logits: false }
        .call(c(&[1.], &[1, 1]), c(&[0.5, 0.5], &[1, 2]))
        .unwrap();
    close(&sparse.value().to_vec(), &[std::f64::consts::LN_2], 1e-6);
    let cce = Loss::CategoricalCrossentropy { from_logits: false }
        .call(c(&[0., 1.], &[1, 2]), c(&[0.5, 0.5], &[1, 2]))
        .unwrap();
    close(&cce.value().to_vec(), &[std::f64::consts::LN_2], 1e-6);
    let err = Loss::CategoricalCrossentropy { from_logits: true }
        .call(c(&[0., 1.], &[1, 2]), c(&[0.5, 0.5, 0.], &[1, 3]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("[1, 2]") && err.contains("[1, 3]"), "{err}");
}
