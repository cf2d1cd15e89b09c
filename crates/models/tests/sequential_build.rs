//! Building and compiling a `Sequential` model: the errors Keras raises
//! (shapes, duplicate names, use before build or compile, unknown names)
//! and `compile` with strings or objects.

use hebb_layers::Activation;
use hebb_layers::losses::Loss;
use hebb_layers::metrics::{MeanFn, MeanMetricWrapper, Metric};
use hebb_models::Error;
use hebb_models::sequential::layers::{ActivationLayer, Dense, Flatten};
use hebb_models::sequential::{FitOptions, Sequential};
use hebb_optim::{Optimizer, Sgd};
use hebb_tensor::Tensor;

fn iris_model() -> Sequential {
    let mut model = Sequential::new();
    model
        .add(Dense::new(8).activation(Activation::Relu).input_shape(&[4]))
        .unwrap();
    model
        .add(Dense::new(4).activation(Activation::Relu))
        .unwrap();
    model
        .add(Dense::new(3).activation(Activation::Softmax))
        .unwrap();
    model
}

fn data(n: usize, features: usize) -> (Tensor, Tensor) {
    let x: Vec<f32> = (0..n * features).map(|i| (i % 7) as f32 / 7.0).collect();
    let y: Vec<f32> = (0..n).map(|i| (i % 3) as f32).collect();
    (
        Tensor::from_vec(x, &[n, features]).unwrap(),
        Tensor::from_vec(y, &[n]).unwrap(),
    )
}

fn quiet() -> FitOptions {
    FitOptions {
        verbose: 0,
        ..Default::default()
    }
}

#[test]
fn dense_after_a_2d_output_needs_flatten() {
    // Dense as the first layer on 28x28 images.
    let mut model = Sequential::new();
    let err = model
        .add(Dense::new(128).input_shape(&[28, 28]))
        .unwrap_err();
    assert!(matches!(&err, Error::Build { layer, .. } if layer == "dense"));
    let msg = err.to_string();
    assert!(msg.starts_with("layer dense: "), "{msg}");
    assert!(msg.contains("(None, 28, 28)"), "{msg}");
    assert!(msg.contains("(None, features)"), "{msg}");
    assert!(msg.contains("Flatten"), "{msg}");
    // The failed layer is not kept: the model is empty again.
    assert!(!model.built());
    assert!(matches!(model.summary(), Err(Error::NotBuilt { .. })));

    // Dense after an Activation that keeps the 2-D shape.
    let mut model = Sequential::new();
    model
        .add(ActivationLayer::new(Activation::Relu).input_shape(&[28, 28]))
        .unwrap();
    let err = model.add(Dense::new(10)).unwrap_err().to_string();
    assert!(err.starts_with("layer dense: "), "{err}");
    assert!(err.contains("(None, 28, 28)"), "{err}");
    // The model is still usable: Flatten then Dense.
    model.add(Flatten::new()).unwrap();
    model.add(Dense::new(10)).unwrap();
    assert_eq!(model.count_params(), 784 * 10 + 10);
    assert!(model.summary().unwrap().contains("dense (Dense) "));
}

#[test]
fn deferred_build_reports_the_layer_at_fit() {
    // Without input_shape the model is built by fit/predict with the data's shape.
    let mut model = Sequential::new();
    model.add(Dense::new(4)).unwrap();
    assert!(!model.built());
    assert!(matches!(model.summary(), Err(Error::NotBuilt { model }) if model == "sequential"));
    let x = Tensor::zeros(&[3, 2, 5]);
    let err = model.predict(&x, 32).unwrap_err().to_string();
    assert!(err.starts_with("layer dense: "), "{err}");
    assert!(err.contains("(None, 2, 5)"), "{err}");
    // A flat input builds it.
    let out = model.predict(&Tensor::zeros(&[3, 5]), 32).unwrap();
    assert_eq!(out.shape(), &[3, 4]);
    assert!(model.built());
    assert!(
        model
            .summary()
            .unwrap()
            .contains("(None, 4)                 24")
    );
}

