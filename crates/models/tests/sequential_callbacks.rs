//! The `fit` callbacks: `EarlyStopping` (Keras' patience, modes and
//! `restore_best_weights`) and `CsvLogger` (Keras' `CSVLogger` file).

use std::sync::{Arc, Mutex};

use hebb_layers::Initializer;
use hebb_models::Error;
use hebb_models::sequential::callbacks::{Callback, Control, CsvLogger, EarlyStopping, Logs};
use hebb_models::sequential::layers::Dense;
use hebb_models::sequential::{FitOptions, History, Sequential};
use hebb_optim::Sgd;
use hebb_tensor::Tensor;

/// Hands a callback to `fit` while the test keeps access to it.
struct Shared<C>(Arc<Mutex<C>>);

impl<C: Callback> Callback for Shared<C> {
    fn on_train_begin(&mut self) -> hebb_models::Result<()> {
        self.0.lock().unwrap().on_train_begin()
    }

    fn on_batch_end(
        &mut self,
        epoch: usize,
        batch: usize,
        loss: f32,
    ) -> hebb_models::Result<Control> {
        self.0.lock().unwrap().on_batch_end(epoch, batch, loss)
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &Logs,
        weights: &[Tensor],
    ) -> hebb_models::Result<Control> {
        self.0.lock().unwrap().on_epoch_end(epoch, logs, weights)
    }

    fn weights_to_restore(&self) -> Option<Vec<Tensor>> {
        self.0.lock().unwrap().weights_to_restore()
    }
}

fn shared<C: Callback + 'static>(c: C) -> (Arc<Mutex<C>>, Box<dyn Callback>) {
    let rc = Arc::new(Mutex::new(c));
    (rc.clone(), Box::new(Shared(rc)))
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

fn bits(weights: &[Tensor]) -> Vec<Vec<u32>> {
    weights
        .iter()
        .map(|w| w.to_vec().iter().map(|v| v.to_bits()).collect())
        .collect()
}

/// `y = w x + b` from `w = b = 0`, trained with mse and SGD(`lr`) on
/// `x = 1 -> y = 1` (2 samples, one batch), validated on `x = 1 -> y = target`.
/// The prediction moves from 0 towards 1 by a factor `1 - 4 lr` of the
/// remaining error each epoch.
fn unit_fit(
    lr: f32,
    target: f32,
    epochs: usize,
    callbacks: Vec<Box<dyn Callback>>,
) -> (Sequential, History) {
    let mut model = Sequential::new();
    model
        .add(
            Dense::new(1)
                .input_shape(&[1])
                .kernel_initializer(Initializer::Zeros),
        )
        .unwrap();
    let sgd: Box<dyn hebb_optim::Optimizer> = Box::new(Sgd::new(lr));
    model.compile(sgd, "mse", Vec::<&str>::new()).unwrap();
    let x = Tensor::ones(&[2, 1]);
    let y = Tensor::ones(&[2, 1]);
    let vx = Tensor::ones(&[1, 1]);
    let vy = Tensor::full(&[1, 1], target);
    let h = model
        .fit(
            &x,
            &y,
            FitOptions {
                epochs,
                batch_size: 2,
                verbose: 0,
                validation_data: Some((vx, vy)),
                callbacks,
                ..Default::default()
            },
        )
        .unwrap();
    (model, h)
}

#[test]
fn early_stopping_patience_0_stops_when_val_loss_rises() {
    // Validation wants -1 while training moves the output towards 1: val_loss
    // rises every epoch, so epoch 0 is the best and epoch 1 stops training.
    let (stopper, cb) = shared(EarlyStopping::new("val_loss", 0));
    let (_, h) = unit_fit(0.1, -1.0, 10, vec![cb]);
    let val = h.get("val_loss").unwrap();
    assert_eq!(val.len(), 2, "{h:?}");
    assert!(val[1] > val[0]);
    assert_eq!(h.epoch, [0, 1]);
    assert_eq!(stopper.lock().unwrap().stopped_epoch, Some(1));

    // Without the callback all 10 epochs run.
    let (_, h) = unit_fit(0.1, -1.0, 10, Vec::new());
    assert_eq!(h.get("val_loss").unwrap().len(), 10);
}

