//! `Reshape` and `Flatten` on a GPU (feature `cuda`): the step's output is
//! the input reshaped and the input's gradient the output's gradient
//! reshaped back, both sharing the device memory they come from (no copy,
//! no launch, nothing through the host); the tape form agrees. Values are
//! moved, not computed, so they must equal the CPU's exactly.
//!
//! Sharing is seen through the host copy a GPU tensor makes at its first
//! `as_slice`: tensors that share their device storage share that copy, so
//! their `as_slice` pointers are equal (a copied tensor would have its own).
//!
//! Each test skips, saying why, without a GPU.
#![cfg(feature = "cuda")]

use hebb_autograd::GradientTape;
use hebb_layers::{Flatten, Layer, Pass, Reshape};
use hebb_tensor::cuda::gpu_or_skip as gpu;
use hebb_tensor::random::{RandomState, chacha};
use hebb_tensor::{Device, Tensor};

/// Whether `a` and `b` share their storage (see the module docs).
fn shared(a: &Tensor, b: &Tensor) -> bool {
    a.as_slice().as_ptr() == b.as_slice().as_ptr()
}

/// The step and the tape of a layer (made twice by `make`) on `device`
/// against the CPU's, for an input `[rows, ..input]` whose output is
/// `[rows, ..output]`.
fn check(device: Device, make: &dyn Fn() -> Box<dyn Layer>, input: &[usize], output: &[usize]) {
    let (mut layer, mut cpu) = (make(), make());
    let what = layer.class_name().to_string();
    layer.build(input, &mut chacha(0)).unwrap();
    cpu.build(input, &mut chacha(0)).unwrap();
    assert!(layer.supports(device), "{what}");
    let rows = 3;
    let x_shape: Vec<usize> = std::iter::once(rows).chain(input.iter().copied()).collect();
    let y_shape: Vec<usize> = std::iter::once(rows)
        .chain(output.iter().copied())
        .collect();
    let x = RandomState::new(1).randn_tensor(&x_shape).unwrap();
    let g = RandomState::new(2).randn_tensor(&y_shape).unwrap();
    let (xd, gd) = (x.to_device(device).unwrap(), g.to_device(device).unwrap());
    let mut gi = Tensor::zeros(&[0]);
    for pass in [Pass::TRAIN, Pass::INFER] {
        let y = cpu.forward(&x, pass).unwrap().clone();
        let yd = layer.forward(&xd, pass).unwrap().clone();
        assert_eq!((yd.shape(), yd.device()), (&y_shape[..], device), "{what}");
        assert_eq!(yd.to_vec(), y.to_vec(), "{what}");
        assert!(
            shared(&yd, &xd),
            "{what}: the output is not the input's storage"
        );

        cpu.backward(&x, &mut g.clone(), Some(&mut gi), pass)
            .unwrap();
        let mut grad_out = gd.clone();
        let mut gid = Tensor::zeros(&[0]);
        layer
            .backward(&xd, &mut grad_out, Some(&mut gid), pass)
            .unwrap();
        assert_eq!(
            (gid.shape(), gid.device()),
            (&x_shape[..], device),
            "{what}"
        );
        assert_eq!(gid.to_vec(), gi.to_vec(), "{what}");
        assert!(shared(&gid, &gd), "{what}: the gradient was copied");
    }

    let tape = GradientTape::new();
    let xv = tape.watch_tensor(xd.clone());
    let yv = layer.call(&tape, xv, true).unwrap();
    assert_eq!(
        (yv.value().shape(), yv.value().device()),
        (&y_shape[..], device)
    );
    let loss = yv.mul(tape.constant(gd.clone())).unwrap().sum_all();
    let dx = tape.gradient(loss, &[xv]).unwrap().remove(0);
    assert_eq!(dx.device(), device, "{what}");
    assert_eq!(dx.to_vec(), gi.to_vec(), "{what}: the tape's gradient");
}

#[test]
fn reshape_and_flatten_share_the_device_memory() {
    let Some(device) = gpu() else { return };
    check(
        device,
        &|| Box::new(Reshape::new(&[28, 28, 1])),
        &[784],
        &[28, 28, 1],
    );
    check(
        device,
        &|| Box::new(Reshape::new(&[-1, 2])),
        &[3, 4],
        &[6, 2],
    );
    check(device, &|| Box::new(Flatten::new()), &[5, 5, 64], &[1600]);
}

/// A gradient on another device or of another shape is refused, naming
/// the layer, the shapes and the devices.
#[test]
fn reshape_checks_the_gradient() {
    let Some(device) = gpu() else { return };
    let mut r = Reshape::new(&[3, 2]).name("rs");
    r.build(&[6], &mut chacha(0)).unwrap();
    let x = Tensor::ones(&[4, 6]).to_device(device).unwrap();
    r.forward(&x, Pass::TRAIN).unwrap();
    let mut gi = Tensor::zeros(&[0]);
    let e = r
        .backward(
            &x,
            &mut Tensor::ones(&[4, 3, 2]),
            Some(&mut gi),
            Pass::TRAIN,
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("rs") && e.contains("cpu") && e.contains("cuda:0"),
        "{e}"
    );
    let mut bad = Tensor::ones(&[4, 2, 3]).to_device(device).unwrap();
    let e = r
        .backward(&x, &mut bad, Some(&mut gi), Pass::TRAIN)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[4, 2, 3]") && e.contains("[4, 3, 2]"), "{e}");
}
