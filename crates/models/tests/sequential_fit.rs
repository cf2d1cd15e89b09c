//! `Sequential::fit`, `evaluate` and `predict` with Keras' semantics:
//! validation split and data, History, shuffling and determinism, the
//! reported epoch loss, NaN handling, and that training learns.

use std::sync::{Arc, Mutex};

use hebb_autograd::GradientTape;
use hebb_layers::losses;
use hebb_layers::{Activation, Initializer};
use hebb_models::Error;
use hebb_models::sequential::callbacks::{Callback, Control, Logs};
use hebb_models::sequential::layers::{Dense, Flatten};
use hebb_models::sequential::{FitOptions, History, Sequential};
use hebb_optim::{Optimizer, Sgd};
use hebb_tensor::Tensor;
use hebb_tensor::random::chacha;
use rand::Rng;

/// Everything `fit` tells its callbacks, recorded for the test to inspect.
#[derive(Debug, Default)]
struct Record {
    /// `(epoch, batch, loss)` of every batch.
    batches: Vec<(usize, usize, f32)>,
    /// `(epoch, logs)` of every epoch.
    epochs: Vec<(usize, Vec<(String, f32)>)>,
    /// The weights after each epoch.
    weights: Vec<Vec<Tensor>>,
}

struct Recorder(Arc<Mutex<Record>>);

impl Callback for Recorder {
    fn on_batch_end(
        &mut self,
        epoch: usize,
        batch: usize,
        loss: f32,
    ) -> hebb_models::Result<Control> {
        self.0.lock().unwrap().batches.push((epoch, batch, loss));
        Ok(Control::Continue)
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &Logs,
        weights: &[Tensor],
    ) -> hebb_models::Result<Control> {
        let mut r = self.0.lock().unwrap();
        r.epochs.push((epoch, logs.to_vec()));
        r.weights.push(weights.to_vec());
        Ok(Control::Continue)
    }
}

fn recorder() -> (Arc<Mutex<Record>>, Box<dyn Callback>) {
    let record = Arc::new(Mutex::new(Record::default()));
    (record.clone(), Box::new(Recorder(record)))
}

fn sgd(lr: f32) -> Box<dyn Optimizer> {
    Box::new(Sgd::new(lr))
}

/// A small 4-6-3 softmax classifier.
fn classifier(seed: u64) -> Sequential {
    let mut model = Sequential::new().with_seed(seed);
    model
        .add(Dense::new(6).activation(Activation::Relu).input_shape(&[4]))
        .unwrap();
    model
        .add(Dense::new(3).activation(Activation::Softmax))
        .unwrap();
    model
}

/// `n` samples of 4 features from a seeded generator, labels `i % 3`.
fn random_data(n: usize, seed: u64) -> (Tensor, Tensor) {
    let mut rng = chacha(seed);
    let x: Vec<f32> = (0..n * 4)
        .map(|_| rng.random::<f32>() * 4.0 - 2.0)
        .collect();
    let y: Vec<f32> = (0..n).map(|i| (i % 3) as f32).collect();
    (
        Tensor::from_vec(x, &[n, 4]).unwrap(),
        Tensor::from_vec(y, &[n]).unwrap(),
    )
}

fn rows(t: &Tensor, range: std::ops::Range<usize>) -> Tensor {
    t.gather_rows(&range.collect::<Vec<_>>()).unwrap()
}

fn quiet() -> FitOptions {
    FitOptions {
        verbose: 0,
        ..Default::default()
    }
}

fn compiled_classifier(seed: u64, optimizer: Box<dyn Optimizer>) -> Sequential {
    let mut model = classifier(seed);
    model
        .compile(
            optimizer,
            "sparse_categorical_crossentropy",
            vec!["sparse_categorical_accuracy"],
        )
        .unwrap();
    model
}

fn bits(weights: &[Tensor]) -> Vec<Vec<u32>> {
    weights
        .iter()
        .map(|w| w.to_vec().iter().map(|v| v.to_bits()).collect())
        .collect()
}

fn close(a: f32, b: f32, rel: f32) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-6)
}