#[test]
fn early_stopping_restores_the_best_weights() {
    // Validation wants 0.5: the output 0, 0.2, 0.36, 0.488, 0.59, ... passes it
    // in epoch 3 (0-based 2), so val_loss falls and then rises.
    let (snapshots, snap_cb) = shared(Snapshots::default());
    let (stopper, stop_cb) = shared(EarlyStopping::new("val_loss", 100).restore_best_weights(true));
    let (model, h) = unit_fit(0.05, 0.5, 8, vec![snap_cb, stop_cb]);
    let val = h.get("val_loss").unwrap();
    assert_eq!(val.len(), 8, "patience 100 never stops");
    assert_eq!(stopper.lock().unwrap().stopped_epoch, None);
    let best = (0..8).min_by(|&a, &b| val[a].total_cmp(&val[b])).unwrap();
    assert_eq!(best, 2, "{val:?}");
    let snapshots = snapshots.lock().unwrap();
    assert_eq!(snapshots.0.len(), 8);
    assert_eq!(bits(&model.get_weights()), bits(&snapshots.0[best]));
    assert_ne!(bits(&snapshots.0[best]), bits(&snapshots.0[7]));

    // Without restore_best_weights the model keeps the last epoch's weights.
    let (snapshots, snap_cb) = shared(Snapshots::default());
    let (model, _) = unit_fit(
        0.05,
        0.5,
        8,
        vec![snap_cb, Box::new(EarlyStopping::new("val_loss", 100))],
    );
    assert_eq!(
        bits(&model.get_weights()),
        bits(&snapshots.lock().unwrap().0[7])
    );

    // Stopped early (patience 0 stops at epoch 3), the best epoch 2 is restored.
    let (snapshots, snap_cb) = shared(Snapshots::default());
    let (stopper, stop_cb) = shared(EarlyStopping::new("val_loss", 0).restore_best_weights(true));
    let (model, h) = unit_fit(0.05, 0.5, 8, vec![snap_cb, stop_cb]);
    assert_eq!(h.epoch, [0, 1, 2, 3]);
    assert_eq!(stopper.lock().unwrap().stopped_epoch, Some(3));
    assert_eq!(
        bits(&model.get_weights()),
        bits(&snapshots.lock().unwrap().0[2])
    );
}

fn logs(key: &str, value: f32) -> Vec<(String, f32)> {
    vec![("loss".to_string(), 1.0), (key.to_string(), value)]
}

/// Feeds `values` of `key` to `stopper` epoch by epoch; returns the epoch
/// at which it asked to stop, if it did.
fn stops_at(stopper: &mut EarlyStopping, key: &str, values: &[f32]) -> Option<usize> {
    stopper.on_train_begin().unwrap();
    for (epoch, &v) in values.iter().enumerate() {
        if stopper.on_epoch_end(epoch, &logs(key, v), &[]).unwrap() == Control::Stop {
            assert_eq!(stopper.stopped_epoch, Some(epoch));
            return Some(epoch);
        }
    }
    assert_eq!(stopper.stopped_epoch, None);
    None
}

#[test]
fn early_stopping_mode_auto_maximises_accuracies() {
    let rising_then_falling = [0.5, 0.6, 0.55, 0.4];
    // *acc* and *auc* are maximised: the fall at epoch 2 stops.
    for key in [
        "val_accuracy",
        "val_sparse_categorical_accuracy",
        "acc",
        "val_auc",
    ] {
        let mut s = EarlyStopping::new(key, 0);
        assert_eq!(
            stops_at(&mut s, key, &rising_then_falling),
            Some(2),
            "{key}"
        );
    }
    // Anything else is minimised: the rise at epoch 1 stops.
    for key in ["val_loss", "loss", "val_mse"] {
        let mut s = EarlyStopping::new(key, 0);
        assert_eq!(
            stops_at(&mut s, key, &rising_then_falling),
            Some(1),
            "{key}"
        );
    }
    // Equal is no improvement.
    let mut s = EarlyStopping::new("val_loss", 0);
    assert_eq!(stops_at(&mut s, "val_loss", &[1.0, 1.0]), Some(1));
}

