//! # hebb-benches
//!
//! hebb's criterion benchmarks, run from the workspace root with
//! `cargo bench` (or one of them: `cargo bench --bench gradient_descent`,
//! `cargo bench --bench kernels`; or a filter: `cargo bench -- epoch/iris`):
//!
//! - `gradient_descent`: batch, stochastic and mini-batch gradient descent
//!   (lecture 13.1) compared: the time of one epoch on Iris (the 4-8-4-3
//!   `Sequential` of 13.4), on the Iris petal regression (the tape, as the
//!   lecture's low-level API) and on an MNIST subset (the 784-128-10
//!   `Sequential` of 13.5); and the time to reach a fixed loss on the
//!   regression.
//! - `kernels`: the GEMM kernel at the MNIST network's shapes, one MNIST
//!   training step (a batch of 64 through `Sequential::fit`), and one
//!   training step of Keras' "Simple MNIST convnet" (a batch of 128).
//!
//! After each comparison the benchmark prints every variant's time and its
//! ratio to the fastest, from the times it measured in that run
//! ([`Timings`]), and names a fastest variant only when its lead is larger
//! than the machine's run-to-run noise ([`comparison`]). Data sets come
//! from [`data_dir`]; a group whose data is missing is skipped with a
//! message.
//!
//! This library holds what the benchmarks share: the data, the workloads,
//! and the record of times.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hebb_data::{DataDir, MiniBatches, load_iris};
use hebb_layers::{Activation, Conv2D, Dropout, MaxPooling2D};
use hebb_models::regression::{LinearRegression, RegressionData};
use hebb_models::sequential::layers::{Dense, Flatten};
use hebb_models::sequential::{FitOptions, Sequential};
use hebb_optim::{Optimizer, Sgd};
use hebb_tensor::Tensor;

/// Errors of the benchmark workloads (any of hebb's crates').
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The data directory, as `cargo xtask` and the tests find it
/// ([`DataDir::resolve`]): `$HEBB_DATA_DIR`, else `../shared/datasets` beside
/// the checkout when it holds data files, else `datasets/cache`,
/// downloading what is missing.
pub fn data_dir() -> DataDir {
    DataDir::resolve(None)
}

/// Iris' training split (120 rows), centred as in lecture 12: features
/// `[120, 4]` and labels `[120]` (class indices as `f32`); `None`, after
/// printing why, if the files cannot be had.
pub fn iris_training() -> Option<(Tensor, Tensor)> {
    let (train, _) = load_iris(&data_dir())
        .map_err(|e| println!("skipping the Iris benchmarks: {e}"))
        .ok()?;
    let train = train.centred();
    let labels: Vec<f32> = train.labels.iter().map(|&l| l as f32).collect();
    let x = train.features_tensor().ok()?;
    let y = Tensor::from_vec(labels, &[train.len()]).ok()?;
    Some((x, y))
}

/// The lecture 13.1 regression on all 150 Iris rows (petal length -> petal
/// width); `None`, after printing why, if the files cannot be had.
pub fn iris_petals() -> Option<RegressionData> {
    let (train, test) = load_iris(&data_dir())
        .map_err(|e| println!("skipping the regression benchmarks: {e}"))
        .ok()?;
    RegressionData::iris_petals(&[&train, &test])
        .map_err(|e| println!("skipping the regression benchmarks: {e}"))
        .ok()
}

/// The first `n` MNIST training images `[n, 28, 28]` (pixels / 255) and
/// labels `[n]`; `None`, after printing why, if the files cannot be had.
pub fn mnist_training(n: usize) -> Option<(Tensor, Tensor)> {
    let data = hebb_data::mnist::load_data(&data_dir())
        .map_err(|e| {
            println!(
                "skipping the MNIST benchmarks (set HEBB_DATA_DIR to a directory with mnist/): {e}"
            )
        })
        .ok()?;
    let x = data.x_train.to_f32_divided(255.0).ok()?;
    let y = data.y_train.to_f32_scaled(1.0).ok()?;
    let rows: Vec<usize> = (0..n.min(x.shape()[0])).collect();
    Some((x.gather_rows(&rows).ok()?, y.gather_rows(&rows).ok()?))
}

