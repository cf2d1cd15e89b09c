//! Keras' HDF5 model file (`model.save("mnist_model.h5")`, Keras'
//! `legacy_h5_format.py`):
//!
//! ```text
//! /                         attrs: keras_version, backend, model_config (JSON), training_config (JSON)
//! /model_weights            attrs: layer_names, backend, keras_version
//! /model_weights/dense      attrs: weight_names = [sequential/dense/kernel, sequential/dense/bias]
//! /model_weights/dense/sequential/dense/kernel    [in, units] float32
//! /optimizer_weights        attrs: weight_names = [adam/iteration, adam/learning_rate, ...]
//! ```
//!
//! tf.keras 2 names weights `dense/kernel:0` and optimiser variables
//! `Adam/iter:0`, `Adam/dense/kernel/m:0`; Keras 3 `sequential/dense/kernel`
//! and `adam/iteration`, `adam/learning_rate`, then the slots in Keras'
//! order. Both are read; Keras 3's layout is written. Attributes longer
//! than HDF5's 64 KiB header limit are split by Keras into `layer_names0`,
//! `layer_names1`, ...; those are read too.

use std::path::Path;

use hebb_serialize::hdf5::{self, Attribute, Dataset, Group, Node};
use hebb_tensor::Tensor;
use serde_json::Value;

use super::{
    KERAS_VERSION, OptimizerState, architecture, build_model, compile_desc, config_to_keras,
    keras_optimizer_values, model_desc, parse_json, training, training_to_keras,
};
use crate::Result;
use crate::sequential::saving::{
    ModelDesc, file_error, layer_weights, save_error, trainable_shapes, trainable_weights,
    weights_by_layer,
};
use hebb_layers::Registry;

/// A weight's `(name, shape)`.
type VarShape = (String, Vec<usize>);

/// A list-of-strings attribute, also when Keras split it into `name0`, `name1`, ...
fn string_list(group: &Group, name: &str) -> Option<Vec<String>> {
    if let Some(a) = group.attribute(name) {
        return a
            .as_strings()
            .map(|v| v.into_iter().map(str::to_string).collect());
    }
    let mut out = Vec::new();
    for i in 0.. {
        let Some(a) = group.attribute(&format!("{name}{i}")) else {
            break;
        };
        out.extend(a.as_strings()?.into_iter().map(str::to_string));
    }
    (!out.is_empty()).then_some(out)
}

/// A string attribute of the root holding JSON.
fn json_attr(root: &Group, name: &str, path: &Path) -> Result<Option<Value>> {
    match root.attribute(name) {
        None => Ok(None),
        Some(a) => {
            let text = a
                .as_str()
                .ok_or_else(|| file_error(path, format!("attribute {name} is not a string")))?;
            Ok(Some(parse_json(text, name, path)?))
        }
    }
}

/// A dataset as a tensor of its own shape.
fn tensor(d: &Dataset, what: &str, path: &Path) -> Result<Tensor> {
    let values = d
        .to_f32()
        .map_err(|e| file_error(path, format!("{what}: {e}")))?;
    Tensor::from_vec(values, &d.shape).map_err(|e| file_error(path, format!("{what}: {e}")))
}

