//! The fused GPU updates (feature `cuda`) against the CPU loops.
//!
//! Every kernel source is compiled with NVRTC (no GPU needed; skipped when
//! NVRTC does not load). On a machine with a CUDA device, each optimiser
//! configuration takes 5 steps on the CPU and the same 5 steps on the GPU
//! from the same weights and gradients, and the weights and every slot must
//! agree; the GPU tests print `skipped: no CUDA device: ...` and pass
//! elsewhere.
//!
//! The kernels do the CPU's `f32` operations in the same order with
//! round-to-nearest intrinsics that are never contracted into an FMA, and
//! IEEE division and square root (`__fdiv_rn`, `__fsqrt_rn`), so the
//! results should be bit-identical; the 5-step comparison allows a relative
//! 1e-6 all the same (and prints how many elements differ at all), while
//! the flush-to-zero test, whose point is the exact bits of tiny values,
//! compares bits.
#![cfg(feature = "cuda")]

use hebb_autograd::Variable;
use hebb_optim::{Adadelta, Adagrad, Adam, CUDA_SOURCES, Error, Optimizer, RmsProp, Sgd};
use hebb_tensor::cuda::compile_check;
use hebb_tensor::cuda::gpu_or_skip as gpu;
use hebb_tensor::{Device, Tensor};

/// The kernels the optimisers launch, by source name.
const KERNELS: [(&str, &[&str]); 5] = [
    (
        "hebb-optim/sgd.cu",
        &["sgd", "sgd_momentum", "sgd_nesterov"],
    ),
    ("hebb-optim/adam.cu", &["adam", "adam_amsgrad"]),
    ("hebb-optim/adagrad.cu", &["adagrad"]),
    (
        "hebb-optim/rmsprop.cu",
        &[
            "rmsprop",
            "rmsprop_momentum",
            "rmsprop_centered",
            "rmsprop_centered_momentum",
        ],
    ),
    ("hebb-optim/adadelta.cu", &["adadelta"]),
];

#[test]
fn every_kernel_source_compiles_with_nvrtc() {
    assert_eq!(CUDA_SOURCES.len(), KERNELS.len());
    for (source, (name, kernels)) in CUDA_SOURCES.iter().zip(KERNELS) {
        assert_eq!(source.name, name);
        for kernel in kernels {
            assert!(
                source
                    .code
                    .contains(&format!("extern \"C\" __global__ void {kernel}(")),
                "{name} lacks kernel {kernel}"
            );
        }
        match compile_check(source) {
            Ok(()) => {}
            Err(hebb_tensor::Error::NoCudaDevice { reason }) => {
                eprintln!("skipped: NVRTC not available ({reason})");
                return;
            }
            Err(e) => panic!("{name} does not compile: {e}"),
        }
    }
}

/// Deterministic values in `[-scale, scale)` (a 64-bit LCG).
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
            (2.0 * unit - 1.0) * scale
        })
        .collect()
}

/// Variable shapes: a small matrix, several blocks of 256 threads, and more
/// elements than the CPU Adam's parallel threshold (2^15).
const SHAPES: [&[usize]; 3] = [&[3, 5], &[1000], &[40_000]];

fn weights() -> Vec<Variable> {
    SHAPES
        .iter()
        .enumerate()
        .map(|(i, shape)| {
            let n = shape.iter().product();
            let t = Tensor::from_vec(values(n, 100 + i as u64, 1.0), shape).unwrap();
            Variable::new(format!("w{i}"), t)
        })
        .collect()
}

fn gradients(step: u64) -> Vec<Tensor> {
    SHAPES
        .iter()
        .enumerate()
        .map(|(i, shape)| {
            let n = shape.iter().product();
            // Some exact zeros too (a gradient that does not reach a weight).
            let mut g = values(n, 1000 * step + i as u64, 0.5);
            g.iter_mut().step_by(7).for_each(|x| *x = 0.0);
            Tensor::from_vec(g, shape).unwrap()
        })
        .collect()
}

/// `a` and `b` agree within a relative 1e-6; returns how many elements
/// differ in any bit.
fn assert_close(what: &str, a: &[f32], b: &[f32]) -> usize {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let mut differ = 0;
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-6 * x.abs().max(y.abs()),
            "{what}[{i}]: CPU {x:e}, GPU {y:e}"
        );
        differ += usize::from(x.to_bits() != y.to_bits());
    }
    differ
}