/// The first `n` MNIST training images as the convnet takes them,
/// `[n, 28, 28, 1]` (pixels / 255), and labels `[n]`; `None`, after
/// printing why, if the files cannot be had.
pub fn mnist_images(n: usize) -> Option<(Tensor, Tensor)> {
    let (x, y) = mnist_training(n)?;
    let shape = x.shape().to_vec();
    let x = x.reshape(&[shape[0], shape[1], shape[2], 1]).ok()?;
    Some((x, y))
}

/// Keras' "Simple MNIST convnet" (keras-io `examples/vision/mnist_convnet.py`):
/// Conv2D(32, 3x3, relu) - MaxPooling2D(2x2) - Conv2D(64, 3x3, relu) -
/// MaxPooling2D(2x2) - Flatten - Dropout(0.5) - Dense(10, softmax) on
/// `(28, 28, 1)` images, compiled as the example with adam and accuracy
/// (sparse categorical cross-entropy on integer labels). The same network
/// as `cargo xtask reproduce convnet`.
///
/// # Errors
/// Building or compiling the model.
pub fn convnet_model(seed: u64) -> Result<Sequential, BoxError> {
    let mut model = Sequential::new().with_seed(seed);
    model.add(
        Conv2D::new(32, [3, 3])
            .activation(Activation::Relu)
            .input_shape(&[28, 28, 1]),
    )?;
    model.add(MaxPooling2D::new([2, 2]))?;
    model.add(Conv2D::new(64, [3, 3]).activation(Activation::Relu))?;
    model.add(MaxPooling2D::new([2, 2]))?;
    model.add(Flatten::new())?;
    model.add(Dropout::new(0.5))?;
    model.add(Dense::new(10).activation(Activation::Softmax))?;
    model.compile("adam", "sparse_categorical_crossentropy", vec!["accuracy"])?;
    Ok(model)
}

/// The 4-8-4-3 Iris network of lecture 13.4 (ReLU, ReLU, softmax), compiled
/// with `SGD(learning_rate=0.1)` and sparse categorical cross-entropy.
///
/// # Errors
/// Building or compiling the model.
pub fn iris_model(seed: u64) -> Result<Sequential, BoxError> {
    let mut model = Sequential::new().with_seed(seed);
    model.add(Dense::new(8).activation(Activation::Relu).input_shape(&[4]))?;
    model.add(Dense::new(4).activation(Activation::Relu))?;
    model.add(Dense::new(3).activation(Activation::Softmax))?;
    compile_sgd(&mut model, 0.1)?;
    Ok(model)
}

/// The MNIST network of lecture 13.5, Flatten(28, 28) - Dense(128, relu) -
/// Dense(10, softmax), compiled with `SGD(learning_rate=0.1)` (the loss a
/// batch mean, so one rate serves every batch size).
///
/// # Errors
/// Building or compiling the model.
pub fn mnist_model(seed: u64) -> Result<Sequential, BoxError> {
    let mut model = Sequential::new().with_seed(seed);
    model.add(Flatten::new().input_shape(&[28, 28]))?;
    model.add(Dense::new(128).activation(Activation::Relu))?;
    model.add(Dense::new(10).activation(Activation::Softmax))?;
    compile_sgd(&mut model, 0.1)?;
    Ok(model)
}

fn compile_sgd(model: &mut Sequential, lr: f32) -> Result<(), BoxError> {
    let sgd: Box<dyn Optimizer> = Box::new(Sgd::new(lr));
    model.compile(
        sgd,
        "sparse_categorical_crossentropy",
        vec!["sparse_categorical_accuracy"],
    )?;
    Ok(())
}

/// One epoch of `model.fit` with batch size `batch_size` (the whole set for
/// BGD), shuffled from seed 0 for epoch `epoch`, silent.
///
/// # Errors
/// Those of `Sequential::fit`.
pub fn fit_epoch(
    model: &mut Sequential,
    x: &Tensor,
    y: &Tensor,
    batch_size: usize,
    epoch: usize,
) -> Result<(), BoxError> {
    model.fit(
        x,
        y,
        FitOptions {
            batch_size,
            epochs: epoch + 1,
            initial_epoch: epoch,
            verbose: 0,
            ..Default::default()
        },
    )?;
    Ok(())
}

