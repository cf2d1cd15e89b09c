//! What `add`, `fit`, `evaluate` and `save` check before they start, and
//! how they say it (issue 11, items 9, 10 and 13): weights too large for
//! the machine, labels beyond the model's outputs, a layer added after
//! training, an activation out of range, a missing directory.

use hebb_layers::Activation;
use hebb_models::Error;
use hebb_models::sequential::layers::{ActivationLayer, Dense, Flatten};
use hebb_models::sequential::{FitOptions, Sequential, load_model};
use hebb_tensor::Tensor;

fn quiet() -> FitOptions {
    FitOptions {
        verbose: 0,
        epochs: 1,
        batch_size: 4,
        ..Default::default()
    }
}

/// 8 samples of 4 features, with MNIST-like labels 0..=9 (7 2 1 0 4 1 4 9).
fn mnist_like() -> (Tensor, Tensor) {
    let x = Tensor::from_vec((0..32).map(|i| (i % 5) as f32 / 5.0).collect(), &[8, 4]).unwrap();
    let y = Tensor::from_vec(vec![7., 2., 1., 0., 4., 1., 4., 9.], &[8]).unwrap();
    (x, y)
}

/// A 4-`hidden`-`units` classifier (relu, then softmax or sigmoid).
fn classifier(units: usize, loss: &str) -> Sequential {
    let mut model = Sequential::new();
    model
        .add(Dense::new(6).activation(Activation::Relu).input_shape(&[4]))
        .unwrap();
    let out = if units == 1 {
        Activation::Sigmoid
    } else {
        Activation::Softmax
    };
    model.add(Dense::new(units).activation(out)).unwrap();
    model.compile("sgd", loss, vec!["accuracy"]).unwrap();
    model
}

// ------------------------------------------------------------ item 9: sizes

/// `Dense(1 << 40)` on `1 << 30` inputs: 2^70 weights, which no `usize`
/// counts. The error names the layer, the kernel's shape and the bytes
/// (it was "from_vec: 0 elements cannot have shape ...").
#[test]
fn a_kernel_beyond_the_address_space_is_an_error_naming_the_layer() {
    let mut model = Sequential::new();
    let err = model
        .add(Dense::new(1 << 40).input_shape(&[1 << 30]))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Build { layer, .. } if layer == "dense"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "layer dense: its kernel [1073741824, 1099511627776] would need \
         4722366482869645213696 bytes (4096.0 EiB), more than a process can address"
    );
    // The model is as before: the layer was not added.
    assert_eq!(model.layers().count(), 0);
    model.add(Dense::new(2).input_shape(&[3])).unwrap();
    assert_eq!(model.count_params(), 8);

    // A Flatten whose product overflows is refused the same way.
    let mut model = Sequential::new();
    let err = model
        .add(Flatten::new().input_shape(&[1 << 40, 1 << 40]))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("layer flatten: Flatten of (None, 1099511627776, 1099511627776)"),
        "{err}"
    );
}

/// The body of [`a_kernel_the_system_refuses_is_an_error_naming_the_bytes`],
/// run in a child process whose address space is limited.
fn refused_kernel_in_a_limited_process() {
    // 200,000 x 200,000 f32: 160 GB, refused by the allocator under the
    // child's address-space limit whatever the machine's memory and
    // overcommit policy.
    let mut model = Sequential::new();
    let err = model
        .add(Dense::new(200_000).input_shape(&[200_000]))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Build { layer, .. } if layer == "dense"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "layer dense: its kernel [200000, 200000] needs 160000000000 bytes (149.0 GiB), \
         which could not be allocated: out of memory"
    );
    // The process goes on, and the model takes a layer that fits.
    model.add(Dense::new(3).input_shape(&[2])).unwrap();
    assert_eq!(model.count_params(), 9);
}

/// `Sequential::add(Dense::new(200_000).input_shape(&[200_000]))` used to
/// abort the process ("memory allocation of 160000000000 bytes failed").
/// The test runs itself again in a child process limited to 8 GiB of
/// address space (`ulimit -v`), so the 160 GB are refused on any machine
/// and nothing can exhaust this one; the child checks the error and that
/// it can go on, and must exit cleanly.
#[cfg(unix)]
#[test]
fn a_kernel_the_system_refuses_is_an_error_naming_the_bytes() {
    const CHILD: &str = "HEBB_TEST_LIMITED_CHILD";
    const NAME: &str = "a_kernel_the_system_refuses_is_an_error_naming_the_bytes";
    if std::env::var_os(CHILD).is_some() {
        refused_kernel_in_a_limited_process();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 8388608 && exec \"$0\" \"$@\"")
        .arg(&exe)
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
}

