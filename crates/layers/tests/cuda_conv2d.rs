//! The `Conv2D` layer on a GPU (feature `cuda`) against the same layer on
//! the CPU: the training step's forward (bias, activation, `Pass::logits`),
//! its backward (kernel, bias and regulariser gradients, the input gradient
//! only when asked for, a frozen layer's none) and the tape form
//! (`Layer::call` through the autograd conv op), every result on the GPU.
//!
//! Every test needs a GPU and prints `skipped: ...` without one.
//!
//! Tolerance: the GPU computes the same formulas but its products (cuBLAS)
//! and the bias gradient (the reduction, in `f64`) sum in other orders than
//! the CPU's blocked GEMM and per-group sums. An element that sums `k` terms
//! `a·b` then differs by about `√k · u · Σ|a·b|` (random rounding errors,
//! `u = 2^-24`; worst case `2 γ_k Σ|a·b|`, see
//! `crates/tensor/tests/cuda_conv.rs`, which checks the op to that bound).
//! With `k <= 300` here that is at most `1e-6 · Σ|a·b|`; the activations'
//! derivatives are at most 1 in magnitude (tanh's backward reads `y` and can
//! double a forward difference) and libm differs by a few ulp of `|y|`, so
//! each element is checked to `1e-5 · (Σ|a·b| + |cpu|)`, a margin of about
//! five over the random estimate. `Σ|a·b|` is the element's own: the
//! convolution of `|x|` with `|K|` plus `|b|` for outputs, `|x|` against the
//! CPU's `|δ|` (the output gradient after the activation's derivative) for
//! the kernel gradient, `|δ|` against `|K|` for the input gradient, `Σ|δ|`
//! for the bias gradient.
#![cfg(feature = "cuda")]

use hebb_autograd::GradientTape;
use hebb_layers::{Activation, Conv2D, Error, Layer, Pass, Regularizer};
use hebb_tensor::cuda::gpu_or_skip as gpu;
use hebb_tensor::ops::Padding;
use hebb_tensor::random::chacha;
use hebb_tensor::{Device, Tensor};
use rand::Rng;

/// Uniform values in `[-1, 1)` of `shape` from `seed`.
fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = chacha(seed);
    let n = shape.iter().product();
    Tensor::from_vec((0..n).map(|_| rng.random_range(-1.0..1.0)).collect(), shape).unwrap()
}

/// `gpu` is on `dev`, has `cpu`'s shape and is within `1e-5 · (scale +
/// |cpu|)` of it element by element (see the module docs).
fn assert_close(what: &str, dev: Device, gpu: &Tensor, cpu: &Tensor, scale: &Tensor) {
    assert_eq!(gpu.device(), dev, "{what}: result left the GPU");
    assert_eq!(gpu.shape(), cpu.shape(), "{what}: shape");
    assert_eq!(scale.shape(), cpu.shape(), "{what}: scale's shape");
    let g = gpu.try_to_vec().unwrap();
    for (i, ((&g, &c), &s)) in g
        .iter()
        .zip(cpu.as_slice())
        .zip(scale.as_slice())
        .enumerate()
    {
        let bound = 1e-5 * (s + c.abs());
        assert!(
            (g - c).abs() <= bound,
            "{what}[{i}]: GPU {g:e} vs CPU {c:e} (bound {bound:e})"
        );
    }
}

/// The layer built for `input` (seeded), and a copy with its weights on `dev`.
fn pair(mut layer: Conv2D, input: [usize; 3], dev: Device) -> (Conv2D, Conv2D) {
    layer.set_name("conv");
    layer.build(&input, &mut chacha(7)).unwrap();
    let mut on_gpu = layer.clone();
    for w in on_gpu.weights_mut() {
        let v = w.value().to_device(dev).unwrap();
        w.assign(v).unwrap();
    }
    (layer, on_gpu)
}

/// The scales of the module docs for the layer's output, kernel gradient,
/// input gradient and bias gradient, from the CPU layer and its `δ`.
fn scales(layer: &Conv2D, x: &Tensor, delta: &Tensor) -> [Tensor; 4] {
    let k = layer.kernel().unwrap().value().abs();
    let (s, p, d) = (
        conv_strides(layer),
        conv_padding(layer),
        layer_dilation(layer),
    );
    let mut sy = x.abs().conv2d(&k, s, p, d).unwrap();
    if let Some(b) = layer.bias() {
        sy = sy.add(&b.value().abs()).unwrap();
    }
    let (sdx, sdk) = x
        .abs()
        .conv2d_backward(&k, &delta.abs(), s, p, d, [true, true])
        .unwrap();
    let f = layer.filters();
    let sdb = delta
        .abs()
        .reshape(&[delta.len() / f, f])
        .unwrap()
        .sum(0, false)
        .unwrap();
    [sy, sdk.unwrap(), sdx.unwrap(), sdb]
}

