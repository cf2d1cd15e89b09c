//! `cargo xtask bench mnist`: times the lecture's 13.5 fit.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use hebb_data::DataDir;
use hebb_models::sequential::FitOptions;

use crate::ch13::mnist_model;

/// Options of `cargo xtask bench`.
#[derive(Args, Debug, Clone)]
pub(crate) struct BenchArgs {
    /// What to time: `mnist`.
    job: String,
    /// Epochs per fit.
    #[arg(long, default_value_t = 5, value_parser = crate::at_least_one)]
    epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 64, value_parser = crate::at_least_one)]
    batch_size: usize,
    /// Number of timed fits (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = crate::at_least_one)]
    repeats: usize,
    #[arg(long, help = crate::DATA_DIR_HELP)]
    data_dir: Option<PathBuf>,
    /// Where to train: `cpu`, `cuda` or `cuda:N`, or `auto` (the GPU if one is usable, else
    /// the CPU; a line says which). GPUs need `--features cuda`: `cargo xtask-cuda ...`.
    #[arg(long, default_value = "cpu")]
    pub(crate) device: String,
}

/// Floating-point operations of one training sample (forward and backward)
/// and of one validation sample (forward) of the 784-128-10 network.
fn flops_per_sample() -> (f64, f64) {
    let forward = 2.0 * (784.0 * 128.0 + 128.0 * 10.0);
    // dW1 = Xᵀ g1, dW2 = Hᵀ g2, dH = g2 W2ᵀ (no gradient for the input).
    let backward = 2.0 * (784.0 * 128.0 + 128.0 * 10.0 + 128.0 * 10.0);
    (forward + backward, forward)
}

pub(crate) fn run(args: &BenchArgs) -> Result<()> {
    if args.job != "mnist" {
        bail!("unknown bench {:?}; available: mnist", args.job);
    }
    let device = crate::parse_device(&args.device)?;
    let data = hebb_data::mnist::load_data(&DataDir::resolve(args.data_dir.as_deref()))?;
    let x = data.x_train.to_f32_divided(255.0)?;
    let y = data.y_train.to_f32_scaled(1.0)?;
    let n = x.shape()[0];
    let train = (n as f64 * 0.8).floor();
    let val = n as f64 - train;
    let (train_flops, val_flops) = flops_per_sample();
    let total_flops = args.epochs as f64 * (train * train_flops + val * val_flops);
    println!(
        "MNIST 13.5 recipe: Flatten-Dense(128, relu)-Dense(10, softmax), adam, batch {}, {} epochs, validation_split 0.2; on {device}; {} threads (rayon; set RAYON_NUM_THREADS to change)",
        args.batch_size,
        args.epochs,
        rayon::current_num_threads()
    );
    if device.is_cuda() {
        // Compiles the kernels and warms cuBLAS, outside the timed fits.
        let mut warm = mnist_model(0)?;
        warm.to_device(device)?;
        let rows: Vec<usize> = (0..256).collect();
        let options = FitOptions {
            batch_size: args.batch_size,
            epochs: 1,
            validation_split: 0.25,
            verbose: 0,
            ..Default::default()
        };
        warm.fit(&x.gather_rows(&rows)?, &y.gather_rows(&rows)?, options)?;
    }
    let mut times = Vec::new();
    for run in 1..=args.repeats.max(1) {
        let mut model = mnist_model(0)?;
        model.to_device(device)?;
        let start = Instant::now();
        let history = model.fit(
            &x,
            &y,
            FitOptions {
                batch_size: args.batch_size,
                epochs: args.epochs,
                validation_split: 0.2,
                verbose: 0,
                ..Default::default()
            },
        )?;
        let secs = start.elapsed().as_secs_f64();
        let acc = history
            .get("val_sparse_categorical_accuracy")
            .and_then(|v| v.last().copied())
            .unwrap_or(f32::NAN);
        println!(
            "run {run}: {secs:.3} s, {:.0} samples/s, {:.1} GFLOP/s, val_accuracy {acc:.4}",
            args.epochs as f64 * n as f64 / secs,
            total_flops / secs / 1e9
        );
        times.push(secs);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "median of {}: {median:.3} s for the fit ({:.0} samples/s, {:.1} GFLOP/s)",
        times.len(),
        args.epochs as f64 * n as f64 / median,
        total_flops / median / 1e9
    );
    Ok(())
}
