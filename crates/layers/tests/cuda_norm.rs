//! Dropout on a GPU against the same layer on the CPU (feature `cuda`):
//! the training step's forward and backward over several passes (a
//! data-parallel shard's among them) and inference passes, for
//! channels-last 4-D and 2-D inputs; and the tape's `call` on GPU tensors.
//! Skips, saying why, without a GPU.
//!
//! Tolerance: none. The mask is integer arithmetic and each kept element
//! one IEEE product on both devices, so outputs and gradients agree bit
//! for bit.
#![cfg(feature = "cuda")]

use hebb_autograd::GradientTape;
use hebb_layers::{Dropout, Layer, Pass};
use hebb_tensor::random::{RandomState, chacha};
use hebb_tensor::{Device, Tensor};

/// `cuda:0`, or `None` after printing why the test is skipped.
fn gpu() -> Option<Device> {
    match Device::cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("skipped: no CUDA device ({e})");
            None
        }
    }
}

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
