//! hebb's model format: one safetensors file holding the weights under
//! their names (`dense/kernel`, `dense/bias`, ...), the optimiser's slots
//! under `optimizer/{kind}/{i}` (`optimizer/momentum/0`), and the
//! configuration as JSON in the metadata:
//!
//! ```text
//! format = "hebb-model", version = "1",
//! config = {"name": "sequential", "seed": 612, "input_shape": [28, 28],
//!           "layers": [{"class": "Flatten", "name": "flatten", "given_name": false}, ...,
//!                      {"class": "Dense", "name": "dense", "given_name": false, "units": 128,
//!                       "activation": {"name": "relu"},
//!                       "kernel_initializer": {"name": "glorot_uniform"},
//!                       "bias_initializer": {"name": "zeros"}}],
//!           "compile": {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.0010000000474974513, ...}},
//!                       "loss": {"name": "sparse_categorical_crossentropy", "from_logits": false},
//!                       "metrics": ["sparse_categorical_accuracy"],
//!                       "iterations": 3750, "slots": ["momentum/0", ...]}}
//! ```
//!
//! Numbers are written so that they read back to the same bits (`f32`
//! learning rates and `f64` hyperparameters alike).
//!
//! The metadata also holds `checksum = "sha256:<hex>"`, the SHA-256 of the
//! configuration and of every tensor (name, shape and bytes, by name), so a
//! load returns the saved model or an error: a flipped bit anywhere that
//! matters is caught, even inside a weight.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use hebb_layers::Activation;
use hebb_layers::initializers::Initializer;
use hebb_layers::losses::Loss;
use serde::{Deserialize, Serialize};

use super::{CompileDesc, LayerDesc, ModelDesc, file_error};
use crate::Result;
use crate::sequential::layers::{ActivationLayer, Dense, Flatten, Layer};

/// `format` in the metadata of model files.
pub(crate) const FORMAT: &str = "hebb-model";
/// `version` in the metadata of model files.
pub(crate) const VERSION: &str = "1";
/// The prefix of optimiser slot tensors.
pub(crate) const OPTIMIZER_PREFIX: &str = "optimizer/";

/// `sha256:<hex>` of the configuration and the tensors (sorted by name).
fn checksum(config: &str, tensors: &[(&str, &hebb_tensor::Tensor)]) -> String {
    use sha2::{Digest, Sha256};
    let mut sorted: Vec<&(&str, &hebb_tensor::Tensor)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut h = Sha256::new();
    h.update((config.len() as u64).to_le_bytes());
    h.update(config.as_bytes());
    for (name, t) in sorted {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((t.shape().len() as u64).to_le_bytes());
        for &d in t.shape() {
            h.update((d as u64).to_le_bytes());
        }
        for v in t.as_slice() {
            h.update(v.to_le_bytes());
        }
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    name: String,
    seed: u64,
    input_shape: Option<Vec<usize>>,
    layers: Vec<LayerConfig>,
    compile: Option<CompileConfig>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "class", deny_unknown_fields)]
