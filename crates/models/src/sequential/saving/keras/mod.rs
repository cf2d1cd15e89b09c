//! Keras model files: the JSON configuration shared by the HDF5 `.h5`
//! ([`h5`]) and the zip `.keras` ([`archive`]) formats, mapped to and from
//! hebb's layers, losses, metrics and optimisers.
//!
//! Read: `Sequential` models (the `config` of tf.keras 2 and Keras 3, with
//! or without `module`/`registered_name`) of `InputLayer`, `Flatten`
//! (`channels_last`), `Dense` (with bias; activations `linear`, `relu`,
//! `sigmoid`, `tanh`, `softmax`, `leaky_relu`) and `Activation`, in
//! `float32`; losses and metrics by name or class; the optimisers `SGD`,
//! `Adagrad`, `Adadelta`, `RMSprop`, `Adam` with their state. What hebb
//! does not model but can leave out without changing the forward pass
//! (regularisers, constraints, gradient clipping, an unknown initialiser,
//! an unknown optimiser) becomes a note in
//! [`LoadedModel::notes`](super::LoadedModel::notes).
//!
//! Written: what Keras 3 writes, so that `tf.keras.models.load_model`
//! (TensorFlow 2.16 and later) rebuilds the model, compiles it and restores
//! the optimiser's state.

pub(crate) mod archive;
pub(crate) mod h5;

use std::path::Path;

use hebb_layers::Registry;
use hebb_layers::keras::{activation_from_config, initializer_from_keras, keras_activation_name};
use hebb_layers::losses::Loss;
use serde_json::{Map, Value, json};

use super::{CompileDesc, LayerDesc, ModelDesc, save_error};
use crate::sequential::Sequential;
use crate::{Error, Result};

/// The Keras version written into files (the format followed: Keras 3).
pub(crate) const KERAS_VERSION: &str = "3.0.0";

/// What a Keras configuration gives before weights: the model's name,
/// input shape and layers.
pub(crate) struct Architecture {
    pub name: String,
    pub input_shape: Option<Vec<usize>>,
    pub layers: Vec<LayerDesc>,
}

/// An optimiser's Keras class name and hyperparameters by Keras name.
pub(crate) type OptimizerSpec = (String, Vec<(String, f64)>);

/// The loss, metrics and optimiser of a Keras compile configuration;
/// `optimizer` is `None` when hebb has no such optimiser.
pub(crate) struct Training {
    pub loss: Loss,
    pub metrics: Vec<String>,
    pub optimizer: Option<OptimizerSpec>,
}

fn unsupported(path: &Path, detail: impl Into<String>) -> Error {
    Error::Unsupported {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

fn bad(path: &Path, detail: impl Into<String>) -> Error {
    super::file_error(path, detail)
}

/// The dataset at `at` in `group`; `what` names it in the error: no such
/// dataset ([`Error::ModelFile`]), or one hebb's HDF5 reader does not read,
/// such as a chunked or float16 dataset ([`Error::Unsupported`], with why).
pub(crate) fn dataset<'a>(
    group: &'a hebb_serialize::hdf5::Group,
    at: &str,
    what: &str,
    path: &Path,
) -> Result<&'a hebb_serialize::hdf5::Dataset> {
    use hebb_serialize::hdf5::Node;
    match group.get(at) {
        Some(Node::Dataset(d)) => Ok(d),
        Some(Node::Unsupported(why)) => Err(unsupported(
            path,
            format!("{what} is {why}, which hebb does not read"),
        )),
        Some(Node::Group(_)) => Err(bad(path, format!("{what} is a group, not a dataset"))),
        None => Err(bad(path, format!("no dataset {what}"))),
    }
}

/// Parses JSON text from a Keras file.
pub(crate) fn parse_json(text: &str, what: &str, path: &Path) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| bad(path, format!("{what} is not valid JSON: {e}")))
}

