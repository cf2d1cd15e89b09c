//! Keras' serialised forms of what layers are configured with
//! (`layer.get_config()` values): activations, initialisers and the keys
//! every layer has (`name`, `trainable`, `dtype`). Layers use these in
//! [`Layer::config`](crate::Layer::config) and in their
//! [`Registry`](crate::Registry) functions; model files use them too.

use serde_json::{Map, Value, json};

use crate::{Activation, Error, Initializer, Result};

/// An activation as Keras' `activation` key stores it: its name (`"relu"`,
/// `"linear"`, ..., `"leaky_relu"` for Keras' default slope 0.2, i.e. the
/// lecture's `a = 5`). An activation Keras cannot write (the step function,
/// a Leaky-ReLU of another slope) gets hebb's form
/// `{"module": "hebb", "class_name": "leaky_relu", "config": {"a": 4.0}}`,
/// which hebb reads back exactly and Keras does not (model files in Keras'
/// formats refuse it when saving, see [`keras_activation_name`]).
pub fn activation_to_config(a: Activation) -> Value {
    match keras_activation_name(a) {
        Some(name) => json!(name),
        None => match a {
            Activation::LeakyRelu { a } => {
                json!({"module": "hebb", "class_name": "leaky_relu", "config": {"a": a}})
            }
            other => json!({"module": "hebb", "class_name": other.name(), "config": {}}),
        },
    }
}

/// Keras' name of `a`, when Keras has it: `None` for the step function and
/// for a Leaky-ReLU whose slope is not Keras' string default 0.2 (`a = 5`).
pub fn keras_activation_name(a: Activation) -> Option<&'static str> {
    Some(match a {
        Activation::Linear => "linear",
        Activation::Relu => "relu",
        Activation::Sigmoid => "sigmoid",
        Activation::Tanh => "tanh",
        Activation::Softmax => "softmax",
        Activation::LeakyRelu { a: 5.0 } => "leaky_relu",
        Activation::LeakyRelu { .. } | Activation::Step => return None,
    })
}

/// Reads an activation from a layer's configuration: `null` (linear), a
/// Keras name, Keras 3's serialised function (`{"class_name": "function",
/// "config": "relu"}`) or hebb's form (see [`activation_to_config`]).
///
/// # Errors
/// [`Error::Config`] naming `class` and the activation hebb does not have,
/// and [`Activation::validate`]'s errors (a Leaky-ReLU with `a <= 1`).
pub fn activation_from_config(class: &str, v: &Value) -> Result<Activation> {
    let bad = |detail: String| Error::Config {
        class: class.to_string(),
        detail,
    };
    let name = match v {
        Value::Null => "linear",
        Value::String(s) => s.as_str(),
        Value::Object(o) if o.get("module").and_then(Value::as_str) == Some("hebb") => {
            let name = o.get("class_name").and_then(Value::as_str).unwrap_or("?");
            let a = match name {
                "leaky_relu" => {
                    let a = o
                        .get("config")
                        .and_then(|c| c.get("a"))
                        .and_then(Value::as_f64)
                        .ok_or_else(|| bad(format!("activation {v}: no number a")))?;
                    Activation::LeakyRelu { a: a as f32 }
                }
                "step" => Activation::Step,
                other => return Err(bad(format!("activation {other:?}"))),
            };
            a.validate()?;
            return Ok(a);
        }
        Value::Object(o) => o
            .get("config")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("activation {v}")))?,
        _ => return Err(bad(format!("activation {v}"))),
    };
    Ok(match name {
        // Keras 2 wrote a missing activation as "None" in some configurations.
        "linear" | "None" => Activation::Linear,
        "relu" => Activation::Relu,
        "sigmoid" => Activation::Sigmoid,
        "tanh" => Activation::Tanh,
        "softmax" => Activation::Softmax,
        // keras.activations.leaky_relu's default negative_slope 0.2: the lecture's a = 1 / 0.2.
        "leaky_relu" => Activation::LeakyRelu { a: 5.0 },
        other => {
            return Err(bad(format!(
                "activation {other:?} (hebb has linear, relu, sigmoid, tanh, softmax, leaky_relu)"
            )));
        }
    })
}

