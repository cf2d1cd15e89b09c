//! Reading and writing the parts of a Keras 3 layer configuration
//! (`layer.get_config()`) that the layers of this crate share: `name`,
//! `trainable`, `dtype`, and typed keys with Keras' defaults.

use serde_json::{Map, Value, json};

use crate::{Error, Initializer, Result};

/// A `Config` error for `class`.
pub(crate) fn config_error(class: &str, detail: String) -> Error {
    Error::Config {
        class: class.to_string(),
        detail,
    }
}

/// The keys of Keras' base `Layer.get_config`: `name`, `trainable` and
/// `dtype` (`"float32"`).
pub(crate) fn base_config(name: &str, trainable: bool) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("name".into(), json!(name));
    map.insert("trainable".into(), json!(trainable));
    map.insert("dtype".into(), json!("float32"));
    map
}

/// What every layer reads from a Keras configuration.
#[derive(Debug, Clone)]
pub(crate) struct Base {
    /// `name`, if given.
    pub name: Option<String>,
    /// `trainable` (default `true`).
    pub trainable: bool,
    /// The per-sample input shape of `batch_input_shape` (Keras 2) or
    /// `batch_shape` (Keras 3), batch axis dropped, if present.
    pub input_shape: Option<Vec<usize>>,
}

/// The configuration as a JSON object.
pub(crate) fn object<'a>(class: &str, config: &'a Value) -> Result<&'a Map<String, Value>> {
    config.as_object().ok_or_else(|| {
        config_error(
            class,
            format!("the config must be a JSON object, got {config}"),
        )
    })
}

/// Reads `name`, `trainable`, `dtype` (only `float32`, as a string or a
/// `DTypePolicy`) and an input shape.
pub(crate) fn base(class: &str, config: &Map<String, Value>) -> Result<Base> {
    let name = match config.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(config_error(
                class,
                format!("name must be a string, got {other}"),
            ));
        }
    };
    let trainable = bool_key(class, config, "trainable", true)?;
    let dtype = match config.get("dtype") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(Value::Object(o)) => o
            .get("config")
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .or(Some("?")),
        Some(_) => Some("?"),
    };
    if let Some(d) = dtype.filter(|d| *d != "float32") {
        return Err(config_error(
            class,
            format!("dtype {d:?} is not supported; hebb computes in float32"),
        ));
    }
    let mut input_shape = None;
    for key in ["batch_input_shape", "batch_shape"] {
        match config.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(dims)) => {
                let dims = dims
                    .iter()
                    .skip(1)
                    .map(|d| d.as_u64().map(|d| d as usize))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        config_error(class, format!("{key} {dims:?} has an unknown dimension"))
                    })?;
                input_shape = Some(dims);
            }
            Some(other) => {
                return Err(config_error(
                    class,
                    format!("{key} must be a list, got {other}"),
                ));
            }
        }
    }
    Ok(Base {
        name,
        trainable,
        input_shape,
    })
}

/// A boolean key, `default` when absent or null.
pub(crate) fn bool_key(
    class: &str,
    config: &Map<String, Value>,
    key: &str,
    default: bool,
) -> Result<bool> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(config_error(
            class,
            format!("{key} must be true or false, got {other}"),
        )),
    }
}

/// A number key, `default` when absent or null.
pub(crate) fn f64_key(
    class: &str,
    config: &Map<String, Value>,
    key: &str,
    default: f64,
) -> Result<f64> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_f64()
            .ok_or_else(|| config_error(class, format!("{key} must be a number, got {v}"))),
    }
}

/// Refuses a key that hebb does not implement unless it is absent or null
/// (Keras' `noise_shape`, constraints).
pub(crate) fn refuse_non_null(class: &str, config: &Map<String, Value>, key: &str) -> Result<()> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(v) => Err(config_error(
            class,
            format!("{key} = {v} is not supported by hebb (only null)"),
        )),
    }
}