// The layer's configuration, read back from its Keras config.
fn conv_strides(layer: &Conv2D) -> [usize; 2] {
    pair_of(&layer.config()["strides"])
}
fn layer_dilation(layer: &Conv2D) -> [usize; 2] {
    pair_of(&layer.config()["dilation_rate"])
}
fn conv_padding(layer: &Conv2D) -> Padding {
    Padding::from_name(layer.config()["padding"].as_str().unwrap()).unwrap()
}
fn pair_of(v: &serde_json::Value) -> [usize; 2] {
    [0, 1].map(|i| v[i].as_u64().unwrap() as usize)
}

/// One step (forward, backward with or without the input gradient) of
/// `layer` on the CPU and on the GPU, compared.
fn step_matches_the_cpu(layer: Conv2D, input: [usize; 3], rows: usize, logits: bool, dev: Device) {
    let what = format!("{:?} logits {logits}", Layer::activation(&layer));
    let (mut cpu, mut gpu) = pair(layer, input, dev);
    assert!(gpu.supports(dev));
    let mut x_shape = vec![rows];
    x_shape.extend(input);
    let x = random(&x_shape, 1);
    let xg = x.to_device(dev).unwrap();
    let pass = Pass {
        training: true,
        logits,
        ..Pass::default()
    };
    let y = cpu.forward(&x, pass).unwrap().clone();
    let g = random(y.shape(), 2);
    let delta = if logits {
        g.clone()
    } else {
        Layer::activation(&cpu).backprop(&y, &g).unwrap()
    };
    let [sy, sdk, sdx, sdb] = scales(&cpu, &x, &delta);
    let yg = gpu.forward(&xg, pass).unwrap().clone();
    assert_close(&format!("y {what}"), dev, &yg, &y, &sy);

    let (mut gc, mut gg) = (g.clone(), g.to_device(dev).unwrap());
    let (mut dx, mut dxg) = (Tensor::zeros(&[0]), Tensor::zeros(&[0]));
    cpu.backward(&x, &mut gc, Some(&mut dx), pass).unwrap();
    gpu.backward(&xg, &mut gg, Some(&mut dxg), pass).unwrap();
    assert_close(&format!("dx {what}"), dev, &dxg, &dx, &sdx);
    let trainable = Layer::trainable(&cpu);
    assert_eq!(gpu.gradients().len(), cpu.gradients().len(), "{what}");
    if !trainable {
        assert!(
            gpu.gradients().is_empty(),
            "{what}: a frozen layer's gradients"
        );
        return;
    }
    // The regulariser's gradient l1·sign(w) + 2·l2·w is at most l1 + 2·l2·|w|.
    let sk = match cpu.config()["kernel_regularizer"]["config"].as_object() {
        Some(c) => {
            let l1 = c.get("l1").and_then(|v| v.as_f64()).unwrap_or(0.0) as f32;
            let l2 = c.get("l2").and_then(|v| v.as_f64()).unwrap_or(0.0) as f32;
            let w = cpu.kernel().unwrap().value().abs();
            sdk.add(&w.mul_scalar(2.0 * l2).add_scalar(l1)).unwrap()
        }
        None => sdk,
    };
    assert_close(
        &format!("dK {what}"),
        dev,
        &gpu.gradients()[0],
        &cpu.gradients()[0],
        &sk,
    );
    if cpu.bias().is_some() {
        assert_close(
            &format!("db {what}"),
            dev,
            &gpu.gradients()[1],
            &cpu.gradients()[1],
            &sdb,
        );
    }

    // Without the input gradient, after an inference pass (no columns kept):
    // the same weight gradients.
    let want: Vec<Vec<f32>> = gpu
        .gradients()
        .iter()
        .map(|t| t.try_to_vec().unwrap())
        .collect();
    let infer = Pass {
        training: false,
        ..pass
    };
    gpu.forward(&xg, infer).unwrap();
    let mut gg = g.to_device(dev).unwrap();
    gpu.backward(&xg, &mut gg, None, pass).unwrap();
    let again: Vec<Vec<f32>> = gpu
        .gradients()
        .iter()
        .map(|t| t.try_to_vec().unwrap())
        .collect();
    assert_eq!(again, want, "{what}: gradients with recomputed columns");
}