/// Reads a Keras initialiser value (a name such as `"zeros"`, or Keras 3's
/// `{"class_name": "Constant", "config": {"value": 2}}`), with the class'
/// defaults for the arguments it leaves out; the error says what is wrong.
fn parse_initializer(v: &Value) -> std::result::Result<Initializer, String> {
    let (name, args) = match v {
        Value::String(s) => (s.as_str(), None),
        Value::Object(o) => (
            o.get("class_name")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("no class_name in {v}"))?,
            o.get("config"),
        ),
        other => return Err(format!("cannot read {other}")),
    };
    let init = Initializer::from_name(name).map_err(|e| e.to_string())?;
    let arg = |k: &str, d: f32| -> std::result::Result<f32, String> {
        match args.and_then(|a| a.get(k)) {
            None | Some(Value::Null) => Ok(d),
            Some(v) => v
                .as_f64()
                .map(|f| f as f32)
                .ok_or_else(|| format!("{k} must be a number, got {v}")),
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

/// hebb's initialiser for a Keras one (a name such as `"glorot_uniform"`
/// or Keras 3's `{"class_name": "RandomNormal", "config": {...}}`), `None`
/// if hebb has none like it or an argument is not a number.
pub fn initializer_from_keras(v: &Value) -> Option<Initializer> {
    parse_initializer(v).ok()
}

/// Keras 3's serialised initialiser (`{"module": "keras.initializers",
/// "class_name": "GlorotUniform", "config": {"seed": null}, ...}`).
pub fn initializer_to_keras(i: Initializer) -> Value {
    let (class, config) = match i {
        Initializer::GlorotUniform => ("GlorotUniform", json!({"seed": null})),
        Initializer::GlorotNormal => ("GlorotNormal", json!({"seed": null})),
        Initializer::HeNormal => ("HeNormal", json!({"seed": null})),
        Initializer::HeUniform => ("HeUniform", json!({"seed": null})),
        Initializer::LecunNormal => ("LecunNormal", json!({"seed": null})),
        Initializer::LecunUniform => ("LecunUniform", json!({"seed": null})),
        Initializer::Zeros => ("Zeros", json!({})),
        Initializer::Ones => ("Ones", json!({})),
        Initializer::Constant { value } => ("Constant", json!({"value": value})),
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

/// The initialiser under `key` of a layer's configuration: `default` when
/// absent or `null`, and also when hebb has no such initialiser (the
/// weights a model file holds replace the initial values anyway; model
/// loaders note it).
pub fn initializer_field(config: &Value, key: &str, default: Initializer) -> Initializer {
    match config.get(key) {
        None | Some(Value::Null) => default,
        Some(v) => initializer_from_keras(v).unwrap_or(default),
    }
}

/// The keys every layer's configuration has: `name` (empty when absent)
/// and `trainable` (`true` when absent).
///
/// # Errors
/// [`Error::Config`] naming `class` if the configuration is not a JSON
/// object or a key has the wrong type.
pub fn base_fields(class: &str, config: &Value) -> Result<(String, bool)> {
    let o = object(class, config)?;
    Ok((
        name_key(class, o)?.unwrap_or_default(),
        bool_key(class, o, "trainable", true)?,
    ))
}

/// `{"name": name, "trainable": trainable, "dtype": "float32"}`, the start
/// of every layer's configuration; the layer adds its own keys.
pub fn base_config(name: &str, trainable: bool) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    m.insert("trainable".into(), json!(trainable));
    m.insert("dtype".into(), json!("float32"));
    m
}

// What the layers of this crate share to read their configurations
// (`from_config`); see also [`LayerBase::from_config`](crate::base::LayerBase::from_config).

/// A `Config` error for `class`.
pub(crate) fn config_error(class: &str, detail: String) -> Error {
    Error::Config {
        class: class.to_string(),
        detail,
    }
}

/// The configuration as a JSON object.
pub(crate) fn object<'a>(class: &str, config: &'a Value) -> Result<&'a Map<String, Value>> {
    config.as_object().ok_or_else(|| {
        config_error(
            class,
            format!("the configuration must be a JSON object, got {config}"),
        )
    })
}

/// `name`, if given (a string or null).
pub(crate) fn name_key(class: &str, config: &Map<String, Value>) -> Result<Option<String>> {
    match config.get("name") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(config_error(
            class,
            format!("name must be a string, got {other}"),
        )),
    }
}

