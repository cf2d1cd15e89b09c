//! Whole-model files in hebb's format (`Sequential::save` to any name but
//! `.keras`/`.h5`, `load_model`): the layers, names, weights, compile
//! configuration and optimiser state come back bit for bit, and fitting on
//! with `initial_epoch` continues exactly as if training had not stopped.

use hebb_layers::Activation;
use hebb_layers::initializers::Initializer;
use hebb_layers::losses::Loss;
use hebb_models::Error;
use hebb_models::sequential::layers::{ActivationLayer, Dense, Flatten};
use hebb_models::sequential::{FitOptions, History, Sequential, load_model, load_model_bytes};
use hebb_optim::{Adadelta, Adagrad, Adam, Optimizer, RmsProp, Sgd};
use hebb_tensor::Tensor;

fn data() -> (Tensor, Tensor) {
    let x = Tensor::from_vec(
        (0..40 * 6)
            .map(|i| ((i * 31) % 97) as f32 / 97.0 - 0.3)
            .collect(),
        &[40, 2, 3],
    )
    .unwrap();
    let y = Tensor::from_vec((0..40).map(|i| (i % 3) as f32).collect(), &[40]).unwrap();
    (x, y)
}

fn model(optimizer: Box<dyn Optimizer>, seed: u64) -> Sequential {
    let mut m = Sequential::new().with_seed(seed).with_name("mlp");
    m.add(Flatten::new().input_shape(&[2, 3])).unwrap();
    m.add(
        Dense::new(8)
            .activation(Activation::Relu)
            .kernel_initializer(Initializer::HeNormal),
    )
    .unwrap();
    m.add(
        Dense::new(5)
            .activation(Activation::LeakyRelu { a: 3.0 })
            .name("hidden"),
    )
    .unwrap();
    m.add(Dense::new(3)).unwrap();
    m.add(ActivationLayer::new(Activation::Softmax)).unwrap();
    m.compile(
        optimizer,
        "sparse_categorical_crossentropy",
        vec!["sparse_categorical_accuracy", "accuracy"],
    )
    .unwrap();
    m
}

fn fit(m: &mut Sequential, initial_epoch: usize, epochs: usize) -> History {
    let (x, y) = data();
    m.fit(
        &x,
        &y,
        FitOptions {
            batch_size: 7,
            epochs,
            initial_epoch,
            validation_split: 0.25,
            verbose: 0,
            seed: 612,
            ..Default::default()
        },
    )
    .unwrap()
}

fn bits(m: &Sequential) -> Vec<Vec<u32>> {
    m.get_weights()
        .iter()
        .map(|t| t.as_slice().iter().map(|v| v.to_bits()).collect())
        .collect()
}

/// A slot's name, shape and bits.
type Slot = (String, Vec<usize>, Vec<u32>);

fn state(m: &Sequential) -> (u64, Vec<Slot>) {
    let o = m.optimizer().unwrap();
    let slots = o
        .slots()
        .into_iter()
        .map(|(n, t)| {
            (
                n,
                t.shape().to_vec(),
                t.as_slice().iter().map(|v| v.to_bits()).collect(),
            )
        })
        .collect();
    (o.iterations(), slots)
}

fn optimizers() -> Vec<Box<dyn Optimizer>> {
    vec![
        Box::new(Adam::default()),
        Box::new(Adam::new(0.01).with_amsgrad(true)),
        Box::new(Sgd::new(0.1).with_momentum(0.9, true)),
        Box::new(Sgd::new(0.1)),
        Box::new(RmsProp::new(0.01).with_momentum(0.3).with_centered(true)),
        Box::new(Adagrad::new(0.1)),
        Box::new(Adadelta::new(1.0)),
    ]
}

