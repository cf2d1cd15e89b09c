//! Keras model files: the fixtures made by
//! `tests/fixtures/keras/make_keras_fixtures.py` with TensorFlow 2.21 /
//! Keras 3.15 load and predict what Keras predicted (within 1e-6), with
//! their compile configuration and optimiser state; hebb writes `.keras`
//! and `.h5` files that it reads back exactly (and that TensorFlow loads:
//! the ignored test at the end, run with `cargo test -- --ignored` where
//! `python3 -c "import tensorflow"` works).

use std::path::{Path, PathBuf};

use hebb_models::Error;
use hebb_models::sequential::layers::Dense;
use hebb_models::sequential::{
    FitOptions, LoadedModel, ModelFormat, Sequential, load_model, load_model_with_notes,
};
use hebb_serialize::hdf5;
use hebb_tensor::Tensor;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keras")
        .join(name)
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A nested JSON list of numbers as a flat `Vec<f32>` and its shape.
fn array(v: &Value) -> (Vec<f32>, Vec<usize>) {
    match v {
        Value::Array(items) => {
            let mut data = Vec::new();
            let mut inner = Vec::new();
            for item in items {
                let (d, s) = array(item);
                data.extend(d);
                inner = s;
            }
            let mut shape = vec![items.len()];
            shape.extend(inner);
            (data, shape)
        }
        n => (vec![n.as_f64().unwrap() as f32], vec![]),
    }
}

fn tensor(v: &Value) -> Tensor {
    let (data, shape) = array(v);
    Tensor::from_vec(data, &shape).unwrap()
}

fn assert_close(got: &Tensor, want: &Tensor, tol: f32, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    for (i, (g, w)) in got.as_slice().iter().zip(want.as_slice()).enumerate() {
        assert!((g - w).abs() <= tol, "{what}[{i}]: hebb {g}, Keras {w}");
    }
}

fn slots(model: &Sequential) -> Vec<(String, Vec<u32>)> {
    let mut s: Vec<(String, Vec<u32>)> = model
        .optimizer()
        .unwrap()
        .slots()
        .into_iter()
        .map(|(n, t)| (n, t.as_slice().iter().map(|v| v.to_bits()).collect()))
        .collect();
    s.sort();
    s
}

fn bits(model: &Sequential) -> Vec<Vec<u32>> {
    model
        .get_weights()
        .iter()
        .map(|t| t.as_slice().iter().map(|v| v.to_bits()).collect())
        .collect()
}

