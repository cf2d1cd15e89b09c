//! `cargo xtask bench mnist`: times the lecture's 13.5 fit; `cargo xtask
//! bench convnet`: times one epoch of Keras' "Simple MNIST convnet".

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use hebb_data::DataDir;
use hebb_models::sequential::{Collective, FitOptions, Sequential};
use hebb_tensor::Tensor;

use crate::ch13::mnist_model;
use crate::convnet::{self, convnet_model, with_channel_axis};

/// Options of `cargo xtask bench`.
#[derive(Args, Debug, Clone)]
pub(crate) struct BenchArgs {
    /// What to time: `mnist` (the 13.5 fit: 5 epochs, batch 64, validation_split 0.2) or
    /// `convnet` (one epoch of Keras' "Simple MNIST convnet": batch 128, validation_split 0.1).
    pub(crate) job: String,
    /// Epochs per fit [default: 5 for mnist, 1 for convnet].
    #[arg(long, value_parser = crate::at_least_one)]
    epochs: Option<usize>,
    /// Batch size [default: 64 for mnist, 128 for convnet].
    #[arg(long, value_parser = crate::at_least_one)]
    batch_size: Option<usize>,
    /// Number of timed fits, the median reported [default: 3 for mnist, 1 for convnet].
    #[arg(long, value_parser = crate::at_least_one)]
    repeats: Option<usize>,
    #[arg(long, help = crate::DATA_DIR_HELP)]
    data_dir: Option<PathBuf>,
    /// Where to train: `cpu`, `cuda` or `cuda:N`, or `auto` (the GPU if one is usable, else
    /// the CPU; a line says which). GPUs need `--features cuda`: `cargo xtask-cuda ...`.
    #[arg(long, default_value = "cpu")]
    pub(crate) device: String,
}

/// A training job to time.
struct Job {
    /// The first line printed: the network and the recipe.
    recipe: &'static str,
    /// The model, compiled, from a seed.
    model: fn(u64) -> Result<Sequential>,
    /// Training inputs and labels.
    x: Tensor,
    y: Tensor,
    validation_split: f64,
    epochs: usize,
    batch_size: usize,
    repeats: usize,
    /// Floating-point operations of one training sample (forward and
    /// backward) and of one validation sample (forward).
    flops: (f64, f64),
    /// The metric whose validation value is printed.
    val_metric: &'static str,
}

/// Floating-point operations of one training sample (forward and backward)
/// and of one validation sample (forward) of the 784-128-10 network.
fn mnist_flops_per_sample() -> (f64, f64) {
    let forward = 2.0 * (784.0 * 128.0 + 128.0 * 10.0);
    // dW1 = Xᵀ g1, dW2 = Hᵀ g2, dH = g2 W2ᵀ (no gradient for the input).
    let backward = 2.0 * (784.0 * 128.0 + 128.0 * 10.0 + 128.0 * 10.0);
    (forward + backward, forward)
}

/// The same for the convnet: the multiply-adds of its two convolutions
/// (26·26·32 outputs of 3·3·1 products, 11·11·64 of 3·3·32) and of its
/// Dense layer (1600·10); backward, the kernels' gradients and the
/// gradients of the second convolution's and the Dense layer's inputs
/// (none for the images). Pooling, ReLU and the update are not counted.
fn convnet_flops_per_sample() -> (f64, f64) {
    let conv1 = 2.0 * (26.0 * 26.0 * 32.0) * (3.0 * 3.0 * 1.0);
    let conv2 = 2.0 * (11.0 * 11.0 * 64.0) * (3.0 * 3.0 * 32.0);
    let dense = 2.0 * 1600.0 * 10.0;
    let forward = conv1 + conv2 + dense;
    let backward = conv1 + 2.0 * conv2 + 2.0 * dense;
    (forward + backward, forward)
}

fn job(args: &BenchArgs) -> Result<Job> {
    let data_dir = DataDir::resolve(args.data_dir.as_deref());
    let data = hebb_data::mnist::load_data(&data_dir)?;
    let x = data.x_train.to_f32_divided(255.0)?;
    let y = data.y_train.to_f32_scaled(1.0)?;
    Ok(match args.job.as_str() {
        "mnist" => Job {
            recipe: "MNIST 13.5 recipe: Flatten-Dense(128, relu)-Dense(10, softmax), adam",
            model: mnist_model,
            x,
            y,
            validation_split: 0.2,
            epochs: args.epochs.unwrap_or(5),
            batch_size: args.batch_size.unwrap_or(64),
            repeats: args.repeats.unwrap_or(3),
            flops: mnist_flops_per_sample(),
            val_metric: "val_sparse_categorical_accuracy",
        },
        "convnet" => Job {
            recipe: "Keras' Simple MNIST convnet: Conv2D(32, 3x3, relu)-MaxPooling2D(2x2)-\
                Conv2D(64, 3x3, relu)-MaxPooling2D(2x2)-Flatten-Dropout(0.5)-Dense(10, softmax), adam",
            model: convnet_model,
            x: with_channel_axis(&x)?,
            y,
            validation_split: convnet::VALIDATION_SPLIT,
            epochs: args.epochs.unwrap_or(1),
            batch_size: args.batch_size.unwrap_or(convnet::BATCH_SIZE),
            repeats: args.repeats.unwrap_or(1),
            flops: convnet_flops_per_sample(),
            val_metric: "val_accuracy",
        },
        other => bail!("unknown bench {other:?}; available: mnist, convnet"),
    })
}