#[test]
fn a_saved_model_comes_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for (i, optimizer) in optimizers().into_iter().enumerate() {
        let mut m = model(optimizer, 3);
        fit(&mut m, 0, 1);
        let path = dir.path().join(format!("m{i}.safetensors"));
        m.save(&path, false).unwrap();
        let mut copy = load_model(&path).unwrap();
        let name = m.optimizer().unwrap().name();
        assert_eq!(copy.summary().unwrap(), m.summary().unwrap(), "{name}");
        assert_eq!(copy.name(), "mlp");
        assert_eq!(bits(&copy), bits(&m), "{name}");
        assert_eq!(state(&copy), state(&m), "{name}");
        assert_eq!(
            copy.optimizer().unwrap().config(),
            m.optimizer().unwrap().config()
        );
        assert_eq!(copy.metrics_names(), m.metrics_names());
        let names: Vec<String> = copy
            .trainable_variables()
            .iter()
            .map(|v| v.name().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "dense/kernel",
                "dense/bias",
                "hidden/kernel",
                "hidden/bias",
                "dense_1/kernel",
                "dense_1/bias"
            ]
        );
        let (x, y) = data();
        assert_eq!(
            copy.evaluate(&x, &y, 16, 0).unwrap(),
            m.evaluate(&x, &y, 16, 0).unwrap()
        );
        // Names given and automatic stay so: one more Dense is dense_2.
        copy.add(Dense::new(2)).unwrap();
        assert!(copy.summary().unwrap().contains("dense_2 (Dense)"));
    }
}

#[test]
fn training_continues_bit_for_bit_after_save_and_load() {
    let dir = tempfile::tempdir().unwrap();
    for optimizer in optimizers() {
        let name = optimizer.name();
        let mut straight = model(optimizer, 5);
        let mut stopped = model(
            hebb_optim::from_config(name, &straight.optimizer().unwrap().config()).unwrap(),
            5,
        );
        let whole = fit(&mut straight, 0, 3);
        fit(&mut stopped, 0, 1);
        let path = dir.path().join(format!("{name}.safetensors"));
        stopped.save(&path, true).unwrap();
        drop(stopped);
        let mut resumed = load_model(&path).unwrap();
        let rest = fit(&mut resumed, 1, 3);
        assert_eq!(bits(&resumed), bits(&straight), "{name}");
        assert_eq!(state(&resumed), state(&straight), "{name}");
        // Keras numbers the epochs from initial_epoch; the logs are epoch 2 and 3's.
        assert_eq!(rest.epoch, [1, 2]);
        assert_eq!(
            rest.get("loss").unwrap(),
            &whole.get("loss").unwrap()[1..],
            "{name}"
        );
        assert_eq!(
            rest.get("val_sparse_categorical_accuracy").unwrap(),
            &whole.get("val_sparse_categorical_accuracy").unwrap()[1..]
        );
    }
}

#[test]
fn initial_epoch_at_or_past_epochs_trains_nothing() {
    let mut m = model(Box::new(Adam::default()), 1);
    let before = bits(&m);
    let h = fit(&mut m, 2, 2);
    assert!(h.epoch.is_empty());
    assert_eq!(bits(&m), before);
}

#[test]
fn unbuilt_and_uncompiled_models_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = Sequential::new().with_seed(9);
    m.add(Dense::new(4).bias_initializer(Initializer::Constant { value: 0.5 }))
        .unwrap();
    m.add(Dense::new(2).activation(Activation::Sigmoid))
        .unwrap();
    let path = dir.path().join("unbuilt.hebb");
    m.save(&path, false).unwrap();
    let mut copy = load_model(&path).unwrap();
    assert!(!copy.built());
    assert!(copy.optimizer().is_none());
    // Built later, both draw the same initial weights from the same seed.
    m.build(&[3]).unwrap();
    copy.build(&[3]).unwrap();
    assert_eq!(bits(&copy), bits(&m));
    assert_eq!(copy.get_weights()[1].as_slice(), [0.5; 4]);
}

