//! Keras 3's `.keras` archive (`keras/src/saving/saving_lib.py`): a zip
//! file of
//!
//! ```text
//! metadata.json       {"keras_version": ..., "date_saved": ...}
//! config.json         {"module": "keras", "class_name": "Sequential", "config": {...},
//!                      "build_config": {...}, "compile_config": {...}}
//! model.weights.h5    layers/<class>/vars/0, 1 (kernel, bias; <class> is dense, dense_1, ...,
//!                     numbered per class in model order); optimizer/vars/0.. (iteration,
//!                     learning_rate, slots in Keras' order); vars (the model's own, none)
//! ```
//!
//! Members are read with their declared and actual sizes bounded (a zip
//! bomb is an error, not an allocation), and their CRC checked. Archives
//! are written stored (uncompressed), as Keras writes them.

use std::io::{Cursor, Read, Write};
use std::path::Path;

use hebb_serialize::hdf5::{self, Attribute, Dataset, Group, Node};
use hebb_tensor::Tensor;
use serde_json::json;
use zip::ZipArchive;
use zip::write::SimpleFileOptions;

use super::{
    KERAS_VERSION, OptimizerState, Training, architecture, build_model, compile_desc,
    config_to_keras, keras_optimizer_values, model_desc, optimizer_keys, parse_json, training,
};
use crate::sequential::saving::{
    ModelDesc, file_error, inner_path, layer_weights, save_error, trainable_shapes,
    trainable_weights, weights_by_layer,
};
use crate::{Error, Result};
use hebb_layers::Registry;

/// The members hebb reads and writes.
const CONFIG: &str = "config.json";
const METADATA: &str = "metadata.json";
const WEIGHTS: &str = "model.weights.h5";
/// The largest `config.json` read (64 MiB).
const MAX_CONFIG_BYTES: u64 = 64 << 20;

/// The paths under `layers/` that Keras 3 gives the layers in the weights
/// file: not their names (which vary between sessions) but their class in
/// snake case, numbered from the second on (`dense`, `dense_1`,
/// `activation`, ...; `saving_lib._save_container_state`).
fn layer_paths(layers: &[crate::sequential::saving::LayerDesc]) -> Vec<String> {
    let mut used: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    layers
        .iter()
        .map(|l| {
            let base = hebb_layers::default_name(&l.class);
            let count = used.entry(base.clone()).or_insert(0);
            *count += 1;
            if *count == 1 {
                base.to_string()
            } else {
                format!("{base}_{}", *count - 1)
            }
        })
        .collect()
}

/// Reads member `name` of at most `limit` bytes.
fn member(
    zip: &mut ZipArchive<Cursor<&[u8]>>,
    name: &str,
    limit: u64,
    path: &Path,
) -> Result<Vec<u8>> {
    let bad = |detail: String| file_error(path, format!("{name}: {detail}"));
    let mut file = zip.by_name(name).map_err(|e| match e {
        zip::result::ZipError::FileNotFound => {
            file_error(path, format!("the archive has no {name}"))
        }
        e => bad(e.to_string()),
    })?;
    if file.size() > limit {
        return Err(bad(format!(
            "declares {} bytes, more than the limit of {limit}",
            file.size()
        )));
    }
    // The declared size may lie: reserve no more than 64 MiB up front.
    let mut out = Vec::with_capacity(file.size().min(64 << 20) as usize);
    (&mut file)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| bad(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(bad(format!("holds more than the limit of {limit} bytes")));
    }
    Ok(out)
}