/// Reads a Keras HDF5 model file held in `bytes`.
pub(crate) fn read(
    bytes: &[u8],
    path: &Path,
    notes: &mut Vec<String>,
    registry: &Registry,
) -> Result<ModelDesc> {
    let file = hdf5::parse(bytes.to_vec(), path)?;
    let root = &file.root;
    let Some(config) = json_attr(root, "model_config", path)? else {
        let detail = if root.attribute("layer_names").is_some() {
            "an HDF5 weights file (model.save_weights) without a model configuration"
        } else {
            "an HDF5 file without a Keras model configuration (no model_config attribute)"
        };
        return Err(file_error(path, detail));
    };
    let arch = architecture(&config, path, notes)?;
    let model = build_model(&arch, bytes.len(), path, registry)?;
    let variables = trainable_shapes(&model);

    let group = root
        .group("model_weights")
        .ok_or_else(|| file_error(path, "no model_weights group"))?;
    let layer_names = string_list(group, "layer_names")
        .ok_or_else(|| file_error(path, "model_weights has no layer_names attribute"))?;
    let mut weighted = Vec::new();
    for name in &layer_names {
        let g = group
            .group(name)
            .ok_or_else(|| file_error(path, format!("no group model_weights/{name}")))?;
        let names = string_list(g, "weight_names").unwrap_or_default();
        if !names.is_empty() {
            weighted.push((name.clone(), g, names));
        }
    }
    if !model.built() && !weighted.is_empty() {
        return Err(file_error(
            path,
            "the configuration has no input shape, but the file has weights",
        ));
    }
    let expected: Vec<(&str, Vec<VarShape>)> = arch
        .layers
        .iter()
        .zip(layer_weights(&model))
        .filter(|(_, w)| !w.is_empty())
        .map(|(l, w)| (l.name.as_str(), w))
        .collect();
    if weighted.len() != expected.len() {
        return Err(file_error(
            path,
            format!(
                "the file has weights for {} layers, the configuration has {} layers with weights",
                weighted.len(),
                expected.len()
            ),
        ));
    }
    let mut weights = Vec::new();
    for ((file_layer, g, names), (layer, expected)) in weighted.iter().zip(&expected) {
        if names.len() != expected.len() {
            return Err(file_error(
                path,
                format!(
                    "layer {file_layer} has {} weights in the file; layer {layer} has {}",
                    names.len(),
                    expected.len()
                ),
            ));
        }
        for (wname, (var, shape)) in names.iter().zip(expected) {
            let what = format!("model_weights/{file_layer}/{wname}");
            let d = super::dataset(g, wname, &what, path)?;
            if d.shape != *shape {
                return Err(file_error(
                    path,
                    format!(
                        "{var} is {:?} in the file ({what}), but the configuration gives {shape:?}",
                        d.shape
                    ),
                ));
            }
            weights.push((var.clone(), tensor(d, &what, path)?));
        }
    }

    let compile = match json_attr(root, "training_config", path)? {
        None => {
            notes.push("the file has no training configuration; the model is not compiled".into());
            None
        }
        Some(t) => match training(&t, "optimizer_config", path, notes)? {
            None => None,
            Some(t) => {
                let state = optimizer_state(root, path, notes)?;
                compile_desc(t, state, &variables, notes)
            }
        },
    };
    Ok(model_desc(arch, weights, compile, bytes.len()))
}

/// The `optimizer_weights` group, if any, in either Keras' naming.
fn optimizer_state(
    root: &Group,
    path: &Path,
    notes: &mut Vec<String>,
) -> Result<Option<OptimizerState>> {
    let Some(group) = root.group("optimizer_weights") else {
        return Ok(None);
    };
    let Some(names) = string_list(group, "weight_names") else {
        notes.push("optimizer_weights has no weight_names; the optimizer starts fresh".into());
        return Ok(None);
    };
    let mut values = Vec::with_capacity(names.len());
    for name in &names {
        let what = format!("optimizer_weights/{name}");
        let d = super::dataset(group, name, &what, path)?;
        values.push((name.clone(), d));
    }
    let Some(((first, iteration), rest)) = values.split_first() else {
        return Ok(None);
    };
    let iterations = iteration
        .to_i64_scalar()
        .ok()
        .and_then(|i| u64::try_from(i).ok());
    let Some(iterations) = iterations else {
        notes.push(format!(
            "optimizer_weights/{first} is not an iteration count; the optimizer starts fresh"
        ));
        return Ok(None);
    };
    let mut tensors = Vec::with_capacity(rest.len());
    for (name, d) in rest {
        tensors.push((
            name.clone(),
            tensor(d, &format!("optimizer_weights/{name}"), path)?,
        ));
    }
    Ok(Some(if first.ends_with(":0") {
        OptimizerState::Keras2(tensors, iterations)
    } else {
        OptimizerState::Keras3(tensors.into_iter().map(|(_, t)| t).collect(), iterations)
    }))
}

