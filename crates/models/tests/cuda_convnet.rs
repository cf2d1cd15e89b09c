//! CPU/GPU parity of image models (feature `cuda`): an epoch of Keras'
//! MNIST convnet on a subset, and a model of every image layer (Conv2D
//! with 'same' padding and strides, BatchNormalization, both poolings,
//! Dropout, the global poolings, Reshape), trained, evaluated and
//! predicted on both devices from the same weights. Each test prints why
//! it skips when there is no GPU.
//!
//! Tolerance: the devices sum each convolution's and product's terms in
//! different orders (cuBLAS' blocking against the CPU's GEMM), about 1e-7
//! relative per sum; Adam's steps carry such differences forward without
//! damping them. After 16 steps the weights (|w| up to about 0.3) agree
//! to 1e-3 absolute and the History's figures to 1e-3; Dropout's masks
//! are the same on both devices (a counter-based hash of seed, step and
//! element), so they add nothing.
#![cfg(feature = "cuda")]

use hebb_data::DataDir;
use hebb_layers::Activation;
use hebb_models::sequential::layers::{
    ActivationLayer, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten,
    GlobalAveragePooling2D, MaxPooling2D, Reshape,
};
use hebb_models::sequential::{FitOptions, Sequential};
use hebb_tensor::cuda::gpu_or_skip as gpu;
use hebb_tensor::ops::Padding;
use hebb_tensor::{Device, Tensor};

/// The largest `|a - b|`, and the index where it is.
fn max_diff(a: &[f32], b: &[f32]) -> (f32, usize) {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .enumerate()
        .fold(
            (0.0, 0),
            |(m, at), (i, d)| if d > m { (d, i) } else { (m, at) },
        )
}

/// Keras' "Simple MNIST convnet" (keras-io examples/vision/mnist_convnet.py).
fn convnet() -> Sequential {
    let mut m = Sequential::new().with_seed(0);
    m.add(
        Conv2D::new(32, [3, 3])
            .activation(Activation::Relu)
            .input_shape(&[28, 28, 1]),
    )
    .unwrap();
    m.add(MaxPooling2D::new([2, 2])).unwrap();
    m.add(Conv2D::new(64, [3, 3]).activation(Activation::Relu))
        .unwrap();
    m.add(MaxPooling2D::new([2, 2])).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dropout::new(0.5)).unwrap();
    m.add(Dense::new(10).activation(Activation::Softmax))
        .unwrap();
    m.compile("adam", "sparse_categorical_crossentropy", vec!["accuracy"])
        .unwrap();
    m
}

/// Every image layer: 'same' padding with strides, BatchNormalization,
/// average pooling, Reshape, global average pooling, Dropout.
fn every_image_layer() -> Sequential {
    let mut m = Sequential::new().with_seed(3);
    m.add(
        Conv2D::new(6, [3, 3])
            .strides([2, 2])
            .padding(Padding::Same)
            .input_shape(&[11, 11, 2]),
    )
    .unwrap();
    m.add(BatchNormalization::new()).unwrap();
    m.add(ActivationLayer::new(Activation::Relu)).unwrap();
    m.add(AveragePooling2D::new([2, 2]).padding(Padding::Same))
        .unwrap();
    m.add(Reshape::new(&[9, 6, 1])).unwrap();
    m.add(
        Conv2D::new(4, [2, 2])
            .dilation_rate([2, 2])
            .padding(Padding::Same)
            .activation(Activation::Tanh),
    )
    .unwrap();
    m.add(GlobalAveragePooling2D::new()).unwrap();
    m.add(Dropout::new(0.25)).unwrap();
    m.add(Dense::new(3).activation(Activation::Softmax))
        .unwrap();
    m.compile("adam", "sparse_categorical_crossentropy", vec!["accuracy"])
        .unwrap();
    m
}

