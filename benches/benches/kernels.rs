//! The GEMM kernel at the shapes of the MNIST network's training step
//! (batch 64, 784-128-10), one whole training step of that network through
//! `Sequential::fit`, and one of Keras' "Simple MNIST convnet" (batch 128).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hebb_benches::{Timings, convnet_model, fit_epoch, mnist_images, mnist_model, mnist_training};
use hebb_tensor::ops::matmul::{MatRef, gemm};

static TIMES: Timings = Timings::new();

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| {
            let h = (i ^ seed).wrapping_mul(2_654_435_761).rotate_left(13);
            (h % 2000) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn gemm_shapes(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm");
    // (name, m, k, n, transpose A): op(A) [m, k] · B [k, n].
    let shapes = [
        ("forward X·W1 [64x784]·[784x128]", 64, 784, 128, false),
        ("backward Xᵀ·G [784x64]·[64x128]", 784, 64, 128, true),
        ("SGD t=1 x·W1 [1x784]·[784x128]", 1, 784, 128, false),
        ("square [256x256]·[256x256]", 256, 256, 256, false),
    ];
    for (name, m, k, n, transpose) in shapes {
        let a = values(m * k, 1);
        let b = values(k * n, 2);
        let mut out = vec![0f32; m * n];
        group.throughput(Throughput::Elements((2 * m * k * n) as u64));
        group.bench_function(name, |bench| {
            bench.iter(|| {
                let a = if transpose {
                    MatRef::new(&a, k, m).expect("shape").t()
                } else {
                    MatRef::new(&a, m, k).expect("shape")
                };
                let b = MatRef::new(&b, k, n).expect("shape");
                gemm(black_box(&mut out), a, b).expect("gemm");
            });
        });
    }
    group.finish();
    println!("(gemm throughput: elements are floating-point operations, 2·m·k·n)");
}

fn mnist_step(c: &mut Criterion) {
    let Some((x, y)) = mnist_training(64) else {
        return;
    };
    let mut group = c.benchmark_group("mnist_step");
    group.throughput(Throughput::Elements(64));
    let mut model = mnist_model(0).expect("the MNIST model");
    let mut epoch = 0;
    group.bench_function("fit one batch of 64", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                fit_epoch(&mut model, &x, &y, 64, epoch).expect("fit");
                epoch += 1;
            }
            let elapsed = start.elapsed();
            TIMES.record("mnist_step", "batch 64", elapsed, iters);
            elapsed
        });
    });
    group.finish();
    if let Some((_, t)) = TIMES.ranking("mnist_step").first() {
        println!(
            "MNIST training step (forward, backward, SGD update; batch 64): {} ({:.0} images/s)",
            hebb_benches::human(*t),
            64.0 / t.as_secs_f64()
        );
    }
}

/// One training step of Keras' "Simple MNIST convnet": a batch of 128
/// images through `Sequential::fit` (forward, backward, Adam update).
fn convnet_step(c: &mut Criterion) {
    let Some((x, y)) = mnist_images(128) else {
        return;
    };
    let mut group = c.benchmark_group("convnet_step");
    group.throughput(Throughput::Elements(128));
    let mut model = convnet_model(0).expect("the convnet");
    let mut epoch = 0;
    group.bench_function("fit one batch of 128", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                fit_epoch(&mut model, &x, &y, 128, epoch).expect("fit");
                epoch += 1;
            }
            let elapsed = start.elapsed();
            TIMES.record("convnet_step", "batch 128", elapsed, iters);
            elapsed
        });
    });
    group.finish();
    if let Some((_, t)) = TIMES.ranking("convnet_step").first() {
        println!(
            "convnet training step (forward, backward, Adam update; batch 128): {} ({:.0} images/s)",
            hebb_benches::human(*t),
            128.0 / t.as_secs_f64()
        );
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

criterion_group! {
    name = kernels;
    config = config();
    targets = gemm_shapes, mnist_step, convnet_step
}
criterion_main!(kernels);