#[test]
fn loss_options_survive() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = Sequential::new();
    m.add(Dense::new(3).input_shape(&[2])).unwrap();
    let loss = Loss::from_name("categorical_crossentropy")
        .unwrap()
        .with_from_logits(true)
        .unwrap();
    m.compile("rmsprop", loss, vec!["categorical_accuracy"])
        .unwrap();
    for name in ["m.safetensors", "m.keras", "m.h5"] {
        let path = dir.path().join(name);
        m.save(&path, false).unwrap();
        let mut copy = load_model(&path).unwrap();
        let x = Tensor::from_vec(vec![1.0, 2.0, -1.0, 0.5], &[2, 2]).unwrap();
        let y = Tensor::from_vec(vec![0., 0., 1., 1., 0., 0.], &[2, 3]).unwrap();
        // The same loss value means from_logits came back.
        assert_eq!(
            copy.evaluate(&x, &y, 2, 0).unwrap(),
            m.evaluate(&x, &y, 2, 0).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn wrong_files_give_typed_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(Box::new(Adam::default()), 1);
    // A weights file is not a model file.
    let weights = dir.path().join("w.safetensors");
    m.save_weights(&weights, false).unwrap();
    let Err(err) = load_model(&weights) else {
        panic!("a weights file loaded as a model")
    };
    assert!(
        matches!(&err, Error::ModelFile { detail, .. } if detail.contains("load_weights")),
        "{err:?}"
    );
    // Another format altogether.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello, this is not a model").unwrap();
    let Err(err) = load_model(&text) else {
        panic!("text loaded")
    };
    assert!(matches!(err, Error::UnknownFormat { .. }), "{err:?}");
    assert!(err.to_string().contains("notes.txt"), "{err}");
    // A large file of another kind is refused from its first bytes (the
    // message gives the file's size, not the bytes read); sparse, so cheap.
    let big = dir.path().join("big.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    let Err(err) = load_model(&big) else {
        panic!("zeros loaded")
    };
    assert!(matches!(err, Error::UnknownFormat { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("3221225472 bytes starting with [00"),
        "{err}"
    );
    // A missing file.
    let Err(err) = load_model(dir.path().join("missing.safetensors")) else {
        panic!()
    };
    assert!(
        matches!(err, Error::Serialize(hebb_serialize::Error::Io { .. })),
        "{err:?}"
    );
}

#[test]
fn a_flipped_bit_in_a_weight_is_caught_by_the_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(Box::new(Adam::default()), 1);
    let path = dir.path().join("m.safetensors");
    m.save(&path, false).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 3; // inside the last tensor's data
    bytes[last] ^= 0x10;
    let Err(err) = load_model_bytes(&bytes, &path) else {
        panic!("a damaged file loaded")
    };
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
}

#[test]
fn overwrite_false_refuses_and_a_failed_save_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let a = model(Box::new(Adam::default()), 1);
    a.save(&path, false).unwrap();
    let old = std::fs::read(&path).unwrap();
    let b = model(Box::new(Adam::default()), 2);
    let err = b.save(&path, false).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Serialize(hebb_serialize::Error::AlreadyExists { .. })
        ),
        "{err:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), old);
    // A save that fails before writing (an activation Keras lacks) leaves nothing behind.
    let mut step = Sequential::new();
    step.add(Dense::new(1).activation(Activation::Step).input_shape(&[1]))
        .unwrap();
    assert!(step.save(dir.path().join("s.keras"), false).is_err());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["m.safetensors"]);
}

