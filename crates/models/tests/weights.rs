//! `save_weights` / `load_weights` (safetensors files with Keras names) and
//! the `ModelCheckpoint` callback (Keras' `save_best_only`, `{epoch}` paths).

use std::path::Path;
use std::sync::{Arc, Mutex};

use hebb_layers::{Activation, Initializer};
use hebb_models::Error;
use hebb_models::sequential::callbacks::{Callback, Control, Logs};
use hebb_models::sequential::layers::{Dense, Flatten};
use hebb_models::sequential::{FitOptions, History, Sequential};
use hebb_optim::Sgd;
use hebb_tensor::Tensor;

fn bits(weights: &[Tensor]) -> Vec<Vec<u32>> {
    weights
        .iter()
        .map(|w| w.as_slice().iter().map(|v| v.to_bits()).collect())
        .collect()
}

/// `[4] -> dense (hidden, relu) -> dense_1 (3, softmax)`, weights from `seed`.
fn mlp(seed: u64, hidden: usize) -> Sequential {
    let mut model = Sequential::new().with_seed(seed);
    model
        .add(
            Dense::new(hidden)
                .activation(Activation::Relu)
                .input_shape(&[4]),
        )
        .unwrap();
    model
        .add(Dense::new(3).activation(Activation::Softmax))
        .unwrap();
    model
}

/// Dense layers of the given widths after an input of 4 features.
fn stack(seed: u64, widths: &[usize]) -> Sequential {
    let mut model = Sequential::new().with_seed(seed);
    for (i, &w) in widths.iter().enumerate() {
        let layer = Dense::new(w);
        model
            .add(if i == 0 {
                layer.input_shape(&[4])
            } else {
                layer
            })
            .unwrap();
    }
    model
}

fn data() -> (Tensor, Tensor) {
    let x = Tensor::from_vec(
        (0..48).map(|i| ((i * 7) % 11) as f32 / 11.0).collect(),
        &[12, 4],
    )
    .unwrap();
    let y = Tensor::from_vec((0..12).map(|i| (i % 3) as f32).collect(), &[12]).unwrap();
    (x, y)
}

/// `mlp(1, hidden)` compiled with Adam and trained 3 epochs of batch 4 on `data()`.
fn trained_mlp(hidden: usize) -> Sequential {
    let (x, y) = data();
    let mut model = mlp(1, hidden);
    model
        .compile("adam", "sparse_categorical_crossentropy", vec!["accuracy"])
        .unwrap();
    let options = FitOptions {
        epochs: 3,
        batch_size: 4,
        verbose: 0,
        ..Default::default()
    };
    model.fit(&x, &y, options).unwrap();
    model
}

#[test]
fn saved_weights_load_into_a_fresh_identical_model_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.weights.safetensors");
    let (x, _) = data();
    let mut trained = trained_mlp(8);
    trained.save_weights(&path, false).unwrap();

    let mut fresh = mlp(2, 8);
    assert_ne!(bits(&fresh.get_weights()), bits(&trained.get_weights()));
    fresh.load_weights(&path).unwrap();
    assert_eq!(bits(&fresh.get_weights()), bits(&trained.get_weights()));
    let a = trained.predict(&x, 5).unwrap();
    let b = fresh.predict(&x, 5).unwrap();
    assert_eq!(bits(&[a]), bits(&[b]));

    // The file: Keras names, F32, hebb's metadata.
    let file = hebb_serialize::load(&path).unwrap();
    let names: Vec<&str> = file.tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "dense/bias",
            "dense/kernel",
            "dense_1/bias",
            "dense_1/kernel"
        ]
    );
    assert_eq!(file.get("dense/kernel").unwrap().shape(), &[4, 8]);
    assert_eq!(file.get("dense_1/bias").unwrap().shape(), &[3]);
    assert_eq!(file.metadata["format"], "hebb-weights");
    assert_eq!(file.metadata["version"], "1");
    assert_eq!(file.metadata["layers"], "dense,dense_1");
    assert_eq!(file.metadata.len(), 3);
}

#[test]
fn layers_without_weights_are_listed_but_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let make = |seed| {
        let mut m = Sequential::new().with_seed(seed);
        m.add(Flatten::new().input_shape(&[2, 2])).unwrap();
        m.add(Dense::new(3).name("hidden")).unwrap();
        m.add(Dense::new(2)).unwrap();
        m
    };
    make(0).save_weights(&path, false).unwrap();
    let file = hebb_serialize::load(&path).unwrap();
    assert_eq!(file.metadata["layers"], "flatten,hidden,dense");
    let names: Vec<&str> = file.tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["dense/bias", "dense/kernel", "hidden/bias", "hidden/kernel"]
    );
    let mut other = make(5);
    other.load_weights(&path).unwrap();
    assert_eq!(bits(&other.get_weights()), bits(&make(0).get_weights()));
}

