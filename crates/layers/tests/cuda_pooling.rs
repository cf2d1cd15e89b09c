//! The pooling layers on a GPU (feature `cuda`) against the same layers on
//! the CPU: `MaxPooling2D`, `AveragePooling2D`, `GlobalAveragePooling2D`
//! and `GlobalMaxPooling2D`, the training step's forward and backward (two
//! steps, so the second runs with the first's state), and the tape form
//! `call` with its gradient. Outputs and gradients must stay on the GPU.
//!
//! Tolerance: none. The GPU kernels compute every element with the CPU
//! kernels' IEEE operations in the CPU kernels' order (see
//! `hebb-tensor/tests/cuda_pool.rs`), so every value must agree bit for bit.
//!
//! Each test skips, saying why, without a GPU.
#![cfg(feature = "cuda")]

use hebb_autograd::GradientTape;
use hebb_layers::{
    AveragePooling2D, Error, GlobalAveragePooling2D, GlobalMaxPooling2D, Layer, MaxPooling2D, Pass,
};
use hebb_tensor::cuda::gpu_or_skip as gpu;
use hebb_tensor::ops::Padding;
use hebb_tensor::random::{RandomState, chacha};
use hebb_tensor::{Device, Tensor};

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec().iter().map(|v| v.to_bits()).collect()
}

/// Values in {-2, -1.5, .., 2}: many ties inside the windows.
fn halves(shape: &[usize], seed: u32) -> Tensor {
    let mut rng = RandomState::new(seed);
    let n = shape.iter().product();
    Tensor::from_vec(
        (0..n)
            .map(|_| (rng.next_u32() % 9) as f32 / 2.0 - 2.0)
            .collect(),
        shape,
    )
    .unwrap()
}

/// Standard normal values (distinct, so the order of additions shows).
fn normal(shape: &[usize], seed: u32) -> Tensor {
    RandomState::new(seed).randn_tensor(shape).unwrap()
}

/// One layer (made twice by `make`) on the CPU and on `device`: the step's
/// output and input gradient, and the tape's, bit for bit, on the device.
fn check(device: Device, make: &dyn Fn() -> Box<dyn Layer>, input: [usize; 3], rows: usize) {
    let mut cpu = make();
    let mut gpu = make();
    let what = format!("{} {:?} on {input:?}", cpu.class_name(), cpu.config());
    for layer in [&mut cpu, &mut gpu] {
        layer.set_name("p");
        layer.build(&input, &mut chacha(0)).unwrap();
    }
    assert!(gpu.supports(device), "{what}");
    let out_shape = cpu.compute_output_shape(&input).unwrap();
    let x_shape: Vec<usize> = std::iter::once(rows).chain(input).collect();
    let y_shape: Vec<usize> = std::iter::once(rows).chain(out_shape).collect();
    let x = halves(&x_shape, 1);
    let g = normal(&y_shape, 2);
    let (xd, gd) = (x.to_device(device).unwrap(), g.to_device(device).unwrap());

    let (mut gi, mut gid) = (Tensor::zeros(&[0]), Tensor::zeros(&[0]));
    for step in 0..2 {
        let pass = if step == 0 { Pass::TRAIN } else { Pass::INFER };
        let y = cpu.forward(&x, pass).unwrap().clone();
        let yd = gpu.forward(&xd, pass).unwrap();
        assert_eq!(yd.device(), device, "{what}");
        assert_eq!(yd.shape(), &y_shape[..], "{what}");
        assert_eq!(bits(yd), bits(&y), "{what}: forward, step {step}");

        cpu.backward(&x, &mut g.clone(), Some(&mut gi), pass)
            .unwrap();
        gpu.backward(&xd, &mut gd.clone(), Some(&mut gid), pass)
            .unwrap();
        assert_eq!(gid.device(), device, "{what}");
        assert_eq!(gid.shape(), &x_shape[..], "{what}");
        assert_eq!(bits(&gid), bits(&gi), "{what}: backward, step {step}");
        // Without an input gradient to compute (a model's first layer).
        gpu.backward(&xd, &mut gd.clone(), None, pass).unwrap();
    }
    assert!(gpu.weights().is_empty() && gpu.gradients().is_empty());

    // The tape form on the GPU: L = Σ g · y, so dL/dx is the step's gradient.
    let tape = GradientTape::new();
    let xv = tape.watch_tensor(xd.clone());
    let yv = gpu.call(&tape, xv, true).unwrap();
    assert_eq!(yv.value().device(), device, "{what}");
    assert_eq!(
        bits(&yv.value()),
        bits(&cpu.forward(&x, Pass::TRAIN).unwrap().clone())
    );
    let loss = yv.mul(tape.constant(gd.clone())).unwrap().sum_all();
    let dx = tape.gradient(loss, &[xv]).unwrap().remove(0);
    assert_eq!(dx.device(), device, "{what}");
    assert_eq!(bits(&dx), bits(&gi), "{what}: the tape's gradient");
}