#[test]
fn early_stopping_min_delta_and_missing_figures() {
    // An improvement must exceed min_delta.
    let mut s = EarlyStopping::new("val_loss", 0).min_delta(0.1);
    assert_eq!(stops_at(&mut s, "val_loss", &[1.0, 0.95]), Some(1));
    let mut s = EarlyStopping::new("val_loss", 0).min_delta(-0.1);
    assert_eq!(stops_at(&mut s, "val_loss", &[1.0, 0.85, 0.8]), Some(2));
    let mut s = EarlyStopping::new("val_accuracy", 0).min_delta(0.1);
    assert_eq!(stops_at(&mut s, "val_accuracy", &[0.5, 0.65, 0.7]), Some(2));
    // A figure that is not in the logs (no validation) never stops training.
    let mut s = EarlyStopping::new("val_loss", 0);
    assert_eq!(stops_at(&mut s, "loss_other", &[1.0, 2.0, 3.0]), None);
    // on_train_begin starts afresh: a second run is judged on its own.
    let mut s = EarlyStopping::new("val_loss", 0);
    assert_eq!(stops_at(&mut s, "val_loss", &[0.1, 0.2]), Some(1));
    assert_eq!(stops_at(&mut s, "val_loss", &[5.0, 4.0, 3.0]), None);
}

#[test]
fn early_stopping_with_validation_freq_waits_for_validated_epochs() {
    // val_loss only every 2nd epoch: epochs without it neither count nor stop.
    let (stopper, cb) = shared(EarlyStopping::new("val_loss", 0));
    let mut model = Sequential::new();
    model
        .add(
            Dense::new(1)
                .input_shape(&[1])
                .kernel_initializer(Initializer::Zeros),
        )
        .unwrap();
    let sgd: Box<dyn hebb_optim::Optimizer> = Box::new(Sgd::new(0.1));
    model.compile(sgd, "mse", Vec::<&str>::new()).unwrap();
    let h = model
        .fit(
            &Tensor::ones(&[2, 1]),
            &Tensor::ones(&[2, 1]),
            FitOptions {
                epochs: 10,
                verbose: 0,
                validation_freq: 2,
                validation_data: Some((Tensor::ones(&[1, 1]), Tensor::full(&[1, 1], -1.0))),
                callbacks: vec![cb],
                ..Default::default()
            },
        )
        .unwrap();
    // Validated after epochs 1 and 3 (0-based); the second is worse: stop at 3.
    assert_eq!(h.epoch, [0, 1, 2, 3]);
    assert_eq!(h.get("val_loss").unwrap().len(), 2);
    assert_eq!(stopper.lock().unwrap().stopped_epoch, Some(3));
}

/// Keras (2.x and 3): `wait += 1` per epoch without improvement, stop when
/// `wait >= patience`, so `patience = 2` stops at the 2nd epoch without
/// improvement ("number of epochs with no improvement after which training
/// will be stopped").
#[test]
fn early_stopping_patience_counts_as_keras_does() {
    let mut s = EarlyStopping::new("val_loss", 1);
    assert_eq!(stops_at(&mut s, "val_loss", &[1.0, 2.0, 3.0]), Some(1));
    let mut s = EarlyStopping::new("val_loss", 2);
    assert_eq!(stops_at(&mut s, "val_loss", &[1.0, 2.0, 3.0, 4.0]), Some(2));
}

fn parse_csv(text: &str) -> (Vec<String>, Vec<Vec<f32>>) {
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(|v| v.parse::<f32>().unwrap()).collect())
        .collect();
    (header, rows)
}

fn classifier_fit(
    epochs: usize,
    validation_freq: usize,
    callbacks: Vec<Box<dyn Callback>>,
) -> hebb_models::Result<History> {
    let mut model = Sequential::new();
    model
        .add(
            Dense::new(3)
                .input_shape(&[2])
                .activation(hebb_layers::Activation::Softmax),
        )
        .unwrap();
    model
        .compile(
            "adam",
            "sparse_categorical_crossentropy",
            vec!["sparse_categorical_accuracy"],
        )
        .unwrap();
    let x = Tensor::from_vec((0..20).map(|i| (i % 5) as f32 - 2.0).collect(), &[10, 2]).unwrap();
    let y = Tensor::from_vec((0..10).map(|i| (i % 3) as f32).collect(), &[10]).unwrap();
    model.fit(
        &x,
        &y,
        FitOptions {
            epochs,
            batch_size: 4,
            verbose: 0,
            validation_split: 0.5,
            validation_freq,
            callbacks,
            ..Default::default()
        },
    )
}