// ------------------------------------------------- item 10: labels, recompile

/// MNIST's labels (up to 9) given to a 3-output and to a 1-output model:
/// the same message, from `fit` and `evaluate`, before any batch, with
/// sparse and non-sparse losses alike (`check_class_labels`).
#[test]
fn labels_beyond_the_outputs_give_one_message_for_any_model() {
    let (x, y) = mnist_like();
    let mut three = classifier(3, "sparse_categorical_crossentropy");
    let want3 = "labels have classes up to 9 but the model has 3 outputs (layer dense_1): \
                 label 7 of sample 0 is the first without an output, \
                 and these labels need at least 10 units in the last layer";
    let err = three.evaluate(&x, &y, 4, 0).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LabelsOutOfRange {
                max_label,
                outputs: 3,
                ..
            } if max_label == 9.0
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), want3);
    let before = three.get_weights();
    assert_eq!(three.fit(&x, &y, quiet()).unwrap_err().to_string(), want3);
    assert_eq!(three.get_weights(), before, "no step was taken");
    // Validation labels too.
    let (vx, vy) = mnist_like();
    let ok_y = Tensor::from_vec(vec![0., 1., 2., 0., 1., 2., 0., 1.], &[8]).unwrap();
    let err = three
        .fit(
            &x,
            &ok_y,
            FitOptions {
                validation_data: Some((vx, vy)),
                ..quiet()
            },
        )
        .unwrap_err();
    assert_eq!(err.to_string(), want3);

    // One output: the same words.
    let one = classifier(1, "sparse_categorical_crossentropy");
    assert_eq!(
        one.check_class_labels(&y).unwrap_err().to_string(),
        "labels have classes up to 9 but the model has 1 output (layer dense_1): \
         label 7 of sample 0 is the first without an output, \
         and these labels need at least 10 units in the last layer"
    );
    let mut one = classifier(1, "sparse_categorical_crossentropy");
    assert!(matches!(
        one.evaluate(&x, &y, 4, 0).unwrap_err(),
        Error::LabelsOutOfRange { outputs: 1, .. }
    ));

    // An Activation layer after the last Dense: the Dense is named.
    let mut model = Sequential::new();
    model.add(Dense::new(3).input_shape(&[4])).unwrap();
    model
        .add(ActivationLayer::new(Activation::Softmax))
        .unwrap();
    assert!(
        model
            .check_class_labels(&y)
            .unwrap_err()
            .to_string()
            .contains("(layer dense)")
    );
    // Labels that fit pass; labels that are no class index are left to the loss.
    three.check_class_labels(&ok_y).unwrap();
    let bad = Tensor::from_vec(vec![0.5, 1.0, -1.0, 2.0], &[4]).unwrap();
    three.check_class_labels(&bad).unwrap();
    let err = three
        .evaluate(&x.gather_rows(&[0, 1, 2, 3]).unwrap(), &bad, 4, 0)
        .unwrap_err();
    assert!(err.to_string().contains("0.5"), "{err}");
}

/// Keras requires `compile` after changing a model: adding a layer after
/// `fit` and fitting again names that advice (it said "the optimizer was
/// built for 2 variables but got 4"). After `compile`, training goes on.
#[test]
fn a_layer_added_after_fit_asks_for_compile_again() {
    let x = Tensor::from_vec((0..16).map(|i| i as f32 / 16.0).collect(), &[8, 2]).unwrap();
    let y = Tensor::from_vec((0..8).map(|i| (i % 2) as f32).collect(), &[8, 1]).unwrap();
    for optimizer in ["sgd", "adam"] {
        let mut model = Sequential::new();
        model.add(Dense::new(1).input_shape(&[2])).unwrap();
        model.compile(optimizer, "mse", Vec::<&str>::new()).unwrap();
        model.fit(&x, &y, quiet()).unwrap();
        model.add(Dense::new(1)).unwrap();
        let before = model.get_weights();
        let err = model.fit(&x, &y, quiet()).unwrap_err();
        assert!(matches!(err, Error::RecompileNeeded { .. }), "{err:?}");
        let name = if optimizer == "sgd" { "SGD" } else { "Adam" };
        assert_eq!(
            err.to_string(),
            format!(
                "model sequential: the optimizer ({name}) was built for 2 weight tensors \
                 (dense/kernel, dense/bias) but the model now has 4 (dense/kernel, dense/bias, \
                 dense_1/kernel, dense_1/bias); compile the model again (Keras requires compile \
                 after changing the model)"
            )
        );
        assert_eq!(model.get_weights(), before, "no step was taken");
        // evaluate needs no optimizer; compile again and fit trains.
        model.evaluate(&x, &y, 4, 0).unwrap();
        model.compile(optimizer, "mse", Vec::<&str>::new()).unwrap();
        model.fit(&x, &y, quiet()).unwrap();
        assert_ne!(model.get_weights(), before);
    }
}

