//! Layers without GPU kernels refuse GPU tensors (feature `cuda`) with
//! `Error::Unsupported` naming the layer, rather than computing on the CPU.
//! Skips, saying why, without a GPU.
#![cfg(feature = "cuda")]

use hebb_layers::{Error, Layer, Pass, Reshape};
use hebb_tensor::random::chacha;
use hebb_tensor::{Device, Tensor};

#[test]
fn layers_without_gpu_kernels_refuse_gpu_tensors() {
    let device = match Device::cuda(0) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    let mut layers: Vec<Box<dyn Layer>> = vec![Box::new(Reshape::new(&[3, 2]).name("rs"))];
    let x = Tensor::ones(&[4, 6]).to_device(device).unwrap();
    for layer in &mut layers {
        layer.build(&[6], &mut chacha(0)).unwrap();
        assert!(!layer.supports(device));
        for pass in [Pass::TRAIN, Pass::INFER] {
            let e = layer.forward(&x, pass).unwrap_err();
            assert!(
                matches!(&e, Error::Unsupported { layer: l, .. } if l == layer.name()),
                "{e:?}"
            );
            assert!(e.to_string().contains("cuda:0"), "{e}");
        }
        let mut g = Tensor::ones(&[4, 6]).to_device(device).unwrap();
        let e = layer.backward(&x, &mut g, None, Pass::TRAIN).unwrap_err();
        assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
    }
}
