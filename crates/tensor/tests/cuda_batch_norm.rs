//! CPU/GPU parity of batch normalisation (`ops::batch_norm`): forward with
//! the batch's statistics (and the moving statistics' update) and with the
//! moving ones, backward (`dx`, `dγ`, `dβ`) through either, with and
//! without `γ` and `β`, for 2-D and channels-last 4-D inputs whose row
//! counts are not multiples of the 256-row blocks of the sums (and fewer
//! rows than one block), from 1 to 300 channels.
//!
//! Tolerance: none. Both kernels sum in `f64` over the same blocks of 256
//! rows in the same order and perform every other operation as the same
//! IEEE operation (the CUDA source writes each with a `_rn` intrinsic, so
//! NVRTC's `--fmad=true` contracts nothing; division and square root are
//! IEEE-rounded, `--prec-div --prec-sqrt`, no flush-to-zero), so every
//! output, the per-channel statistics and the moving statistics agree bit
//! for bit.
//!
//! Every test needs a GPU and prints `skipped: no CUDA device ...` without one.
#![cfg(feature = "cuda")]

use hebb_tensor::cuda::gpu_or_skip as gpu;
use hebb_tensor::ops::batch_norm::{BatchNorm, BatchNormStats, Gradients, Statistics};
use hebb_tensor::random::RandomState;
use hebb_tensor::{Device, Error, Tensor};

/// Normal values of mean `shift` and deviation `scale`.
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

/// Everything one forward and backward pass produces, on the host.
#[derive(Debug, PartialEq)]
struct Run {
    y: Vec<u32>,
    moving: (Vec<u32>, Vec<u32>),
    stats: (Vec<u64>, Vec<u64>),
    dx: Vec<u32>,
    dgamma: Vec<u32>,
    dbeta: Vec<u32>,
    devices: Vec<Device>,
}

/// One forward pass (batch statistics or moving ones) and its backward on
/// `device`, with `γ`/`β` where given.
fn run(
    device: Device,
    x: &Tensor,
    dy: &Tensor,
    (gamma, beta): (Option<&Tensor>, Option<&Tensor>),
    batch: bool,
) -> Run {
    let on = |t: &Tensor| t.to_device(device).unwrap();
    let c = *x.shape().last().unwrap();
    let (x, dy) = (on(x), on(dy));
    let (gamma, beta) = (gamma.map(on), beta.map(on));
    let mut mm = on(&randn(&[c], 11, 0.5, 0.0));
    let mut mv = on(&randn(&[c], 12, 0.2, 1.0).abs());
    let bn = BatchNorm {
        gamma: gamma.as_ref(),
        beta: beta.as_ref(),
        epsilon: 1e-3,
    };
    let (mut y, mut stats) = (Tensor::zeros(&[0]), BatchNormStats::new());
    let statistics = if batch {
        Statistics::Batch {
            moving_mean: &mut mm,
            moving_variance: &mut mv,
            momentum: 0.99,
        }
    } else {
        Statistics::Moving {
            moving_mean: &mm,
            moving_variance: &mv,
        }
    };
    bn.forward(&x, statistics, &mut y, &mut stats).unwrap();
    assert_eq!(stats.used_batch_statistics(), batch);
    let (mut dx, mut dg, mut db) = (
        Tensor::zeros(&[0]),
        Tensor::zeros(&[0]),
        Tensor::zeros(&[0]),
    );
    let grads = Gradients {
        dx: Some(&mut dx),
        dgamma: Some(&mut dg),
        dbeta: Some(&mut db),
    };
    bn.backward(&x, &dy, &mut stats, grads).unwrap();
    let (mean, inv_std) = stats.to_host().unwrap();
    let f64_bits = |v: Vec<f64>| v.into_iter().map(f64::to_bits).collect();
    Run {
        devices: [&y, &mm, &mv, &dx, &dg, &db].map(Tensor::device).to_vec(),
        y: bits(&y),
        moving: (bits(&mm), bits(&mv)),
        stats: (f64_bits(mean), f64_bits(inv_std)),
        dx: bits(&dx),
        dgamma: bits(&dg),
        dbeta: bits(&db),
    }
}

