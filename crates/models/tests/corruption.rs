//! Damaged model files: random bit flips, overwritten runs, truncation and
//! appended junk in hebb, `.keras` and `.h5` files give a typed error or a
//! model, never a panic or an unbounded allocation.
//!
//! hebb files carry a SHA-256 of their contents and `.keras` archives a
//! CRC-32 per member, so a load that succeeds gives exactly the saved
//! model. Keras' HDF5 files have no checksums: a flipped bit inside a weight
//! cannot be seen, so for them a load that succeeds gives a model of the
//! same shapes whose weights differ in at most as many elements as bytes
//! were damaged.

use std::path::Path;
use std::sync::LazyLock;

use hebb_layers::Activation;
use hebb_models::sequential::layers::{Dense, Flatten};
use hebb_models::sequential::{FitOptions, Sequential, load_model_bytes};
use hebb_tensor::Tensor;
use proptest::prelude::*;

fn trained() -> Sequential {
    let mut m = Sequential::new().with_seed(4);
    m.add(Flatten::new().input_shape(&[2, 2])).unwrap();
    m.add(Dense::new(3).activation(Activation::Relu)).unwrap();
    m.add(Dense::new(2).activation(Activation::Softmax))
        .unwrap();
    m.compile("adam", "sparse_categorical_crossentropy", vec!["accuracy"])
        .unwrap();
    let x = Tensor::from_vec((0..32).map(|i| i as f32 / 32.0).collect(), &[8, 2, 2]).unwrap();
    let y = Tensor::from_vec((0..8).map(|i| (i % 2) as f32).collect(), &[8]).unwrap();
    m.fit(
        &x,
        &y,
        FitOptions {
            batch_size: 4,
            epochs: 1,
            verbose: 0,
            ..Default::default()
        },
    )
    .unwrap();
    m
}

/// Iterations, slots (as bits) and hyperparameters of an optimiser.
type OptimizerState = (u64, Vec<(String, Vec<u32>)>, Vec<(&'static str, f64)>);

/// What a loaded model is compared by: weights, optimiser state, metric names.
type Summary = (
    Vec<(Vec<usize>, Vec<u32>)>,
    Option<OptimizerState>,
    Vec<String>,
);

/// `(file name, bytes)` of the model in each format.
type Files = Vec<(&'static str, Vec<u8>)>;

fn summary(m: &Sequential) -> Summary {
    (flat(m), optimizer_state(m), m.metrics_names())
}

/// The trained model, and its files: made once for all cases.
static ORIGINAL: LazyLock<(Summary, Files)> = LazyLock::new(|| (summary(&trained()), files()));

/// The model saved in each format: `(file name, bytes)`.
fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let m = trained();
    ["model.safetensors", "model.keras", "model.h5"]
        .into_iter()
        .map(|name| {
            let path = dir.path().join(name);
            m.save(&path, false).unwrap();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

fn flat(m: &Sequential) -> Vec<(Vec<usize>, Vec<u32>)> {
    m.get_weights()
        .iter()
        .map(|t| {
            (
                t.shape().to_vec(),
                t.as_slice().iter().map(|v| v.to_bits()).collect(),
            )
        })
        .collect()
}

fn optimizer_state(m: &Sequential) -> Option<OptimizerState> {
    m.optimizer().map(|o| {
        (
            o.iterations(),
            o.slots()
                .into_iter()
                .map(|(n, t)| (n, t.as_slice().iter().map(|v| v.to_bits()).collect()))
                .collect(),
            o.config(),
        )
    })
}

/// A way to damage a file.
#[derive(Debug, Clone)]
enum Damage {
    /// XOR the byte at `position % len` with `mask` (non-zero), for each pair.
    Flip(Vec<(usize, u8)>),
    /// Overwrite `bytes.len()` bytes from `position % len`.
    Overwrite(usize, Vec<u8>),
    /// Keep the first `position % len` bytes.
    Truncate(usize),
    /// Append bytes.
    Append(Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => prop::collection::vec((any::<usize>(), 1u8..=255), 1..4).prop_map(Damage::Flip),
        2 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(p, b)| Damage::Overwrite(p, b)),
        1 => any::<usize>().prop_map(Damage::Truncate),
        1 => prop::collection::vec(any::<u8>(), 1..32).prop_map(Damage::Append),
    ]
}

/// The damaged bytes.
fn apply(bytes: &[u8], d: &Damage) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let len = bytes.len();
    match d {
        Damage::Flip(flips) => {
            for &(p, mask) in flips {
                out[p % len] ^= mask;
            }
        }
        Damage::Overwrite(p, new) => {
            let start = p % len;
            for (i, b) in new.iter().enumerate() {
                if let Some(slot) = out.get_mut(start + i) {
                    *slot = *b;
                }
            }
        }
        Damage::Truncate(p) => out.truncate(p % len),
        Damage::Append(extra) => out.extend(extra),
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn damaged_files_give_an_error_or_the_model(d in damage()) {
        let (original, files) = &*ORIGINAL;
        for (name, bytes) in files {
            let damaged = apply(bytes, &d);
            let Ok(loaded) = load_model_bytes(&damaged, Path::new(name)) else {
                continue;
            };
            let got = summary(&loaded.model);
            let (want, _, _) = original;
            let got_weights = &got.0;
            if *name == "model.h5" {
                // No checksums in Keras' HDF5: a damaged value, or a damaged
                // data address that still points inside the file, loads
                // other numbers; the layers and shapes must still be right.
                prop_assert_eq!(got_weights.len(), want.len());
                for ((gs, _), (ws, _)) in got_weights.iter().zip(want) {
                    prop_assert_eq!(gs, ws);
                }
            } else {
                prop_assert_eq!(&got, original, "{} loaded a different model after {:?}", name, d);
            }
        }
    }
}

#[test]
fn every_truncation_of_a_small_file_is_an_error() {
    for (name, bytes) in &ORIGINAL.1 {
        for len in (0..bytes.len()).step_by(7) {
            let result = load_model_bytes(&bytes[..len], Path::new(name));
            assert!(result.is_err(), "{name} truncated to {len} bytes loaded");
        }
    }
}