#[test]
fn the_step_matches_the_cpu() {
    let Some(dev) = gpu() else { return };
    // ReLU (the MNIST convnet's layers), batch 3.
    step_matches_the_cpu(
        Conv2D::new(8, [3, 3]).activation(Activation::Relu),
        [9, 8, 3],
        3,
        false,
        dev,
    );
    step_matches_the_cpu(
        Conv2D::new(16, [3, 3]).activation(Activation::Relu),
        [13, 13, 32],
        2,
        false,
        dev,
    );
    // Same padding, strides, tanh and a kernel regulariser; batch 1.
    step_matches_the_cpu(
        Conv2D::new(3, [2, 3])
            .strides([2, 1])
            .padding(Padding::Same)
            .activation(Activation::Tanh)
            .kernel_regularizer(Regularizer::l1_l2(0.01, 0.02)),
        [5, 6, 3],
        1,
        false,
        dev,
    );
    // Dilation, no bias, sigmoid.
    step_matches_the_cpu(
        Conv2D::new(2, [3, 2])
            .dilation_rate([2, 1])
            .use_bias(false)
            .activation(Activation::Sigmoid),
        [7, 5, 2],
        2,
        false,
        dev,
    );
    // Softmax over the filters, left to the loss (logits); a 1×1 kernel.
    step_matches_the_cpu(
        Conv2D::new(5, [1, 1]).activation(Activation::Softmax),
        [3, 4, 2],
        2,
        true,
        dev,
    );
    // Linear with a kernel as large as the image (one output pixel).
    step_matches_the_cpu(Conv2D::new(4, [4, 5]), [4, 5, 2], 3, false, dev);
    // A frozen layer: no weight gradients, the input gradient still.
    step_matches_the_cpu(
        Conv2D::new(3, [3, 3])
            .activation(Activation::Relu)
            .trainable(false),
        [6, 6, 2],
        2,
        false,
        dev,
    );
}

/// The tape form on the GPU (the autograd conv op, the bias' broadcast add,
/// the activation) gives the CPU tape's output and gradients.
#[test]
fn the_tape_form_matches_the_cpu() {
    let Some(dev) = gpu() else { return };
    let (cpu, gpu) = pair(
        Conv2D::new(4, [3, 3])
            .strides([1, 2])
            .padding(Padding::Same)
            .activation(Activation::Relu),
        [6, 7, 3],
        dev,
    );
    let x = random(&[2, 6, 7, 3], 3);
    let run = |layer: &Conv2D, x: &Tensor, g: &Tensor| {
        let tape = GradientTape::new();
        let xv = tape.watch_tensor(x.clone());
        let y = layer.call(&tape, xv, true).unwrap();
        let loss = y.mul(tape.constant(g.clone())).unwrap().sum_all();
        let dx = tape.gradient(loss, &[xv]).unwrap().remove(0);
        let dw = tape.gradient_of(loss, &layer.weights()).unwrap();
        (y.value(), dx, dw)
    };
    let g = random(&[2, 6, 4, 4], 4);
    let (y, dx, dw) = run(&cpu, &x, &g);
    let (yg, dxg, dwg) = run(&gpu, &x.to_device(dev).unwrap(), &g.to_device(dev).unwrap());
    let delta = Activation::Relu.backprop(&y, &g).unwrap();
    let [sy, sdk, sdx, sdb] = scales(&cpu, &x, &delta);
    assert_close("tape y", dev, &yg, &y, &sy);
    assert_close("tape dx", dev, &dxg, &dx, &sdx);
    assert_close("tape dK", dev, &dwg[0], &dw[0], &sdk);
    assert_close("tape db", dev, &dwg[1], &dw[1], &sdb);
}

/// A GPU input with the weights left on the CPU is refused by name.
#[test]
fn weights_on_another_device_are_refused_by_name() {
    let Some(dev) = gpu() else { return };
    let mut layer = Conv2D::new(2, [3, 3]).name("c");
    layer.build(&[5, 5, 1], &mut chacha(0)).unwrap();
    assert!(layer.supports(dev) && layer.supports(Device::Cpu));
    let x = Tensor::zeros(&[1, 5, 5, 1]).to_device(dev).unwrap();
    let e = layer.forward(&x, Pass::TRAIN).unwrap_err();
    assert!(
        matches!(&e, Error::Unsupported { layer, .. } if layer == "c"),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("cuda:0") && e.to_string().contains("cpu"),
        "{e}"
    );
}