#[test]
fn forward_backward_and_moving_statistics_are_the_cpus_bits() {
    let Some(device) = gpu() else { return };
    let shapes: [&[usize]; 7] = [
        &[1, 5],
        &[7, 3],
        &[300, 1],
        &[513, 300],
        &[4, 9, 9, 32],
        &[3, 13, 11, 6],
        &[2, 1, 1, 2],
    ];
    for (s, shape) in shapes.iter().enumerate() {
        let c = *shape.last().unwrap();
        let seed = s as u32 * 10;
        // A large mean next to a small spread: the two-pass variance's case.
        let x = randn(shape, seed, 1.5, 3.0);
        let dy = randn(shape, seed + 1, 1.0, 0.0);
        let gamma = randn(&[c], seed + 2, 0.5, 1.0);
        let beta = randn(&[c], seed + 3, 0.5, 0.0);
        for params in [
            (Some(&gamma), Some(&beta)),
            (None, Some(&beta)),
            (Some(&gamma), None),
            (None, None),
        ] {
            for batch in [true, false] {
                let cpu = run(Device::Cpu, &x, &dy, params, batch);
                let gpu = run(device, &x, &dy, params, batch);
                assert!(
                    gpu.devices.iter().all(|&d| d == device),
                    "{:?}",
                    gpu.devices
                );
                assert!(cpu.devices.iter().all(|&d| d == Device::Cpu));
                let what = format!(
                    "shape {shape:?} gamma {} beta {} batch {batch}",
                    params.0.is_some(),
                    params.1.is_some()
                );
                assert_eq!(gpu.y, cpu.y, "y: {what}");
                assert_eq!(gpu.moving, cpu.moving, "moving statistics: {what}");
                assert_eq!(gpu.stats, cpu.stats, "mean and inv_std: {what}");
                assert_eq!(gpu.dx, cpu.dx, "dx: {what}");
                assert_eq!(gpu.dgamma, cpu.dgamma, "dgamma: {what}");
                assert_eq!(gpu.dbeta, cpu.dbeta, "dbeta: {what}");
            }
        }
    }
}

#[test]
fn consecutive_steps_reuse_buffers_and_follow_the_cpu() {
    let Some(device) = gpu() else { return };
    let c = 8;
    let gamma = randn(&[c], 1, 0.3, 1.0);
    let beta = randn(&[c], 2, 0.3, 0.0);
    // One set of moving statistics, outputs and statistics per device,
    // over five batches of changing size (an empty one among them).
    let mut state: Vec<(Tensor, Tensor, Tensor, Tensor, BatchNormStats)> = [Device::Cpu, device]
        .iter()
        .map(|&d| {
            (
                Tensor::zeros(&[c]).to_device(d).unwrap(),
                Tensor::ones(&[c]).to_device(d).unwrap(),
                Tensor::zeros(&[0]),
                Tensor::zeros(&[0]),
                BatchNormStats::new(),
            )
        })
        .collect();
    for (step, rows) in [300usize, 300, 0, 17, 300].into_iter().enumerate() {
        let x = randn(&[rows, c], step as u32 + 20, 2.0, -1.0);
        let dy = randn(&[rows, c], step as u32 + 40, 1.0, 0.0);
        let mut results = Vec::new();
        for (k, (mm, mv, y, dx, stats)) in state.iter_mut().enumerate() {
            let d = if k == 0 { Device::Cpu } else { device };
            let (g, b) = (gamma.to_device(d).unwrap(), beta.to_device(d).unwrap());
            let bn = BatchNorm {
                gamma: Some(&g),
                beta: Some(&b),
                epsilon: 1e-3,
            };
            let xd = x.to_device(d).unwrap();
            let statistics = Statistics::Batch {
                moving_mean: mm,
                moving_variance: mv,
                momentum: 0.9,
            };
            bn.forward(&xd, statistics, y, stats).unwrap();
            let grads = Gradients {
                dx: Some(dx),
                ..Gradients::default()
            };
            bn.backward(&xd, &dy.to_device(d).unwrap(), stats, grads)
                .unwrap();
            results.push((bits(y), bits(dx), bits(mm), bits(mv)));
        }
        assert_eq!(results[0], results[1], "step {step} ({rows} rows)");
    }
}

#[test]
fn mixed_devices_and_mismatched_statistics_are_errors() {
    let Some(device) = gpu() else { return };
    let x = randn(&[4, 3], 1, 1.0, 0.0).to_device(device).unwrap();
    let host_gamma = Tensor::ones(&[3]);
    let (mm, mv) = (
        Tensor::zeros(&[3]).to_device(device).unwrap(),
        Tensor::ones(&[3]).to_device(device).unwrap(),
    );
    let (mut y, mut stats) = (Tensor::zeros(&[0]), BatchNormStats::new());
    let bn = BatchNorm {
        gamma: Some(&host_gamma),
        beta: None,
        epsilon: 1e-3,
    };
    let moving = Statistics::Moving {
        moving_mean: &mm,
        moving_variance: &mv,
    };
    let e = bn.forward(&x, moving, &mut y, &mut stats).unwrap_err();
    assert!(matches!(e, Error::DeviceMismatch { .. }), "{e:?}");
    // Statistics of a CPU pass do not serve a GPU backward pass.
    let bn = BatchNorm {
        gamma: None,
        beta: None,
        epsilon: 1e-3,
    };
    let host_x = x.to_device(Device::Cpu).unwrap();
    let (host_mm, host_mv) = (Tensor::zeros(&[3]), Tensor::ones(&[3]));
    let moving = Statistics::Moving {
        moving_mean: &host_mm,
        moving_variance: &host_mv,
    };
    bn.forward(&host_x, moving, &mut y, &mut stats).unwrap();
    let e = bn
        .backward(&x, &x, &mut stats, Gradients::default())
        .unwrap_err();
    assert!(e.to_string().contains("forward pass"), "{e}");
}