#[test]
fn validation_split_takes_the_last_rows_before_shuffling() {
    // 8 samples, validation_split 0.25: rows 6 and 7 are held out. With
    // learning rate 0 the weights never change, so val_loss must equal
    // evaluate() on exactly those rows.
    let (x, y) = random_data(8, 1);
    let mut model = compiled_classifier(5, sgd(0.0));
    let last = model
        .evaluate(&rows(&x, 6..8), &rows(&y, 6..8), 32, 0)
        .unwrap();
    let first = model
        .evaluate(&rows(&x, 0..2), &rows(&y, 0..2), 32, 0)
        .unwrap();
    let last3 = model
        .evaluate(&rows(&x, 5..8), &rows(&y, 5..8), 32, 0)
        .unwrap();
    let train = model
        .evaluate(&rows(&x, 0..6), &rows(&y, 0..6), 32, 0)
        .unwrap();
    let (record, cb) = recorder();
    let h = model
        .fit(
            &x,
            &y,
            FitOptions {
                epochs: 2,
                batch_size: 1,
                validation_split: 0.25,
                callbacks: vec![cb],
                ..quiet()
            },
        )
        .unwrap();
    let val_loss = h.get("val_loss").unwrap();
    assert_eq!(val_loss.len(), 2);
    assert!(
        close(val_loss[0], last[0], 1e-6),
        "{val_loss:?} vs {last:?}"
    );
    assert!(
        !close(val_loss[0], first[0], 1e-3),
        "{val_loss:?} vs {first:?}"
    );
    assert!(
        !close(val_loss[0], last3[0], 1e-3),
        "{val_loss:?} vs {last3:?}"
    );
    assert_eq!(
        h.get("val_sparse_categorical_accuracy").unwrap()[0],
        last[1]
    );
    // The training loss is over the first 6 rows only: 6 batches of 1 per epoch.
    assert!(
        close(h.get("loss").unwrap()[0], train[0], 1e-5),
        "{h:?} vs {train:?}"
    );
    assert_eq!(record.lock().unwrap().batches.len(), 12);
    assert_eq!(
        record
            .lock()
            .unwrap()
            .batches
            .iter()
            .filter(|b| b.0 == 0)
            .count(),
        6
    );
}

#[test]
fn validation_rows_are_never_trained_on() {
    // The last quarter holds NaN inputs: training on any of them would make
    // a batch loss NaN (an error); only the validation figures are NaN.
    let (x, y) = random_data(12, 2);
    let mut v = x.to_vec();
    for e in &mut v[9 * 4..] {
        *e = f32::NAN;
    }
    let x = Tensor::from_vec(v, &[12, 4]).unwrap();
    let mut model = compiled_classifier(1, sgd(0.1));
    let h = model
        .fit(
            &x,
            &y,
            FitOptions {
                epochs: 5,
                batch_size: 2,
                validation_split: 0.25,
                shuffle: true,
                ..quiet()
            },
        )
        .unwrap();
    assert!(h.get("loss").unwrap().iter().all(|l| l.is_finite()));
    assert!(h.get("val_loss").unwrap().iter().all(|l| l.is_nan()));
    assert!(
        model
            .get_weights()
            .iter()
            .all(|w| w.to_vec().iter().all(|v| v.is_finite()))
    );
}

/// Keras: `split_at = int(math.floor(n * (1. - validation_split)))` with
/// Python floats, so 10 samples and 0.2 train on 8 and validate on 2.
#[test]
fn validation_split_point_matches_keras_for_decimal_fractions() {
    for (n, split, train) in [(10, 0.2, 8), (10, 0.1, 9), (150, 0.2, 120), (5, 0.2, 4)] {
        let (x, y) = random_data(n, 3);
        let mut model = compiled_classifier(5, sgd(0.0));
        let (record, cb) = recorder();
        model
            .fit(
                &x,
                &y,
                FitOptions {
                    batch_size: 1,
                    validation_split: split,
                    callbacks: vec![cb],
                    ..quiet()
                },
            )
            .unwrap();
        assert_eq!(
            record.lock().unwrap().batches.len(),
            train,
            "n {n}, split {split}"
        );
    }
}