/// 5 steps on the CPU and on `device` from the same weights and gradients;
/// weights and slots must agree.
fn cpu_matches_gpu(device: Device, make: fn() -> Box<dyn Optimizer>) {
    let mut cpu_opt = make();
    let mut gpu_opt = make();
    let name = cpu_opt.name();
    let mut cpu_w = weights();
    let mut gpu_w: Vec<Variable> = cpu_w
        .iter()
        .map(|v| Variable::new(v.name(), v.value().to_device(device).unwrap()))
        .collect();
    // A clone of a weight on the GPU shares its buffer: the kernel must copy
    // it first and leave the clone alone. (Not read before the step: a
    // tensor's host copy is shared by its clones.)
    let kept = gpu_w[1].value().clone();
    let initial = cpu_w[1].value().to_vec();
    for step in 0..5 {
        let g = gradients(step);
        let g_gpu: Vec<Tensor> = g.iter().map(|t| t.to_device(device).unwrap()).collect();
        cpu_opt
            .apply_gradients(&mut cpu_w.iter_mut().collect::<Vec<_>>(), &g)
            .unwrap();
        gpu_opt
            .apply_gradients(&mut gpu_w.iter_mut().collect::<Vec<_>>(), &g_gpu)
            .unwrap();
    }
    assert_eq!(kept.to_vec(), initial, "{name}: a shared buffer changed");
    assert_eq!(gpu_opt.iterations(), 5);
    let mut differ = 0;
    for (c, g) in cpu_w.iter().zip(&gpu_w) {
        assert_eq!(
            g.value().device(),
            device,
            "{name}: {} left the GPU",
            g.name()
        );
        differ += assert_close(
            &format!("{name} {}", c.name()),
            &c.value().to_vec(),
            &g.value().to_vec(),
        );
    }
    let (cpu_slots, gpu_slots) = (cpu_opt.slots(), gpu_opt.slots());
    assert_eq!(cpu_slots.len(), gpu_slots.len(), "{name}: slot count");
    assert!(!cpu_slots.is_empty() || name == "SGD");
    for ((cn, ct), (gn, gt)) in cpu_slots.iter().zip(&gpu_slots) {
        assert_eq!(cn, gn);
        assert_eq!(gt.device(), device, "{name}: slot {gn} is not on the GPU");
        assert_eq!(ct.shape(), gt.shape(), "{name}: slot {gn}");
        differ += assert_close(&format!("{name} {cn}"), &ct.to_vec(), &gt.to_vec());
    }
    eprintln!("{name}: {differ} elements not bit-identical between CPU and GPU");
}

macro_rules! cpu_gpu_tests {
    ($($test:ident: $make:expr;)*) => {$(
        #[test]
        fn $test() {
            let Some(device) = gpu() else { return };
            cpu_matches_gpu(device, || Box::new($make));
        }
    )*};
}

cpu_gpu_tests! {
    sgd_plain_matches_cpu: Sgd::new(0.1);
    sgd_momentum_matches_cpu: Sgd::new(0.1).with_momentum(0.9, false);
    sgd_nesterov_matches_cpu: Sgd::new(0.1).with_momentum(0.9, true);
    adam_matches_cpu: Adam::new(0.01);
    adam_amsgrad_matches_cpu: Adam::new(0.01).with_amsgrad(true);
    adagrad_matches_cpu: Adagrad::new(0.1);
    rmsprop_plain_matches_cpu: RmsProp::new(0.01);
    rmsprop_momentum_matches_cpu: RmsProp::new(0.01).with_momentum(0.9);
    rmsprop_centered_matches_cpu: RmsProp::new(0.01).with_centered(true);
    rmsprop_centered_momentum_matches_cpu:
        RmsProp::new(0.01).with_centered(true).with_momentum(0.9);
    adadelta_matches_cpu: Adadelta::new(1.0);
}

