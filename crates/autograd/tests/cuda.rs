//! The tape on a GPU (feature `cuda`): every differentiable op's value and
//! gradients agree with the CPU's. Skips, saying why, without a GPU.
#![cfg(feature = "cuda")]

use hebb_autograd::{GradientTape, Result, Var};
use hebb_tensor::cuda::gpu_or_skip as gpu;
use hebb_tensor::{Device, Tensor};

/// Deterministic values in about [-2, 2], none exactly 0 (kinks of relu, abs).
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 - 499.5) / 250.0)
        .collect()
}

type Op = for<'t> fn(Var<'t>, Var<'t>) -> Result<Var<'t>>;

/// `f(a, b)` summed with fixed weights, and its gradients, on `device`.
fn run(f: Op, a: &Tensor, b: &Tensor, device: Device) -> (Vec<f32>, Vec<Vec<f32>>) {
    let tape = GradientTape::new();
    let va = tape.watch_tensor(a.to_device(device).unwrap());
    let vb = tape.watch_tensor(b.to_device(device).unwrap());
    let out = f(va, vb).unwrap();
    let value = out.value();
    assert_eq!(value.device(), device, "the result stays on {device}");
    let weights = Tensor::from_vec(values(value.len(), 3), value.shape())
        .unwrap()
        .to_device(device)
        .unwrap();
    let target = out.mul(tape.constant(weights)).unwrap().sum_all();
    let grads = tape.gradient(target, &[va, vb]).unwrap();
    (
        value.to_vec(),
        grads
            .iter()
            .map(|g| g.to_device(Device::Cpu).unwrap().to_vec())
            .collect(),
    )
}

fn close(what: &str, a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let scale = x.abs().max(y.abs()).max(1.0);
        assert!(
            (x - y).abs() <= tol * scale || (x.is_nan() && y.is_nan()),
            "{what}[{i}]: cpu {x} vs gpu {y}"
        );
    }
}

#[test]
fn every_op_and_its_gradient_matches_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let a = Tensor::from_vec(values(6 * 5, 1), &[6, 5]).unwrap();
    let b = Tensor::from_vec(values(5, 2), &[5]).unwrap();
    let m = Tensor::from_vec(values(5 * 4, 4), &[5, 4]).unwrap();
    let positive = Tensor::from_vec(
        values(6 * 5, 5).iter().map(|v| v.abs() + 0.1).collect(),
        &[6, 5],
    )
    .unwrap();
    let cases: Vec<(&str, Op, &Tensor, &Tensor)> = vec![
        ("add (broadcast)", |a, b| a.add(b), &a, &b),
        ("sub (broadcast)", |a, b| a.sub(b), &a, &b),
        ("mul (broadcast)", |a, b| a.mul(b), &a, &b),
        ("div (broadcast)", |a, b| a.div(b), &a, &b),
        ("maximum", |a, b| a.maximum(b), &a, &b),
        ("minimum", |a, b| a.minimum(b), &a, &b),
        ("matmul", |a, b| a.matmul(b), &a, &m),
        ("neg", |a, b| a.neg().add(b), &a, &b),
        (
            "add_scalar, mul_scalar",
            |a, b| a.add_scalar(0.5).mul_scalar(-1.5).add(b),
            &a,
            &b,
        ),
        ("powf", |a, b| a.powf(3.0).add(b), &a, &b),
        ("square", |a, b| a.square().add(b), &a, &b),
        ("sqrt", |a, b| a.sqrt().add(b), &positive, &b),
        ("abs", |a, b| a.abs().add(b), &a, &b),
        ("exp", |a, b| a.exp().add(b), &a, &b),
        ("log", |a, b| a.log().add(b), &positive, &b),
        ("log1p", |a, b| a.log1p().add(b), &positive, &b),
        ("sigmoid", |a, b| a.sigmoid().add(b), &a, &b),
        ("tanh", |a, b| a.tanh().add(b), &a, &b),
        ("relu", |a, b| a.relu().add(b), &a, &b),
        ("leaky_relu", |a, b| a.leaky_relu(0.2).add(b), &a, &b),
        ("clip", |a, b| a.clip(-0.5, 0.7)?.add(b), &a, &b),
        ("softmax", |a, b| a.add(b)?.softmax(), &a, &b),
        ("sum axis 0", |a, b| a.sum(0, false)?.add(b), &a, &b),
        ("sum axis 1 keepdims", |a, b| a.sum(1, true)?.add(b), &a, &b),
        ("mean axis 0", |a, b| a.mean(0, true)?.add(b), &a, &b),
        ("sum_all", |a, b| a.sum_all().add(b), &a, &b),
        ("mean_all", |a, b| a.mean_all().add(b), &a, &b),
        (
            "reshape",
            |a, b| {
                a.reshape(&[5, 6])?
                    .sum(0, false)?
                    .add(b.reshape(&[1, 5])?.sum(0, false)?.sum_all())
            },
            &a,
            &b,
        ),
    ];
    for (name, f, x, y) in cases {
        let (v_cpu, g_cpu) = run(f, x, y, Device::Cpu);
        let (v_gpu, g_gpu) = run(f, x, y, gpu);
        close(&format!("{name}: value"), &v_cpu, &v_gpu, 1e-5);
        for (k, (gc, gg)) in g_cpu.iter().zip(&g_gpu).enumerate() {
            close(&format!("{name}: gradient {k}"), gc, gg, 1e-5);
        }
    }
}