/// A per-sample shape from Keras' `[null, 28, 28]`.
fn sample_shape(v: &Value, what: &str, path: &Path) -> Result<Vec<usize>> {
    let dims = v
        .as_array()
        .ok_or_else(|| bad(path, format!("{what} is not a list: {v}")))?;
    let Some((_, rest)) = dims.split_first() else {
        return Err(bad(path, format!("{what} is empty")));
    };
    rest.iter()
        .map(|d| match d.as_u64() {
            Some(n) if (1..=(1 << 31)).contains(&n) => Ok(n as usize),
            Some(n) => Err(bad(path, format!("{what} has dimension {n}"))),
            None if d.is_null() => Err(unsupported(
                path,
                format!("{what} {v} has a dimension of variable size"),
            )),
            None => Err(bad(path, format!("{what} has dimension {d}"))),
        })
        .collect()
}

/// Keras' activation name for the `activation` of a layer's
/// configuration, or the save error of today's message for an activation
/// Keras does not have.
fn activation_to_keras(v: &Value, class: &str, layer: &str, path: &Path) -> Result<Value> {
    let a = activation_from_config(class, v)
        .map_err(|e| save_error(path, format!("layer {layer}: {e}")))?;
    match (keras_activation_name(a), a) {
        (Some(name), _) => Ok(json!(name)),
        (None, hebb_layers::Activation::LeakyRelu { a }) => Err(save_error(
            path,
            format!(
                "layer {layer}: Keras' \"leaky_relu\" activation string stores no slope and \
                 means negative_slope 0.2 (the lecture's a = 5), not this layer's \
                 negative_slope {} (a = {a}); to save to .keras or .h5 use \
                 Activation::leaky_relu(0.2) (a = 5), or save in hebb's format (a \
                 .safetensors file), which keeps any slope",
                1.0 / a
            ),
        )),
        (None, _) => Err(save_error(
            path,
            format!("layer {layer}: Keras has no step activation"),
        )),
    }
}

/// Checks a layer's dtype (`"float32"`, or a `DTypePolicy` of `float32`).
fn check_dtype(config: &Map<String, Value>, layer: &str, path: &Path) -> Result<()> {
    let name = match config.get("dtype") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Object(o)) => o
            .get("config")
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("?"),
        Some(other) => return Err(bad(path, format!("layer {layer}: dtype {other}"))),
    };
    if name != "float32" {
        return Err(unsupported(
            path,
            format!("layer {layer}: dtype {name} (hebb computes in float32)"),
        ));
    }
    Ok(())
}