#[test]
fn duplicate_names_are_refused() {
    let mut model = Sequential::new();
    model
        .add(Dense::new(3).input_shape(&[2]).name("hidden"))
        .unwrap();
    let err = model.add(Dense::new(3).name("hidden")).unwrap_err();
    assert!(matches!(&err, Error::Build { layer, .. } if layer == "hidden"));
    assert!(err.to_string().contains("already"), "{err}");
    // The model keeps one layer.
    assert_eq!(model.count_params(), 9);
}

#[test]
fn names_that_cannot_be_paths_are_refused_and_the_model_is_unchanged() {
    for bad in ["a/b", ".", "..", "a\0b"] {
        let mut model = Sequential::new();
        let err = model
            .add(Dense::new(3).input_shape(&[2]).name(bad))
            .unwrap_err();
        assert!(
            matches!(&err, Error::Build { layer, .. } if *layer == bad.escape_debug().to_string())
        );
        assert!(err.to_string().contains("'/'"), "{err}");
        // Not even the input shape was taken: a layer without one builds nothing.
        model.add(Dense::new(3)).unwrap();
        assert!(!model.built());
    }
    // An empty name is no name (a layer's name is empty until the model
    // names it): the layer gets Keras' automatic one.
    let mut model = Sequential::new();
    model.add(Dense::new(3).input_shape(&[2]).name("")).unwrap();
    assert_eq!(model.layers().next().unwrap().name(), "dense");
}

#[test]
fn automatic_names_skip_names_in_use() {
    // Keras would refuse a second `dense`; hebb numbers past it.
    let mut model = Sequential::new();
    model
        .add(Dense::new(3).input_shape(&[2]).name("dense"))
        .unwrap();
    model.add(Dense::new(3).name("dense_1")).unwrap();
    model.add(Dense::new(1)).unwrap();
    let summary = model.summary().unwrap();
    assert!(summary.contains("\ndense_2 (Dense) "), "{summary}");
}

#[test]
fn summary_before_build_is_not_built() {
    let model = Sequential::new();
    let err = model.summary().unwrap_err();
    assert_eq!(
        err,
        Error::NotBuilt {
            model: "sequential".into()
        }
    );
    assert!(err.to_string().contains("sequential"));
    assert!(err.to_string().contains("input_shape"));
}

#[test]
fn fit_and_evaluate_before_compile_are_not_compiled() {
    let mut model = iris_model();
    let (x, y) = data(6, 4);
    let expected = Error::NotCompiled {
        model: "sequential".into(),
    };
    assert_eq!(model.fit(&x, &y, quiet()).unwrap_err(), expected);
    assert_eq!(model.evaluate(&x, &y, 32, 0).unwrap_err(), expected);
    assert!(expected.to_string().contains("compile"));
    // predict needs no compile.
    assert_eq!(model.predict(&x, 32).unwrap().shape(), &[6, 3]);
    assert_eq!(model.metrics_names(), ["loss"]);
}

#[test]
fn build_with_another_input_shape_is_an_error() {
    let mut model = iris_model();
    model.build(&[4]).unwrap();
    let err = model.build(&[5]).unwrap_err();
    assert!(matches!(&err, Error::Build { layer, .. } if layer == "dense"));
    let msg = err.to_string();
    assert!(
        msg.contains("(None, 4)") && msg.contains("(None, 5)"),
        "{msg}"
    );
    let err = model
        .predict(&Tensor::zeros(&[2, 5]), 32)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("(None, 4)") && err.contains("(None, 5)"),
        "{err}"
    );
    let err = model
        .predict(&Tensor::zeros(&[2, 2, 2]), 32)
        .unwrap_err()
        .to_string();
    assert!(err.contains("(None, 2, 2)"), "{err}");
    // Inputs without a sample axis.
    let err = model.predict(&Tensor::zeros(&[4]), 32).unwrap_err();
    assert!(matches!(err, Error::Data { .. }), "{err}");
    // Targets of another length.
    model.compile("sgd", "mse", Vec::<&str>::new()).unwrap();
    let err = model
        .fit(&Tensor::zeros(&[5, 4]), &Tensor::zeros(&[4]), quiet())
        .unwrap_err();
    assert!(matches!(err, Error::Data { .. }), "{err}");
    assert!(err.to_string().contains("5 input samples"), "{err}");
}