#[test]
fn keras3_h5_and_keras_files_predict_as_keras_did() {
    let e = &expected()["mlp"];
    let x = tensor(&e["x"]);
    let want = tensor(&e["predict"]);
    for (file, format) in [
        ("mlp.h5", ModelFormat::KerasH5),
        ("mlp.keras", ModelFormat::KerasArchive),
        ("tf2_legacy.h5", ModelFormat::KerasH5),
    ] {
        let LoadedModel {
            mut model,
            format: read_as,
            notes,
        } = load_model_with_notes(fixture(file)).unwrap();
        assert_eq!(read_as, format, "{file}");
        let summary = model.summary().unwrap();
        assert!(
            summary.contains("(Flatten)") && summary.contains("(None, 12)"),
            "{summary}"
        );
        assert!(summary.contains("Total params: 83"), "{file}: {summary}");
        assert_close(&model.predict(&x, 32).unwrap(), &want, 1e-6, file);
        assert_eq!(
            model.metrics_names(),
            ["loss", "sparse_categorical_accuracy"],
            "{file}"
        );
        let optimizer = model.optimizer().unwrap();
        assert_eq!(optimizer.name(), "Adam", "{file}");
        assert_eq!(
            optimizer.iterations(),
            e["iterations"].as_u64().unwrap(),
            "{file}"
        );
        assert_eq!(
            optimizer.learning_rate(),
            e["learning_rate"].as_f64().unwrap() as f32,
            "{file}"
        );
        // Keras 3 leaves a by-name optimiser out of compile_config; hebb says where it got it.
        let inferred = notes
            .iter()
            .any(|n| n.contains("compile_config has no optimizer"));
        assert_eq!(inferred, file == "mlp.keras", "{file}: {notes:?}");
        let y = tensor(&e["y"]);
        let values = model.evaluate(&x, &y, 32, 0).unwrap();
        let keras: Vec<f32> = e["evaluate"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert!(
            (values[0] - keras[0]).abs() < 1e-5,
            "{file}: loss {values:?} vs {keras:?}"
        );
        assert_eq!(values[1], keras[1], "{file}: accuracy");
    }
}

#[test]
fn the_three_layouts_of_one_adam_state_load_to_the_same_slots() {
    // mlp.h5 (Keras 3 names, Keras 3 order), mlp.keras (numbered) and
    // tf2_legacy.h5 (tf.keras 2 names, all m's then all v's) hold one state.
    let h5 = load_model(fixture("mlp.h5")).unwrap();
    let archive = load_model(fixture("mlp.keras")).unwrap();
    let legacy = load_model(fixture("tf2_legacy.h5")).unwrap();
    let s = slots(&h5);
    assert_eq!(s.len(), 8);
    assert_eq!(s, slots(&archive));
    assert_eq!(s, slots(&legacy));
    assert_eq!(bits(&h5), bits(&archive));
    assert_eq!(bits(&h5), bits(&legacy));
    // And they are the file's values: momentum/0 is the first kernel's first moment.
    let file = hdf5::read(fixture("mlp.h5")).unwrap();
    let group = file.root.group("optimizer_weights").unwrap();
    let names = group
        .attribute("weight_names")
        .unwrap()
        .as_strings()
        .unwrap();
    assert!(names[2].ends_with("kernel_momentum"), "{names:?}");
    let m0 = group.dataset(names[2]).unwrap().to_f32().unwrap();
    let hebb_m0 = &s.iter().find(|(n, _)| n == "momentum/0").unwrap().1;
    assert_eq!(hebb_m0, &m0.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
}

#[test]
fn rmsprop_slots_follow_keras_order_velocity_momentum_average_gradient() {
    let e = &expected()["rmsprop"];
    let mut model = load_model(fixture("rmsprop.h5")).unwrap();
    assert_close(
        &model.predict(&tensor(&e["x"]), 32).unwrap(),
        &tensor(&e["predict"]),
        1e-6,
        "rmsprop",
    );
    let optimizer = model.optimizer().unwrap();
    assert_eq!(optimizer.name(), "RMSprop");
    assert_eq!(optimizer.iterations(), e["iterations"].as_u64().unwrap());
    let config = optimizer.config();
    assert!(config.contains(&("momentum", 0.5)) && config.contains(&("centered", 1.0)));
    let file = hdf5::read(fixture("rmsprop.h5")).unwrap();
    let group = file.root.group("optimizer_weights").unwrap();
    let names: Vec<&str> = e["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let hebb = slots(&model);
    for (j, name) in names.iter().enumerate().skip(2) {
        let (kind, i) = match (j - 2) / 4 {
            0 => ("velocity", j - 2),
            1 => ("momentum", j - 6),
            _ => ("average_gradient", j - 10),
        };
        assert!(name.ends_with(kind), "{name}");
        let want: Vec<u32> = group
            .dataset(name)
            .unwrap()
            .to_f32()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        let got = &hebb
            .iter()
            .find(|(n, _)| *n == format!("{kind}/{i}"))
            .unwrap()
            .1;
        assert_eq!(got, &want, "{kind}/{i} vs {name}");
    }
}

#[test]
fn activation_layers_and_sgd_given_as_an_object() {
    let e = &expected()["activations"];
    let mut model = load_model(fixture("activations.keras")).unwrap();
    assert_close(
        &model.predict(&tensor(&e["x"]), 32).unwrap(),
        &tensor(&e["predict"]),
        1e-6,
        "activations",
    );
    let summary = model.summary().unwrap();
    assert!(summary.contains("(Activation)"), "{summary}");
    let optimizer = model.optimizer().unwrap();
    assert_eq!(optimizer.name(), "SGD");
    assert_eq!(optimizer.learning_rate(), 0.05);
    assert!(optimizer.config().contains(&("nesterov", 1.0)));
    assert_eq!(optimizer.iterations(), e["iterations"].as_u64().unwrap());
    assert_eq!(model.metrics_names(), ["loss", "categorical_accuracy"]);
}

#[test]
fn a_layer_added_to_a_loaded_keras_model_gets_the_next_free_name() {
    let mut model = load_model(fixture("mlp.keras")).unwrap();
    let before = model.summary().unwrap();
    let names = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.contains(" (Dense)"))
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect()
    };
    let dense = names(&before);
    assert!(!dense.is_empty(), "{before}");
    model.add(Dense::new(2)).unwrap();
    let after = names(&model.summary().unwrap());
    assert_eq!(after.len(), dense.len() + 1);
    assert!(!dense.contains(after.last().unwrap()), "{after:?}");
    assert_eq!(after.last().unwrap(), &format!("dense_{}", dense.len()));
}

#[test]
fn chunked_and_float16_weights_are_unsupported_not_missing() {
    for (file, at, why) in [
        (
            "mlp_chunked.h5",
            "dense/sequential/dense/kernel",
            "a chunked dataset",
        ),
        (
            "mlp_float16.h5",
            "dense_1/sequential/dense_1/bias",
            "float16",
        ),
    ] {
        let Err(err) = load_model(fixture(file)) else {
            panic!("{file} loaded");
        };
        let text = err.to_string();
        assert!(matches!(err, Error::Unsupported { .. }), "{file}: {err:?}");
        assert!(
            text.contains(file) && text.contains(at) && text.contains(why),
            "{file}: {text}"
        );
    }
}

#[test]
fn a_dropout_layer_hebb_once_refused_now_loads_as_the_identity_in_predict() {
    // dropout.keras (Dense(4) - Dropout(0.5) on 3 inputs) was the unsupported
    // layer's fixture before hebb had Dropout; lstm.keras is now (keras_conv.rs).
    let mut model = load_model(fixture("dropout.keras")).unwrap();
    let summary = model.summary().unwrap();
    assert!(summary.contains("(Dropout)"), "{summary}");
    let x = Tensor::from_vec(vec![0.5, -1.0, 2.0, 1.5, 0.25, -0.75], &[2, 3]).unwrap();
    let weights = model.get_weights();
    let (w, b) = (weights[0].to_vec(), weights[1].to_vec());
    let mut want = Vec::new();
    for row in x.to_vec().chunks(3) {
        for j in 0..4 {
            want.push((0..3).map(|i| row[i] * w[i * 4 + j]).sum::<f32>() + b[j]);
        }
    }
    assert_close(
        &model.predict(&x, 32).unwrap(),
        &Tensor::from_vec(want, &[2, 4]).unwrap(),
        1e-6,
        "dropout.keras",
    );
}

/// Fits `model` one epoch on fixed data from `seed`.
fn fit_one(model: &mut Sequential, initial_epoch: usize, epochs: usize) {
    let x = Tensor::from_vec(
        (0..24 * 12)
            .map(|i| ((i * 37) % 101) as f32 / 101.0)
            .collect(),
        &[24, 4, 3],
    )
    .unwrap();
    let y = Tensor::from_vec((0..24).map(|i| (i % 3) as f32).collect(), &[24]).unwrap();
    model
        .fit(
            &x,
            &y,
            FitOptions {
                batch_size: 5,
                epochs,
                initial_epoch,
                verbose: 0,
                seed: 7,
                ..Default::default()
            },
        )
        .unwrap();
}

#[test]
fn hebb_writes_keras_files_it_reads_back_exactly_and_training_continues_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let mut original = load_model(fixture("mlp.h5")).unwrap();
    fit_one(&mut original, 0, 1);
    for name in ["copy.keras", "copy.h5", "copy.safetensors"] {
        let path = dir.path().join(name);
        original.save(&path, false).unwrap();
        let mut copy = load_model(&path).unwrap();
        assert_eq!(bits(&copy), bits(&original), "{name}");
        assert_eq!(slots(&copy), slots(&original), "{name}");
        assert_eq!(
            copy.optimizer().unwrap().iterations(),
            original.optimizer().unwrap().iterations()
        );
        assert_eq!(
            copy.summary().unwrap(),
            original.summary().unwrap(),
            "{name}"
        );
        let mut straight = load_model(&path).unwrap();
        fit_one(&mut copy, 1, 2);
        fit_one(&mut straight, 1, 2);
        assert_eq!(bits(&copy), bits(&straight), "{name}");
        // overwrite = false refuses; true replaces.
        let err = original.save(&path, false).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Serialize(hebb_serialize::Error::AlreadyExists { .. })
            ),
            "{err:?}"
        );
        original.save(&path, true).unwrap();
    }
    // Continuing the original gives what the reloaded copies gave.
    let mut reference = load_model(dir.path().join("copy.keras")).unwrap();
    fit_one(&mut original, 1, 2);
    fit_one(&mut reference, 1, 2);
    assert_eq!(bits(&original), bits(&reference));
}

