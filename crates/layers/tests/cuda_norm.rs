//! Dropout and BatchNormalization on a GPU against the same layers on the
//! CPU (feature `cuda`): the training step's forward and backward, the
//! weights' gradients and BatchNormalization's moving statistics over
//! several steps, training and inference passes, a frozen layer, with and
//! without `scale`/`center` and regularisers, for channels-last 4-D and
//! 2-D inputs; and the tape's `call` on GPU tensors. Skips, saying why,
//! without a GPU.
//!
//! Tolerances:
//! - the step: none. Dropout's mask is integer arithmetic and each kept
//!   element one IEEE product on both devices; BatchNormalization's step is
//!   hebb-tensor's batch-norm op, whose CUDA kernels sum in `f64` over the
//!   same 256-row blocks in the same order as the CPU and perform every
//!   other operation as the same IEEE operation (see
//!   `crates/tensor/tests/cuda_batch_norm.rs`); the regularisers' gradient
//!   `l1 · sign(w) + 2 l2 · w` is the same products and sums. So outputs,
//!   gradients and moving statistics agree bit for bit.
//! - the tape's BatchNormalization: its mean and variance are tensor
//!   reductions, summed in `f64` on both devices but in different orders
//!   (CPU and GPU reduce kernels), each rounded once to `f32`: they agree
//!   to within one `f32` ulp (`2^-24` relative; the `f64` sums of at most
//!   300 terms err by `300 · 2^-53`, far below), and the few `f32`
//!   operations after them add a few ulp, so `|gpu - cpu| <= 1e-5 (1 + |cpu|)`.
#![cfg(feature = "cuda")]

use hebb_autograd::GradientTape;
use hebb_layers::{BatchNormalization, Dropout, Layer, Pass, Regularizer};
use hebb_tensor::cuda::gpu_or_skip as gpu;
use hebb_tensor::random::{RandomState, chacha};
use hebb_tensor::{Device, Tensor};

/// Normal values of deviation `scale` around `shift`.
fn randn(shape: &[usize], seed: u32, scale: f64, shift: f64) -> Tensor {
    let n = shape.iter().product();
    let v = RandomState::new(seed)
        .randn_vec(n)
        .into_iter()
        .map(|v| (v * scale + shift) as f32)
        .collect();
    Tensor::from_vec(v, shape).unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec().iter().map(|x| x.to_bits()).collect()
}

/// Moves a built layer's weights to `device`, as `Sequential::to_device`.
fn place(layer: &mut dyn Layer, device: Device) {
    for v in layer.weights_mut() {
        let moved = v.value().to_device(device).unwrap();
        *v.value_mut() = moved;
    }
}

/// One forward and backward pass on `x`'s device: `(y, dx, gradients,
/// weights)`, each as bits, after checking that all are on that device.
fn step(layer: &mut dyn Layer, x: &Tensor, g: &Tensor, pass: Pass) -> [Vec<Vec<u32>>; 4] {
    let device = x.device();
    let y = layer.forward(x, pass).unwrap().clone();
    let mut grad_out = g.to_device(device).unwrap();
    let mut dx = Tensor::zeros(&[0]);
    layer
        .backward(x, &mut grad_out, Some(&mut dx), pass)
        .unwrap();
    assert_eq!(
        (y.device(), dx.device()),
        (device, device),
        "{}",
        layer.name()
    );
    let grads = if layer.trainable() {
        layer.gradients().to_vec()
    } else {
        Vec::new()
    };
    let weights: Vec<Tensor> = layer.weights().iter().map(|w| w.value().clone()).collect();
    for t in grads.iter().chain(&weights) {
        assert_eq!(
            t.device(),
            device,
            "{}: a weight or gradient moved",
            layer.name()
        );
    }
    [
        vec![bits(&y)],
        vec![bits(&dx)],
        grads.iter().map(bits).collect(),
        weights.iter().map(bits).collect(),
    ]
}

