//! Every built-in layer computes on a GPU (feature `cuda`): `supports`
//! says so for `cuda:0`, so `Sequential::to_device` moves any model of
//! them. (A layer of one's own without GPU kernels is refused by name:
//! hebb-models' `a_layer_without_gpu_kernels_refuses_the_gpu`; each
//! layer's GPU results are checked against the CPU in the other `cuda_*`
//! tests.) Skips, saying why, without a GPU.
#![cfg(feature = "cuda")]

use hebb_layers::{
    ActivationLayer, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten,
    GlobalAveragePooling2D, GlobalMaxPooling2D, Layer, MaxPooling2D, Reshape,
};
use hebb_tensor::Device;

#[test]
fn every_built_in_layer_supports_the_gpu() {
    let device = match Device::cuda(0) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    let layers: Vec<Box<dyn Layer>> = vec![
        Box::new(Dense::new(3)),
        Box::new(Flatten::new()),
        Box::new(ActivationLayer::new(hebb_layers::Activation::Relu)),
        Box::new(Reshape::new(&[3, 2])),
        Box::new(Conv2D::new(2, [3, 3])),
        Box::new(MaxPooling2D::default()),
        Box::new(AveragePooling2D::default()),
        Box::new(GlobalAveragePooling2D::new()),
        Box::new(GlobalMaxPooling2D::new()),
        Box::new(Dropout::new(0.5)),
        Box::new(BatchNormalization::new()),
    ];
    for layer in &layers {
        assert!(layer.supports(device), "{}", layer.class_name());
        assert!(layer.supports(Device::Cpu), "{}", layer.class_name());
    }
}