/// `η₀ = 1 / max(x_i² + 1)` of the regression: half SGD's stability limit on
/// the summed loss; a batch of `t` samples uses `η₀ / t` (the same step per
/// sample's gradient for every batch size; see `cargo xtask reproduce ex13`).
pub fn regression_eta0(data: &RegressionData) -> f64 {
    let max = data
        .x()
        .as_slice()
        .iter()
        .map(|&x| f64::from(x * x) + 1.0)
        .fold(1.0, f64::max);
    1.0 / max
}

/// Trains the regression from `w = b = 0` with batches of `t` (shuffled from
/// `seed`) and `Sgd(η₀ / t)` until the loss over all rows, checked after each
/// epoch, is at most `target`, or `max_epochs` have run. Returns the time
/// taken and the epochs needed (`None` if the target was not reached).
///
/// # Errors
/// A batch size of 0; training errors.
pub fn regression_to_target(
    data: &RegressionData,
    t: usize,
    seed: u64,
    target: f64,
    max_epochs: usize,
) -> Result<(Duration, Option<usize>), BoxError> {
    let mut sgd = Sgd::new((regression_eta0(data) / t as f64) as f32);
    let mut batches = MiniBatches::new(data.len(), t)?.with_shuffle(seed);
    let mut model = LinearRegression::new(0.0, 0.0);
    let start = Instant::now();
    for epoch in 0..max_epochs {
        for rows in batches.epoch(epoch as u64) {
            model.step(data, rows, &mut sgd)?;
        }
        if data.loss(model.w(), model.b()) <= target {
            return Ok((start.elapsed(), Some(epoch + 1)));
        }
    }
    Ok((start.elapsed(), None))
}

/// The times measured in this run, by group and variant, so that a
/// benchmark can name the fastest variant of a group. Criterion's own
/// report gives the statistics; this keeps the mean time per iteration
/// over every call (warm-up included) of each variant.
#[derive(Debug, Default)]
pub struct Timings {
    times: Mutex<BTreeMap<(String, String), (Duration, u64)>>,
}

impl Timings {
    /// An empty record.
    pub const fn new() -> Self {
        Self {
            times: Mutex::new(BTreeMap::new()),
        }
    }

    /// Adds `iters` iterations that took `elapsed` in all to `variant` of `group`.
    pub fn record(&self, group: &str, variant: &str, elapsed: Duration, iters: u64) {
        let mut times = self.times.lock().unwrap_or_else(|e| e.into_inner());
        let entry = times
            .entry((group.to_string(), variant.to_string()))
            .or_default();
        entry.0 += elapsed;
        entry.1 += iters;
    }

    /// The mean time per iteration of each variant of `group`, fastest first.
    pub fn ranking(&self, group: &str) -> Vec<(String, Duration)> {
        let times = self.times.lock().unwrap_or_else(|e| e.into_inner());
        let mut ranking: Vec<(String, Duration)> = times
            .iter()
            .filter(|((g, _), (_, iters))| g == group && *iters > 0)
            .map(|((_, v), (total, iters))| {
                let per = total.as_secs_f64() / *iters as f64;
                (v.clone(), Duration::from_secs_f64(per))
            })
            .collect();
        ranking.sort_by_key(|a| a.1);
        ranking
    }

    /// Prints the variants of `group` with their mean times and their
    /// ratios to the fastest, from this run, and names a fastest variant
    /// only where it leads the next by more than [`NOISE`] (see
    /// [`comparison`]); nothing if fewer than two variants ran.
    pub fn print_comparison(&self, group: &str, what: &str) {
        if let Some(line) = comparison(&self.ranking(group), NOISE) {
            println!("\n>>> {what}: {line}\n");
        }
    }
}