#[test]
fn dropout_step_is_the_cpus_bit_for_bit() {
    let Some(device) = gpu() else { return };
    for per_sample in [vec![13, 11, 5], vec![300]] {
        let mut shape = vec![9];
        shape.extend(&per_sample);
        let mut cpu = Dropout::new(0.3).seed(17).name("drop");
        let mut gpu = Dropout::new(0.3).seed(17).name("drop");
        for l in [&mut cpu, &mut gpu] {
            l.build(&per_sample, &mut chacha(0)).unwrap();
        }
        assert!(gpu.supports(device));
        for k in 0..4u32 {
            let x = randn(&shape, k, 1.0, 0.0);
            let g = randn(&shape, k + 100, 1.0, 0.0);
            // A data-parallel shard's pass, then a whole batch's, then inference.
            let pass = match k {
                0 => Pass {
                    first_row: 27,
                    ..Pass::TRAIN
                },
                3 => Pass::INFER,
                _ => Pass::TRAIN,
            };
            let want = step(&mut cpu, &x, &g, pass);
            let got = step(&mut gpu, &x.to_device(device).unwrap(), &g, pass);
            assert_eq!(got, want, "shape {shape:?} pass {k}");
            if pass.training {
                let y = &got[0][0];
                assert!(
                    y.contains(&0) && y.iter().any(|&b| b != 0),
                    "a mask drops some"
                );
            } else {
                assert_eq!(got[0][0], bits(&x), "inference is the identity");
                assert_eq!(got[1][0], bits(&g));
            }
        }
        assert_eq!((cpu.step(), gpu.step()), (3, 3));
    }
}

#[test]
fn dropout_on_the_tape_keeps_gpu_tensors_on_the_gpu() {
    let Some(device) = gpu() else { return };
    let x = randn(&[6, 4, 4, 3], 1, 1.0, 0.0);
    let w = randn(&[6, 4, 4, 3], 2, 1.0, 0.0);
    let mut d = Dropout::new(0.5).seed(5).name("drop");
    d.build(&[4, 4, 3], &mut chacha(0)).unwrap();
    let run = |d: &mut Dropout, device: Device| {
        d.set_step(7);
        let tape = GradientTape::new();
        let xv = tape.watch_tensor(x.to_device(device).unwrap());
        let y = d.call(&tape, xv, true).unwrap();
        let loss = y
            .mul(tape.constant(w.to_device(device).unwrap()))
            .unwrap()
            .sum_all();
        let dx = tape.gradient(loss, &[xv]).unwrap().remove(0);
        assert_eq!((y.value().device(), dx.device()), (device, device));
        (bits(&y.value()), bits(&dx))
    };
    let cpu = run(&mut d, Device::Cpu);
    assert_eq!(run(&mut d, device), cpu);
    // The step with the same step number draws the same mask (equal
    // values: the tape's `x · 0` is -0 for a negative x, the step writes 0).
    d.set_step(7);
    let y = d
        .forward(&x.to_device(device).unwrap(), Pass::TRAIN)
        .unwrap();
    let tape_y: Vec<f32> = cpu.0.iter().map(|&b| f32::from_bits(b)).collect();
    assert_eq!(y.to_vec(), tape_y);
}

/// A built BatchNormalization with weights that are not the initial ones.
fn batch_norm(per_sample: &[usize], scale: bool, center: bool) -> BatchNormalization {
    let mut bn = BatchNormalization::new()
        .scale(scale)
        .center(center)
        .momentum(0.9)
        .name("bn");
    bn.build(per_sample, &mut chacha(0)).unwrap();
    let c = *per_sample.last().unwrap();
    for (k, w) in bn.weights_mut().into_iter().enumerate() {
        let v: Vec<f32> = (0..c).map(|j| 0.5 + 0.25 * ((j + k) % 5) as f32).collect();
        w.assign(Tensor::from_vec(v, &[c]).unwrap()).unwrap();
    }
    bn
}

