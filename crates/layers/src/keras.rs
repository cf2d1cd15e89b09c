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
        "linear" => Activation::Linear,
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

fn f32_field(config: &Map<String, Value>, key: &str, default: f32) -> f32 {
    config
        .get(key)
        .and_then(Value::as_f64)
        .map_or(default, |v| v as f32)
}

/// hebb's initialiser for a Keras one (a name such as `"glorot_uniform"`
/// or Keras 3's `{"class_name": "RandomNormal", "config": {...}}`), `None`
/// if hebb has none like it.
pub fn initializer_from_keras(v: &Value) -> Option<Initializer> {
    let (class, config) = match v {
        Value::String(s) => (s.as_str(), Map::new()),
        Value::Object(o) => (
            o.get("class_name")?.as_str()?,
            o.get("config")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        ),
        _ => return None,
    };
    let init = Initializer::from_name(class).ok()?;
    Some(match init {
        Initializer::Constant { .. } => Initializer::Constant {
            value: f32_field(&config, "value", 0.0),
        },
        Initializer::RandomNormal { mean, stddev } => Initializer::RandomNormal {
            mean: f32_field(&config, "mean", mean),
            stddev: f32_field(&config, "stddev", stddev),
        },
        Initializer::TruncatedNormal { mean, stddev } => Initializer::TruncatedNormal {
            mean: f32_field(&config, "mean", mean),
            stddev: f32_field(&config, "stddev", stddev),
        },
        Initializer::RandomUniform { minval, maxval } => Initializer::RandomUniform {
            minval: f32_field(&config, "minval", minval),
            maxval: f32_field(&config, "maxval", maxval),
        },
        other => other,
    })
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
    let bad = |detail: String| Error::Config {
        class: class.to_string(),
        detail,
    };
    let o = config
        .as_object()
        .ok_or_else(|| bad(format!("the configuration is not an object: {config}")))?;
    let name = match o.get("name") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => return Err(bad(format!("name {v} is not a string"))),
    };
    let trainable = match o.get("trainable") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(bad(format!("trainable {v} is not true or false"))),
    };
    Ok((name, trainable))
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