/// Keras 3's serialised initialiser (`initializers.serialize`).
pub(crate) fn initializer_to_keras(i: Initializer) -> Value {
    let (class, config) = match i {
        Initializer::GlorotUniform => ("GlorotUniform", json!({"seed": null})),
        Initializer::GlorotNormal => ("GlorotNormal", json!({"seed": null})),
        Initializer::HeNormal => ("HeNormal", json!({"seed": null})),
        Initializer::HeUniform => ("HeUniform", json!({"seed": null})),
        Initializer::LecunNormal => ("LecunNormal", json!({"seed": null})),
        Initializer::LecunUniform => ("LecunUniform", json!({"seed": null})),
        Initializer::Zeros => ("Zeros", json!({})),
        Initializer::Ones => ("Ones", json!({})),
        Initializer::Constant { value } => ("Constant", json!({ "value": value })),
        Initializer::RandomNormal { mean, stddev } => (
            "RandomNormal",
            json!({"mean": mean, "stddev": stddev, "seed": null}),
        ),
        Initializer::TruncatedNormal { mean, stddev } => (
            "TruncatedNormal",
            json!({"mean": mean, "stddev": stddev, "seed": null}),
        ),
        Initializer::RandomUniform { minval, maxval } => (
            "RandomUniform",
            json!({"minval": minval, "maxval": maxval, "seed": null}),
        ),
    };
    json!({"module": "keras.initializers", "class_name": class, "config": config, "registered_name": null})
}

/// Reads an initialiser key (a name such as `"zeros"`, or Keras'
/// serialised `{"class_name": "Constant", "config": {"value": 2}}`);
/// `default` when absent or null.
pub(crate) fn initializer_key(
    class: &str,
    config: &Map<String, Value>,
    key: &str,
    default: Initializer,
) -> Result<Initializer> {
    let bad = |detail: String| config_error(class, format!("{key}: {detail}"));
    let value = match config.get(key) {
        None | Some(Value::Null) => return Ok(default),
        Some(v) => v,
    };
    let (name, args) = match value {
        Value::String(s) => (s.as_str(), None),
        Value::Object(o) => (
            o.get("class_name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("no class_name in {value}")))?,
            o.get("config"),
        ),
        other => return Err(bad(format!("cannot read {other}"))),
    };
    let init = Initializer::from_name(name).map_err(|e| bad(e.to_string()))?;
    let arg = |k: &str, d: f32| -> Result<f32> {
        match args.and_then(|a| a.get(k)) {
            None | Some(Value::Null) => Ok(d),
            Some(v) => v
                .as_f64()
                .map(|f| f as f32)
                .ok_or_else(|| bad(format!("{k} must be a number, got {v}"))),
        }
    };
    Ok(match init {
        Initializer::Constant { value } => Initializer::Constant {
            value: arg("value", value)?,
        },
        Initializer::RandomNormal { mean, stddev } => Initializer::RandomNormal {
            mean: arg("mean", mean)?,
            stddev: arg("stddev", stddev)?,
        },
        Initializer::TruncatedNormal { mean, stddev } => Initializer::TruncatedNormal {
            mean: arg("mean", mean)?,
            stddev: arg("stddev", stddev)?,
        },
        Initializer::RandomUniform { minval, maxval } => Initializer::RandomUniform {
            minval: arg("minval", minval)?,
            maxval: arg("maxval", maxval)?,
        },
        other => other,
    })
}

/// `(None, d1, d2)`: a per-sample shape with Keras' batch axis, for messages.
pub(crate) fn keras_shape(shape: &[usize]) -> String {
    let mut s = String::from("(None");
    for d in shape {
        s.push_str(&format!(", {d}"));
    }
    s.push(')');
    s
}

/// [`Error::Unsupported`] for a tensor that is not in host memory.
pub(crate) fn cpu_only(layer: &str, class: &str, device: hebb_tensor::Device) -> Result<()> {
    if device == hebb_tensor::Device::Cpu {
        Ok(())
    } else {
        Err(Error::Unsupported {
            layer: layer.to_string(),
            class: class.to_string(),
            detail: format!(
                "has no GPU kernels yet and got a tensor on {device}; run the model on the CPU"
            ),
        })
    }
}