/// Reads a Keras 3 archive held in `bytes`.
pub(crate) fn read(
    bytes: &[u8],
    path: &Path,
    notes: &mut Vec<String>,
    registry: &Registry,
) -> Result<ModelDesc> {
    let mut zip = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| file_error(path, format!("not a valid .keras (zip) archive: {e}")))?;
    let config = member(&mut zip, CONFIG, MAX_CONFIG_BYTES, path)?;
    let config = String::from_utf8(config)
        .map_err(|_| file_error(path, format!("{CONFIG} is not UTF-8")))?;
    let config = parse_json(&config, CONFIG, path)?;
    if zip.by_name(WEIGHTS).is_err() && zip.by_name("model.weights.npz").is_ok() {
        return Err(Error::Unsupported {
            path: path.to_path_buf(),
            detail: "weights in model.weights.npz (hebb reads model.weights.h5)".into(),
        });
    }
    let weights_bytes = member(&mut zip, WEIGHTS, hebb_serialize::MAX_FILE_BYTES, path)?;
    let data_bytes = weights_bytes.len();
    let weights_path = inner_path(path, WEIGHTS);
    let weights_file = hdf5::parse(weights_bytes, &weights_path)?;
    let root = &weights_file.root;

    let arch = architecture(&config, path, notes)?;
    let model = build_model(&arch, data_bytes, path, registry)?;
    let variables = trainable_shapes(&model);
    let mut weights = Vec::new();
    let paths = layer_paths(&arch.layers);
    for (expected, layer_path) in layer_weights(&model).iter().zip(&paths) {
        let vars = format!("layers/{layer_path}/vars");
        for (index, (var, shape)) in expected.iter().enumerate() {
            let what = format!("{WEIGHTS}: {vars}/{index}");
            let d = super::dataset(
                root,
                &format!("{vars}/{index}"),
                &format!("{what} ({var})"),
                path,
            )?;
            if d.shape != *shape {
                return Err(file_error(
                    path,
                    format!(
                        "{var} is {:?} in the file ({what}), but the configuration gives {shape:?}",
                        d.shape
                    ),
                ));
            }
            let values = d
                .to_f32()
                .map_err(|e| file_error(path, format!("{what}: {e}")))?;
            let t = Tensor::from_vec(values, shape).map_err(|e| file_error(path, e.to_string()))?;
            weights.push((var.clone(), t));
        }
    }
    let compile = match config.get("compile_config").filter(|v| !v.is_null()) {
        None => None,
        Some(cc) => {
            let has_optimizer = cc.get("optimizer").is_some_and(|v| !v.is_null());
            match training(cc, "optimizer", path, notes)? {
                None => None,
                Some(mut t) => {
                    if !has_optimizer {
                        infer_optimizer(root, &mut t, notes);
                    }
                    let state = optimizer_state(root, path)?;
                    compile_desc(t, state, &variables, notes)
                }
            }
        }
    };
    Ok(model_desc(arch, weights, compile, data_bytes))
}

/// Keras 3 leaves the optimiser out of `compile_config` when it was given
/// by name; its class is then the name of `optimizer/vars` (`adam`).
fn infer_optimizer(root: &Group, t: &mut Training, notes: &mut Vec<String>) {
    let name = root
        .group("optimizer/vars")
        .and_then(|g| g.attribute("name"))
        .and_then(Attribute::as_str);
    match name.and_then(optimizer_keys) {
        Some((class, _)) => {
            notes.push(format!(
                "compile_config has no optimizer; using {class} (the name of the saved optimizer \
                 state) with Keras' default hyperparameters and the saved learning rate"
            ));
            t.optimizer = Some((class.to_string(), Vec::new()));
        }
        None => notes.push(
            "compile_config has no optimizer and the saved state names none hebb has; the model \
             is loaded without compiling"
                .into(),
        ),
    }
}