/// Refuses a `dtype` other than `float32` (as a string or Keras 3's
/// `DTypePolicy`); absent or null is float32.
pub(crate) fn check_dtype(class: &str, config: &Map<String, Value>) -> Result<()> {
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
    match dtype.filter(|d| *d != "float32") {
        Some(d) => Err(config_error(
            class,
            format!("dtype {d:?} is not supported; hebb computes in float32"),
        )),
        None => Ok(()),
    }
}

/// The per-sample input shape of `batch_input_shape` (Keras 2) or
/// `batch_shape` (Keras 3), batch axis dropped, if present.
pub(crate) fn input_shape_key(
    class: &str,
    config: &Map<String, Value>,
) -> Result<Option<Vec<usize>>> {
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
    Ok(input_shape)
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

/// Keras' `int or tuple of 2 ints` (`3` or `[3, 3]`) as `[3, 3]`.
pub(crate) fn int_pair(v: &Value) -> Option<[usize; 2]> {
    let int = |v: &Value| v.as_u64().and_then(|u| usize::try_from(u).ok());
    match v {
        Value::Array(a) if a.len() == 2 => Some([int(&a[0])?, int(&a[1])?]),
        _ => int(v).map(|n| [n, n]),
    }
}

/// Refuses `data_format` other than `channels_last` (absent or null is
/// channels_last): hebb's images are NHWC.
pub(crate) fn channels_last(class: &str, config: &Map<String, Value>) -> Result<()> {
    match config.get("data_format") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s == "channels_last" => Ok(()),
        Some(v) => Err(config_error(
            class,
            format!("data_format {v} is not supported: hebb's images are channels_last (NHWC)"),
        )),
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

/// Reads an initialiser key strictly (see [`initializer_from_keras`] for
/// the forms); `default` when absent or null.
///
/// # Errors
/// [`Error::Config`] naming `class` and `key` for an initialiser hebb does
/// not have or an argument that is not a number.
pub(crate) fn initializer_key(
    class: &str,
    config: &Map<String, Value>,
    key: &str,
    default: Initializer,
) -> Result<Initializer> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => parse_initializer(v).map_err(|e| config_error(class, format!("{key}: {e}"))),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_round_trip() {
        for a in [
            Activation::Linear,
            Activation::Relu,
            Activation::Softmax,
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::LeakyRelu { a: 5.0 },
            Activation::LeakyRelu { a: 3.3 },
            Activation::Step,
        ] {
            let v = activation_to_config(a);
            assert_eq!(activation_from_config("Dense", &v).unwrap(), a, "{v}");
        }
        assert_eq!(
            activation_to_config(Activation::Relu),
            serde_json::json!("relu")
        );
        let e = activation_from_config("Dense", &json!("gelu")).unwrap_err();
        assert!(e.to_string().contains("gelu"), "{e}");
        assert_eq!(
            activation_from_config(
                "Dense",
                &json!({"class_name": "function", "config": "tanh"})
            )
            .unwrap(),
            Activation::Tanh
        );
    }

    #[test]
    fn base_fields_default_and_check() {
        assert_eq!(
            base_fields("Dense", &json!({})).unwrap(),
            (String::new(), true)
        );
        assert_eq!(
            base_fields("Dense", &json!({"name": "d", "trainable": false})).unwrap(),
            ("d".to_string(), false)
        );
        assert!(base_fields("Dense", &json!({"trainable": 3})).is_err());
        assert!(base_fields("Dense", &json!([1])).is_err());
    }
}