/// A model loaded with its optimiser's state: a layer added afterwards
/// gets the same advice.
#[test]
fn a_layer_added_to_a_loaded_trained_model_asks_for_compile_again() {
    let dir = tempfile::tempdir().unwrap();
    let x = Tensor::from_vec((0..16).map(|i| i as f32 / 16.0).collect(), &[8, 2]).unwrap();
    let y = Tensor::from_vec((0..8).map(|i| (i % 2) as f32).collect(), &[8, 1]).unwrap();
    let mut model = Sequential::new();
    model.add(Dense::new(1).input_shape(&[2])).unwrap();
    model.compile("adam", "mse", Vec::<&str>::new()).unwrap();
    model.fit(&x, &y, quiet()).unwrap();
    let path = dir.path().join("m.safetensors");
    model.save(&path, false).unwrap();
    let mut loaded = load_model(&path).unwrap();
    loaded.fit(&x, &y, quiet()).unwrap();
    loaded.add(Dense::new(1)).unwrap();
    let err = loaded.fit(&x, &y, quiet()).unwrap_err();
    assert!(matches!(err, Error::RecompileNeeded { .. }), "{err:?}");
}

/// `save` into a directory that does not exist names the file asked for
/// and the missing directory, not the hidden temporary file
/// (`.m.safetensors.2BuNcl.tmp`).
#[test]
fn saving_into_a_missing_directory_names_the_target_and_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such");
    let mut model = Sequential::new();
    model.add(Dense::new(2).input_shape(&[3])).unwrap();
    model.compile("sgd", "mse", Vec::<&str>::new()).unwrap();
    for name in ["m.safetensors", "m.keras", "m.h5", "w.weights.safetensors"] {
        let target = missing.join(name);
        let err = if name.starts_with('w') {
            model.save_weights(&target, false).unwrap_err()
        } else {
            model.save(&target, false).unwrap_err()
        };
        let text = err.to_string();
        assert_eq!(
            text,
            format!(
                "{}: cannot write the file: the directory {} does not exist",
                target.display(),
                missing.display()
            ),
            "{name}"
        );
        assert!(!text.contains(&format!(".{name}.")), "{text}");
    }
}

/// Follow-up to item 10: any directory that takes no file names the target
/// and the directory (`/proc/m.keras` said `No such file or directory (os
/// error 2) at path "/proc/.m.keras.aDfSCx.tmp"`), and a path that names no
/// file says so (`/tmp/` and `m/` said "Not a directory (os error 20)", ``
/// ": No such file or directory").
#[test]
fn saving_to_a_path_that_takes_no_file_names_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Sequential::new();
    model.add(Dense::new(2).input_shape(&[3])).unwrap();
    model.compile("sgd", "mse", Vec::<&str>::new()).unwrap();
    #[cfg(target_os = "linux")]
    for name in ["m.safetensors", "m.keras", "m.h5"] {
        let target = format!("/proc/{name}");
        let text = model.save(&target, false).unwrap_err().to_string();
        assert_eq!(
            text,
            format!(
                "{target}: cannot write the file: the directory /proc does not take a new file \
                 (No such file or directory (os error 2))"
            )
        );
        assert!(!text.contains(".tmp"), "{text}");
    }
    let slash = format!("{}/", dir.path().display());
    let missing = format!("{}/m/", dir.path().display());
    for (path, reason) in [
        (slash.as_str(), "it ends with a directory separator"),
        (missing.as_str(), "it ends with a directory separator"),
        ("", "the path is empty"),
    ] {
        for overwrite in [false, true] {
            let err = model.save(path, overwrite).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "{path:?} names no file ({reason}); give the file's name, e.g. \
                     models/model.keras"
                )
            );
            let err = model.save_weights(path, overwrite).unwrap_err();
            assert!(err.to_string().contains("names no file"), "{err}");
        }
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

// ------------------------------------------ follow-up: message wording