/// `optimizer/vars/0..` of the weights file: the iteration count, then the rest in order.
fn optimizer_state(root: &Group, path: &Path) -> Result<Option<OptimizerState>> {
    let Some(vars) = root.group("optimizer/vars") else {
        return Ok(None);
    };
    let mut values = Vec::new();
    for i in 0.. {
        let at = i.to_string();
        if vars.get(&at).is_none() {
            break;
        }
        values.push(super::dataset(
            vars,
            &at,
            &format!("{WEIGHTS}: optimizer/vars/{at}"),
            path,
        )?);
    }
    let extra = vars.members.len() - values.len();
    if extra > 0 {
        return Err(file_error(
            path,
            format!("{WEIGHTS}: optimizer/vars has {extra} members that are not numbered in order"),
        ));
    }
    let Some((iteration, rest)) = values.split_first() else {
        return Ok(None);
    };
    let iterations = iteration
        .to_i64_scalar()
        .ok()
        .and_then(|i| u64::try_from(i).ok())
        .ok_or_else(|| {
            file_error(
                path,
                format!("{WEIGHTS}: optimizer/vars/0 is not an iteration count"),
            )
        })?;
    let mut tensors = Vec::with_capacity(rest.len());
    for (i, d) in rest.iter().enumerate() {
        let what = format!("{WEIGHTS}: optimizer/vars/{}", i + 1);
        let values = d
            .to_f32()
            .map_err(|e| file_error(path, format!("{what}: {e}")))?;
        tensors.push(
            Tensor::from_vec(values, &d.shape)
                .map_err(|e| file_error(path, format!("{what}: {e}")))?,
        );
    }
    Ok(Some(OptimizerState::Keras3(tensors, iterations)))
}

/// `YYYY-MM-DD@HH:MM:SS` in UTC, as Keras' `date_saved`.
fn date_saved() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}@{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Writes `desc` as a Keras 3 archive.
pub(crate) fn write(desc: &ModelDesc, path: &Path, overwrite: bool) -> Result<()> {
    let config = config_to_keras(desc, path, true)?;
    let hdf5_error = |e: hebb_serialize::Error| save_error(path, e.to_string());
    let named = |name: &str| {
        let mut g = Group::default();
        g.attributes.push(Attribute::string("name", name));
        g
    };
    let mut root = Group::default();
    let by_layer = weights_by_layer(desc, path)?;
    for ((l, layer_path), weights) in desc
        .layers
        .iter()
        .zip(layer_paths(&desc.layers))
        .zip(&by_layer)
    {
        let mut vars = named(&l.name);
        for (index, (_, t)) in weights.iter().enumerate() {
            let d = Dataset::from_f32(t.shape(), t.as_slice()).map_err(hdf5_error)?;
            vars.insert(&index.to_string(), Node::Dataset(d))
                .map_err(hdf5_error)?;
        }
        root.insert(&format!("layers/{layer_path}/vars"), Node::Group(vars))
            .map_err(hdf5_error)?;
    }
    if let Some(c) = &desc.compile {
        let mut vars = named(&c.optimizer.to_ascii_lowercase());
        let iteration = Dataset::from_i64(&[], &[c.iterations as i64]).map_err(hdf5_error)?;
        vars.insert("0", Node::Dataset(iteration))
            .map_err(hdf5_error)?;
        for (i, (_, t)) in keras_optimizer_values(c, &trainable_weights(desc), path)?
            .into_iter()
            .enumerate()
        {
            let d = Dataset::from_f32(t.shape(), t.as_slice()).map_err(hdf5_error)?;
            vars.insert(&(i + 1).to_string(), Node::Dataset(d))
                .map_err(hdf5_error)?;
        }
        root.insert("optimizer/vars", Node::Group(vars))
            .map_err(hdf5_error)?;
    }
    root.insert("vars", Node::Group(named(&desc.name)))
        .map_err(hdf5_error)?;
    let weights = hdf5::to_bytes(&root).map_err(hdf5_error)?;

    let metadata =
        json!({"keras_version": KERAS_VERSION, "date_saved": date_saved(), "saved_by": "hebb"});
    let zip_error = |e: zip::result::ZipError| save_error(path, format!("zip: {e}"));
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in [
        (METADATA, metadata.to_string().into_bytes()),
        (CONFIG, config.to_string().into_bytes()),
        (WEIGHTS, weights),
    ] {
        zip.start_file(name, options).map_err(zip_error)?;
        zip.write_all(&bytes)
            .map_err(|e| save_error(path, format!("zip: {e}")))?;
    }
    let bytes = zip.finish().map_err(zip_error)?.into_inner();
    hebb_serialize::write_atomic(path, &bytes, overwrite)?;
    Ok(())
}