#[test]
fn set_weights_checks_count_and_shapes() {
    let mut model = iris_model();
    let mut weights = model.get_weights();
    assert_eq!(weights.len(), 6);
    // A wrong shape names the variable and both shapes.
    weights[2] = Tensor::zeros(&[4, 8]);
    let err = model.set_weights(&weights).unwrap_err();
    assert!(matches!(err, Error::Weights { .. }));
    let msg = err.to_string();
    assert!(msg.contains("dense_1/kernel"), "{msg}");
    assert!(msg.contains("[8, 4]") && msg.contains("[4, 8]"), "{msg}");
    // Nothing was assigned.
    assert_eq!(
        model.get_weights()[0].to_vec(),
        iris_model().get_weights()[0].to_vec()
    );
    // A wrong count.
    let err = model.set_weights(&weights[..5]).unwrap_err().to_string();
    assert!(err.contains('6') && err.contains('5'), "{err}");
    // Right shapes: assigned, in Keras order.
    let ones: Vec<Tensor> = model
        .get_weights()
        .iter()
        .map(|w| Tensor::ones(w.shape()))
        .collect();
    model.set_weights(&ones).unwrap();
    for w in model.get_weights() {
        assert!(w.to_vec().iter().all(|&v| v == 1.0));
    }
}

