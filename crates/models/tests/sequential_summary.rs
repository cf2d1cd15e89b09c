//! `Sequential::summary` and layer naming, against what TensorFlow 2's
//! `model.summary()` prints for the lecture's two Keras programs (13.4 Iris
//! 4-8-4-3 and 13.5 MNIST Flatten-128-10). TensorFlow 2 pads every table row
//! to 65 characters with columns at 29/26/10, so rows end in spaces.

use hebb_layers::Activation;
use hebb_models::sequential::Sequential;
use hebb_models::sequential::layers::{ActivationLayer, Dense, Flatten};

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

fn mnist_model() -> Sequential {
    let mut model = Sequential::new();
    model.add(Flatten::new().input_shape(&[28, 28])).unwrap();
    model
        .add(Dense::new(128).activation(Activation::Relu))
        .unwrap();
    model
        .add(Dense::new(10).activation(Activation::Softmax))
        .unwrap();
    model
}

/// The lines of a summary as TensorFlow 2.x prints them, joined by `\n`
/// (no newline after the last rule).
fn join(lines: &[&str]) -> String {
    lines.join("\n")
}

#[test]
fn iris_summary_is_tensorflow_2s_table() {
    let expected = join(&[
        "Model: \"sequential\"",
        "_________________________________________________________________",
        "Layer (type)                 Output Shape              Param #   ",
        "=================================================================",
        "dense (Dense)                (None, 8)                 40        ",
        "_________________________________________________________________",
        "dense_1 (Dense)              (None, 4)                 36        ",
        "_________________________________________________________________",
        "dense_2 (Dense)              (None, 3)                 15        ",
        "=================================================================",
        "Total params: 91",
        "Trainable params: 91",
        "Non-trainable params: 0",
        "_________________________________________________________________",
    ]);
    let model = iris_model();
    let summary = model.summary().unwrap();
    assert_eq!(summary, expected, "\n{summary}\n---\n{expected}");
    assert_eq!(model.count_params(), 91);
}

#[test]
fn mnist_summary_is_tensorflow_2s_table() {
    let expected = join(&[
        "Model: \"sequential\"",
        "_________________________________________________________________",
        "Layer (type)                 Output Shape              Param #   ",
        "=================================================================",
        "flatten (Flatten)            (None, 784)               0         ",
        "_________________________________________________________________",
        "dense (Dense)                (None, 128)               100480    ",
        "_________________________________________________________________",
        "dense_1 (Dense)              (None, 10)                1290      ",
        "=================================================================",
        "Total params: 101,770",
        "Trainable params: 101,770",
        "Non-trainable params: 0",
        "_________________________________________________________________",
    ]);
    let model = mnist_model();
    let summary = model.summary().unwrap();
    assert_eq!(summary, expected, "\n{summary}\n---\n{expected}");
    assert_eq!(model.count_params(), 101_770);
}

#[test]
fn summary_rows_are_65_wide_with_columns_at_29_55() {
    let summary = mnist_model().summary().unwrap();
    let lines: Vec<&str> = summary.lines().collect();
    // Rules and the header/layer rows are all exactly 65 characters wide.
    for line in &lines[1..10] {
        assert_eq!(line.chars().count(), 65, "{line:?}");
    }
    let row = lines[6];
    assert_eq!(&row[..29], "dense (Dense)                ");
    assert_eq!(&row[29..55], "(None, 128)               ");
    assert_eq!(&row[55..], "100480    ");
}

#[test]
fn parameter_counts_per_layer() {
    // Weight shapes in Keras order: kernel [in, units] then bias [units].
    let shapes = |m: &Sequential| -> Vec<Vec<usize>> {
        m.get_weights().iter().map(|w| w.shape().to_vec()).collect()
    };
    let iris = iris_model();
    assert_eq!(
        shapes(&iris),
        vec![
            vec![4, 8],
            vec![8],
            vec![8, 4],
            vec![4],
            vec![4, 3],
            vec![3]
        ]
    );
    let per_layer: Vec<usize> = iris
        .get_weights()
        .chunks(2)
        .map(|kb| kb[0].len() + kb[1].len())
        .collect();
    assert_eq!(per_layer, vec![40, 36, 15]);

    let mnist = mnist_model();
    assert_eq!(
        shapes(&mnist),
        vec![vec![784, 128], vec![128], vec![128, 10], vec![10]]
    );
    let per_layer: Vec<usize> = mnist
        .get_weights()
        .chunks(2)
        .map(|kb| kb[0].len() + kb[1].len())
        .collect();
    // Flatten has no weights: 0, then 100480 and 1290.
    assert_eq!(per_layer, vec![100_480, 1290]);
    assert!(
        mnist
            .summary()
            .unwrap()
            .contains("flatten (Flatten)            (None, 784)               0         \n")
    );
}