#[test]
fn validation_split_out_of_range_is_an_error() {
    let (x, y) = random_data(4, 1);
    let mut model = compiled_classifier(0, sgd(0.0));
    for split in [1.0, -0.1, 1.5] {
        let err = model
            .fit(
                &x,
                &y,
                FitOptions {
                    validation_split: split,
                    ..quiet()
                },
            )
            .unwrap_err();
        assert!(matches!(err, Error::Data { .. }), "{err}");
        assert!(err.to_string().contains("validation_split"), "{err}");
    }
    // 0.5 of 1 sample leaves nothing to train on.
    let err = model
        .fit(
            &rows(&x, 0..1),
            &rows(&y, 0..1),
            FitOptions {
                validation_split: 0.5,
                ..quiet()
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ValidationSplit {
                samples: 1,
                train: 0,
                validation: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn history_keys_in_keras_order_with_one_value_per_epoch() {
    let (x, y) = random_data(20, 4);
    let mut model = classifier(2);
    model
        .compile(
            "adam",
            "sparse_categorical_crossentropy",
            vec!["accuracy", "sparse_categorical_crossentropy"],
        )
        .unwrap();
    let (record, cb) = recorder();
    let h = model
        .fit(
            &x,
            &y,
            FitOptions {
                epochs: 3,
                batch_size: 8,
                validation_split: 0.25,
                callbacks: vec![cb],
                ..quiet()
            },
        )
        .unwrap();
    assert_eq!(
        h.keys(),
        [
            "loss",
            "accuracy",
            "sparse_categorical_crossentropy",
            "val_loss",
            "val_accuracy",
            "val_sparse_categorical_crossentropy",
        ]
    );
    assert_eq!(h.epoch, [0, 1, 2]);
    for (key, values) in &h.history {
        assert_eq!(values.len(), 3, "{key}");
    }
    // The logs the callbacks see are the History rows, in the same order.
    let record = record.lock().unwrap();
    for (e, (epoch, logs)) in record.epochs.iter().enumerate() {
        assert_eq!(*epoch, e);
        let keys: Vec<&str> = logs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, h.keys());
        for (k, v) in logs {
            assert_eq!(h.get(k).unwrap()[e].to_bits(), v.to_bits());
        }
    }
    // The loss metric over the training batches equals the loss (both are
    // sample-weighted means of the same per-sample losses).
    let loss = h.get("loss").unwrap();
    let metric = h.get("sparse_categorical_crossentropy").unwrap();
    for (a, b) in loss.iter().zip(metric) {
        assert!(close(*a, *b, 1e-5), "{a} vs {b}");
    }
    assert!(h.get("missing").is_none());
}

#[test]
fn validation_freq_validates_every_nth_epoch() {
    let (x, y) = random_data(10, 5);
    let mut model = compiled_classifier(0, sgd(0.05));
    let (record, cb) = recorder();
    let h = model
        .fit(
            &x,
            &y,
            FitOptions {
                epochs: 5,
                batch_size: 4,
                validation_split: 0.2,
                validation_freq: 2,
                callbacks: vec![cb],
                ..quiet()
            },
        )
        .unwrap();
    assert_eq!(h.get("loss").unwrap().len(), 5);
    assert_eq!(h.get("val_loss").unwrap().len(), 2);
    assert_eq!(h.get("val_sparse_categorical_accuracy").unwrap().len(), 2);
    let record = record.lock().unwrap();
    let validated: Vec<usize> = record
        .epochs
        .iter()
        .filter(|(_, logs)| logs.iter().any(|(k, _)| k == "val_loss"))
        .map(|(e, _)| *e)
        .collect();
    // Keras: validation after epochs 2 and 4 (1-based).
    assert_eq!(validated, [1, 3]);
    let at: Vec<f32> = [1, 3]
        .iter()
        .map(|&e| {
            record.epochs[e]
                .1
                .iter()
                .find(|(k, _)| k == "val_loss")
                .unwrap()
                .1
        })
        .collect();
    assert_eq!(h.get("val_loss").unwrap(), at.as_slice());
}

#[test]
fn validation_data_overrides_validation_split() {
    let (x, y) = random_data(9, 6);
    let (vx, vy) = random_data(5, 7);
    let mut model = compiled_classifier(4, sgd(0.0));
    let expected = model.evaluate(&vx, &vy, 32, 0).unwrap();
    let (record, cb) = recorder();
    let h = model
        .fit(
            &x,
            &y,
            FitOptions {
                batch_size: 1,
                validation_split: 0.5,
                validation_data: Some((vx.clone(), vy.clone())),
                callbacks: vec![cb],
                ..quiet()
            },
        )
        .unwrap();
    // All 9 samples are trained on, and validation is on the given data.
    assert_eq!(record.lock().unwrap().batches.len(), 9);
    assert!(close(h.get("val_loss").unwrap()[0], expected[0], 1e-6));
    assert_eq!(
        h.get("val_sparse_categorical_accuracy").unwrap()[0],
        expected[1]
    );
    // Validation data that do not fit the model are an error.
    let err = model
        .fit(
            &x,
            &y,
            FitOptions {
                validation_data: Some((Tensor::zeros(&[3, 5]), Tensor::zeros(&[3]))),
                ..quiet()
            },
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("(None, 5)"), "{err}");
    let err = model
        .fit(
            &x,
            &y,
            FitOptions {
                validation_data: Some((Tensor::zeros(&[3, 4]), Tensor::zeros(&[2]))),
                ..quiet()
            },
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("validation_data"), "{err}");
    // No validation samples at all: an error, not a val_loss of 0.
    let err = model
        .fit(
            &x,
            &y,
            FitOptions {
                validation_data: Some((Tensor::zeros(&[0, 4]), Tensor::zeros(&[0]))),
                ..quiet()
            },
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("no samples"), "{err}");
}

#[test]
fn zero_epochs_train_nothing() {
    let (x, y) = random_data(6, 1);
    let mut model = compiled_classifier(0, sgd(0.5));
    let before = bits(&model.get_weights());
    let (record, cb) = recorder();
    let h = model
        .fit(
            &x,
            &y,
            FitOptions {
                epochs: 0,
                validation_split: 0.5,
                callbacks: vec![cb],
                ..quiet()
            },
        )
        .unwrap();
    assert_eq!(h, History::default());
    assert!(h.keys().is_empty() && h.epoch.is_empty());
    assert_eq!(bits(&model.get_weights()), before);
    assert!(record.lock().unwrap().batches.is_empty());
}

#[test]
fn batch_size_larger_than_the_data_is_one_batch() {
    let (x, y) = random_data(7, 8);
    let mut model = compiled_classifier(0, sgd(0.0));
    let expected = model.evaluate(&x, &y, 1000, 0).unwrap();
    let (record, cb) = recorder();
    let h = model
        .fit(
            &x,
            &y,
            FitOptions {
                epochs: 2,
                batch_size: 1000,
                callbacks: vec![cb],
                ..quiet()
            },
        )
        .unwrap();
    let batches: Vec<(usize, usize)> = record
        .lock()
        .unwrap()
        .batches
        .iter()
        .map(|b| (b.0, b.1))
        .collect();
    assert_eq!(batches, [(0, 0), (1, 0)]);
    assert!(close(h.get("loss").unwrap()[0], expected[0], 1e-6));
    // batch_size 0 is an error (as in Keras), not a silent change to 1.
    let (record, cb) = recorder();
    let err = model
        .fit(
            &x,
            &y,
            FitOptions {
                batch_size: 0,
                callbacks: vec![cb],
                ..quiet()
            },
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("batch_size must be at least 1"),
        "{err}"
    );
    assert!(record.lock().unwrap().batches.is_empty());
    assert!(model.predict(&x, 0).is_err());
    assert!(model.evaluate(&x, &y, 0, 0).is_err());
}

/// Per-sample sparse categorical cross-entropies of `model` on `x`, `y`,
/// computed from `predict` with `hebb_layers::losses`.
fn per_sample_losses(model: &mut Sequential, x: &Tensor, y: &Tensor) -> Vec<f32> {
    let p = model.predict(x, 32).unwrap();
    let tape = GradientTape::new();
    losses::sparse_categorical_crossentropy(tape.constant(y.clone()), tape.constant(p))
        .unwrap()
        .value()
        .to_vec()
}

/// The order in which `fit` visits the samples in each epoch, read from the
/// batch losses of a batch-size-1 run with learning rate 0 (each sample
/// has its own loss).
fn visit_order(shuffle: bool, seed: u64, epochs: usize) -> Vec<Vec<usize>> {
    let (x, y) = random_data(12, 9);
    let mut model = compiled_classifier(3, sgd(0.0));
    let per_sample = per_sample_losses(&mut model, &x, &y);
    let (record, cb) = recorder();
    model
        .fit(
            &x,
            &y,
            FitOptions {
                epochs,
                batch_size: 1,
                shuffle,
                seed,
                callbacks: vec![cb],
                ..quiet()
            },
        )
        .unwrap();
    let record = record.lock().unwrap();
    (0..epochs)
        .map(|e| {
            record
                .batches
                .iter()
                .filter(|b| b.0 == e)
                .map(|&(_, _, loss)| {
                    let hits: Vec<usize> = (0..12)
                        .filter(|&i| close(per_sample[i], loss, 1e-6))
                        .collect();
                    assert_eq!(hits.len(), 1, "loss {loss} in {per_sample:?}");
                    hits[0]
                })
                .collect()
        })
        .collect()
}

#[test]
fn shuffle_false_visits_samples_in_order() {
    let order = visit_order(false, 0, 2);
    let identity: Vec<usize> = (0..12).collect();
    assert_eq!(order, [identity.clone(), identity]);
}

#[test]
fn shuffle_true_visits_a_seeded_permutation_per_epoch() {
    let order = visit_order(true, 0, 3);
    let identity: Vec<usize> = (0..12).collect();
    for epoch in &order {
        let mut sorted = epoch.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, identity, "each sample once per epoch");
    }
    assert_ne!(order[0], identity);
    assert_ne!(order[0], order[1], "a fresh order each epoch");
    assert_ne!(order[1], order[2]);
    // The same seed gives the same orders; another seed others.
    assert_eq!(visit_order(true, 0, 3), order);
    assert_ne!(visit_order(true, 1, 3), order);
}

fn fit_run(model_seed: u64, fit_seed: u64) -> (History, Vec<Vec<u32>>) {
    let (x, y) = random_data(30, 10);
    let mut model = classifier(model_seed);
    model
        .compile(
            "adam",
            "sparse_categorical_crossentropy",
            vec!["sparse_categorical_accuracy"],
        )
        .unwrap();
    let h = model
        .fit(
            &x,
            &y,
            FitOptions {
                epochs: 4,
                batch_size: 4,
                seed: fit_seed,
                validation_split: 0.2,
                ..quiet()
            },
        )
        .unwrap();
    (h, bits(&model.get_weights()))
}

#[test]
fn fit_is_deterministic_given_the_seeds() {
    let (h1, w1) = fit_run(7, 11);
    let (h2, w2) = fit_run(7, 11);
    let history_bits = |h: &History| -> Vec<(String, Vec<u32>)> {
        h.history
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().map(|x| x.to_bits()).collect()))
            .collect()
    };
    assert_eq!(history_bits(&h1), history_bits(&h2));
    assert_eq!(w1, w2);
    // Another shuffling seed, same initial weights: other final weights.
    let (_, w3) = fit_run(7, 12);
    assert_ne!(w1, w3);
    // Another model seed: other initial weights.
    assert_ne!(
        bits(&classifier(7).get_weights()),
        bits(&classifier(8).get_weights())
    );
    assert_eq!(
        bits(&classifier(7).get_weights()),
        bits(&classifier(7).get_weights())
    );
}