enum LayerConfig {
    Dense {
        name: String,
        given_name: bool,
        units: usize,
        activation: ActivationConfig,
        kernel_initializer: InitializerConfig,
        bias_initializer: InitializerConfig,
    },
    Flatten {
        name: String,
        given_name: bool,
    },
    Activation {
        name: String,
        given_name: bool,
        activation: ActivationConfig,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
enum ActivationConfig {
    Linear,
    Step,
    Sigmoid,
    Tanh,
    Relu,
    LeakyRelu { a: f32 },
    Softmax,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
enum InitializerConfig {
    GlorotUniform,
    GlorotNormal,
    HeNormal,
    HeUniform,
    LecunNormal,
    LecunUniform,
    Zeros,
    Ones,
    Constant { value: f32 },
    RandomNormal { mean: f32, stddev: f32 },
    TruncatedNormal { mean: f32, stddev: f32 },
    RandomUniform { minval: f32, maxval: f32 },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompileConfig {
    optimizer: OptimizerConfig,
    loss: LossConfig,
    metrics: Vec<String>,
    iterations: u64,
    /// Slot names; the tensors are `optimizer/{slot}`.
    slots: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OptimizerConfig {
    class_name: String,
    config: BTreeMap<String, f64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LossConfig {
    name: String,
    from_logits: bool,
}

impl From<Activation> for ActivationConfig {
    fn from(a: Activation) -> Self {
        match a {
            Activation::Linear => Self::Linear,
            Activation::Step => Self::Step,
            Activation::Sigmoid => Self::Sigmoid,
            Activation::Tanh => Self::Tanh,
            Activation::Relu => Self::Relu,
            Activation::LeakyRelu { a } => Self::LeakyRelu { a },
            Activation::Softmax => Self::Softmax,
        }
    }
}

impl From<ActivationConfig> for Activation {
    fn from(a: ActivationConfig) -> Self {
        match a {
            ActivationConfig::Linear => Self::Linear,
            ActivationConfig::Step => Self::Step,
            ActivationConfig::Sigmoid => Self::Sigmoid,
            ActivationConfig::Tanh => Self::Tanh,
            ActivationConfig::Relu => Self::Relu,
            ActivationConfig::LeakyRelu { a } => Self::LeakyRelu { a },
            ActivationConfig::Softmax => Self::Softmax,
        }
    }
}

impl From<Initializer> for InitializerConfig {
    fn from(i: Initializer) -> Self {
        match i {
            Initializer::GlorotUniform => Self::GlorotUniform,
            Initializer::GlorotNormal => Self::GlorotNormal,
            Initializer::HeNormal => Self::HeNormal,
            Initializer::HeUniform => Self::HeUniform,
            Initializer::LecunNormal => Self::LecunNormal,
            Initializer::LecunUniform => Self::LecunUniform,
            Initializer::Zeros => Self::Zeros,
            Initializer::Ones => Self::Ones,
            Initializer::Constant { value } => Self::Constant { value },
            Initializer::RandomNormal { mean, stddev } => Self::RandomNormal { mean, stddev },
            Initializer::TruncatedNormal { mean, stddev } => Self::TruncatedNormal { mean, stddev },
            Initializer::RandomUniform { minval, maxval } => Self::RandomUniform { minval, maxval },
        }
    }
}

impl From<InitializerConfig> for Initializer {
    fn from(i: InitializerConfig) -> Self {
        match i {
            InitializerConfig::GlorotUniform => Self::GlorotUniform,
            InitializerConfig::GlorotNormal => Self::GlorotNormal,
            InitializerConfig::HeNormal => Self::HeNormal,
            InitializerConfig::HeUniform => Self::HeUniform,
            InitializerConfig::LecunNormal => Self::LecunNormal,
            InitializerConfig::LecunUniform => Self::LecunUniform,
            InitializerConfig::Zeros => Self::Zeros,
            InitializerConfig::Ones => Self::Ones,
            InitializerConfig::Constant { value } => Self::Constant { value },
            InitializerConfig::RandomNormal { mean, stddev } => Self::RandomNormal { mean, stddev },
            InitializerConfig::TruncatedNormal { mean, stddev } => {
                Self::TruncatedNormal { mean, stddev }
            }
            InitializerConfig::RandomUniform { minval, maxval } => {
                Self::RandomUniform { minval, maxval }
            }
        }
    }
}

/// Writes `desc` as a hebb model file.
pub(crate) fn write(desc: &ModelDesc, path: &Path, overwrite: bool) -> Result<()> {
    let layers = desc
        .layers
        .iter()
        .map(|l| {
            let (name, given_name) = (l.name.clone(), l.given_name);
            match &l.layer {
                Layer::Dense(d) => LayerConfig::Dense {
                    name,
                    given_name,
                    units: d.units,
                    activation: d.activation.into(),
                    kernel_initializer: d.kernel_initializer.into(),
                    bias_initializer: d.bias_initializer.into(),
                },
                Layer::Flatten(_) => LayerConfig::Flatten { name, given_name },
                Layer::Activation(a) => LayerConfig::Activation {
                    name,
                    given_name,
                    activation: a.activation.into(),
                },
            }
        })
        .collect();
    let compile = desc.compile.as_ref().map(|c| CompileConfig {
        optimizer: OptimizerConfig {
            class_name: c.optimizer.clone(),
            config: c.optimizer_config.iter().cloned().collect(),
        },
        loss: LossConfig {
            name: c.loss.name().to_string(),
            from_logits: c.loss.from_logits(),
        },
        metrics: c.metrics.clone(),
        iterations: c.iterations,
        slots: c.slots.iter().map(|(n, _)| n.clone()).collect(),
    });
    let config = Config {
        name: desc.name.clone(),
        seed: desc.seed,
        input_shape: desc.input_shape.clone(),
        layers,
        compile,
    };
    let json = serde_json::to_string(&config).map_err(|e| {
        super::save_error(
            path,
            format!("the configuration cannot be written as JSON: {e}"),
        )
    })?;
    let slot_names: Vec<String> = desc
        .compile
        .iter()
        .flat_map(|c| {
            c.slots
                .iter()
                .map(|(n, _)| format!("{OPTIMIZER_PREFIX}{n}"))
        })
        .collect();
    let mut tensors: Vec<(&str, &hebb_tensor::Tensor)> =
        desc.weights.iter().map(|(n, t)| (n.as_str(), t)).collect();
    if let Some(c) = &desc.compile {
        tensors.extend(
            slot_names
                .iter()
                .map(String::as_str)
                .zip(c.slots.iter().map(|(_, t)| t)),
        );
    }
    let metadata = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("version".to_string(), VERSION.to_string()),
        ("checksum".to_string(), checksum(&json, &tensors)),
        ("config".to_string(), json),
    ]);
    hebb_serialize::save(path, &tensors, Some(metadata), overwrite)?;
    Ok(())
}

/// Reads a hebb model file held in `bytes`.
pub(crate) fn read(bytes: &[u8], path: &Path) -> Result<ModelDesc> {
    let loaded = hebb_serialize::parse(bytes, path)?;
    match loaded.metadata.get("format").map(String::as_str) {
        Some(FORMAT) => {}
        Some(super::super::WEIGHTS_FORMAT) => {
            return Err(file_error(
                path,
                "this is a weights file (save_weights): build the model and call load_weights",
            ));
        }
        Some(other) => {
            return Err(file_error(
                path,
                format!("the metadata says format {other:?}, not {FORMAT:?}"),
            ));
        }
        None => {
            return Err(file_error(
                path,
                "a safetensors file without hebb's model configuration (no format in its metadata)",
            ));
        }
    }
    let version = loaded
        .metadata
        .get("version")
        .map_or("none", String::as_str);
    if version != VERSION {
        return Err(file_error(
            path,
            format!("{FORMAT} version {version}; this hebb reads version {VERSION}"),
        ));
    }
    let json = loaded
        .metadata
        .get("config")
        .ok_or_else(|| file_error(path, "no config in the metadata"))?;
    let tensors: Vec<(&str, &hebb_tensor::Tensor)> = loaded
        .tensors
        .iter()
        .map(|(n, t)| (n.as_str(), t))
        .collect();
    let computed = checksum(json, &tensors);
    match loaded.metadata.get("checksum") {
        Some(stored) if *stored == computed => {}
        Some(stored) => {
            return Err(file_error(
                path,
                format!(
                    "checksum mismatch: the file is damaged (stored {stored}, computed {computed})"
                ),
            ));
        }
        None => return Err(file_error(path, "no checksum in the metadata")),
    }
    let config: Config = serde_json::from_str(json)
        .map_err(|e| file_error(path, format!("the configuration is not valid: {e}")))?;
    let layers = config
        .layers
        .into_iter()
        .map(|l| match l {
            LayerConfig::Dense {
                name,
                given_name,
                units,
                activation,
                kernel_initializer,
                bias_initializer,
            } => LayerDesc {
                name,
                given_name,
                layer: Layer::Dense(
                    Dense::new(units)
                        .activation(activation.into())
                        .kernel_initializer(kernel_initializer.into())
                        .bias_initializer(bias_initializer.into()),
                ),
            },
            LayerConfig::Flatten { name, given_name } => LayerDesc {
                name,
                given_name,
                layer: Layer::Flatten(Flatten::new()),
            },
            LayerConfig::Activation {
                name,
                given_name,
                activation,
            } => LayerDesc {
                name,
                given_name,
                layer: Layer::Activation(ActivationLayer::new(activation.into())),
            },
        })
        .collect();
    let mut tensors = loaded.tensors;
    let compile = match config.compile {
        None => None,
        Some(c) => {
            let loss = Loss::from_name(&c.loss.name)
                .and_then(|l| l.with_from_logits(c.loss.from_logits))
                .map_err(|e| file_error(path, format!("loss: {e}")))?;
            let mut slots = Vec::with_capacity(c.slots.len());
            for slot in c.slots {
                let name = format!("{OPTIMIZER_PREFIX}{slot}");
                let index = tensors
                    .iter()
                    .position(|(n, _)| *n == name)
                    .ok_or_else(|| {
                        file_error(path, format!("optimizer slot tensor {name} is missing"))
                    })?;
                let (_, tensor) = tensors.swap_remove(index);
                slots.push((slot, tensor));
            }
            Some(CompileDesc {
                optimizer: c.optimizer.class_name,
                optimizer_config: c.optimizer.config.into_iter().collect(),
                loss,
                metrics: c.metrics,
                iterations: c.iterations,
                slots,
            })
        }
    };
    Ok(ModelDesc {
        name: config.name,
        seed: config.seed,
        input_shape: config.input_shape,
        layers,
        weights: tensors,
        compile,
        data_bytes: bytes.len(),
    })
}