/// Trains `build()` on both devices (`options` the same), and checks the
/// History, the weights, `evaluate` and `predict` against the CPU's.
fn check(build: fn() -> Sequential, x: &Tensor, y: &Tensor, options: fn() -> FitOptions) {
    let Some(gpu) = gpu() else { return };
    let mut cpu_model = build();
    let h_cpu = cpu_model.fit(x, y, options()).unwrap();
    let mut gpu_model = build();
    gpu_model.to_device(gpu).unwrap();
    let start = std::time::Instant::now();
    let h_gpu = gpu_model.fit(x, y, options()).unwrap();
    eprintln!("fit on {gpu}: {:.3} s", start.elapsed().as_secs_f64());
    for key in ["loss", "accuracy", "val_loss", "val_accuracy"] {
        let (a, b) = (h_cpu.get(key).unwrap(), h_gpu.get(key).unwrap());
        eprintln!("{key}: cpu {a:?}, gpu {b:?}");
        let (d, at) = max_diff(a, b);
        assert!(d <= 1e-3, "{key}[{at}]: cpu {a:?} vs gpu {b:?}");
    }
    for (w, (a, b)) in cpu_model
        .get_weights()
        .iter()
        .zip(gpu_model.get_weights())
        .enumerate()
    {
        assert_eq!(b.device(), gpu, "weights stay on the GPU");
        let (d, at) = max_diff(&a.to_vec(), &b.to_vec());
        eprintln!(
            "weight {w} {:?}: max |cpu - gpu| = {d:.3e} at {at}",
            a.shape()
        );
        assert!(d <= 1e-3, "weight {w}[{at}] differs by {d}");
    }
    // The same weights give the same evaluation and predictions.
    let weights: Vec<_> = gpu_model
        .get_weights()
        .iter()
        .map(|w| w.to_device(Device::Cpu).unwrap())
        .collect();
    cpu_model.set_weights(&weights).unwrap();
    let e_cpu = cpu_model.evaluate(x, y, 50, 0).unwrap();
    let e_gpu = gpu_model.evaluate(x, y, 50, 0).unwrap();
    eprintln!("evaluate: cpu {e_cpu:?}, gpu {e_gpu:?}");
    assert!((e_cpu[0] - e_gpu[0]).abs() <= 1e-5 * e_cpu[0].abs().max(1.0));
    let p_cpu = cpu_model.predict(x, 50).unwrap();
    let p_gpu = gpu_model.predict(x, 50).unwrap();
    let (d, at) = max_diff(&p_cpu.to_vec(), &p_gpu.to_vec());
    assert!(d <= 1e-5, "predict differs by {d} at {at}");
}

#[test]
fn an_epoch_of_the_mnist_convnet_matches_the_cpu() {
    let data = match hebb_data::mnist::load_data(&DataDir::resolve(None)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("skipped: MNIST not found ({e})");
            return;
        }
    };
    // 2,048 images: 16 steps of 115 and a validation set of 205.
    let rows: Vec<usize> = (0..2048).collect();
    let x = data.x_train.to_f32_divided(255.0).unwrap();
    let x = x
        .gather_rows(&rows)
        .unwrap()
        .reshape(&[2048, 28, 28, 1])
        .unwrap();
    let y = data
        .y_train
        .to_f32_scaled(1.0)
        .unwrap()
        .gather_rows(&rows)
        .unwrap();
    check(convnet, &x, &y, || FitOptions {
        batch_size: 115,
        epochs: 1,
        validation_split: 0.1,
        verbose: 0,
        ..Default::default()
    });
}

#[test]
fn a_model_of_every_image_layer_matches_the_cpu() {
    let n = 90;
    let x: Vec<f32> = (0..n * 11 * 11 * 2)
        .map(|i| ((i * 7919 % 263) as f32 / 263.0) - 0.5)
        .collect();
    let y: Vec<f32> = (0..n).map(|i| ((i * 31 % 17) % 3) as f32).collect();
    let x = Tensor::from_vec(x, &[n, 11, 11, 2]).unwrap();
    let y = Tensor::from_vec(y, &[n]).unwrap();
    check(every_image_layer, &x, &y, || FitOptions {
        batch_size: 16,
        epochs: 3,
        validation_split: 0.2,
        verbose: 0,
        ..Default::default()
    });
}