#[test]
fn csv_logger_writes_a_header_and_one_row_per_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("training.log");
    let h = classifier_fit(3, 1, vec![Box::new(CsvLogger::new(&path))]).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let (header, rows) = parse_csv(&text);
    assert_eq!(
        header,
        [
            "epoch",
            "loss",
            "sparse_categorical_accuracy",
            "val_loss",
            "val_sparse_categorical_accuracy"
        ]
    );
    assert_eq!(rows.len(), 3, "{text}");
    for (e, row) in rows.iter().enumerate() {
        assert_eq!(row[0], e as f32, "epochs are 0-based, as Keras writes them");
        for (k, key) in header.iter().enumerate().skip(1) {
            // Written with enough digits to read back the same f32.
            assert_eq!(row[k].to_bits(), h.get(key).unwrap()[e].to_bits(), "{key}");
        }
    }
    assert!(text.ends_with('\n'));
    // Only the log is left in the directory (the temporary file was renamed).
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("training.log")]);

    // A new logger on the same path starts a new file (Keras' append=False).
    classifier_fit(1, 1, vec![Box::new(CsvLogger::new(&path))]).unwrap();
    let (_, rows) = parse_csv(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(rows.len(), 1);
}

#[test]
fn csv_logger_to_an_unwritable_path_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no_such_dir").join("training.log");
    let err = classifier_fit(2, 1, vec![Box::new(CsvLogger::new(&path))]).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path: p, .. } if *p == path),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(!path.exists());
}

/// Keras 3's CSVLogger adds the `val_` columns up front when the first
/// epoch has none (`validation_freq > 1`) and writes `NA` where a figure is
/// missing, so every row has the header's number of fields.
#[test]
fn csv_logger_rows_match_the_header_with_validation_freq() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("training.log");
    classifier_fit(4, 2, vec![Box::new(CsvLogger::new(&path))]).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    let fields = lines.next().unwrap().split(',').count();
    assert_eq!(fields, 5, "{text}");
    for line in lines {
        assert_eq!(line.split(',').count(), fields, "{text}");
    }
}

/// Issue 11, item 12: a monitored figure that is not in the logs (a typo,
/// `val_los`) never acts, and says so once, with Keras' words and the
/// figures that are there, through `hebb_models::warnings`.
#[test]
fn monitoring_a_figure_not_in_the_logs_warns_as_keras_does() {
    use hebb_models::warnings;
    let (stopper, cb) = shared(EarlyStopping::new("val_los", 0));
    let h = classifier_fit(4, 1, vec![cb]).unwrap();
    assert_eq!(h.epoch, [0, 1, 2, 3], "never stopped");
    assert_eq!(stopper.lock().unwrap().stopped_epoch, None);
    let early = "Early stopping conditioned on metric `val_los` which is not available. \
                 Available metrics are: loss,sparse_categorical_accuracy,val_loss,\
                 val_sparse_categorical_accuracy";
    let said = warnings::emitted();
    assert_eq!(said.iter().filter(|m| *m == early).count(), 1, "{said:?}");

    // ModelCheckpoint(save_best_only=True) on the same typo saves nothing.
    let dir = tempfile::tempdir().unwrap();
    let mut template = Sequential::new();
    template.add(Dense::new(1).input_shape(&[1])).unwrap();
    let best = dir.path().join("best.safetensors");
    let checkpoint = template
        .model_checkpoint(&best)
        .monitor("val_los")
        .save_best_only(true);
    let (checkpoint, cb) = shared(checkpoint);
    unit_fit(0.1, 0.5, 3, vec![cb]);
    assert!(!best.exists());
    assert_eq!(checkpoint.lock().unwrap().best(), None);
    let skipped = "Can save best model only with val_los available, skipping. \
                   Available metrics are: loss,val_loss";
    assert!(
        warnings::emitted().iter().any(|m| m == skipped),
        "{:?}",
        warnings::emitted()
    );
}
