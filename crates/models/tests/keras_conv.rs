//! Keras model files with image layers, both ways: the fixtures made by
//! `tests/fixtures/keras/make_conv_fixtures.py` with TensorFlow 2.21 /
//! Keras 3.15 (Keras' "Simple MNIST convnet", and a Conv2D (same, stride 2,
//! no bias) - BatchNormalization - AveragePooling2D - GlobalAveragePooling2D -
//! Dense model trained a few Adam steps) load from `.keras` and `.h5` and
//! predict what Keras predicted (within 1e-5); hebb writes them back in the
//! three formats and reads them exactly, with the optimiser state, so that
//! training resumes bit for bit; TensorFlow loads hebb's files (the ignored
//! test at the end, run with `cargo test -- --ignored` where
//! `python3 -c "import tensorflow"` works); a file with a layer hebb lacks
//! (LSTM) or a conv kernel of the wrong shape gives a typed error naming it.

use std::path::{Path, PathBuf};

use hebb_models::Error;
use hebb_models::sequential::{
    FitOptions, LoadedModel, ModelFormat, Sequential, load_model, load_model_with_notes,
};
use hebb_tensor::Tensor;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keras")
        .join(name)
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture("expected_conv.json")).unwrap();
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
    for (i, (g, w)) in got.to_vec().iter().zip(want.to_vec()).enumerate() {
        assert!((g - w).abs() <= tol, "{what}[{i}]: hebb {g}, Keras {w}");
    }
}

fn slots(model: &Sequential) -> Vec<(String, Vec<u32>)> {
    let mut s: Vec<(String, Vec<u32>)> = model
        .optimizer()
        .unwrap()
        .slots()
        .into_iter()
        .map(|(n, t)| (n, t.to_vec().iter().map(|v| v.to_bits()).collect()))
        .collect();
    s.sort();
    s
}

fn bits(model: &Sequential) -> Vec<Vec<u32>> {
    model
        .get_weights()
        .iter()
        .map(|t| t.to_vec().iter().map(|v| v.to_bits()).collect())
        .collect()
}

fn params_line(summary: &str, what: &str) -> String {
    summary
        .lines()
        .find(|l| l.starts_with(what))
        .unwrap_or_else(|| panic!("no {what} in {summary}"))
        .to_string()
}

/// `1234` as `1,234`, as the summary writes counts.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn check_params(model: &Sequential, e: &Value, file: &str) {
    let summary = model.summary().unwrap();
    for (line, key) in [
        ("Total params", "total"),
        ("Trainable params", "trainable"),
        ("Non-trainable params", "non_trainable"),
    ] {
        let n = e["params"][key].as_u64().unwrap();
        assert!(
            params_line(&summary, line).contains(&format!("{line}: {}", thousands(n))),
            "{file}: {line} {n}: {summary}"
        );
    }
}

#[test]
fn the_mnist_convnet_predicts_as_keras_did() {
    let e = &expected()["convnet"];
    let x = tensor(&e["x"]);
    let want = tensor(&e["predict"]);
    for (file, format) in [
        ("convnet.keras", ModelFormat::KerasArchive),
        ("convnet.h5", ModelFormat::KerasH5),
    ] {
        let LoadedModel {
            mut model,
            format: read_as,
            ..
        } = load_model_with_notes(fixture(file)).unwrap();
        assert_eq!(read_as, format, "{file}");
        check_params(&model, e, file);
        let summary = model.summary().unwrap();
        for layer in [
            "(Conv2D)",
            "(MaxPooling2D)",
            "(Dropout)",
            "(None, 26, 26, 32)",
            "(None, 5, 5, 64)",
        ] {
            assert!(summary.contains(layer), "{file}: {layer}: {summary}");
        }
        assert_close(&model.predict(&x, 32).unwrap(), &want, 1e-5, file);
    }
}

#[test]
fn batch_normalization_and_pooling_predict_and_evaluate_as_keras_did() {
    let e = &expected()["bn_convnet"];
    let x = tensor(&e["x"]);
    let y = tensor(&e["y"]);
    let want = tensor(&e["predict"]);
    let mut loaded = Vec::new();
    for file in ["bn_convnet.keras", "bn_convnet.h5"] {
        let mut model = load_model(fixture(file)).unwrap();
        check_params(&model, e, file);
        assert_close(&model.predict(&x, 32).unwrap(), &want, 1e-5, file);
        let values = model.evaluate(&x, &y, 32, 0).unwrap();
        let keras = e["evaluate"][0].as_f64().unwrap() as f32;
        assert!(
            (values[0] - keras).abs() < 1e-5,
            "{file}: loss {values:?} vs {keras}"
        );
        assert_eq!(
            values[1],
            e["evaluate"][1].as_f64().unwrap() as f32,
            "{file}"
        );
        let optimizer = model.optimizer().unwrap();
        assert_eq!(optimizer.name(), "Adam");
        assert_eq!(
            optimizer.iterations(),
            e["iterations"].as_u64().unwrap(),
            "{file}"
        );
        // The moving statistics are the file's (Keras' order: gamma, beta,
        // moving_mean, moving_variance), after the kernel.
        let weights = model.get_weights();
        assert_eq!(weights.len(), 7, "{file}");
        assert_eq!(
            weights[3].to_vec(),
            tensor(&e["moving_mean"]).to_vec(),
            "{file}"
        );
        assert_eq!(
            weights[4].to_vec(),
            tensor(&e["moving_variance"]).to_vec(),
            "{file}"
        );
        // Adam's two slots per trainable weight: kernel, gamma, beta, dense kernel and bias.
        assert_eq!(slots(&model).len(), 10, "{file}");
        loaded.push(model);
    }
    assert_eq!(bits(&loaded[0]), bits(&loaded[1]));
    assert_eq!(slots(&loaded[0]), slots(&loaded[1]));
}