#[test]
fn summary_shows_model_name_and_multi_dimensional_shapes() {
    let mut model = Sequential::new().with_name("my_model");
    model
        .add(ActivationLayer::new(Activation::Relu).input_shape(&[28, 28]))
        .unwrap();
    model.add(Flatten::new()).unwrap();
    let summary = model.summary().unwrap();
    assert_eq!(model.name(), "my_model");
    assert!(summary.starts_with("Model: \"my_model\"\n"), "{summary}");
    assert!(
        summary.contains("\nactivation (Activation)      (None, 28, 28)            0         \n"),
        "{summary}"
    );
    assert!(summary.contains("\nTotal params: 0\n"), "{summary}");
}

#[test]
fn thousands_separators_in_totals() {
    // 1000 -> 1000 * 1000 + 1000 = 1,001,000 parameters.
    let mut model = Sequential::new();
    model.add(Dense::new(1000).input_shape(&[1000])).unwrap();
    let summary = model.summary().unwrap();
    assert!(summary.contains("\nTotal params: 1,001,000\n"), "{summary}");
    assert!(
        summary.contains("\nTrainable params: 1,001,000\n"),
        "{summary}"
    );
    assert!(
        summary.contains("(None, 1000)              1001000   \n"),
        "{summary}"
    );
}

/// TensorFlow 2's `print_row` cuts each field at its column end and puts a
/// space in the column's last character (`line = line[:positions[i]]`, then
/// `line[:-1] + ' '` before the next field), so long names never shift the
/// other columns.
#[test]
fn long_layer_names_are_cut_at_the_column_as_tensorflow_does() {
    let mut model = Sequential::new();
    model
        .add(
            Dense::new(8)
                .input_shape(&[4])
                .name("a_very_long_layer_name_that_overflows"),
        )
        .unwrap();
    let summary = model.summary().unwrap();
    let row = summary.lines().nth(4).unwrap();
    assert_eq!(
        row,
        "a_very_long_layer_name_that_ (None, 8)                 40        "
    );
}

#[test]
fn layers_are_named_as_keras_names_them() {
    let mut model = Sequential::new();
    model.add(Flatten::new().input_shape(&[2, 3])).unwrap();
    model.add(Dense::new(5)).unwrap();
    model.add(ActivationLayer::new(Activation::Relu)).unwrap();
    model.add(Dense::new(4)).unwrap();
    model
        .add(ActivationLayer::new(Activation::Sigmoid))
        .unwrap();
    model.add(Dense::new(2).name("output")).unwrap();
    model.add(Flatten::new()).unwrap();
    let summary = model.summary().unwrap();
    let names: Vec<&str> = summary
        .lines()
        .skip(4)
        .step_by(2)
        .take(7)
        .map(|l| l[..29].trim_end())
        .collect();
    assert_eq!(
        names,
        [
            "flatten (Flatten)",
            "dense (Dense)",
            "activation (Activation)",
            "dense_1 (Dense)",
            "activation_1 (Activation)",
            "output (Dense)",
            "flatten_1 (Flatten)",
        ]
    );
    // Variables are named after their layer.
    let err = model
        .set_weights(&[
            hebb_tensor::Tensor::zeros(&[6, 5]),
            hebb_tensor::Tensor::zeros(&[5]),
            hebb_tensor::Tensor::zeros(&[5, 4]),
            hebb_tensor::Tensor::zeros(&[4]),
            hebb_tensor::Tensor::zeros(&[4, 2]),
            hebb_tensor::Tensor::zeros(&[3]),
        ])
        .unwrap_err()
        .to_string();
    assert!(err.contains("output/bias"), "{err}");
}

#[test]
fn names_count_within_the_model() {
    // Keras counts per session; hebb counts per model, so a second model
    // starts again at `dense`.
    let a = iris_model();
    let b = iris_model();
    assert_eq!(a.summary().unwrap(), b.summary().unwrap());
    assert!(b.summary().unwrap().contains("\ndense (Dense) "));
}

/// Keras only numbers automatically named layers
/// (`backend.unique_object_name` is called when `name` is None), so a
/// custom-named Dense does not use up `dense`.
#[test]
fn custom_names_do_not_use_up_automatic_numbers() {
    let mut model = Sequential::new();
    model
        .add(Dense::new(3).input_shape(&[2]).name("hidden"))
        .unwrap();
    model.add(Dense::new(1)).unwrap();
    let summary = model.summary().unwrap();
    assert!(summary.contains("\ndense (Dense) "), "{summary}");

    // And a custom name that looks automatic does not block the first automatic one.
    let mut model = Sequential::new();
    model
        .add(Dense::new(3).input_shape(&[2]).name("dense_1"))
        .unwrap();
    model.add(Dense::new(1)).unwrap();
}