#[test]
fn epoch_loss_is_the_sample_weighted_mean_of_batch_losses() {
    // 10 samples in batches of 4: 4 + 4 + 2. With learning rate 0 the epoch
    // loss must equal the mean over the 10 samples, i.e. evaluate()'s loss,
    // not the plain mean of the three batch losses.
    let (x, y) = random_data(10, 12);
    let mut model = compiled_classifier(6, sgd(0.0));
    let expected = model.evaluate(&x, &y, 32, 0).unwrap();
    let per_sample = per_sample_losses(&mut model, &x, &y);
    let mean = per_sample.iter().map(|&l| f64::from(l)).sum::<f64>() / 10.0;
    assert!(
        close(expected[0], mean as f32, 1e-6),
        "{expected:?} vs {mean}"
    );
    let (record, cb) = recorder();
    let h = model
        .fit(
            &x,
            &y,
            FitOptions {
                batch_size: 4,
                shuffle: false,
                callbacks: vec![cb],
                ..quiet()
            },
        )
        .unwrap();
    let loss = h.get("loss").unwrap()[0];
    assert!(close(loss, expected[0], 1e-6), "{loss} vs {expected:?}");
    assert_eq!(
        h.get("sparse_categorical_accuracy").unwrap()[0],
        expected[1]
    );
    let record = record.lock().unwrap();
    let batch: Vec<f32> = record.batches.iter().map(|b| b.2).collect();
    assert_eq!(batch.len(), 3);
    // Each batch loss is the mean over its samples.
    for (b, range) in [0..4, 4..8, 8..10].into_iter().enumerate() {
        let len = range.len() as f32;
        let want: f32 = per_sample[range].iter().sum::<f32>() / len;
        assert!(
            close(batch[b], want, 1e-6),
            "batch {b}: {} vs {want}",
            batch[b]
        );
    }
    let weighted = (4.0 * batch[0] + 4.0 * batch[1] + 2.0 * batch[2]) / 10.0;
    let plain = (batch[0] + batch[1] + batch[2]) / 3.0;
    assert!(close(loss, weighted, 1e-6));
    assert!(
        !close(loss, plain, 1e-4),
        "the data must tell the two apart"
    );
}