#[test]
fn unknown_names_list_the_known_ones() {
    let mut model = iris_model();
    let err = model
        .compile(
            "adamw",
            "sparse_categorical_crossentropy",
            Vec::<&str>::new(),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("adamw"), "{err}");
    for known in ["sgd", "adagrad", "adadelta", "rmsprop", "adam"] {
        assert!(err.contains(known), "{err}");
    }

    let err = model
        .compile("adam", "cross_entropy", Vec::<&str>::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("cross_entropy"), "{err}");
    assert!(
        err.contains("sparse_categorical_crossentropy") && err.contains("mse"),
        "{err}"
    );

    let err = model
        .compile("adam", "sparse_categorical_crossentropy", vec!["f1"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("f1"), "{err}");
    assert!(
        err.contains("sparse_categorical_accuracy") && err.contains("accuracy"),
        "{err}"
    );
    // A failed compile leaves the model uncompiled.
    assert_eq!(model.metrics_names(), ["loss"]);
    let (x, y) = data(3, 4);
    assert!(matches!(
        model.evaluate(&x, &y, 32, 0),
        Err(Error::NotCompiled { .. })
    ));
}

#[test]
fn metrics_names_as_keras_reports_them() {
    let mut model = iris_model();
    model
        .compile(
            "adam",
            "sparse_categorical_crossentropy",
            vec!["sparse_categorical_accuracy"],
        )
        .unwrap();
    assert_eq!(
        model.metrics_names(),
        ["loss", "sparse_categorical_accuracy"]
    );
    // "accuracy" and "acc" are kept as given.
    model
        .compile(
            "adam",
            "sparse_categorical_crossentropy",
            vec!["accuracy", "acc"],
        )
        .unwrap();
    assert_eq!(model.metrics_names(), ["loss", "accuracy", "acc"]);
    model
        .compile("adam", "mse", vec!["mae", "mean_squared_error"])
        .unwrap();
    assert_eq!(model.metrics_names(), ["loss", "mae", "mean_squared_error"]);
    // History keys follow.
    let (x, y) = data(6, 4);
    model
        .compile("adam", "sparse_categorical_crossentropy", vec!["accuracy"])
        .unwrap();
    let h = model.fit(&x, &y, quiet()).unwrap();
    assert_eq!(h.keys(), ["loss", "accuracy"]);
}

#[test]
fn compile_with_objects() {
    // A linear output with a from_logits loss, an SGD object and a metric object.
    let mut model = Sequential::new().with_seed(3);
    model
        .add(Dense::new(4).activation(Activation::Relu).input_shape(&[4]))
        .unwrap();
    model.add(Dense::new(3)).unwrap();
    let sgd: Box<dyn Optimizer> = Box::new(Sgd::new(0.0));
    let metric: Box<dyn Metric> =
        Box::new(MeanMetricWrapper::new(MeanFn::SparseCategoricalAccuracy).with_name("acc_obj"));
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
    model.compile(sgd, loss, vec![metric]).unwrap();
    assert_eq!(model.metrics_names(), ["loss", "acc_obj"]);

    let (x, y) = data(9, 4);
    let before = model.get_weights();
    let values = model.evaluate(&x, &y, 4, 0).unwrap();
    // The loss is computed from logits: -log_softmax(z)[y], averaged.
    let logits = model.predict(&x, 32).unwrap().to_vec();
    let labels = y.to_vec();
    let mut sum = 0f64;
    let mut correct = 0;
    for (row, &label) in logits.chunks(3).zip(&labels) {
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = f64::from(m)
            + row
                .iter()
                .map(|&z| f64::from(z - m).exp())
                .sum::<f64>()
                .ln();
        sum += lse - f64::from(row[label as usize]);
        let argmax = (0..3)
            .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
            .unwrap();
        correct += usize::from(argmax == label as usize);
    }
    let want = sum / 9.0;
    assert!(
        (f64::from(values[0]) - want).abs() < 1e-5,
        "{values:?} vs {want}"
    );
    assert_eq!(values[1], correct as f32 / 9.0);
    // The same loss by probabilities would differ: the outputs are not probabilities.
    assert!(logits.iter().any(|&z| !(0.0..=1.0).contains(&z)));

    // The SGD object with learning rate 0 is used: fit changes no weight.
    let h = model.fit(&x, &y, quiet()).unwrap();
    assert_eq!(h.keys(), ["loss", "acc_obj"]);
    for (a, b) in before.iter().zip(model.get_weights()) {
        assert_eq!(a.to_vec(), b.to_vec());
    }
}

#[test]
fn compile_with_optimizer_name_uses_keras_defaults() {
    // "sgd" is SGD(0.01): one full-batch step of mse on a linear unit moves
    // the bias by exactly -0.01 * d loss / d b.
    let mut model = Sequential::new();
    model
        .add(
            Dense::new(1)
                .input_shape(&[1])
                .kernel_initializer(hebb_layers::Initializer::Zeros),
        )
        .unwrap();
    model.compile("sgd", "mse", Vec::<&str>::new()).unwrap();
    let x = Tensor::from_vec(vec![1.0, 2.0], &[2, 1]).unwrap();
    let y = Tensor::from_vec(vec![1.0, 3.0], &[2, 1]).unwrap();
    model
        .fit(
            &x,
            &y,
            FitOptions {
                batch_size: 2,
                ..quiet()
            },
        )
        .unwrap();
    // loss = mean((w x + b - y)^2); at w = b = 0: dL/db = -(1 + 3) = -4,
    // dL/dw = -(1 * 1 + 2 * 3) = -7.
    let w = model.get_weights();
    assert!(
        (w[0].to_vec()[0] - 0.07).abs() < 1e-7,
        "{:?}",
        w[0].to_vec()
    );
    assert!(
        (w[1].to_vec()[0] - 0.04).abs() < 1e-7,
        "{:?}",
        w[1].to_vec()
    );
}

/// Keras leaves a model whose deferred build failed unbuilt, so a later call
/// with a fitting input builds it. Here the first layer's node stays built
/// for the failed input shape and every later shape is refused.
#[test]
fn failed_deferred_build_can_be_retried_with_another_shape() {
    let mut model = Sequential::new();
    model.add(ActivationLayer::new(Activation::Relu)).unwrap();
    model.add(Dense::new(4)).unwrap();
    let err = model
        .predict(&Tensor::zeros(&[2, 2, 2]), 32)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("layer dense: "), "{err}");
    assert!(!model.built());
    let out = model.predict(&Tensor::zeros(&[2, 4]), 32).unwrap();
    assert_eq!(out.shape(), &[2, 4]);
    assert!(model.built());
}