#[test]
fn pooling_layers_match_the_cpu_bit_for_bit() {
    let Some(device) = gpu() else { return };
    use Padding::{Same, Valid};
    // (pool, strides, padding, image, rows)
    let windowed = [
        ([2, 2], None, Valid, [26, 26, 32], 4),
        ([2, 2], None, Valid, [11, 11, 64], 3),
        ([3, 3], Some([2, 2]), Same, [7, 9, 3], 2),
        ([2, 3], Some([3, 1]), Valid, [8, 7, 1], 1),
        ([5, 4], None, Valid, [5, 4, 2], 2),
        ([2, 2], Some([1, 1]), Same, [5, 3, 1], 3),
        ([3, 1], Some([1, 2]), Same, [4, 5, 2], 2),
    ];
    for (pool, strides, padding, input, rows) in windowed {
        check(
            device,
            &|| {
                let mut l = MaxPooling2D::new(pool).padding(padding);
                if let Some(s) = strides {
                    l = l.strides(s);
                }
                Box::new(l)
            },
            input,
            rows,
        );
        check(
            device,
            &|| {
                let mut l = AveragePooling2D::new(pool).padding(padding);
                if let Some(s) = strides {
                    l = l.strides(s);
                }
                Box::new(l)
            },
            input,
            rows,
        );
    }
    for keepdims in [false, true] {
        for (input, rows) in [([5, 5, 64], 3), ([1, 1, 1], 1), ([3, 7, 2], 2)] {
            check(
                device,
                &|| Box::new(GlobalAveragePooling2D::new().keepdims(keepdims)),
                input,
                rows,
            );
            check(
                device,
                &|| Box::new(GlobalMaxPooling2D::new().keepdims(keepdims)),
                input,
                rows,
            );
        }
    }
}

/// A GPU step checks what a CPU step checks, naming the layer: the output
/// gradient's shape and device, and a forward pass of the same input on the
/// same device before the backward pass.
#[test]
fn gpu_steps_check_their_inputs() {
    let Some(device) = gpu() else { return };
    let x = Tensor::ones(&[2, 4, 4, 3]).to_device(device).unwrap();
    let mut layers: Vec<Box<dyn Layer>> = vec![
        Box::new(MaxPooling2D::default().name("mp")),
        Box::new(AveragePooling2D::default().name("ap")),
        Box::new(GlobalAveragePooling2D::new().name("gap")),
        Box::new(GlobalMaxPooling2D::new().name("gmp")),
    ];
    for layer in &mut layers {
        layer.build(&[4, 4, 3], &mut chacha(0)).unwrap();
        let out = layer.compute_output_shape(&[4, 4, 3]).unwrap();
        let y_shape: Vec<usize> = std::iter::once(2).chain(out).collect();
        let mut g = Tensor::ones(&y_shape).to_device(device).unwrap();
        let mut gi = Tensor::zeros(&[0]);
        let e = layer
            .backward(&x, &mut g, Some(&mut gi), Pass::TRAIN)
            .unwrap_err();
        assert!(
            matches!(&e, Error::Shape { .. }) && e.to_string().contains(layer.name()),
            "{e}"
        );
        layer.forward(&x, Pass::TRAIN).unwrap();
        // The gradient on the CPU.
        let mut host = Tensor::ones(&y_shape);
        let e = layer
            .backward(&x, &mut host, Some(&mut gi), Pass::TRAIN)
            .unwrap_err();
        assert!(
            e.to_string().contains("cuda:0") && e.to_string().contains("cpu"),
            "{e}"
        );
        // Another built shape on the GPU.
        let other = Tensor::ones(&[2, 6, 6, 3]).to_device(device).unwrap();
        let e = layer.forward(&other, Pass::TRAIN).unwrap_err();
        assert!(e.to_string().contains("[2, 6, 6, 3]"), "{e}");
        layer
            .backward(&x, &mut g, Some(&mut gi), Pass::TRAIN)
            .unwrap();
        assert_eq!(gi.device(), device);
    }
    // Max pooling's backward of a GPU input needs the GPU forward's indices,
    // not those of a CPU forward pass of the same shape.
    let mut mp = MaxPooling2D::default().name("mp");
    mp.build(&[4, 4, 3], &mut chacha(0)).unwrap();
    mp.forward(&x.to_device(Device::Cpu).unwrap(), Pass::TRAIN)
        .unwrap();
    let mut g = Tensor::ones(&[2, 2, 2, 3]).to_device(device).unwrap();
    let e = mp
        .backward(&x, &mut g, Some(&mut Tensor::zeros(&[0])), Pass::TRAIN)
        .unwrap_err();
    assert!(e.to_string().contains("forward pass"), "{e}");
}