/// How much the same benchmark's time moves from run to run on the shared
/// 2-core development machine (the README's figures swing by up to a
/// third): a lead smaller than this factor is not a verdict.
pub const NOISE: f64 = 1.35;

/// One line comparing a ranking (fastest first, as [`Timings::ranking`]):
/// each variant's time and its ratio to the fastest, then either
/// `fastest: V` when V is more than `noise` times faster than the next, or
/// `no clear fastest: A, B within N%` naming the variants within `noise` of
/// the fastest. `None` for fewer than two variants.
pub fn comparison(ranking: &[(String, Duration)], noise: f64) -> Option<String> {
    let [(_, best), second, ..] = ranking else {
        return None;
    };
    let ratio = |t: &Duration| t.as_secs_f64() / best.as_secs_f64();
    let times: Vec<String> = ranking
        .iter()
        .map(|(v, t)| format!("{v} {} ({:.2}x)", human(*t), ratio(t)))
        .collect();
    let verdict = if ratio(&second.1) > noise {
        format!("fastest: {}", ranking[0].0)
    } else {
        let close: Vec<&str> = ranking
            .iter()
            .take_while(|(_, t)| ratio(t) <= noise)
            .map(|(v, _)| v.as_str())
            .collect();
        format!(
            "no clear fastest: {} within {:.0}% (run-to-run noise)",
            close.join(", "),
            (noise - 1.0) * 100.0
        )
    };
    Some(format!("{}; {verdict}", times.join(", ")))
}

/// A duration in ns, µs, ms or s with 3 significant digits.
pub fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    let (v, unit) = if s < 1e-6 {
        (s * 1e9, "ns")
    } else if s < 1e-3 {
        (s * 1e6, "µs")
    } else if s < 1.0 {
        (s * 1e3, "ms")
    } else {
        (s, "s")
    };
    let decimals = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.decimals$} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_rank_by_mean_time_per_iteration() {
        let t = Timings::new();
        t.record("g", "slow", Duration::from_millis(30), 10);
        t.record("g", "fast", Duration::from_millis(5), 10);
        t.record("g", "fast", Duration::from_millis(5), 10);
        t.record("other", "x", Duration::from_millis(1), 1);
        let r = t.ranking("g");
        assert_eq!(r[0], ("fast".to_string(), Duration::from_micros(500)));
        assert_eq!(r[1], ("slow".to_string(), Duration::from_millis(3)));
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn comparison_names_a_fastest_only_beyond_the_noise() {
        let ms = |v: &str, t: u64| (v.to_string(), Duration::from_millis(t));
        assert_eq!(comparison(&[ms("a", 1)], NOISE), None);
        assert_eq!(
            comparison(&[ms("a", 10), ms("b", 20)], 1.35).unwrap(),
            "a 10.0 ms (1.00x), b 20.0 ms (2.00x); fastest: a"
        );
        assert_eq!(
            comparison(&[ms("a", 10), ms("b", 12), ms("c", 13), ms("d", 50)], 1.35).unwrap(),
            "a 10.0 ms (1.00x), b 12.0 ms (1.20x), c 13.0 ms (1.30x), d 50.0 ms (5.00x); \
             no clear fastest: a, b, c within 35% (run-to-run noise)"
        );
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_nanos(250)), "250 ns");
        assert_eq!(human(Duration::from_micros(12)), "12.0 µs");
        assert_eq!(human(Duration::from_millis(3)), "3.00 ms");
        assert_eq!(human(Duration::from_secs(2)), "2.00 s");
    }

    #[test]
    fn regression_reaches_a_loose_target() {
        let data = RegressionData::new(vec![1.0, 2.0, 3.0, 4.0], vec![1.1, 1.9, 3.2, 3.9]).unwrap();
        let target = data.least_squares().unwrap().loss * 1.5 + 1e-3;
        let (_, epochs) = regression_to_target(&data, 2, 0, target, 10_000).unwrap();
        assert!(epochs.is_some_and(|e| e > 1), "{epochs:?}");
        let (_, never) = regression_to_target(&data, 2, 0, -1.0, 3).unwrap();
        assert_eq!(never, None);
    }
}
