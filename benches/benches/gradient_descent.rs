//! BGD vs SGD vs MBGD (lecture 13.1): the time of one epoch on Iris, on the
//! Iris petal regression and on an MNIST subset, and the time to reach a
//! fixed loss on the regression. Each group ends with its variants' times
//! and ratios from the run, naming a fastest one only beyond the noise.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hebb_benches::{
    Timings, fit_epoch, iris_model, iris_petals, iris_training, mnist_model, mnist_training,
    regression_eta0, regression_to_target,
};
use hebb_data::MiniBatches;
use hebb_models::regression::LinearRegression;
use hebb_optim::Sgd;

static TIMES: Timings = Timings::new();

/// Images in the MNIST epoch: SGD takes one step per image.
const MNIST_IMAGES: usize = 2000;

fn variants(n: usize, mini: usize) -> [(String, usize); 3] {
    [
        (format!("BGD (t={n})"), n),
        ("SGD (t=1)".to_string(), 1),
        (format!("MBGD (t={mini})"), mini),
    ]
}

fn epoch_iris(c: &mut Criterion) {
    let Some((x, y)) = iris_training() else {
        return;
    };
    let n = x.shape()[0];
    let mut group = c.benchmark_group("epoch/iris");
    group.throughput(Throughput::Elements(n as u64));
    for (name, t) in variants(n, 32) {
        let mut model = iris_model(0).expect("the Iris model");
        let mut epoch = 0;
        group.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    fit_epoch(&mut model, &x, &y, t, epoch).expect("fit");
                    epoch += 1;
                }
                let elapsed = start.elapsed();
                TIMES.record("epoch/iris", &name, elapsed, iters);
                elapsed
            });
        });
    }
    group.finish();
    TIMES.print_comparison(
        "epoch/iris",
        &format!("epoch on Iris ({n} rows, Sequential 4-8-4-3)"),
    );
}

fn epoch_regression(c: &mut Criterion) {
    let Some(data) = iris_petals() else {
        return;
    };
    let n = data.len();
    let eta0 = regression_eta0(&data);
    let mut group = c.benchmark_group("epoch/regression");
    group.throughput(Throughput::Elements(n as u64));
    for (name, t) in variants(n, 32) {
        let mut model = LinearRegression::new(0.0, 0.0);
        let mut sgd = Sgd::new((eta0 / t as f64) as f32);
        let mut batches = MiniBatches::new(n, t).expect("t > 0").with_shuffle(0);
        let mut epoch = 0u64;
        group.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    for rows in batches.epoch(epoch) {
                        black_box(model.step(&data, rows, &mut sgd).expect("step"));
                    }
                    epoch += 1;
                }
                let elapsed = start.elapsed();
                TIMES.record("epoch/regression", &name, elapsed, iters);
                elapsed
            });
        });
    }
    group.finish();
    TIMES.print_comparison(
        "epoch/regression",
        &format!("epoch on the Iris regression ({n} rows, tape)"),
    );
}

fn epoch_mnist(c: &mut Criterion) {
    let Some((x, y)) = mnist_training(MNIST_IMAGES) else {
        return;
    };
    let n = x.shape()[0];
    let mut group = c.benchmark_group("epoch/mnist");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for (name, t) in variants(n, 64) {
        let mut model = mnist_model(0).expect("the MNIST model");
        let mut epoch = 0;
        group.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    fit_epoch(&mut model, &x, &y, t, epoch).expect("fit");
                    epoch += 1;
                }
                let elapsed = start.elapsed();
                TIMES.record("epoch/mnist", &name, elapsed, iters);
                elapsed
            });
        });
    }
    group.finish();
    TIMES.print_comparison(
        "epoch/mnist",
        &format!("epoch on MNIST ({n} images, Sequential 784-128-10, SGD lr 0.1)"),
    );
}

fn time_to_loss(c: &mut Criterion) {
    let Some(data) = iris_petals() else {
        return;
    };
    let n = data.len();
    let exact = data.least_squares().expect("least squares");
    // Within 5% of the minimum, checked after every epoch.
    let target = exact.loss * 1.05;
    let max_epochs = 20_000;
    let mut group = c.benchmark_group("to_loss/regression");
    for (name, t) in variants(n, 32) {
        let (_, epochs) =
            regression_to_target(&data, t, 0, target, max_epochs).expect("regression");
        println!(
            "{name}: loss <= {target:.4} (5% above the least-squares loss) after {}",
            epochs.map_or(format!("no epoch of {max_epochs}"), |e| format!(
                "{e} epochs"
            ))
        );
        group.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (took, _) =
                        regression_to_target(&data, t, 0, target, max_epochs).expect("regression");
                    total += took;
                }
                TIMES.record("to_loss/regression", &name, total, iters);
                total
            });
        });
    }
    group.finish();
    TIMES.print_comparison(
        "to_loss/regression",
        "to reach 5% above the least-squares loss on the Iris regression",
    );
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

criterion_group! {
    name = gradient_descent;
    config = config();
    targets = epoch_iris, epoch_regression, epoch_mnist, time_to_loss
}
criterion_main!(gradient_descent);
