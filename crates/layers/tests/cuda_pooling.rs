//! The pooling layers and ops have no GPU kernels yet: GPU tensors are
//! refused by name (`Error::Unsupported` naming the layer; the tensor and
//! tape ops say "no GPU kernel") rather than computed on the CPU.
//! Feature `cuda`; skips, saying why, without a GPU.
#![cfg(feature = "cuda")]

use hebb_autograd::GradientTape;
use hebb_layers::{
    AveragePooling2D, Error, GlobalAveragePooling2D, GlobalMaxPooling2D, Layer, MaxPooling2D, Pass,
};
use hebb_tensor::ops::Padding;
use hebb_tensor::random::chacha;
use hebb_tensor::{Device, Tensor};

#[test]
fn pooling_refuses_gpu_tensors() {
    let device = match Device::cuda(0) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    let x = Tensor::ones(&[2, 4, 4, 3]).to_device(device).unwrap();
    let mut layers: Vec<Box<dyn Layer>> = vec![
        Box::new(MaxPooling2D::default().name("mp")),
        Box::new(AveragePooling2D::default().name("ap")),
        Box::new(GlobalAveragePooling2D::new().name("gap")),
        Box::new(GlobalMaxPooling2D::new().name("gmp")),
    ];
    for layer in &mut layers {
        layer.build(&[4, 4, 3], &mut chacha(0)).unwrap();
        assert!(!layer.supports(device));
        let e = layer.forward(&x, Pass::TRAIN).unwrap_err();
        assert!(
            matches!(&e, Error::Unsupported { layer: l, .. } if l == layer.name()),
            "{e:?}"
        );
        assert!(e.to_string().contains("cuda:0"), "{e}");
    }
    let e = x.max_pool2d([2, 2], [2, 2], Padding::Valid).unwrap_err();
    assert!(e.to_string().contains("no GPU kernel"), "{e}");
    assert!(x.avg_pool2d([2, 2], [2, 2], Padding::Same).is_err());
    assert!(x.global_avg_pool2d().is_err());
    assert!(x.global_max_pool2d().is_err());
    let tape = GradientTape::new();
    let v = tape.watch_tensor(x.clone());
    let e = v.max_pool2d([2, 2], [2, 2], Padding::Valid).unwrap_err();
    assert!(e.to_string().contains("no GPU kernel"), "{e}");
    assert!(v.global_avg_pool2d().is_err());
}