/// A layer added after training leaves the optimiser built for the old
/// weights: `save` refuses, in every format and with every optimiser (SGD
/// without momentum has no state that would not fit, and was saved),
/// with `fit`'s error and advice, rather than write a file that
/// `load_model` cannot read or whose copy trains where the model would not.
#[test]
fn stale_optimizer_state_is_refused_at_save() {
    let dir = tempfile::tempdir().unwrap();
    let optimizers: [(&str, Box<dyn Optimizer>); 2] = [
        ("SGD", Box::new(Sgd::new(0.1))),
        ("Adam", Box::new(Adam::new(0.01))),
    ];
    for (class, optimizer) in optimizers {
        let mut m = model(optimizer, 1);
        fit(&mut m, 0, 1);
        let before: Vec<String> = m
            .trainable_variables()
            .iter()
            .map(|v| v.name().to_string())
            .collect();
        m.add(Dense::new(2).name("extra")).unwrap();
        let after: Vec<String> = m
            .trainable_variables()
            .iter()
            .map(|v| v.name().to_string())
            .collect();
        for name in ["m.safetensors", "m.keras", "m.h5"] {
            let path = dir.path().join(name);
            let err = m.save(&path, false).unwrap_err();
            assert!(
                matches!(err, Error::RecompileNeeded { .. }),
                "{class} {name}: {err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!(
                    "model {}: the optimizer ({class}) was built for {} weight tensors ({}) but \
                     the model now has {} ({}); compile the model again (Keras requires compile \
                     after changing the model)",
                    m.name(),
                    before.len(),
                    before.join(", "),
                    after.len(),
                    after.join(", ")
                ),
                "{class} {name}"
            );
            assert!(!path.exists(), "{class}: {name} was written");
        }
        // Compiled again, it saves (hebb's format: the model's Leaky-ReLU
        // has a = 3, which Keras' files cannot hold).
        m.compile(class.to_lowercase().as_str(), "mse", Vec::<&str>::new())
            .unwrap();
        m.save(dir.path().join("m.safetensors"), false).unwrap();
        std::fs::remove_file(dir.path().join("m.safetensors")).unwrap();
    }
}

/// A learning-rate schedule cannot be saved yet: `save` says so instead of
/// writing a file that would resume at a fixed rate.
#[test]
fn a_scheduled_optimizer_is_refused_at_save() {
    use hebb_optim::schedules::{ExponentialDecay, Scheduled};
    let dir = tempfile::tempdir().unwrap();
    let schedule = ExponentialDecay::new(0.5, 2, 0.5, false).unwrap();
    let mut m = model(Box::new(Scheduled::new(Sgd::new(0.5), schedule)), 1);
    fit(&mut m, 0, 1);
    let path = dir.path().join("m.safetensors");
    let err = m.save(&path, false).unwrap_err().to_string();
    assert!(err.contains("learning_rate_schedule"), "{err}");
    assert!(!path.exists());
}

/// `load_model` and `load_weights` read a pipe (`<(cat m.h5)`, a FIFO)
/// as they read a file: the format is told from the bytes read once.
#[cfg(unix)]
#[test]
fn model_and_weights_files_can_be_read_from_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = model(Box::new(Adam::default()), 1);
    let (x, _) = data();
    let want = m.predict(&x, 32).unwrap();
    let mut n = 0;
    let mut through_pipe = |file: &std::path::Path| {
        n += 1;
        let fifo = dir.path().join(format!("pipe{n}"));
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let bytes = std::fs::read(file).unwrap();
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, bytes).unwrap())
        };
        (fifo, writer)
    };
    let file = dir.path().join("m.safetensors");
    m.save(&file, false).unwrap();
    let (fifo, writer) = through_pipe(&file);
    let mut loaded = load_model(&fifo).unwrap();
    writer.join().unwrap();
    assert_eq!(loaded.predict(&x, 32).unwrap(), want);
    // A Keras file (this model's leaky ReLU slope has no Keras form).
    let keras =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras/mlp.h5");
    let (fifo, writer) = through_pipe(&keras);
    let piped = load_model(&fifo).unwrap();
    writer.join().unwrap();
    assert_eq!(
        piped.get_weights(),
        load_model(&keras).unwrap().get_weights()
    );
    let weights = dir.path().join("w.safetensors");
    m.save_weights(&weights, false).unwrap();
    let (fifo, writer) = through_pipe(&weights);
    let mut other = model(Box::new(Adam::default()), 2);
    other.load_weights(&fifo).unwrap();
    writer.join().unwrap();
    assert_eq!(other.predict(&x, 32).unwrap(), want);
}
