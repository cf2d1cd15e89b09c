//! Inputs that once gave silently wrong numbers through `Sequential`
//! (issue 11): a categorical cross-entropy meeting an all-zero output row,
//! and a `validation_split` that leaves one side of the split empty.
//! (`from_logits` on a softmax or sigmoid output is tested on every path in
//! the crate's `fast.rs`; the losses themselves in hebb-layers.)

use hebb_layers::{Activation, Initializer};
use hebb_models::Error;
use hebb_models::sequential::layers::Dense;
use hebb_models::sequential::{FitOptions, Sequential};
use hebb_tensor::Tensor;

fn quiet() -> FitOptions {
    FitOptions {
        verbose: 0,
        ..Default::default()
    }
}

/// A ReLU output with a zero kernel and bias gives all-zero "probabilities";
/// the categorical cross-entropy of such a row was NaN (fit stopped with a
/// diverged loss, evaluate returned NaN). It is `ln 3` for 3 classes, the
/// value the sparse loss gives, in the loss and in the metric of that name.
#[test]
fn categorical_crossentropy_on_all_zero_outputs_is_ln_k() {
    let mut m = Sequential::new();
    m.add(
        Dense::new(3)
            .activation(Activation::Relu)
            .kernel_initializer(Initializer::Zeros)
            .bias_initializer(Initializer::Zeros)
            .input_shape(&[2]),
    )
    .unwrap();
    m.compile(
        "sgd",
        "categorical_crossentropy",
        vec!["categorical_crossentropy"],
    )
    .unwrap();
    let x = Tensor::from_vec(vec![0.5, -1.0, 2.0, 0.25], &[2, 2]).unwrap();
    let y = Tensor::from_vec(vec![1., 0., 0., 0., 0., 1.], &[2, 3]).unwrap();
    let ln3 = 3f32.ln();
    let e = m.evaluate(&x, &y, 32, 0).unwrap();
    assert!(
        (e[0] - ln3).abs() < 1e-6 && (e[1] - ln3).abs() < 1e-6,
        "{e:?}"
    );
    // No gradient reaches the zero outputs (every one is clipped), so
    // training runs, leaves the weights as they were, and reports ln 3.
    let h = m.fit(&x, &y, quiet()).unwrap();
    assert!((h.get("loss").unwrap()[0] - ln3).abs() < 1e-6, "{h:?}");
    assert!(
        m.get_weights()
            .iter()
            .all(|w| w.to_vec().iter().all(|&v| v == 0.0))
    );
    // The sparse loss on the same rows gives the same figure.
    m.compile("sgd", "sparse_categorical_crossentropy", Vec::<&str>::new())
        .unwrap();
    let labels = Tensor::from_vec(vec![0., 2.], &[2]).unwrap();
    let s = m.evaluate(&x, &labels, 32, 0).unwrap();
    assert!((s[0] - e[0]).abs() < 1e-6, "{s:?} vs {e:?}");
}

fn iris_like(n: usize) -> (Tensor, Tensor) {
    let x = Tensor::from_vec((0..n * 4).map(|i| (i % 7) as f32 / 7.0).collect(), &[n, 4]).unwrap();
    let y = Tensor::from_vec((0..n).map(|i| (i % 3) as f32).collect(), &[n]).unwrap();
    (x, y)
}

fn classifier() -> Sequential {
    let mut m = Sequential::new().with_seed(1);
    m.add(
        Dense::new(3)
            .activation(Activation::Softmax)
            .input_shape(&[4]),
    )
    .unwrap();
    m.compile("sgd", "sparse_categorical_crossentropy", vec!["accuracy"])
        .unwrap();
    m
}

/// Keras' `train_validation_split`: `split_at = floor(n (1 - split))`, and
/// a split with `split_at` 0 or `n` is an error naming the sample count and
/// the split. 1e-17 of 150 rows trained with no validation and no error.
#[test]
fn a_validation_split_that_leaves_a_side_empty_is_refused() {
    let (x, y) = iris_like(150);
    let mut m = classifier();
    let before = m.get_weights();
    for (n, split, train) in [(150, 1e-17, 150), (2, 5e-17, 2), (1, 0.5, 0), (3, 0.9, 0)] {
        let rows: Vec<usize> = (0..n).collect();
        let (xs, ys) = (x.gather_rows(&rows).unwrap(), y.gather_rows(&rows).unwrap());
        let err = m
            .fit(
                &xs,
                &ys,
                FitOptions {
                    validation_split: split,
                    ..quiet()
                },
            )
            .unwrap_err();
        assert_eq!(
            err,
            Error::ValidationSplit {
                samples: n,
                validation_split: split,
                train,
                validation: n - train,
            }
        );
        let msg = err.to_string();
        let samples = if n == 1 {
            "1 sample"
        } else {
            &format!("{n} samples")
        };
        assert!(
            msg.contains(&format!("contains {samples},"))
                && msg.contains(&format!("validation_split={split:?} ")),
            "{msg}"
        );
    }
    assert_eq!(m.get_weights(), before, "a refused fit trains nothing");
    // A small split that leaves one validation sample: floor(150 · 0.999) = 149.
    let h = m
        .fit(
            &x,
            &y,
            FitOptions {
                validation_split: 0.001,
                ..quiet()
            },
        )
        .unwrap();
    assert_eq!(h.get("val_loss").map(<[f32]>::len), Some(1));
    // No split (0.0), and validation_data (which overrides the split), train as before.
    assert!(m.fit(&x, &y, quiet()).unwrap().get("val_loss").is_none());
    let h = m
        .fit(
            &x,
            &y,
            FitOptions {
                validation_split: 1e-17,
                validation_data: Some((x.clone(), y.clone())),
                ..quiet()
            },
        )
        .unwrap();
    assert!(h.get("val_loss").is_some());
}

/// The fused step's bias gradient `db = Σ_rows G` over a full batch: added
/// row by row in `f32`, a million rows of 0.2/n gave a bias of -0.1981
/// after one SGD(1.0) step instead of -0.2. It is accumulated in `f64`,
/// as hebb-tensor's reductions are, so full-batch gradient descent (BGD on
/// 60,000 MNIST rows) gets the gradient to within 1e-6.
#[test]
fn a_full_batch_bias_gradient_is_summed_to_within_1e_6() {
    let n = 1_000_000;
    let mut m = Sequential::new();
    m.add(
        Dense::new(1)
            .kernel_initializer(Initializer::Zeros)
            .bias_initializer(Initializer::Zeros)
            .input_shape(&[1]),
    )
    .unwrap();
    let sgd: Box<dyn hebb_optim::Optimizer> = Box::new(hebb_optim::Sgd::new(1.0));
    m.compile(sgd, "mean_squared_error", Vec::<&str>::new())
        .unwrap();
    let x = Tensor::zeros(&[n, 1]);
    let y = Tensor::full(&[n, 1], -0.1);
    let options = FitOptions {
        batch_size: n,
        epochs: 1,
        ..quiet()
    };
    m.fit(&x, &y, options).unwrap();
    // d/db mean((b - y)²) = 2 (0 + 0.1) = 0.2, so b = 0 - 1.0 · 0.2.
    let bias = m.get_weights()[1].to_vec()[0];
    assert!((bias + 0.2).abs() <= 0.2 * 1e-6, "bias {bias}");
}