/// Fits `model` on fixed data (images of `shape`, labels 0..classes).
fn fit_some(
    model: &mut Sequential,
    shape: &[usize],
    classes: usize,
    initial_epoch: usize,
    epochs: usize,
) {
    let rows = 10;
    let n: usize = shape.iter().product();
    let x = Tensor::from_vec(
        (0..rows * n)
            .map(|i| ((i * 37) % 101) as f32 / 101.0)
            .collect(),
        &[&[rows][..], shape].concat(),
    )
    .unwrap();
    let y = Tensor::from_vec((0..rows).map(|i| (i % classes) as f32).collect(), &[rows]).unwrap();
    model
        .fit(
            &x,
            &y,
            FitOptions {
                batch_size: 4,
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
fn hebb_writes_image_models_it_reads_back_exactly_and_training_resumes_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    for (file, shape, classes, dropout) in [
        ("bn_convnet.keras", &[9, 9, 2][..], 3, false),
        ("convnet.h5", &[28, 28, 1][..], 10, true),
    ] {
        let mut original = load_model(fixture(file)).unwrap();
        fit_some(&mut original, shape, classes, 0, 1);
        let mut resumed = Vec::new();
        for ext in ["keras", "h5", "safetensors"] {
            let name = format!("{file}.{ext}");
            let path = dir.path().join(&name);
            original.save(&path, false).unwrap();
            let mut copy = load_model(&path).unwrap();
            assert_eq!(bits(&copy), bits(&original), "{name}");
            assert_eq!(slots(&copy), slots(&original), "{name}");
            assert_eq!(
                copy.optimizer().unwrap().iterations(),
                original.optimizer().unwrap().iterations(),
                "{name}"
            );
            assert_eq!(
                copy.summary().unwrap(),
                original.summary().unwrap(),
                "{name}"
            );
            let mut straight = load_model(&path).unwrap();
            fit_some(&mut copy, shape, classes, 1, 2);
            fit_some(&mut straight, shape, classes, 1, 2);
            assert_eq!(bits(&copy), bits(&straight), "{name}");
            resumed.push((ext, bits(&copy)));
        }
        // Continuing the original gives what the reloaded copies give: from
        // every format without Dropout; with Dropout from hebb's own, which
        // alone keeps the masks' seed and step (Keras files do not: a model
        // loaded from one draws new masks, as Keras does).
        fit_some(&mut original, shape, classes, 1, 2);
        for (ext, copy) in &resumed {
            if !dropout || *ext == "safetensors" {
                assert_eq!(&bits(&original), copy, "{file} resumed from .{ext}");
            }
        }
    }
}

#[test]
fn a_layer_hebb_lacks_is_named() {
    for file in ["lstm.keras", "lstm.h5"] {
        let Err(err) = load_model(fixture(file)) else {
            panic!("{file}: an LSTM layer loaded");
        };
        match &err {
            Error::UnsupportedLayer { layer, class, path } => {
                assert_eq!(class, "LSTM", "{file}");
                assert_eq!(layer, "lstm", "{file}");
                assert!(path.ends_with(file));
            }
            other => panic!("{file}: {other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.contains("layer lstm is a Keras LSTM") && text.contains(file),
            "{file}: {text}"
        );
    }
}

#[test]
fn a_conv_kernel_of_the_wrong_shape_is_named_with_both_shapes() {
    for file in ["bad_kernel.keras", "bad_kernel.h5"] {
        let Err(err) = load_model(fixture(file)) else {
            panic!("{file}: a (3, 3, 2, 5) kernel loaded into a 4-filter Conv2D");
        };
        assert!(matches!(err, Error::ModelFile { .. }), "{file}: {err:?}");
        let text = err.to_string();
        for part in [file, "conv2d", "[3, 3, 2, 5]", "[3, 3, 2, 4]"] {
            assert!(text.contains(part), "{file}: {part}: {text}");
        }
    }
}

/// hebb-written `.keras` and `.h5` files of image models load in
/// TensorFlow and predict the same, with the optimiser's iterations. Needs
/// `python3` with tensorflow; run with `cargo test -- --ignored`.
#[test]
#[ignore = "needs python3 with tensorflow"]
fn tensorflow_loads_hebb_image_models_and_predicts_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let all = expected();
    for (file, key, shape, classes) in [
        ("bn_convnet.h5", "bn_convnet", &[9, 9, 2][..], 3),
        ("convnet.keras", "convnet", &[28, 28, 1][..], 10),
    ] {
        let e = &all[key];
        let mut model = load_model(fixture(file)).unwrap();
        fit_some(&mut model, shape, classes, 0, 1);
        let x = tensor(&e["x"]);
        let want = model.predict(&x, 32).unwrap();
        for ext in ["keras", "h5"] {
            let path = dir.path().join(format!("hebb_{key}.{ext}"));
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
            assert_close(&tensor(&predicted), &want, 1e-5, &format!("{key}.{ext}"));
            let iterations: u64 = lines.next().unwrap().trim().parse().unwrap();
            assert_eq!(
                iterations,
                model.optimizer().unwrap().iterations(),
                "{key}.{ext}"
            );
        }
    }
}