/// Slots just above `f32::MIN_POSITIVE` (both signs), zero gradients: the
/// averages decay below it within 5 steps and must be flushed to zeros of
/// the same sign on the GPU as on the CPU (and RMSprop's momentum, which is
/// not flushed, must stay subnormal on both). Also installs host slots into
/// an optimiser whose variables are on the GPU, which moves them there.
#[test]
fn flush_to_zero_matches_cpu() {
    let Some(device) = gpu() else { return };
    let makes: [fn() -> Box<dyn Optimizer>; 7] = [
        || Box::new(Sgd::new(0.1).with_momentum(0.9, false)),
        || Box::new(Sgd::new(0.1).with_momentum(0.5, true)),
        || Box::new(Adam::default()),
        || Box::new(Adam::default().with_amsgrad(true)),
        || Box::new(RmsProp::default().with_momentum(0.5)),
        || Box::new(RmsProp::default().with_centered(true)),
        || Box::new(Adadelta::default()),
    ];
    let m = f32::MIN_POSITIVE;
    let tiny = [
        m * 1.0001,
        -m * 1.0001,
        m * 1.01,
        -m * 1.1,
        m * 1.3,
        -m * 2.0,
        m * 1e3,
        0.0,
        -0.0,
        m,
    ];
    let shape = [tiny.len()];
    for make in makes {
        // Averages of g² and Δw² start >= 0; the others get both signs.
        let state = |opt: &dyn Optimizer| -> Vec<(String, Tensor)> {
            let mut w = Variable::new("w", Tensor::full(&shape, 1.0));
            let mut probe = make();
            probe
                .apply_gradients(&mut [&mut w], &[Tensor::full(&shape, 1.0)])
                .unwrap();
            assert_eq!(probe.name(), opt.name());
            probe
                .slots()
                .into_iter()
                .map(|(name, _)| {
                    let values: Vec<f32> =
                        if name.starts_with("velocity") || name.starts_with("accumulated") {
                            tiny.iter().map(|x| x.abs()).collect()
                        } else {
                            tiny.to_vec()
                        };
                    (name, Tensor::from_vec(values, &shape).unwrap())
                })
                .collect()
        };
        let mut cpu_opt = make();
        let mut gpu_opt = make();
        let name = cpu_opt.name();
        let slots = state(cpu_opt.as_ref());
        cpu_opt.set_state(1, &slots, &[shape.to_vec()]).unwrap();
        gpu_opt.set_state(1, &slots, &[shape.to_vec()]).unwrap();
        let mut cpu_w = Variable::new("w", Tensor::full(&shape, 1.0));
        let mut gpu_w = Variable::new("w", Tensor::full_on(&shape, 1.0, device).unwrap());
        for _ in 0..5 {
            cpu_opt
                .apply_gradients(&mut [&mut cpu_w], &[Tensor::zeros(&shape)])
                .unwrap();
            gpu_opt
                .apply_gradients(
                    &mut [&mut gpu_w],
                    &[Tensor::full_on(&shape, 0.0, device).unwrap()],
                )
                .unwrap();
        }
        let bits = |t: &Tensor| t.to_vec().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(cpu_w.value()), bits(gpu_w.value()), "{name}: weights");
        let mut flushed = 0;
        for ((cn, ct), (gn, gt)) in cpu_opt.slots().iter().zip(&gpu_opt.slots()) {
            assert_eq!(cn, gn);
            assert_eq!(
                gt.device(),
                device,
                "{name}: slot {gn} was not moved to the GPU"
            );
            assert_eq!(
                bits(ct),
                bits(gt),
                "{name}: slot {cn}: {:?} vs {:?}",
                ct.to_vec(),
                gt.to_vec()
            );
            flushed += ct.to_vec().iter().filter(|x| **x == 0.0).count();
        }
        // Two of the ten start at zero in every slot; more are zero after flushing.
        let slot_count = cpu_opt.slots().len();
        assert!(
            flushed > 2 * slot_count,
            "{name}: nothing was flushed to zero"
        );
    }
}

#[test]
fn gradient_on_another_device_is_an_error() {
    let Some(device) = gpu() else { return };
    let on_cpu = Tensor::full(&[4], 0.5);
    let on_gpu = Tensor::full_on(&[4], 0.5, device).unwrap();
    let cases = [
        (on_cpu.clone(), on_gpu.clone(), "cpu", "cuda:0"),
        (on_gpu, on_cpu, "cuda:0", "cpu"),
    ];
    for (value, gradient, variable_device, gradient_device) in cases {
        let mut w = Variable::new("dense/kernel", value.clone());
        let mut adam = Adam::default();
        let err = adam
            .apply_gradients(&mut [&mut w], &[gradient])
            .unwrap_err();
        assert!(
            matches!(
                &err,
                Error::GradientDevice { optimizer: "Adam", variable, variable_device: v, gradient_device: g }
                    if variable == "dense/kernel" && *v == value.device() && *g != value.device()
            ),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("dense/kernel")
                && message.contains(&format!("on {variable_device}"))
                && message.contains(&format!("on {gradient_device}")),
            "{message}"
        );
        // Nothing changed.
        assert_eq!(adam.iterations(), 0);
        assert!(adam.slots().is_empty());
        assert_eq!(w.value().to_vec(), vec![0.5; 4]);
    }
}