#[test]
fn another_architecture_is_refused_naming_the_first_variable_and_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.safetensors");
    stack(0, &[16, 64, 10]).save_weights(&path, false).unwrap();

    let mut model = stack(1, &[16, 128, 10]);
    let before = bits(&model.get_weights());
    let err = model.load_weights(&path).unwrap_err();
    assert!(
        matches!(&err, Error::WeightsFile { path: p, model, .. } if *p == path && model == "sequential"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "weights file {} does not fit model sequential: dense_1/kernel is [16, 128] in the model but [16, 64] in the file",
            path.display()
        )
    );
    // Nothing was loaded, not even dense/kernel and dense/bias, which fit.
    assert_eq!(bits(&model.get_weights()), before);

    // A variable the file lacks.
    let mut deeper = stack(1, &[16, 64, 10, 5]);
    let err = deeper.load_weights(&path).unwrap_err().to_string();
    assert!(
        err.contains("dense_3/kernel is in the model but not in the file"),
        "{err}"
    );
    assert!(
        err.contains("the file has: dense/bias, dense/kernel"),
        "{err}"
    );

    // A tensor the model lacks.
    let mut shallower = stack(1, &[16, 64]);
    let err = shallower.load_weights(&path).unwrap_err().to_string();
    assert!(
        err.contains("the file has dense_2/bias, which is not in the model"),
        "{err}"
    );

    // Same shapes, other names.
    let mut renamed = Sequential::new();
    renamed
        .add(Dense::new(16).input_shape(&[4]).name("first"))
        .unwrap();
    let err = renamed.load_weights(&path).unwrap_err().to_string();
    assert!(
        err.contains("first/kernel is in the model but not in the file"),
        "{err}"
    );
}

#[test]
fn an_unbuilt_model_has_no_weights_to_load_or_save() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    stack(0, &[3]).save_weights(&path, false).unwrap();
    let mut model = Sequential::new();
    model.add(Dense::new(3)).unwrap();
    let err = model.load_weights(&path).unwrap_err();
    assert_eq!(
        err,
        Error::NotBuilt {
            model: "sequential".into()
        }
    );
    assert!(err.to_string().contains("input_shape"), "{err}");
    assert!(matches!(
        model.save_weights(dir.path().join("other.safetensors"), false),
        Err(Error::NotBuilt { .. })
    ));
    // Once built (here by build), the same file loads.
    model.build(&[4]).unwrap();
    model.load_weights(&path).unwrap();
}

#[test]
fn whole_model_files_load_weights_as_keras_load_weights_does() {
    let dir = tempfile::tempdir().unwrap();
    // A trained optimiser, so that hebb's model file holds its state too.
    let model = trained_mlp(5);
    let want = bits(&model.get_weights());
    for name in ["m.safetensors", "m.h5", "m.keras"] {
        let path = dir.path().join(name);
        model.save(&path, false).unwrap();
        // By name (hebb) or by layer order (Keras): other names load too.
        let mut other = Sequential::new().with_seed(2);
        other
            .add(
                Dense::new(5)
                    .activation(Activation::Relu)
                    .input_shape(&[4])
                    .name("h"),
            )
            .unwrap();
        other
            .add(Dense::new(3).activation(Activation::Softmax))
            .unwrap();
        let mut same = mlp(2, 5);
        same.load_weights(&path).unwrap();
        assert_eq!(bits(&same.get_weights()), want, "{name}");
        if name != "m.safetensors" {
            other.load_weights(&path).unwrap();
            assert_eq!(bits(&other.get_weights()), want, "{name}");
        }
        // Another architecture is refused, naming the file, and nothing changes.
        let mut wider = mlp(3, 6);
        let before = bits(&wider.get_weights());
        let err = wider.load_weights(&path).unwrap_err();
        assert!(
            matches!(&err, Error::WeightsFile { path: p, .. } if *p == path),
            "{err:?}"
        );
        assert!(err.to_string().contains("dense/kernel"), "{err}");
        assert_eq!(bits(&wider.get_weights()), before);
    }
}

