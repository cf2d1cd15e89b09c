//! hebb's model format: one safetensors file holding the weights under
//! their names (`dense/kernel`, `dense/bias`, ...), the optimiser's slots
//! under `optimizer/{kind}/{i}` (`optimizer/momentum/0`), and the
//! configuration as JSON in the metadata:
//!
//! ```text
//! format = "hebb-model", version = "2",
//! config = {"name": "sequential", "seed": 612, "input_shape": [28, 28],
//!           "layers": [{"class": "Flatten", "name": "flatten", "given_name": false,
//!                       "config": {"name": "flatten", "trainable": true, "dtype": "float32", ...}}, ...,
//!                      {"class": "Dense", "name": "dense", "given_name": false,
//!                       "config": {"units": 128, "activation": "relu", ...}}],
//!           "compile": {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.0010000000474974513, ...}},
//!                       "loss": {"name": "sparse_categorical_crossentropy", "from_logits": false},
//!                       "metrics": ["sparse_categorical_accuracy"],
//!                       "iterations": 3750, "slots": ["momentum/0", ...]}}
//! ```
//!
//! Each layer's `config` is its [`Layer::config`](hebb_layers::Layer::config)
//! (Keras' `get_config`), made into the layer again by the
//! [`Registry`](hebb_layers::Registry) `load_model` is given; a layer that
//! keeps state besides its weights (Dropout: `"state": {"seed": .., "step":
//! ..}`, [`Layer::training_state`](hebb_layers::Layer::training_state)) has
//! it beside its configuration, so training resumes bit for bit; version 1
//! files (hebb 0.x, which knew Dense, Flatten and Activation by fields of
//! their own) are read too.
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
use hebb_layers::keras::{activation_to_config, initializer_to_keras};
use hebb_layers::losses::Loss;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{CompileDesc, LayerDesc, ModelDesc, file_error};
use crate::Result;

/// `format` in the metadata of model files.
pub(crate) const FORMAT: &str = "hebb-model";
/// `version` in the metadata of model files.
pub(crate) const VERSION: &str = "2";
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
    /// [`LayerEntry`] (version 2) or [`LayerConfig`] (version 1) values.
    layers: Vec<Value>,
    compile: Option<CompileConfig>,
}

/// A layer in a version 2 file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerEntry {
    class: String,
    name: String,
    given_name: bool,
    config: Value,
    /// The per-sample input shape the layer was built for.
    #[serde(default)]
    input_shape: Option<Vec<usize>>,
    /// [`Layer::training_state`](hebb_layers::Layer::training_state), for
    /// the layers that keep one (Dropout's seed and step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<Value>,
}

/// A layer in a version 1 file.
#[derive(Deserialize)]
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

#[derive(Deserialize)]
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

#[derive(Deserialize)]
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
            serde_json::to_value(LayerEntry {
                class: l.class.clone(),
                name: l.name.clone(),
                given_name: l.given_name,
                config: l.config.clone(),
                input_shape: l.input_shape.clone(),
                state: l.state.clone(),
            })
            .unwrap_or(Value::Null)
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
    if version != VERSION && version != "1" {
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
        .map(|v| layer_desc(v, version, path))
        .collect::<Result<Vec<_>>>()?;
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
        trainable: Vec::new(),
        compile,
        data_bytes: bytes.len(),
    })
}

/// A layer of a version 2 file, or of a version 1 file (converted to the
/// layer's Keras configuration).
fn layer_desc(v: Value, version: &str, path: &Path) -> Result<LayerDesc> {
    let bad =
        |e: serde_json::Error| file_error(path, format!("the configuration is not valid: {e}"));
    if version != "1" {
        let e: LayerEntry = serde_json::from_value(v).map_err(bad)?;
        return Ok(LayerDesc {
            name: e.name,
            given_name: e.given_name,
            class: e.class,
            config: e.config,
            input_shape: e.input_shape,
            state: e.state,
        });
    }
    let (class, name, given_name, config) = match serde_json::from_value(v).map_err(bad)? {
        LayerConfig::Dense {
            name,
            given_name,
            units,
            activation,
            kernel_initializer,
            bias_initializer,
        } => (
            "Dense",
            name,
            given_name,
            json!({
                "units": units,
                "activation": activation_to_config(activation.into()),
                "kernel_initializer": initializer_to_keras(kernel_initializer.into()),
                "bias_initializer": initializer_to_keras(bias_initializer.into()),
            }),
        ),
        LayerConfig::Flatten { name, given_name } => ("Flatten", name, given_name, json!({})),
        LayerConfig::Activation {
            name,
            given_name,
            activation,
        } => (
            "Activation",
            name,
            given_name,
            json!({"activation": activation_to_config(activation.into())}),
        ),
    };
    Ok(LayerDesc {
        name,
        given_name,
        class: class.to_string(),
        config,
        input_shape: None,
        state: None,
    })
}
