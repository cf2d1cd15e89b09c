//! Writes small hebb model files in the three formats into the fuzz corpus
//! (`cargo run --bin make_seeds -- corpus`): a trained Flatten - Dense -
//! Dense - Activation model with Adam's state, and an unbuilt one.

use std::path::Path;

use hebb_layers::Activation;
use hebb_models::sequential::layers::{ActivationLayer, Dense, Flatten};
use hebb_models::sequential::{FitOptions, Sequential};
use hebb_tensor::Tensor;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let corpus = std::env::args().nth(1).unwrap_or_else(|| "corpus".into());
    let corpus = Path::new(&corpus);
    let mut m = Sequential::new().with_seed(1);
    m.add(Flatten::new().input_shape(&[2, 2]))?;
    m.add(Dense::new(3).activation(Activation::Relu))?;
    m.add(Dense::new(2))?;
    m.add(ActivationLayer::new(Activation::Softmax))?;
    m.compile("adam", "sparse_categorical_crossentropy", vec!["accuracy"])?;
    let x = Tensor::from_vec((0..32).map(|i| i as f32 / 32.0).collect(), &[8, 2, 2])?;
    let y = Tensor::from_vec((0..8).map(|i| (i % 2) as f32).collect(), &[8])?;
    m.fit(
        &x,
        &y,
        FitOptions {
            batch_size: 4,
            verbose: 0,
            ..Default::default()
        },
    )?;
    m.save(corpus.join("load_native/trained.safetensors"), true)?;
    m.save(corpus.join("load_h5/hebb.h5"), true)?;
    m.save(corpus.join("load_keras/hebb.keras"), true)?;
    let mut unbuilt = Sequential::new();
    unbuilt.add(Dense::new(2).activation(Activation::Tanh))?;
    unbuilt.save(corpus.join("load_native/unbuilt.safetensors"), true)?;
    println!("wrote seeds into {}", corpus.display());
    Ok(())
}