#[test]
fn batch_normalization_steps_and_moving_statistics_are_the_cpus_bit_for_bit() {
    let Some(device) = gpu() else { return };
    // Channels-last 4-D (270 rows of channels: more than one 256-row block)
    // and 2-D (fewer rows than a block), every weight set, regularisers.
    let cases: [(&[usize], usize, bool, bool, bool); 6] = [
        (&[6, 5, 4], 9, true, true, false),
        (&[6, 5, 4], 9, true, true, true),
        (&[6, 5, 4], 9, false, true, false),
        (&[7], 33, true, false, true),
        (&[7], 33, false, false, false),
        (&[3, 3, 32], 5, true, true, false),
    ];
    for (per_sample, rows, scale, center, regularised) in cases {
        let mut shape = vec![rows];
        shape.extend(per_sample);
        let mut cpu = batch_norm(per_sample, scale, center);
        let mut gpu = batch_norm(per_sample, scale, center);
        if regularised {
            cpu = cpu
                .gamma_regularizer(Regularizer::l1_l2(0.01, 0.02))
                .beta_regularizer(Regularizer::l1(0.03));
            gpu = gpu
                .gamma_regularizer(Regularizer::l1_l2(0.01, 0.02))
                .beta_regularizer(Regularizer::l1(0.03));
        }
        place(&mut gpu, device);
        assert!(gpu.supports(device));
        // Three training steps (the moving statistics move), an inference
        // pass, then a frozen layer's training pass (inference mode).
        for k in 0..5u32 {
            if k == 4 {
                cpu.set_trainable(false);
                gpu.set_trainable(false);
            }
            let pass = if k == 3 { Pass::INFER } else { Pass::TRAIN };
            let x = randn(&shape, k, 1.5, 2.0);
            let g = randn(&shape, k + 50, 1.0, 0.0);
            let want = step(&mut cpu, &x, &g, pass);
            let got = step(&mut gpu, &x.to_device(device).unwrap(), &g, pass);
            let what =
                format!("{shape:?} scale {scale} center {center} reg {regularised} pass {k}");
            assert_eq!(got[0], want[0], "y: {what}");
            assert_eq!(got[1], want[1], "dx: {what}");
            assert_eq!(got[2], want[2], "gradients: {what}");
            assert_eq!(got[3], want[3], "weights and moving statistics: {what}");
        }
    }
}

#[test]
fn batch_normalization_on_the_tape_keeps_gpu_tensors_on_the_gpu() {
    let Some(device) = gpu() else { return };
    for (per_sample, rows) in [(vec![5, 4, 3], 4), (vec![6], 50)] {
        let mut shape = vec![rows];
        shape.extend(&per_sample);
        let x = randn(&shape, 3, 1.5, 2.0);
        let w = randn(&shape, 4, 1.0, 0.0);
        let cpu = batch_norm(&per_sample, true, true);
        let mut gpu = batch_norm(&per_sample, true, true);
        place(&mut gpu, device);
        for training in [true, false] {
            let run = |bn: &BatchNormalization, device: Device| {
                let tape = GradientTape::new();
                let xv = tape.watch_tensor(x.to_device(device).unwrap());
                let y = bn.call(&tape, xv, training).unwrap();
                let loss = y
                    .mul(tape.constant(w.to_device(device).unwrap()))
                    .unwrap()
                    .sum_all();
                let dx = tape.gradient(loss, &[xv]).unwrap().remove(0);
                let dw = tape.gradient_of(loss, &bn.weights()).unwrap();
                let mut all = vec![y.value(), dx];
                all.extend(dw);
                for t in &all {
                    assert_eq!(t.device(), device);
                }
                all
            };
            let (want, got) = (run(&cpu, Device::Cpu), run(&gpu, device));
            for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                assert_eq!(a.shape(), b.shape());
                for (i, (p, q)) in a.to_vec().iter().zip(b.to_vec()).enumerate() {
                    assert!(
                        (p - q).abs() <= 1e-5 * (1.0 + q.abs()),
                        "{shape:?} training {training} output {k}[{i}]: gpu {p} vs cpu {q}"
                    );
                }
            }
        }
    }
}