#[test]
fn models_keras_cannot_hold_are_refused_with_the_reason() {
    use hebb_layers::Activation;
    use hebb_models::sequential::layers::Dense;
    let dir = tempfile::tempdir().unwrap();
    let mut model = Sequential::new();
    model
        .add(Dense::new(2).activation(Activation::Step).input_shape(&[3]))
        .unwrap();
    let err = model.save(dir.path().join("m.keras"), false).unwrap_err();
    assert!(
        matches!(err, Error::Save { .. }) && err.to_string().contains("step"),
        "{err}"
    );
    // hebb's own format holds it.
    model.save(dir.path().join("m.safetensors"), false).unwrap();

    let mut unbuilt = Sequential::new();
    unbuilt.add(Dense::new(2)).unwrap();
    let err = unbuilt.save(dir.path().join("u.h5"), false).unwrap_err();
    assert!(err.to_string().contains("input shape"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// hebb-written `.keras` and `.h5` files load in TensorFlow and predict the
/// same. Needs `python3` with tensorflow; run with `cargo test -- --ignored`.
#[test]
#[ignore = "needs python3 with tensorflow"]
fn tensorflow_loads_hebb_files_and_predicts_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = load_model(fixture("activations.keras")).unwrap();
    let e = &expected()["activations"];
    let x = tensor(&e["x"]);
    let want = model.predict(&x, 32).unwrap();
    for name in ["hebb.keras", "hebb.h5"] {
        let path = dir.path().join(name);
        model.save(&path, false).unwrap();
        let script = format!(
            "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL']='3'\nimport json, numpy as np, keras\n\
             m = keras.models.load_model({path:?})\n\
             x = np.array(json.loads({x:?}), dtype=np.float32)\n\
             print(json.dumps(m.predict(x, verbose=0).tolist()))\n\
             print(int(m.optimizer.iterations.numpy()))\n",
            path = path.to_str().unwrap(),
            x = e["x"].to_string(),
        );
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let mut lines = stdout.lines().filter(|l| !l.is_empty());
        let predicted: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_close(&tensor(&predicted), &want, 1e-6, name);
        let iterations: u64 = lines.next().unwrap().trim().parse().unwrap();
        assert_eq!(
            iterations,
            model.optimizer().unwrap().iterations(),
            "{name}"
        );
    }
}
