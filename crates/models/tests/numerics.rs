//! Inputs that once gave silently wrong numbers through `Sequential`
//! (issue 11): a categorical cross-entropy meeting an all-zero output row.
//! (`from_logits` on a softmax or sigmoid output is tested on every path in
//! the crate's `fast.rs`; the losses themselves in hebb-layers.)

use hebb_layers::{Activation, Initializer};
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
    assert!((e[0] - ln3).abs() < 1e-6 && (e[1] - ln3).abs() < 1e-6, "{e:?}");
    // No gradient reaches the zero outputs (every one is clipped), so
    // training runs, leaves the weights as they were, and reports ln 3.
    let h = m.fit(&x, &y, quiet()).unwrap();
    assert!((h.get("loss").unwrap()[0] - ln3).abs() < 1e-6, "{h:?}");
    assert!(m.get_weights().iter().all(|w| w.to_vec().iter().all(|&v| v == 0.0)));
    // The sparse loss on the same rows gives the same figure.
    m.compile("sgd", "sparse_categorical_crossentropy", Vec::<&str>::new())
        .unwrap();
    let labels = Tensor::from_vec(vec![0., 2.], &[2]).unwrap();
    let s = m.evaluate(&x, &labels, 32, 0).unwrap();
    assert!((s[0] - e[0]).abs() < 1e-6, "{s:?} vs {e:?}");
}