/// Writes `desc` as a Keras HDF5 model file.
pub(crate) fn write(desc: &ModelDesc, path: &Path, overwrite: bool) -> Result<()> {
    let config = config_to_keras(desc, path, false)?;
    let hdf5_error = |e: hebb_serialize::Error| save_error(path, e.to_string());
    let mut root = Group::default();
    root.attributes
        .push(Attribute::string("backend", "tensorflow"));
    root.attributes
        .push(Attribute::string("keras_version", KERAS_VERSION));
    root.attributes
        .push(Attribute::string("model_config", &config.to_string()));
    if let Some(c) = &desc.compile {
        root.attributes.push(Attribute::string(
            "training_config",
            &training_to_keras(c, false).to_string(),
        ));
    }

    let mut weights_group = Group::default();
    let names: Vec<&str> = desc.layers.iter().map(|l| l.name.as_str()).collect();
    weights_group
        .attributes
        .push(Attribute::strings("layer_names", &names));
    weights_group
        .attributes
        .push(Attribute::string("backend", "tensorflow"));
    weights_group
        .attributes
        .push(Attribute::string("keras_version", KERAS_VERSION));
    let by_layer = weights_by_layer(desc, path)?;
    for (l, layer_weights) in desc.layers.iter().zip(&by_layer) {
        let mut g = Group::default();
        if layer_weights.is_empty() {
            g.attributes.push(Attribute::floats("weight_names", &[]));
        } else {
            // Keras 3: `{model}/{layer}/{weight}`.
            let names: Vec<String> = layer_weights
                .iter()
                .map(|(n, _)| format!("{}/{n}", desc.name))
                .collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            g.attributes.push(Attribute::strings("weight_names", &refs));
            for (name, (_, t)) in names.iter().zip(layer_weights) {
                let d = Dataset::from_f32(t.shape(), t.as_slice()).map_err(hdf5_error)?;
                g.insert(name, Node::Dataset(d)).map_err(hdf5_error)?;
            }
        }
        weights_group
            .insert(&l.name, Node::Group(g))
            .map_err(hdf5_error)?;
    }
    let mut top = Group::default();
    top.attributes.push(Attribute::floats("weight_names", &[]));
    weights_group
        .insert("top_level_model_weights", Node::Group(top))
        .map_err(hdf5_error)?;
    root.insert("model_weights", Node::Group(weights_group))
        .map_err(hdf5_error)?;

    if let Some(c) = &desc.compile {
        let scope = c.optimizer.to_ascii_lowercase();
        let mut g = Group::default();
        let mut names = vec![format!("{scope}/iteration")];
        let mut datasets =
            vec![Dataset::from_i64(&[], &[c.iterations as i64]).map_err(hdf5_error)?];
        let trainable = trainable_weights(desc);
        for (slot, t) in keras_optimizer_values(c, &trainable, path)? {
            let name = match slot.split_once('/') {
                Some((kind, index)) => {
                    let var = index
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| trainable.get(i))
                        .map_or(index.to_string(), |(v, _)| v.replace('/', "_"));
                    format!("{scope}/{}_{var}_{kind}", desc.name)
                }
                None => format!("{scope}/{slot}"),
            };
            names.push(name);
            datasets.push(Dataset::from_f32(t.shape(), t.as_slice()).map_err(hdf5_error)?);
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        g.attributes.push(Attribute::strings("weight_names", &refs));
        for (name, d) in names.iter().zip(datasets) {
            g.insert(name, Node::Dataset(d)).map_err(hdf5_error)?;
        }
        root.insert("optimizer_weights", Node::Group(g))
            .map_err(hdf5_error)?;
    }
    hdf5::write(path, &root, overwrite)?;
    Ok(())
}