#[test]
fn overwrite_false_refuses_an_existing_file_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let first = stack(0, &[3]);
    first.save_weights(&path, false).unwrap();
    let before = std::fs::read(&path).unwrap();
    let second = stack(1, &[3]);
    let err = second.save_weights(&path, false).unwrap_err();
    assert_eq!(
        err,
        Error::Serialize(hebb_serialize::Error::AlreadyExists { path: path.clone() })
    );
    assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);

    second.save_weights(&path, true).unwrap();
    let mut loaded = stack(2, &[3]);
    loaded.load_weights(&path).unwrap();
    assert_eq!(bits(&loaded.get_weights()), bits(&second.get_weights()));
}

#[test]
fn unreadable_files_are_serialize_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = stack(0, &[3]);
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "not a weights file").unwrap();
    let err = model.load_weights(&path).unwrap_err();
    assert!(
        matches!(&err, Error::Serialize(hebb_serialize::Error::Format { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("notes.txt"), "{err}");
    let missing = dir.path().join("missing.safetensors");
    let err = model.load_weights(&missing).unwrap_err();
    assert!(
        matches!(&err, Error::Serialize(hebb_serialize::Error::Io { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("missing.safetensors"), "{err}");
}

// ---------------------------------------------------------------- ModelCheckpoint

/// Hands a callback to `fit` while the test keeps access to it.
struct Shared<C>(Arc<Mutex<C>>);

impl<C: Callback> Callback for Shared<C> {
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &Logs,
        weights: &[Tensor],
    ) -> hebb_models::Result<Control> {
        self.0.lock().unwrap().on_epoch_end(epoch, logs, weights)
    }
}

/// Records the weights after every epoch.
#[derive(Default)]
struct Snapshots(Vec<Vec<Tensor>>);

impl Callback for Snapshots {
    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        _logs: &Logs,
        weights: &[Tensor],
    ) -> hebb_models::Result<Control> {
        self.0.push(weights.to_vec());
        Ok(Control::Continue)
    }
}

/// `y = w x + b` from `w = b = 0`.
fn unit_model() -> Sequential {
    let mut model = Sequential::new();
    model
        .add(
            Dense::new(1)
                .input_shape(&[1])
                .kernel_initializer(Initializer::Zeros),
        )
        .unwrap();
    model
}

/// Trains [`unit_model`] with mse and SGD(0.05) on `x = 1 -> y = 1`,
/// validated on `x = 1 -> y = 0.5`: the output 0, 0.2, 0.36, 0.488, 0.59, ...
/// passes 0.5 in epoch 3 (0-based 2), so val_loss falls for three epochs
/// and then rises. `checkpoints` are made from the model by the closure.
fn fit_unit(
    epochs: usize,
    checkpoints: impl FnOnce(&Sequential) -> Vec<Box<dyn Callback>>,
) -> (Sequential, History, Vec<Vec<Tensor>>) {
    let mut model = unit_model();
    let sgd: Box<dyn hebb_optim::Optimizer> = Box::new(Sgd::new(0.05));
    model.compile(sgd, "mse", Vec::<&str>::new()).unwrap();
    let snapshots = Arc::new(Mutex::new(Snapshots::default()));
    let mut callbacks: Vec<Box<dyn Callback>> = vec![Box::new(Shared(snapshots.clone()))];
    callbacks.extend(checkpoints(&model));
    let history = model
        .fit(
            &Tensor::ones(&[2, 1]),
            &Tensor::ones(&[2, 1]),
            FitOptions {
                epochs,
                batch_size: 2,
                verbose: 0,
                validation_data: Some((Tensor::ones(&[1, 1]), Tensor::full(&[1, 1], 0.5))),
                callbacks,
                ..Default::default()
            },
        )
        .unwrap();
    let snapshots = snapshots.lock().unwrap().0.clone();
    (model, history, snapshots)
}

fn loaded_weights(path: &Path) -> Vec<Tensor> {
    let mut model = unit_model();
    model.load_weights(path).unwrap();
    model.get_weights()
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn save_best_only_saves_when_val_loss_improves_and_keeps_the_best_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let best = dir.path().join("best.safetensors");
    let per_epoch = dir.path().join("epochs");
    let (model, history, snapshots) = fit_unit(8, |m| {
        vec![
            Box::new(m.model_checkpoint(&best).save_best_only(true)),
            Box::new(
                m.model_checkpoint(per_epoch.join("w.{epoch}.safetensors"))
                    .monitor("val_loss")
                    .save_best_only(true),
            ),
        ]
    });
    let val = history.get("val_loss").unwrap();
    assert!(
        val[0] > val[1] && val[1] > val[2] && val[2] < val[3],
        "{val:?}"
    );
    assert!(val[3..].windows(2).all(|w| w[0] < w[1]), "{val:?}");

    // Saved in epochs 1, 2, 3 (1-based) only: the improvements.
    assert_eq!(
        files(&per_epoch),
        ["w.01.safetensors", "w.02.safetensors", "w.03.safetensors"]
    );
    for (epoch, snapshot) in snapshots.iter().enumerate().take(3) {
        let file = per_epoch.join(format!("w.{:02}.safetensors", epoch + 1));
        assert_eq!(
            bits(&loaded_weights(&file)),
            bits(snapshot),
            "epoch {epoch}"
        );
    }
    // The fixed path holds the best epoch's weights, not the last epoch's.
    assert_eq!(bits(&loaded_weights(&best)), bits(&snapshots[2]));
    assert_ne!(bits(&snapshots[2]), bits(&model.get_weights()));
    assert_eq!(bits(&snapshots[7]), bits(&model.get_weights()));
    // No temporary files are left beside them.
    assert_eq!(files(dir.path()), ["best.safetensors", "epochs"]);
}

#[test]
fn without_save_best_only_every_epoch_is_saved_with_its_figures_in_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let latest = dir.path().join("latest.safetensors");
    let all = dir.path().join("all");
    let (model, history, snapshots) = fit_unit(4, |m| {
        vec![
            Box::new(m.model_checkpoint(&latest)),
            Box::new(m.model_checkpoint(all.join("w-{epoch:03d}-{val_loss:.4f}.safetensors"))),
        ]
    });
    let val = history.get("val_loss").unwrap();
    let expected: Vec<String> = (0..4)
        .map(|e| format!("w-{:03}-{:.4}.safetensors", e + 1, val[e]))
        .collect();
    assert_eq!(files(&all), expected);
    for (e, name) in expected.iter().enumerate() {
        assert_eq!(bits(&loaded_weights(&all.join(name))), bits(&snapshots[e]));
    }
    assert_eq!(bits(&loaded_weights(&latest)), bits(&model.get_weights()));
}

#[test]
fn monitoring_the_training_loss_saves_while_it_falls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("{epoch}.safetensors");
    let (model, history, _) = fit_unit(5, |m| {
        vec![Box::new(
            m.model_checkpoint(&path)
                .monitor("loss")
                .save_best_only(true),
        )]
    });
    let loss = history.get("loss").unwrap();
    assert!(loss.windows(2).all(|w| w[1] < w[0]), "{loss:?}");
    assert_eq!(
        files(dir.path()),
        [
            "01.safetensors",
            "02.safetensors",
            "03.safetensors",
            "04.safetensors",
            "05.safetensors"
        ]
    );
    assert_eq!(
        bits(&loaded_weights(&dir.path().join("05.safetensors"))),
        bits(&model.get_weights())
    );
}

fn logs(key: &str, value: f32) -> Vec<(String, f32)> {
    vec![("loss".to_string(), 1.0), (key.to_string(), value)]
}

/// Weights for [`unit_model`] that tell the epoch.
fn epoch_weights(epoch: usize) -> Vec<Tensor> {
    vec![
        Tensor::full(&[1, 1], epoch as f32),
        Tensor::full(&[1], -(epoch as f32)),
    ]
}

/// Feeds `values` of `key` epoch by epoch; returns the epochs (1-based) saved.
fn saved_epochs(key: &str, values: &[f32]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut ckpt = unit_model()
        .model_checkpoint(dir.path().join("{epoch}.safetensors"))
        .monitor(key)
        .save_best_only(true);
    for (epoch, &v) in values.iter().enumerate() {
        let control = ckpt
            .on_epoch_end(epoch, &logs(key, v), &epoch_weights(epoch))
            .unwrap();
        assert_eq!(control, Control::Continue);
    }
    let names = files(dir.path());
    for name in &names {
        let epoch: usize = name.trim_end_matches(".safetensors").parse().unwrap();
        assert_eq!(
            bits(&loaded_weights(&dir.path().join(name))),
            bits(&epoch_weights(epoch - 1))
        );
    }
    names
        .into_iter()
        .map(|n| n.trim_end_matches(".safetensors").to_string())
        .collect()
}

#[test]
fn save_best_only_follows_keras_auto_mode() {
    // Lower is better for losses; ties, rises and NaN are not improvements.
    assert_eq!(
        saved_epochs("val_loss", &[0.5, 0.4, 0.6, 0.4, 0.3, f32::NAN, 0.35]),
        ["01", "02", "05"]
    );
    // A first NaN or +inf is no improvement on +inf.
    assert_eq!(
        saved_epochs("val_loss", &[f32::NAN, f32::INFINITY, 2.0]),
        ["03"]
    );
    // Higher is better when the name holds acc or auc.
    for key in ["val_accuracy", "acc", "val_auc"] {
        assert_eq!(
            saved_epochs(key, &[0.5, 0.4, 0.6, 0.6, 0.7]),
            ["01", "03", "05"],
            "{key}"
        );
    }
}

#[test]
fn a_missing_figure_skips_the_save_and_bad_paths_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let model = unit_model();
    let mut ckpt = model
        .model_checkpoint(dir.path().join("w.safetensors"))
        .save_best_only(true);
    // No val_loss this epoch (validation_freq > 1): nothing is saved.
    ckpt.on_epoch_end(0, &logs("loss", 0.3), &epoch_weights(0))
        .unwrap();
    assert!(files(dir.path()).is_empty());
    assert_eq!(ckpt.best(), None);
    ckpt.on_epoch_end(1, &logs("val_loss", 0.3), &epoch_weights(1))
        .unwrap();
    assert_eq!(ckpt.best(), Some(0.3));
    assert_eq!(files(dir.path()), ["w.safetensors"]);

    for (template, expected) in [
        (
            "{val_acc}.safetensors",
            "{val_acc} is neither epoch nor a figure of epoch 1 (epoch, loss, val_loss)",
        ),
        (
            "{epoch:x}.safetensors",
            "format spec \"x\" is not understood",
        ),
        ("{epoch:.2f}.safetensors", "the epoch is an integer"),
        ("{epoch.safetensors", "a '{' without its '}'"),
        ("epoch}.safetensors", "a single '}'"),
    ] {
        let mut ckpt = model.model_checkpoint(dir.path().join(template));
        let err = ckpt
            .on_epoch_end(0, &logs("val_loss", 0.3), &epoch_weights(0))
            .unwrap_err();
        assert!(matches!(err, Error::Data { .. }), "{template}: {err:?}");
        assert!(err.to_string().contains(expected), "{template}: {err}");
    }
    let mut braces = model.model_checkpoint(dir.path().join("{{x}}-{epoch:d}.safetensors"));
    braces
        .on_epoch_end(6, &logs("val_loss", 0.3), &epoch_weights(6))
        .unwrap();
    assert!(dir.path().join("{x}-7.safetensors").exists());

    // Weights that do not match the names the checkpoint was made with.
    let mut ckpt = model.model_checkpoint(dir.path().join("w.safetensors"));
    let err = ckpt
        .on_epoch_end(0, &logs("val_loss", 0.3), &[Tensor::zeros(&[1])])
        .unwrap_err();
    assert!(
        err.to_string().contains("make it after the last add"),
        "{err}"
    );
}

#[test]
fn a_checkpoint_made_before_the_model_is_built_knows_the_weight_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let mut model = Sequential::new();
    model.add(Dense::new(2)).unwrap();
    model.add(Dense::new(1).name("out")).unwrap();
    assert!(!model.built());
    let ckpt = model.model_checkpoint(&path);
    model.compile("sgd", "mse", Vec::<&str>::new()).unwrap();
    let x = Tensor::ones(&[4, 3]);
    let y = Tensor::ones(&[4, 1]);
    model
        .fit(
            &x,
            &y,
            FitOptions {
                epochs: 1,
                verbose: 0,
                callbacks: vec![Box::new(ckpt)],
                ..Default::default()
            },
        )
        .unwrap();
    let file = hebb_serialize::load(&path).unwrap();
    let names: Vec<&str> = file.tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["dense/bias", "dense/kernel", "out/bias", "out/kernel"]
    );
    assert_eq!(file.metadata["layers"], "dense,out");
    let mut copy = Sequential::new();
    copy.add(Dense::new(2).input_shape(&[3])).unwrap();
    copy.add(Dense::new(1).name("out")).unwrap();
    copy.load_weights(&path).unwrap();
    assert_eq!(bits(&copy.get_weights()), bits(&model.get_weights()));
}