/// A linear unit `y = w x + b` with zero initial weights.
fn linear_unit() -> Sequential {
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

#[test]
fn nan_in_the_data_is_an_error_naming_epoch_and_batch() {
    // Row 5 holds a NaN; without shuffling it is in batch 2 (rows 4, 5) of epoch 1.
    let mut x: Vec<f32> = (0..8).map(|i| i as f32 / 8.0).collect();
    x[5] = f32::NAN;
    let x = Tensor::from_vec(x, &[8, 1]).unwrap();
    let y = Tensor::zeros(&[8, 1]);
    let mut model = linear_unit();
    model.compile("sgd", "mse", Vec::<&str>::new()).unwrap();
    let err = model
        .fit(
            &x,
            &y,
            FitOptions {
                batch_size: 2,
                shuffle: false,
                ..quiet()
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::NonFiniteBatchLoss { epoch: 0, batch: 2, loss } if loss.is_nan()),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("epoch 1 batch 2"), "{msg}");
    assert!(msg.contains("NaN"), "{msg}");
    // The batches before were applied, the NaN batch was not.
    assert!(
        model
            .get_weights()
            .iter()
            .all(|w| w.to_vec().iter().all(|v| v.is_finite()))
    );

    // Every row NaN: epoch 1 batch 0.
    let mut model = compiled_classifier(0, sgd(0.1));
    let x = Tensor::full(&[4, 4], f32::NAN);
    let y = Tensor::zeros(&[4]);
    let err = model.fit(&x, &y, quiet()).unwrap_err();
    assert!(err.to_string().contains("epoch 1 batch 0"), "{err}");
}

/// `y = w x + b` on `x = 10`, `y = 0` with SGD(1): each full-batch step
/// multiplies the error by about -200, so the loss overflows after a few
/// epochs.
fn diverging_fit(callbacks: Vec<Box<dyn Callback>>) -> hebb_models::Result<History> {
    let mut model = Sequential::new();
    model
        .add(
            Dense::new(1)
                .input_shape(&[1])
                .kernel_initializer(Initializer::Constant { value: 0.1 }),
        )
        .unwrap();
    model.compile(sgd(1.0), "mse", Vec::<&str>::new()).unwrap();
    let x = Tensor::full(&[4, 1], 10.0);
    let y = Tensor::zeros(&[4, 1]);
    model.fit(
        &x,
        &y,
        FitOptions {
            epochs: 100,
            batch_size: 4,
            callbacks,
            ..quiet()
        },
    )
}

#[test]
fn divergence_is_an_error_naming_the_epoch() {
    let (record, cb) = recorder();
    let err = diverging_fit(vec![cb]).unwrap_err();
    let Error::NonFiniteBatchLoss { epoch, batch, loss } = err else {
        panic!("{err:?}");
    };
    assert!(!loss.is_finite());
    assert_eq!(batch, 0);
    // Several epochs ran first, with growing finite losses.
    let record = record.lock().unwrap();
    assert!(epoch >= 3, "{epoch}");
    assert_eq!(record.epochs.len(), epoch);
    let losses: Vec<f32> = record.epochs.iter().map(|(_, l)| l[0].1).collect();
    assert!(losses.windows(2).all(|w| w[1] > w[0]), "{losses:?}");
    assert!(
        err.to_string()
            .contains(&format!("epoch {} batch 0", epoch + 1)),
        "{err}"
    );
}

#[test]
fn terminate_on_nan_returns_the_epochs_completed_before() {
    use hebb_models::sequential::callbacks::TerminateOnNaN;

    /// Shares a TerminateOnNaN with the test.
    struct Shared(Arc<Mutex<TerminateOnNaN>>);
    impl Callback for Shared {
        fn on_batch_end(
            &mut self,
            epoch: usize,
            batch: usize,
            loss: f32,
        ) -> hebb_models::Result<Control> {
            self.0.lock().unwrap().on_batch_end(epoch, batch, loss)
        }
    }

    let Err(Error::NonFiniteBatchLoss {
        epoch: nan_epoch, ..
    }) = diverging_fit(Vec::new())
    else {
        panic!("the run must diverge");
    };
    let terminate = Arc::new(Mutex::new(TerminateOnNaN::default()));
    let h = diverging_fit(vec![Box::new(Shared(terminate.clone()))]).unwrap();
    assert_eq!(terminate.lock().unwrap().stopped_at, Some((nan_epoch, 0)));
    assert_eq!(h.epoch, (0..nan_epoch).collect::<Vec<_>>());
    assert_eq!(h.get("loss").unwrap().len(), nan_epoch);
    assert!(h.get("loss").unwrap().iter().all(|l| l.is_finite()));

    // TerminateOnNaN itself, batch by batch.
    let mut t = TerminateOnNaN::default();
    assert_eq!(t.on_batch_end(0, 0, 1.0).unwrap(), Control::Continue);
    assert_eq!(t.stopped_at, None);
    assert_eq!(t.on_batch_end(2, 3, f32::INFINITY).unwrap(), Control::Stop);
    assert_eq!(t.stopped_at, Some((2, 3)));
}

fn mnist_model(seed: u64) -> Sequential {
    let mut model = Sequential::new().with_seed(seed);
    model.add(Flatten::new().input_shape(&[28, 28])).unwrap();
    model
        .add(Dense::new(128).activation(Activation::Relu))
        .unwrap();
    model
        .add(Dense::new(10).activation(Activation::Softmax))
        .unwrap();
    model
        .compile(
            "adam",
            "sparse_categorical_crossentropy",
            vec!["sparse_categorical_accuracy"],
        )
        .unwrap();
    model
}

fn random_images(n: usize, seed: u64) -> (Tensor, Tensor) {
    let mut rng = chacha(seed);
    let x: Vec<f32> = (0..n * 784).map(|_| rng.random::<f32>()).collect();
    let y: Vec<f32> = (0..n).map(|_| rng.random_range(0..10) as f32).collect();
    (
        Tensor::from_vec(x, &[n, 28, 28]).unwrap(),
        Tensor::from_vec(y, &[n]).unwrap(),
    )
}

#[test]
fn predict_gives_probabilities_independent_of_batch_size() {
    let (x, _) = random_images(40, 1);
    let mut model = mnist_model(0);
    let p = model.predict(&x, 32).unwrap();
    assert_eq!(p.shape(), &[40, 10]);
    for row in p.to_vec().chunks(10) {
        let s: f32 = row.iter().sum();
        assert!((s - 1.0).abs() < 1e-5, "{s}");
        assert!(row.iter().all(|&v| v > 0.0 && v < 1.0));
    }
    let one = model.predict(&x, 1).unwrap();
    let all = model.predict(&x, 1000).unwrap();
    assert_eq!(one.shape(), all.shape());
    let (a, b) = (one.to_vec(), all.to_vec());
    for (i, (u, v)) in a.iter().zip(&b).enumerate() {
        assert!((u - v).abs() <= 1e-6, "element {i}: {u} vs {v}");
    }
    // No samples: an empty [0, 10].
    let empty = model.predict(&Tensor::zeros(&[0, 28, 28]), 32).unwrap();
    assert_eq!(empty.shape(), &[0, 10]);
}

#[test]
fn evaluate_is_the_mean_of_per_sample_losses() {
    let (x, y) = random_images(50, 2);
    let mut model = mnist_model(1);
    let p = model.predict(&x, 32).unwrap();
    let per_sample = per_sample_losses(&mut model, &x, &y);
    let mean = per_sample.iter().map(|&l| f64::from(l)).sum::<f64>() / 50.0;
    let labels = y.to_vec();
    let correct = p
        .to_vec()
        .chunks(10)
        .zip(&labels)
        .filter(|(row, label)| {
            let argmax = (0..10)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
                .unwrap();
            argmax as f32 == **label
        })
        .count();
    for batch_size in [1, 7, 32, 1000] {
        let values = model.evaluate(&x, &y, batch_size, 0).unwrap();
        assert_eq!(values.len(), 2);
        assert!(close(values[0], mean as f32, 1e-6), "{values:?} vs {mean}");
        assert_eq!(values[1], correct as f32 / 50.0);
    }
    // Untrained on 10 classes: about ln 10.
    assert!((mean - 10f64.ln()).abs() < 0.5, "{mean}");
}

#[test]
fn mnist_model_trains_on_a_few_random_samples() {
    // A smoke run of the lecture's 13.5 model: 200 random images, 2 epochs.
    let (x, y) = random_images(200, 3);
    let mut model = mnist_model(2);
    let h = model
        .fit(
            &x,
            &y,
            FitOptions {
                epochs: 3,
                batch_size: 32,
                validation_split: 0.1,
                ..quiet()
            },
        )
        .unwrap();
    let loss = h.get("loss").unwrap();
    assert_eq!(loss.len(), 3);
    // Random labels can be memorised: the training loss falls.
    assert!(loss[2] < loss[0], "{loss:?}");
    assert_eq!(h.get("val_loss").unwrap().len(), 3);
}

/// Three Gaussian blobs in 4-D, 50 samples each, centres 2 apart on
/// different axes, unit variance scaled by 0.5.
fn blobs(seed: u64) -> (Tensor, Tensor) {
    let mut rng = chacha(seed);
    let centres = [
        [2.0, 0.0, 0.0, 0.0],
        [0.0, 2.0, 0.0, 0.0],
        [0.0, 0.0, 2.0, 0.0],
    ];
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..150 {
        let class = i % 3;
        for c in centres[class] {
            // Box-Muller.
            let u1: f32 = rng.random::<f32>().max(1e-7);
            let u2: f32 = rng.random();
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos();
            x.push(c + 0.5 * z);
        }
        y.push(class as f32);
    }
    (
        Tensor::from_vec(x, &[150, 4]).unwrap(),
        Tensor::from_vec(y, &[150]).unwrap(),
    )
}

#[test]
fn training_learns_separable_blobs() {
    let (x, y) = blobs(42);
    let mut model = Sequential::new().with_seed(1);
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
        .compile("adam", "sparse_categorical_crossentropy", vec!["accuracy"])
        .unwrap();
    let before = model.evaluate(&x, &y, 32, 0).unwrap();
    let h = model
        .fit(
            &x,
            &y,
            FitOptions {
                epochs: 50,
                batch_size: 16,
                ..quiet()
            },
        )
        .unwrap();
    let after = model.evaluate(&x, &y, 32, 0).unwrap();
    assert!(after[1] > 0.95, "accuracy {after:?} (before {before:?})");
    assert!(after[0] < before[0] / 2.0, "{after:?} vs {before:?}");
    let loss = h.get("loss").unwrap();
    assert!(loss[49] < loss[0], "{loss:?}");
    assert!(h.get("accuracy").unwrap()[49] > 0.9);
    // Held-out blobs from another seed are classified as well.
    let (tx, ty) = blobs(43);
    let test = model.evaluate(&tx, &ty, 32, 0).unwrap();
    assert!(test[1] > 0.9, "{test:?}");
}