/// `validation_split` is printed in Rust's shortest round-trip form (it
/// printed `f64::MIN_POSITIVE` as some 330 decimal digits and 1e-17 as
/// `0.00000000000000001`), and one sample is "1 sample".
#[test]
fn validation_split_messages_print_the_split_as_given() {
    let (x, y) = mnist_like();
    let mut model = classifier(10, "sparse_categorical_crossentropy");
    let fit = |model: &mut Sequential, rows: usize, split: f64| {
        let idx: Vec<usize> = (0..rows).collect();
        let options = FitOptions {
            validation_split: split,
            ..quiet()
        };
        model
            .fit(
                &x.gather_rows(&idx).unwrap(),
                &y.gather_rows(&idx).unwrap(),
                options,
            )
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        fit(&mut model, 8, f64::MIN_POSITIVE),
        "training data contains 8 samples, which is not sufficient to split it into a \
         validation and training set as specified by validation_split=2.2250738585072014e-308 \
         (8 samples for training, 0 for validation; each needs at least 1). Either provide \
         more data, or a different value for validation_split"
    );
    assert!(
        fit(&mut model, 8, 1e-17).contains("validation_split=1e-17 (8 samples for training"),
        "1e-17"
    );
    assert_eq!(
        fit(&mut model, 1, 0.5),
        "training data contains 1 sample, which is not sufficient to split it into a \
         validation and training set as specified by validation_split=0.5 \
         (0 samples for training, 1 for validation; each needs at least 1). Either provide \
         more data, or a different value for validation_split"
    );
    assert!(
        fit(&mut model, 2, 1e-17).contains("(2 samples for training"),
        "2 rows"
    );
    let one = fit(&mut model, 1, 1e-17);
    assert!(
        one.contains("contains 1 sample,") && one.contains("(1 sample for training"),
        "{one}"
    );
}

/// Labels no `usize` holds are reported as given (`1e30`), not as the
/// saturated cast 18446744073709551615.
#[test]
fn out_of_range_labels_are_reported_as_given() {
    let x = Tensor::from_vec((0..8).map(|i| i as f32).collect(), &[2, 4]).unwrap();
    let y = Tensor::from_vec(vec![1.0, 1e30], &[2]).unwrap();
    let model = classifier(3, "sparse_categorical_crossentropy");
    let err = model.check_class_labels(&y).unwrap_err();
    assert!(
        matches!(err, Error::LabelsOutOfRange { max_label, first_label, first_sample: 1, .. }
            if max_label == 1e30 && first_label == 1e30),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "labels have classes up to 1e30 but the model has 3 outputs (layer dense_1): \
         label 1e30 of sample 1 is the first without an output, \
         and these labels need at least 1e30 + 1 units in the last layer"
    );
    let mut model = classifier(3, "sparse_categorical_crossentropy");
    assert_eq!(
        model.evaluate(&x, &y, 2, 0).unwrap_err().to_string(),
        err.to_string()
    );
    // Whole numbers below 2^53 stay integers: 2^40 needs 2^40 + 1 units.
    let big = (1u64 << 40) as f32;
    let y = Tensor::from_vec(vec![big, 4.0], &[2]).unwrap();
    assert_eq!(
        model.check_class_labels(&y).unwrap_err().to_string(),
        format!(
            "labels have classes up to {} but the model has 3 outputs (layer dense_1): \
             label {} of sample 0 is the first without an output, \
             and these labels need at least {} units in the last layer",
            1u64 << 40,
            1u64 << 40,
            (1u64 << 40) + 1
        )
    );
}

/// A Leaky-ReLU of another slope than Keras' 0.2 cannot be saved to a
/// Keras file; the message says what to do (it said only "Keras'
/// leaky_relu activation has slope 0.2 (a = 5), not 1/100").
#[test]
fn a_leaky_relu_keras_cannot_store_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Sequential::new();
    model
        .add(
            Dense::new(3)
                .activation(Activation::leaky_relu(0.01))
                .input_shape(&[2])
                .name("hidden"),
        )
        .unwrap();
    for name in ["m.keras", "m.h5"] {
        let path = dir.path().join(name);
        let err = model.save(&path, false).unwrap_err();
        assert!(matches!(err, Error::Save { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot save model to {}: layer hidden: Keras' \"leaky_relu\" activation string stores no slope and \
                 means negative_slope 0.2 (the lecture's a = 5), not this layer's \
                 negative_slope 0.01 (a = 100); to save to .keras or .h5 use \
                 Activation::leaky_relu(0.2) (a = 5), or save in hebb's format (a \
                 .safetensors file), which keeps any slope",
                path.display()
            )
        );
        assert!(!path.exists());
    }
    // The way out the message names works.
    model.save(dir.path().join("m.safetensors"), false).unwrap();
}

// ------------------------------------------------- item 13: Leaky-ReLU