pub(crate) fn run(args: &BenchArgs) -> Result<()> {
    if !["mnist", "convnet"].contains(&args.job.as_str()) {
        bail!("unknown bench {:?}; available: mnist, convnet", args.job);
    }
    let device = crate::parse_device(&args.device)?;
    let job = job(args)?;
    let (x, y) = (&job.x, &job.y);
    let n = x.shape()[0];
    // Keras' split: the first floor(n (1 - split)) rows train, the rest validate.
    let train = (n as f64 * (1.0 - job.validation_split)).floor();
    let val = n as f64 - train;
    let (train_flops, val_flops) = job.flops;
    let epochs = job.epochs as f64;
    let total_flops = epochs * (train * train_flops + val * val_flops);
    let threads = rayon::current_num_threads();
    let convnet = args.job == "convnet";
    if convnet {
        println!(
            "{}, batch {}, {} epoch(s), validation_split {} ({train} training and {val} validation \
             images); on {device}; {threads} threads (rayon; set RAYON_NUM_THREADS to change)",
            job.recipe, job.batch_size, job.epochs, job.validation_split,
        );
    } else {
        println!(
            "{}, batch {}, {} epochs, validation_split {}; on {device}; {threads} threads (rayon; set RAYON_NUM_THREADS to change)",
            job.recipe, job.batch_size, job.epochs, job.validation_split,
        );
    }
    let options = |epochs, validation_split| FitOptions {
        batch_size: job.batch_size,
        epochs,
        validation_split,
        verbose: 0,
        ..Default::default()
    };
    if device.is_cuda() {
        // Compiles the kernels and warms cuBLAS, outside the timed fits.
        let mut warm = (job.model)(0)?;
        warm.to_device(device)?;
        let rows: Vec<usize> = (0..256).collect();
        warm.fit(
            &x.gather_rows(&rows)?,
            &y.gather_rows(&rows)?,
            options(1, 0.25),
        )?;
    }
    let mut times = Vec::new();
    for run in 1..=job.repeats {
        let mut model = (job.model)(0)?;
        crate::data_parallel(&mut model, device)?;
        // Under mpirun: the collective calls timed, to say what they cost.
        let timed = model
            .group()
            .map(|g| Arc::new(TimedCollective::new(g.clone())));
        if let Some(t) = &timed {
            model.distribute(t.clone());
        }
        model.to_device(device)?;
        let start = Instant::now();
        let history = model.fit(x, y, options(job.epochs, job.validation_split))?;
        let secs = start.elapsed().as_secs_f64();
        if let Some(t) = &timed {
            let (calls, spent) = t.spent();
            println!(
                "run {run}: {} collective calls took {spent:.3} s ({:.0} us a call, {:.0}% of the fit)",
                calls,
                spent * 1e6 / calls.max(1) as f64,
                100.0 * spent / secs
            );
        }
        let acc = history
            .get(job.val_metric)
            .and_then(|v| v.last().copied())
            .unwrap_or(f32::NAN);
        let (what, count) = if convnet {
            ("images", epochs * train)
        } else {
            ("samples", epochs * n as f64)
        };
        println!(
            "run {run}: {secs:.3} s, {:.0} {what}/s, {:.1} GFLOP/s, val_accuracy {acc:.4}",
            count / secs,
            total_flops / secs / 1e9,
        );
        times.push(secs);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    if convnet {
        // The epoch's seconds first, then images/s.
        let of = if times.len() == 1 {
            "one fit".to_string()
        } else {
            format!("median of {} fits", times.len())
        };
        println!(
            "{:.2} s an epoch ({of}; the validation pass included), {:.0} images/s \
             ({train} training images an epoch), {:.1} GFLOP/s",
            median / epochs,
            epochs * train / median,
            total_flops / median / 1e9
        );
    } else {
        println!(
            "median of {}: {median:.3} s for the fit ({:.0} samples/s, {:.1} GFLOP/s)",
            times.len(),
            epochs * n as f64 / median,
            total_flops / median / 1e9
        );
    }
    Ok(())
}

/// A [`Collective`] that counts its calls and the time they take (the
/// all-reduce of each step, the reductions of the metrics), for `bench`
/// under mpirun.
#[derive(Debug)]
struct TimedCollective {
    inner: Arc<dyn Collective>,
    calls: AtomicU64,
    nanos: AtomicU64,
}

impl TimedCollective {
    fn new(inner: Arc<dyn Collective>) -> Self {
        Self {
            inner,
            calls: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
        }
    }

    /// Calls made and seconds spent in them.
    fn spent(&self) -> (u64, f64) {
        (
            self.calls.load(Ordering::Relaxed),
            self.nanos.load(Ordering::Relaxed) as f64 * 1e-9,
        )
    }

    fn timed<T>(&self, call: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let result = call();
        let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
        result
    }
}

impl Collective for TimedCollective {
    fn rank(&self) -> usize {
        self.inner.rank()
    }
    fn size(&self) -> usize {
        self.inner.size()
    }
    fn engine(&self) -> &str {
        self.inner.engine()
    }
    fn all_reduce_sum(&self, buffer: &mut [f32]) -> hebb_models::Result<()> {
        self.timed(|| self.inner.all_reduce_sum(buffer))
    }
    fn all_reduce_sum_f64(&self, buffer: &mut [f64]) -> hebb_models::Result<()> {
        self.timed(|| self.inner.all_reduce_sum_f64(buffer))
    }
    fn broadcast(&self, buffer: &mut [f32], root: usize) -> hebb_models::Result<()> {
        self.timed(|| self.inner.broadcast(buffer, root))
    }
    fn broadcast_bytes(&self, bytes: &mut Vec<u8>, root: usize) -> hebb_models::Result<()> {
        self.timed(|| self.inner.broadcast_bytes(bytes, root))
    }
}