/// Reads a Keras model configuration (`{"class_name": "Sequential", "config": ...}`).
pub(crate) fn architecture(
    model: &Value,
    path: &Path,
    notes: &mut Vec<String>,
) -> Result<Architecture> {
    let class = model
        .get("class_name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(path, "the model configuration has no class_name"))?;
    if class != "Sequential" {
        return Err(unsupported(
            path,
            format!("a {class} model; hebb reads Sequential models"),
        ));
    }
    let config = model
        .get("config")
        .ok_or_else(|| bad(path, "the model configuration has no config"))?;
    // Keras 2.0-2.2 wrote the layer list itself as the config.
    let (name, layers) = match config {
        Value::Array(layers) => ("sequential".to_string(), layers),
        Value::Object(o) => (
            o.get("name")
                .and_then(Value::as_str)
                .unwrap_or("sequential")
                .to_string(),
            o.get("layers")
                .and_then(Value::as_array)
                .ok_or_else(|| bad(path, "the Sequential configuration has no layers"))?,
        ),
        _ => return Err(bad(path, "the Sequential configuration is not an object")),
    };
    let mut input_shape = match config.get("build_input_shape") {
        Some(v) if !v.is_null() => Some(sample_shape(v, "build_input_shape", path)?),
        _ => None,
    };
    let mut out = Vec::new();
    for (index, layer) in layers.iter().enumerate() {
        let class = layer
            .get("class_name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(path, format!("layer #{index} has no class_name")))?;
        let config = layer
            .get("config")
            .and_then(Value::as_object)
            .ok_or_else(|| bad(path, format!("layer #{index} ({class}) has no config")))?;
        let name = config
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(path, format!("layer #{index} ({class}) has no name")))?
            .to_string();
        let first = out.is_empty();
        for key in ["batch_shape", "batch_input_shape"] {
            if let Some(v) = config.get(key).filter(|v| !v.is_null()) {
                let shape = sample_shape(v, &format!("layer {name}: {key}"), path)?;
                if first {
                    input_shape = Some(shape);
                }
            }
        }
        if class == "InputLayer" {
            if !first {
                return Err(unsupported(
                    path,
                    format!("an InputLayer ({name}) after other layers"),
                ));
            }
            continue;
        }
        check_dtype(config, &name, path)?;
        for key in [
            "bias_regularizer",
            "activity_regularizer",
            "kernel_constraint",
            "bias_constraint",
        ] {
            if config.get(key).is_some_and(|v| !v.is_null()) {
                notes.push(format!(
                    "layer {name}: {key} is ignored (hebb has kernel regularisers, no others, \
                     and no constraints)"
                ));
            }
        }
        for (key, v) in config {
            if key.ends_with("_initializer") && !v.is_null() && initializer_from_keras(v).is_none()
            {
                notes.push(format!(
                    "layer {name}: {key} {v} is not in hebb; the layer's default would be used \
                     to re-initialise (the saved weights are loaded)"
                ));
            }
        }
        // A layer of the user's own is registered as "package>Name".
        let class = layer
            .get("registered_name")
            .and_then(Value::as_str)
            .filter(|r| r.contains('>'))
            .unwrap_or(class)
            .to_string();
        let layer = LayerDesc {
            name: name.clone(),
            given_name: true,
            class,
            config: Value::Object(config.clone()),
            input_shape: None,
            state: None,
        };
        if out.iter().any(|l: &LayerDesc| l.name == name) {
            return Err(bad(path, format!("two layers are named {name}")));
        }
        out.push(layer);
    }
    Ok(Architecture {
        name,
        input_shape,
        layers: out,
    })
}

/// A loss from Keras' compile configuration (a name or a serialized loss).
fn loss_from_keras(v: &Value) -> Option<Loss> {
    match v {
        Value::String(s) => Loss::from_name(s).ok(),
        Value::Object(o) => {
            let class = o.get("class_name")?.as_str()?;
            let from_logits = o
                .get("config")
                .and_then(|c| c.get("from_logits"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            Loss::from_name(class)
                .ok()?
                .with_from_logits(from_logits)
                .ok()
        }
        _ => None,
    }
}

/// A metric's name from Keras' compile configuration.
fn metric_name(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o
            .get("config")
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .or_else(|| o.get("class_name").and_then(Value::as_str))
            .map(str::to_string),
        _ => None,
    }
}

/// Hyperparameter names hebb's optimisers share with Keras, by class.
fn optimizer_keys(class: &str) -> Option<(&'static str, &'static [&'static str])> {
    Some(match class.to_ascii_lowercase().as_str() {
        "sgd" => ("SGD", &["momentum", "nesterov"]),
        "adagrad" => ("Adagrad", &["initial_accumulator_value", "epsilon"]),
        "adadelta" => ("Adadelta", &["rho", "epsilon"]),
        "rmsprop" | "rm_sprop" => ("RMSprop", &["rho", "momentum", "epsilon", "centered"]),
        "adam" => ("Adam", &["beta_1", "beta_2", "epsilon", "amsgrad"]),
        _ => return None,
    })
}

/// hebb's optimiser class and hyperparameters for a Keras optimiser configuration.
fn optimizer_from_keras(
    v: &Value,
    path: &Path,
    notes: &mut Vec<String>,
) -> Result<Option<OptimizerSpec>> {
    let (class, config) = match v {
        Value::String(s) => (s.as_str(), Map::new()),
        Value::Object(o) => (
            o.get("class_name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(path, "the optimizer has no class_name"))?,
            o.get("config")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        ),
        _ => return Err(bad(path, format!("optimizer {v}"))),
    };
    let Some((class, keys)) = optimizer_keys(class) else {
        notes.push(format!(
            "the optimizer {class} is not in hebb (SGD, Adagrad, Adadelta, RMSprop, Adam); \
             the model is loaded without compiling"
        ));
        return Ok(None);
    };
    let mut pairs = Vec::new();
    for (key, value) in &config {
        let key = if key == "lr" {
            "learning_rate"
        } else {
            key.as_str()
        };
        if key == "learning_rate" || keys.contains(&key) {
            let number = match value {
                Value::Bool(b) => Some(f64::from(u8::from(*b))),
                v => v.as_f64(),
            };
            match number {
                Some(n) => pairs.push((key.to_string(), n)),
                None => {
                    return Err(unsupported(
                        path,
                        format!("optimizer {class}: {key} = {value} (a schedule or a variable)"),
                    ));
                }
            }
            continue;
        }
        let inactive = match value {
            Value::Null => true,
            Value::Bool(b) => !b,
            Value::Number(n) => key != "ema_momentum" && n.as_f64() == Some(0.0),
            _ => false,
        };
        let harmless = matches!(
            key,
            "name"
                | "is_legacy_optimizer"
                | "jit_compile"
                | "ema_momentum"
                | "ema_overwrite_frequency"
        );
        if !inactive && !harmless {
            notes.push(format!(
                "optimizer {class}: {key} = {value} is ignored (hebb's {class} has no such option)"
            ));
        }
    }
    Ok(Some((class.to_string(), pairs)))
}

/// Reads Keras' compile configuration (`training_config` of `.h5` files,
/// `compile_config` of `.keras` files); `None` when hebb cannot compile it
/// (an unknown loss), with a note.
pub(crate) fn training(
    config: &Value,
    optimizer_key: &str,
    path: &Path,
    notes: &mut Vec<String>,
) -> Result<Option<Training>> {
    let Some(loss_value) = config.get("loss").filter(|v| !v.is_null()) else {
        notes.push("the compile configuration has no loss; the model is not compiled".into());
        return Ok(None);
    };
    let Some(loss) = loss_from_keras(loss_value) else {
        notes.push(format!(
            "the loss {loss_value} is not in hebb; the model is loaded without compiling"
        ));
        return Ok(None);
    };
    let mut metrics = Vec::new();
    let listed: Vec<&Value> = match config.get("metrics") {
        Some(Value::Array(a)) => a
            .iter()
            .flat_map(|m| match m {
                // Keras 2 wrote one list per output.
                Value::Array(inner) => inner.iter().collect::<Vec<_>>(),
                other => vec![other],
            })
            .collect(),
        _ => Vec::new(),
    };
    for m in listed {
        match metric_name(m) {
            Some(name) if hebb_layers::metrics::from_name(&name, Some(loss.name())).is_ok() => {
                metrics.push(name);
            }
            _ => notes.push(format!("the metric {m} is not in hebb and is left out")),
        }
    }
    for key in ["loss_weights", "weighted_metrics"] {
        if config.get(key).is_some_and(|v| !v.is_null()) {
            notes.push(format!("{key} is ignored"));
        }
    }
    let optimizer = match config.get(optimizer_key) {
        Some(v) if !v.is_null() => optimizer_from_keras(v, path, notes)?,
        _ => None,
    };
    Ok(Some(Training {
        loss,
        metrics,
        optimizer,
    }))
}

/// The Keras 3 order of an optimiser's variables after `iteration` and
/// `learning_rate`, as hebb slot names (`keras/src/optimizers/*.py`,
/// `build`): kinds created together are interleaved per variable, later
/// kinds follow.
pub(crate) fn keras_slot_order(
    class: &str,
    config: &[(String, f64)],
    variables: usize,
) -> Vec<String> {
    let get = |key: &str| {
        config
            .iter()
            .find(|(k, _)| k == key)
            .map_or(0.0, |(_, v)| *v)
    };
    let groups: Vec<Vec<&str>> = match class {
        "SGD" if get("momentum") != 0.0 => vec![vec!["momentum"]],
        "SGD" => vec![],
        "Adagrad" => vec![vec!["accumulator"]],
        "Adadelta" => vec![vec!["accumulated_grad", "accumulated_delta_var"]],
        "RMSprop" => {
            let mut g = vec![vec!["velocity"]];
            if get("momentum") > 0.0 {
                g.push(vec!["momentum"]);
            }
            if get("centered") != 0.0 {
                g.push(vec!["average_gradient"]);
            }
            g
        }
        "Adam" => {
            let mut g = vec![vec!["momentum", "velocity"]];
            if get("amsgrad") != 0.0 {
                g.push(vec!["velocity_hat"]);
            }
            g
        }
        _ => vec![],
    };
    let mut out = Vec::new();
    for group in groups {
        for i in 0..variables {
            for kind in &group {
                out.push(format!("{kind}/{i}"));
            }
        }
    }
    out
}

/// The optimiser's Keras configuration, with hebb's hyperparameters and
/// Keras' defaults for the options hebb does not have.
fn optimizer_to_keras(c: &CompileDesc, archive: bool) -> Value {
    let mut config = Map::new();
    config.insert("name".into(), json!(c.optimizer.to_ascii_lowercase()));
    let mut lr = Value::Null;
    let mut rest = Map::new();
    for (k, v) in &c.optimizer_config {
        let bool_key = matches!(k.as_str(), "nesterov" | "amsgrad" | "centered");
        let value = if bool_key { json!(*v != 0.0) } else { json!(v) };
        if k == "learning_rate" {
            lr = value;
        } else {
            rest.insert(k.clone(), value);
        }
    }
    config.insert("learning_rate".into(), lr);
    for key in ["weight_decay", "clipnorm", "global_clipnorm", "clipvalue"] {
        config.insert(key.into(), Value::Null);
    }
    config.insert("use_ema".into(), json!(false));
    config.insert("ema_momentum".into(), json!(0.99));
    config.insert("ema_overwrite_frequency".into(), Value::Null);
    config.insert("loss_scale_factor".into(), Value::Null);
    config.insert("gradient_accumulation_steps".into(), Value::Null);
    config.extend(rest);
    if archive {
        json!({"module": "keras.optimizers", "class_name": c.optimizer, "config": config, "registered_name": null})
    } else {
        json!({"class_name": c.optimizer, "config": config})
    }
}

/// A loss as Keras' compile configuration holds it.
fn loss_to_keras(loss: Loss, archive: bool) -> Value {
    if !loss.from_logits() {
        return json!(loss.name());
    }
    let class = match loss {
        Loss::BinaryCrossentropy { .. } => "BinaryCrossentropy",
        Loss::CategoricalCrossentropy { .. } => "CategoricalCrossentropy",
        _ => "SparseCategoricalCrossentropy",
    };
    let config = json!({"name": loss.name(), "from_logits": true});
    if archive {
        json!({"module": "keras.losses", "class_name": class, "config": config, "registered_name": null})
    } else {
        json!({"class_name": class, "config": config})
    }
}

/// Keras' compile configuration: `compile_config` (archive) or `training_config` (legacy HDF5).
pub(crate) fn training_to_keras(c: &CompileDesc, archive: bool) -> Value {
    let mut t = Map::new();
    if archive {
        t.insert("optimizer".into(), optimizer_to_keras(c, true));
    }
    t.insert("loss".into(), loss_to_keras(c.loss, archive));
    t.insert("loss_weights".into(), Value::Null);
    t.insert("metrics".into(), json!(c.metrics));
    t.insert("weighted_metrics".into(), Value::Null);
    t.insert("run_eagerly".into(), json!(false));
    t.insert("steps_per_execution".into(), json!(1));
    t.insert("jit_compile".into(), json!(false));
    if !archive {
        t.insert("optimizer_config".into(), optimizer_to_keras(c, false));
    }
    Value::Object(t)
}

/// Layer classes Keras 3 builds in their constructor, whose `.keras`
/// configuration has no `build_config`.
const NO_BUILD_CONFIG: [&str; 2] = ["Activation", "Dropout"];

fn dtype_policy() -> Value {
    json!({"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null})
}

/// Keras' `[null, d1, d2, ...]`.
fn batch_shape(sample: &[usize]) -> Value {
    let mut v = vec![Value::Null];
    v.extend(sample.iter().map(|&d| json!(d)));
    Value::Array(v)
}

/// The Keras 3 configuration of a built model: `{"class_name": "Sequential",
/// "config": {...}}`, with `module`, `registered_name` and `build_config`
/// when `archive` (the `.keras` form).
pub(crate) fn config_to_keras(desc: &ModelDesc, path: &Path, archive: bool) -> Result<Value> {
    let input = desc.input_shape.as_ref().ok_or_else(|| {
        save_error(
            path,
            "the model is not built: Keras files need the input shape (give the first layer an \
             input_shape, or call build)",
        )
    })?;
    let wrap = |class: &str, config: Value, build: Option<Value>| {
        let mut o = Map::new();
        if archive {
            o.insert("module".into(), json!("keras.layers"));
        }
        o.insert("class_name".into(), json!(class));
        o.insert("config".into(), config);
        if archive {
            o.insert("registered_name".into(), Value::Null);
            if let Some(b) = build {
                o.insert("build_config".into(), json!({"input_shape": b}));
            }
        }
        Value::Object(o)
    };
    let mut layers = vec![wrap(
        "InputLayer",
        json!({"batch_shape": batch_shape(input), "dtype": "float32", "sparse": false,
               "ragged": false, "name": "input_layer", "optional": false}),
        None,
    )];
    for l in &desc.layers {
        let name = &l.name;
        let mut config = l.config.clone();
        if let Some(o) = config.as_object_mut() {
            o.insert("name".into(), json!(name));
            o.insert("dtype".into(), dtype_policy());
            if let Some(a) = o.get("activation") {
                let a = activation_to_keras(a, &l.class, name, path)?;
                o.insert("activation".into(), a);
            }
        }
        // Layers Keras builds at construction keep no build_config.
        let build = if NO_BUILD_CONFIG.contains(&l.class.as_str()) {
            None
        } else {
            l.input_shape.as_deref().map(batch_shape)
        };
        // A user's class: Keras 3 archives name it by its registered name
        // (`registered_name: "package>Name"`), HDF5 files by that name itself.
        let class = if archive {
            l.class.rsplit('>').next().unwrap_or(&l.class)
        } else {
            &l.class
        };
        let mut layer = wrap(class, config, build);
        if archive
            && l.class.contains('>')
            && let Some(o) = layer.as_object_mut()
        {
            o.insert("module".into(), Value::Null);
            o.insert("registered_name".into(), json!(l.class));
        }
        layers.push(layer);
    }
    let config = json!({
        "name": desc.name, "trainable": true, "dtype": dtype_policy(),
        "layers": layers, "build_input_shape": batch_shape(input),
    });
    let mut top = Map::new();
    if archive {
        top.insert("module".into(), json!("keras"));
    }
    top.insert("class_name".into(), json!("Sequential"));
    top.insert("config".into(), config);
    if archive {
        top.insert("registered_name".into(), Value::Null);
        top.insert(
            "build_config".into(),
            json!({"input_shape": batch_shape(input)}),
        );
        let compile = desc
            .compile
            .as_ref()
            .map_or(Value::Null, |c| training_to_keras(c, true));
        top.insert("compile_config".into(), compile);
    }
    Ok(Value::Object(top))
}

/// Builds the compile part of a description from a Keras training
/// configuration and the optimiser's variables as Keras stores them:
/// `iteration`, `learning_rate`, then the slots in [`keras_slot_order`].
/// State that does not fit becomes a note and a fresh optimiser, as in Keras.
pub(crate) fn compile_desc(
    training: Training,
    state: Option<OptimizerState>,
    variables: &[(String, Vec<usize>)],
    notes: &mut Vec<String>,
) -> Option<CompileDesc> {
    let (class, mut config) = training.optimizer?;
    let mut iterations = 0;
    let mut slots = Vec::new();
    if let Some(state) = state {
        match state.into_slots(&class, &config, variables) {
            Ok((it, lr, s)) => {
                iterations = it;
                slots = s;
                if let Some(lr) = lr {
                    config.retain(|(k, _)| k != "learning_rate");
                    config.push(("learning_rate".into(), f64::from(lr)));
                }
            }
            Err(why) => notes.push(format!(
                "the optimizer's state is not restored ({why}); it starts fresh"
            )),
        }
    }
    Some(CompileDesc {
        optimizer: class,
        optimizer_config: config,
        loss: training.loss,
        metrics: training.metrics,
        iterations,
        slots,
    })
}

/// Optimiser variables read from a Keras file, before they are matched to
/// the model: Keras 3's (`iteration`, `learning_rate`, slots in Keras'
/// order) or tf.keras 2's (`iter:0`, then slots named by variable and kind).
pub(crate) enum OptimizerState {
    /// Values in Keras 3's order.
    Keras3(Vec<hebb_tensor::Tensor>, u64),
    /// `(name, value)` of tf.keras 2 (`Adam/iter:0`, `Adam/dense/kernel/m:0`, ...).
    Keras2(Vec<(String, hebb_tensor::Tensor)>, u64),
}

/// tf.keras 2's slot names per optimiser class, mapped to hebb's kinds.
fn keras2_kind(class: &str, slot: &str) -> Option<&'static str> {
    Some(match (class, slot) {
        ("Adam", "m") => "momentum",
        ("Adam", "v") => "velocity",
        ("Adam", "vhat") => "velocity_hat",
        ("SGD", "momentum") => "momentum",
        ("RMSprop", "rms") => "velocity",
        ("RMSprop", "momentum") => "momentum",
        ("RMSprop", "mg") => "average_gradient",
        ("Adagrad", "accumulator") => "accumulator",
        ("Adadelta", "accum_grad") => "accumulated_grad",
        ("Adadelta", "accum_var") => "accumulated_delta_var",
        _ => return None,
    })
}

impl OptimizerState {
    /// `(iterations, learning rate if stored, slots by hebb name)`, or why not.
    #[allow(clippy::type_complexity)]
    fn into_slots(
        self,
        class: &str,
        config: &[(String, f64)],
        variables: &[(String, Vec<usize>)],
    ) -> std::result::Result<(u64, Option<f32>, Vec<(String, hebb_tensor::Tensor)>), String> {
        let expected = keras_slot_order(class, config, variables.len());
        match self {
            OptimizerState::Keras3(values, iterations) => {
                let [lr, rest @ ..] = values.as_slice() else {
                    return Err("no learning_rate variable".into());
                };
                if rest.len() != expected.len() {
                    return Err(format!(
                        "{} slot variables in the file, {} expected for {class} and {} weights",
                        rest.len(),
                        expected.len(),
                        variables.len()
                    ));
                }
                let lr = (lr.len() == 1).then(|| lr.as_slice()[0]);
                let slots = expected.into_iter().zip(rest.iter().cloned()).collect();
                Ok((iterations, lr, slots))
            }
            OptimizerState::Keras2(named, iterations) => {
                let mut slots = Vec::new();
                for (name, value) in named {
                    let trimmed = name.strip_suffix(":0").unwrap_or(&name);
                    let mut parts: Vec<&str> = trimmed.split('/').collect();
                    let slot = parts.pop().unwrap_or_default();
                    // Drop the optimiser's own scope ("Adam/"), keep the variable's path.
                    let var_path = parts.get(1..).map(|p| p.join("/")).unwrap_or_default();
                    let kind =
                        keras2_kind(class, slot).ok_or_else(|| format!("unknown slot {name}"))?;
                    let index = variables
                        .iter()
                        .position(|(v, _)| *v == var_path)
                        .ok_or_else(|| format!("slot {name} of no weight of the model"))?;
                    slots.push((format!("{kind}/{index}"), value));
                }
                if slots.len() != expected.len() {
                    return Err(format!(
                        "{} slots in the file, {} expected for {class}",
                        slots.len(),
                        expected.len()
                    ));
                }
                Ok((iterations, None, slots))
            }
        }
    }
}

/// The model of an architecture read from a file of `data_bytes` bytes of
/// weights, built with fresh weights (see
/// [`build_layers`](super::build_layers)): the readers take the layers'
/// weight names and shapes from it.
pub(crate) fn build_model(
    arch: &Architecture,
    data_bytes: usize,
    path: &Path,
    registry: &Registry,
) -> Result<Sequential> {
    super::build_layers(
        &arch.name,
        0,
        arch.input_shape.as_deref(),
        &arch.layers,
        data_bytes,
        path,
        registry,
    )
}

/// The description of a model read from a Keras file, with the weights given.
pub(crate) fn model_desc(
    arch: Architecture,
    weights: Vec<(String, hebb_tensor::Tensor)>,
    compile: Option<CompileDesc>,
    data_bytes: usize,
) -> ModelDesc {
    ModelDesc {
        name: arch.name,
        seed: 0,
        input_shape: arch.input_shape,
        layers: arch.layers,
        weights,
        trainable: Vec::new(),
        compile,
        data_bytes,
    }
}

/// The optimiser's variables as Keras 3 stores them after `iteration`:
/// `learning_rate`, then every slot in [`keras_slot_order`], as
/// `(hebb slot name, value)`. A fresh optimiser (no slots yet) gets Keras'
/// initial values (zeros; Adagrad's `initial_accumulator_value`), which is
/// what Keras' `optimizer.build` creates.
pub(crate) fn keras_optimizer_values(
    c: &CompileDesc,
    weights: &[(String, hebb_tensor::Tensor)],
    path: &Path,
) -> Result<Vec<(String, hebb_tensor::Tensor)>> {
    let lr = c
        .optimizer_config
        .iter()
        .find(|(k, _)| k == "learning_rate")
        .map_or(0.0, |(_, v)| *v as f32);
    let initial = if c.optimizer == "Adagrad" {
        c.optimizer_config
            .iter()
            .find(|(k, _)| k == "initial_accumulator_value")
            .map_or(0.1, |(_, v)| *v as f32)
    } else {
        0.0
    };
    let mut out = vec![("learning_rate".to_string(), hebb_tensor::Tensor::scalar(lr))];
    for name in keras_slot_order(&c.optimizer, &c.optimizer_config, weights.len()) {
        let value = match c.slots.iter().find(|(n, _)| *n == name) {
            Some((_, t)) => t.clone(),
            None if c.slots.is_empty() => {
                let index: usize = name
                    .rsplit('/')
                    .next()
                    .and_then(|i| i.parse().ok())
                    .unwrap_or(0);
                let shape = weights.get(index).map_or(&[][..], |(_, w)| w.shape());
                hebb_tensor::Tensor::full(shape, initial)
            }
            None => {
                return Err(save_error(
                    path,
                    format!("the optimizer's slot {name} is missing"),
                ));
            }
        };
        out.push((name, value));
    }
    Ok(out)
}