/// `LeakyRelu { a: 0.01 }` (a Keras slope written as the lecture's divisor)
/// is refused at `add`, naming the layer, whether the model is built yet
/// or not; it used to pass `add` and `summary` and fail at `predict`.
#[test]
fn leaky_relu_out_of_range_is_refused_at_add_naming_the_layer() {
    let want = "layer hidden: leaky_relu: the lecture's divisor a must be > 1 \
                (Keras' negative_slope = 1/a in [0, 1)), got 0.01 (negative_slope 100)";
    for built in [true, false] {
        let mut model = Sequential::new();
        let first = Dense::new(4);
        let first = if built {
            first.input_shape(&[2])
        } else {
            first
        };
        model.add(first).unwrap();
        let err = model
            .add(
                Dense::new(3)
                    .activation(Activation::LeakyRelu { a: 0.01 })
                    .name("hidden"),
            )
            .unwrap_err();
        assert!(matches!(&err, Error::Build { layer, .. } if layer == "hidden"));
        assert_eq!(err.to_string(), want);
        assert_eq!(model.layers().count(), 1, "the layer was not added");
    }
    let mut model = Sequential::new();
    model.add(Dense::new(4).input_shape(&[2])).unwrap();
    let err = model
        .add(ActivationLayer::new(Activation::leaky_relu(1.5)))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("layer activation: leaky_relu: the lecture's divisor a must be > 1"),
        "{err}"
    );
    // Keras' slope through its own constructor: accepted, and applied as Keras does.
    model
        .add(Dense::new(2).activation(Activation::leaky_relu(0.01)))
        .unwrap();
    let layer = model.layers().last().unwrap();
    assert_eq!(
        layer.activation().to_string(),
        "leaky_relu (a=100, negative_slope=0.01)"
    );
    let out = model
        .predict(&Tensor::from_vec(vec![-1.0, 2.0], &[1, 2]).unwrap(), 1)
        .unwrap();
    assert_eq!(out.shape(), &[1, 2]);
}

/// Keras files with `leaky_relu` (Keras' slope 0.2, the lecture's a = 5)
/// still load now that `add` (which loading goes through) checks the
/// activation, and so do hebb's.
#[test]
fn model_files_with_leaky_relu() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Sequential::new();
    model
        .add(
            Dense::new(3)
                .activation(Activation::leaky_relu(0.2))
                .input_shape(&[2])
                .name("hidden"),
        )
        .unwrap();
    model.add(Dense::new(2)).unwrap();
    let x = Tensor::from_vec(vec![-1.0, 0.5, 2.0, -3.0], &[2, 2]).unwrap();
    let want = model.predict(&x, 2).unwrap();
    for name in ["m.keras", "m.h5", "m.safetensors"] {
        let path = dir.path().join(name);
        model.save(&path, false).unwrap();
        let mut back = load_model(&path).unwrap();
        let hidden = back.layers().next().unwrap();
        assert_eq!(
            hidden.activation(),
            Activation::LeakyRelu { a: 5.0 },
            "{name}"
        );
        assert_eq!(back.predict(&x, 2).unwrap(), want, "{name}");
    }
}

#[test]
fn grayscale_samples_without_the_channel_axis_get_the_reshape_advice() {
    use hebb_models::sequential::layers::Conv2D;
    let mut model = Sequential::new();
    model
        .add(Conv2D::new(2, [3, 3]).input_shape(&[8, 8, 1]))
        .unwrap();
    model.add(Flatten::new()).unwrap();
    model.add(Dense::new(2)).unwrap();
    model
        .compile("adam", "sparse_categorical_crossentropy", vec!["accuracy"])
        .unwrap();
    let y = Tensor::zeros(&[4]);
    let message = model
        .fit(&Tensor::zeros(&[4, 8, 8]), &y, quiet())
        .unwrap_err()
        .to_string();
    assert!(message.contains("layer conv2d"), "{message}");
    assert!(message.contains("got (None, 8, 8)"), "{message}");
    assert!(message.contains("Reshape((8, 8, 1))"), "{message}");
    // Another mismatch gets no such advice.
    let message = model
        .fit(&Tensor::zeros(&[4, 9, 9, 1]), &y, quiet())
        .unwrap_err()
        .to_string();
    assert!(!message.contains("Reshape"), "{message}");
}

#[test]
fn a_bad_dropout_rate_names_the_layer_once() {
    use hebb_models::sequential::layers::Dropout;
    let mut model = Sequential::new();
    let message = model
        .add(Dropout::new(1.5).name("drop_1").input_shape(&[4]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "layer drop_1: Dropout: rate must be in [0, 1), got 1.5"
    );
}
