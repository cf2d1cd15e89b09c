//! Saving and loading whole models (lecture 13.6, Keras `model.save` and
//! `tf.keras.models.load_model`): the architecture, the weights, the
//! compile configuration and the optimiser's state, in one file.
//!
//! Three formats, chosen by [`Sequential::save`] from the file name and by
//! [`load_model`] from the file's first bytes:
//!
//! | format | file | written as |
//! |---|---|---|
//! | hebb | any other name, e.g. `model.safetensors` | safetensors: the weights under their names (`dense/kernel`), the optimiser's slots under `optimizer/{kind}/{i}`, and the configuration as JSON in the metadata (`format = hebb-model`, `version = 1`, `config`) |
//! | Keras HDF5 | `.h5`, `.hdf5` | what Keras writes for `model.save("mnist_model.h5")`: the attributes `model_config` and `training_config` (JSON), groups `model_weights/<layer>` and `optimizer_weights` |
//! | Keras 3 | `.keras` | a zip archive of `metadata.json`, `config.json` and `model.weights.h5` (`layers/dense/vars/0, 1`, `layers/dense_1/vars/..`, `optimizer/vars/0..`) |
//!
//! hebb files restore a model exactly: evaluating gives the same numbers,
//! and fitting on (with [`FitOptions::initial_epoch`](super::FitOptions::initial_epoch))
//! continues bit for bit as if training had not stopped. Keras files hold
//! what Keras needs; hebb reads the Sequential models of `InputLayer` and
//! the layers of its [`Registry`] (hebb's own, and the user's given to
//! [`load_model_with_registry`]) that tf.keras 2 (the lecture's
//! TensorFlow 2.0) and Keras 3 write, and writes files that Keras 3
//! (TensorFlow 2.16 and later) loads, with the optimiser's state.
//!
//! Every write is atomic (a temporary file in the same directory, synced,
//! renamed over the target), and every load checks sizes, shapes and dtypes
//! before allocating: a truncated, corrupted or foreign file gives a typed
//! [`Error`](crate::Error) naming the file, never a panic.

mod keras;
mod native;

pub(crate) use native::{FORMAT as MODEL_FORMAT, OPTIMIZER_PREFIX};

use std::path::{Path, PathBuf};

use hebb_layers::losses::Loss;
use hebb_tensor::Tensor;

use hebb_layers::{Layer, Registry};
use serde_json::Value;

use super::Sequential;
use crate::{Error, Result};

/// The formats [`load_model`] reads and [`Sequential::save`] writes,
/// chosen by `save` from the file name ([`from_path`](Self::from_path))
/// and by `load_model` from the file's first bytes:
///
/// | format | file | written as |
/// |---|---|---|
/// | [`Hebb`](Self::Hebb) | any other name, e.g. `model.safetensors` | safetensors: the weights under their names (`dense/kernel`), the optimiser's slots under `optimizer/{kind}/{i}`, and the configuration as JSON in the metadata (`format = hebb-model`, `version = 1`, `config`, and a SHA-256 `checksum` of it all) |
/// | [`KerasH5`](Self::KerasH5) | `.h5`, `.hdf5` | what Keras writes for `model.save("mnist_model.h5")`: the attributes `model_config` and `training_config` (JSON), groups `model_weights/<layer>` and `optimizer_weights` |
/// | [`KerasArchive`](Self::KerasArchive) | `.keras` | a zip archive of `metadata.json`, `config.json` and `model.weights.h5` (`layers/dense/vars/0, 1`, `layers/dense_1/vars/..`, `optimizer/vars/0..`) |
///
/// hebb files restore a model exactly. For Keras files hebb reads the
/// Sequential models of `InputLayer` and the layers of a [`Registry`]
/// that tf.keras 2 and Keras 3 write (with the optimisers SGD, Adagrad,
/// Adadelta, RMSprop and Adam and their state), and writes files that
/// Keras 3 (TensorFlow 2.16 and later) loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    /// hebb's own: safetensors with the configuration in its metadata.
    Hebb,
    /// Keras' HDF5 model file (`.h5`).
    KerasH5,
    /// Keras 3's zip archive (`.keras`).
    KerasArchive,
}

impl ModelFormat {
    /// The format [`Sequential::save`] writes to `path`: by extension,
    /// `.keras` and `.h5`/`.hdf5` (any case) for Keras, anything else hebb's.
    pub fn from_path(path: &Path) -> Self {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some("keras") => ModelFormat::KerasArchive,
            Some("h5" | "hdf5") => ModelFormat::KerasH5,
            _ => ModelFormat::Hebb,
        }
    }
}

impl std::fmt::Display for ModelFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelFormat::Hebb => "hebb model (safetensors)",
            ModelFormat::KerasH5 => "Keras HDF5 model (.h5)",
            ModelFormat::KerasArchive => "Keras 3 model archive (.keras)",
        })
    }
}

/// A model read by [`load_model_with_notes`], with what was read and what
/// could not be carried over.
pub struct LoadedModel {
    /// The model: built when the file knows its input shape, compiled when
    /// the file has a compile configuration.
    pub model: Sequential,
    /// The file's format.
    pub format: ModelFormat,
    /// What hebb read differently from Keras or left out, one sentence each
    /// (e.g. a kernel regulariser that hebb ignores, optimiser state of a
    /// form hebb does not know, so that the optimiser starts fresh). Empty
    /// for hebb files.
    pub notes: Vec<String>,
}

/// The file-independent description of a model that the formats read
/// into and write from.
#[derive(Debug, Clone)]
pub(crate) struct ModelDesc {
    pub name: String,
    pub seed: u64,
    /// The per-sample input shape, if known.
    pub input_shape: Option<Vec<usize>>,
    pub layers: Vec<LayerDesc>,
    /// Weights by variable name (`dense/kernel`), in model order.
    pub weights: Vec<(String, Tensor)>,
    /// The names of the trainable variables, in order (the optimiser's
    /// slots are numbered by them).
    pub trainable: Vec<String>,
    pub compile: Option<CompileDesc>,
    /// Bytes of weight data the file holds: the configuration may not
    /// describe more parameters than fit in them (checked before any layer
    /// is built, so a crafted configuration cannot make hebb allocate).
    pub data_bytes: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct LayerDesc {
    pub name: String,
    /// Whether the name was given (`Dense::new(8).name("hidden")`) rather than automatic.
    pub given_name: bool,
    /// The layer's class name (`Dense`, `mypkg>Scale`), its key in the [`Registry`].
    pub class: String,
    /// The layer's Keras configuration ([`Layer::config`]).
    pub config: Value,
    /// The per-sample input shape the layer was built for, when known
    /// (Keras' `build_config`).
    pub input_shape: Option<Vec<usize>>,
    /// The layer's [`Layer::training_state`] (hebb's own format only).
    pub state: Option<Value>,
}

#[derive(Debug, Clone)]
pub(crate) struct CompileDesc {
    /// Keras class name: `Adam`, `SGD`, ...
    pub optimizer: String,
    /// Hyperparameters by Keras name.
    pub optimizer_config: Vec<(String, f64)>,
    pub loss: Loss,
    /// Metric names, resolved with `hebb_layers::metrics::from_name`.
    pub metrics: Vec<String>,
    pub iterations: u64,
    /// Optimiser slots by hebb name (`momentum/0`).
    pub slots: Vec<(String, Tensor)>,
}

/// An error about the contents of `path`.
pub(crate) fn file_error(path: &Path, detail: impl Into<String>) -> Error {
    Error::ModelFile {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// An error for a model that cannot be saved to `path`.
pub(crate) fn save_error(path: &Path, detail: impl Into<String>) -> Error {
    Error::Save {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// Loads a model saved by [`Sequential::save`], or by Keras
/// (`model.save("model.h5")`, `model.save("model.keras")`):
/// `tf.keras.models.load_model(path)`. The format is recognised by the
/// file's first bytes, whatever its name.
///
/// ```
/// use hebb_layers::Activation;
/// use hebb_models::sequential::{Sequential, layers::Dense, load_model};
/// use hebb_tensor::Tensor;
///
/// let mut model = Sequential::new();
/// model.add(Dense::new(3).activation(Activation::Softmax).input_shape(&[2]))?;
/// model.compile("adam", "sparse_categorical_crossentropy", vec!["accuracy"])?;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("model.safetensors");
/// model.save(&path, false)?;
///
/// let mut copy = load_model(&path)?;
/// let x = Tensor::from_vec(vec![0.5, -1.0], &[1, 2])?;
/// assert_eq!(copy.predict(&x, 32)?, model.predict(&x, 32)?);
/// assert_eq!(copy.metrics_names(), ["loss", "accuracy"]);
/// # Ok::<(), hebb_models::Error>(())
/// ```
///
/// # Errors
/// [`Error::Serialize`] if the file cannot be read or is damaged at the
/// level of its container (safetensors, HDF5); [`Error::UnknownFormat`] for
/// a file of another kind; [`Error::ModelFile`] for contents that do not
/// make a model (naming the layer or tensor); [`Error::UnsupportedLayer`]
/// and [`Error::Unsupported`] for Keras models hebb cannot represent.
pub fn load_model(path: impl AsRef<Path>) -> Result<Sequential> {
    Ok(load_model_with_notes(path)?.model)
}

/// [`load_model`], also returning the format and notes on what could not
/// be carried over from a Keras file.
///
/// # Errors
/// As [`load_model`].
pub fn load_model_with_notes(path: impl AsRef<Path>) -> Result<LoadedModel> {
    let path = path.as_ref();
    // A file of another kind is refused from its first bytes, before all of it is read.
    if let Some((head, len)) = file_head(path) {
        sniff(&head, len, path)?;
    }
    let bytes = hebb_serialize::read_bounded(path, hebb_serialize::MAX_FILE_BYTES)?;
    load_model_bytes(&bytes, path)
}

/// [`load_model_with_notes`] from bytes already in memory; `path` names
/// the file in errors and is not read.
///
/// # Errors
/// As [`load_model`], without the I/O ones.
pub fn load_model_bytes(bytes: &[u8], path: &Path) -> Result<LoadedModel> {
    load_model_bytes_with(bytes, path, &Registry::builtin())
}

/// [`load_model_with_notes`] for models with layers of one's own: their
/// classes are looked up in `registry` (Keras'
/// `load_model(path, custom_objects={...})`), which holds hebb's layers
/// when made with [`Registry::builtin`].
///
/// ```
/// use hebb_layers::{Registry, Dense};
/// use hebb_models::sequential::{Sequential, load_model_with_registry};
///
/// let mut model = Sequential::new();
/// model.add(Dense::new(3).input_shape(&[2]))?;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("model.safetensors");
/// model.save(&path, false)?;
/// let mut registry = Registry::builtin();
/// registry.register("mypkg>Dense3", Dense::from_config); // a user's class
/// let copy = load_model_with_registry(&path, &registry)?.model;
/// assert_eq!(copy.get_weights(), model.get_weights());
/// # Ok::<(), hebb_models::Error>(())
/// ```
///
/// # Errors
/// As [`load_model`]; [`Error::UnsupportedLayer`] for a class `registry`
/// does not have.
pub fn load_model_with_registry(
    path: impl AsRef<Path>,
    registry: &Registry,
) -> Result<LoadedModel> {
    let path = path.as_ref();
    if let Some((head, len)) = file_head(path) {
        sniff(&head, len, path)?;
    }
    let bytes = hebb_serialize::read_bounded(path, hebb_serialize::MAX_FILE_BYTES)?;
    load_model_bytes_with(&bytes, path, registry)
}

/// [`load_model_bytes`] with the layer classes of `registry` (see
/// [`load_model_with_registry`]).
///
/// # Errors
/// As [`load_model_with_registry`], without the I/O ones.
pub fn load_model_bytes_with(
    bytes: &[u8],
    path: &Path,
    registry: &Registry,
) -> Result<LoadedModel> {
    let format = sniff(bytes, bytes.len() as u64, path)?;
    let mut notes = Vec::new();
    let desc = match format {
        ModelFormat::Hebb => native::read(bytes, path)?,
        ModelFormat::KerasH5 => keras::h5::read(bytes, path, &mut notes, registry)?,
        ModelFormat::KerasArchive => keras::archive::read(bytes, path, &mut notes, registry)?,
    };
    let model = assemble(desc, path, registry)?;
    Ok(LoadedModel {
        model,
        format,
        notes,
    })
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("model", &self.model.name())
            .field("format", &self.format)
            .field("notes", &self.notes)
            .finish()
    }
}

/// How many leading bytes [`keras_signature`] looks at: HDF5 puts its
/// signature at 0, 512, 1024, 2048 or 4096.
const SIGNATURE_BYTES: usize = 4096 + 8;

/// The Keras format whose signature `bytes` (a file's first bytes) start
/// with: HDF5 (`.h5`) or zip (`.keras`).
pub(crate) fn keras_signature(bytes: &[u8]) -> Option<ModelFormat> {
    let is_hdf5 = [0usize, 512, 1024, 2048, 4096]
        .iter()
        .any(|&at| bytes.get(at..at + 8) == Some(b"\x89HDF\r\n\x1a\n".as_slice()));
    if is_hdf5 {
        Some(ModelFormat::KerasH5)
    } else if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        Some(ModelFormat::KerasArchive)
    } else {
        None
    }
}

/// Up to [`SIGNATURE_BYTES`] leading bytes of the regular file at `path`,
/// and its size; `None` for anything else (a pipe, whose bytes a second
/// read would not see again, a device) or if it cannot be read: the reader
/// that follows reads it whole, or reports why not.
pub(crate) fn file_head(path: &Path) -> Option<(Vec<u8>, u64)> {
    use std::io::Read as _;
    // Stat before opening: opening a pipe would take its writer's bytes.
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    let file = std::fs::File::open(path).ok()?;
    let mut head = Vec::with_capacity(SIGNATURE_BYTES);
    file.take(SIGNATURE_BYTES as u64)
        .read_to_end(&mut head)
        .ok()?;
    Some((head, meta.len()))
}

/// Recognises the format by the first bytes (at least [`SIGNATURE_BYTES`]
/// of them, or the whole file) of a file of `len` bytes.
fn sniff(bytes: &[u8], len: u64, path: &Path) -> Result<ModelFormat> {
    if let Some(format) = keras_signature(bytes) {
        return Ok(format);
    }
    // safetensors: an 8-byte header length, then a JSON object.
    if bytes.len() >= 9 && bytes[8] == b'{' {
        return Ok(ModelFormat::Hebb);
    }
    let shown: String = bytes
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ");
    let expected = match ModelFormat::from_path(path) {
        ModelFormat::KerasArchive => "a .keras file is a zip archive (PK..)",
        ModelFormat::KerasH5 => "an .h5 file starts with the HDF5 signature (89 48 44 46 ..)",
        ModelFormat::Hebb => {
            "hebb models are safetensors files, Keras models HDF5 (.h5) or zip (.keras) files"
        }
    };
    Err(Error::UnknownFormat {
        path: path.to_path_buf(),
        detail: format!("{len} bytes starting with [{shown}]; {expected}"),
    })
}

impl Sequential {
    /// The optimiser given to [`compile`](Self::compile) (`model.optimizer`),
    /// with its configuration and state; `None` before `compile`.
    pub fn optimizer(&self) -> Option<&dyn hebb_optim::Optimizer> {
        self.compiled.as_ref().map(|c| c.optimizer.as_ref())
    }

    /// The loss given to [`compile`](Self::compile) (`model.loss`); `None` before `compile`.
    pub fn loss(&self) -> Option<Loss> {
        self.compiled.as_ref().map(|c| c.loss)
    }

    /// The shape of one input sample (Keras `model.input_shape` without the
    /// batch dimension), once known.
    pub fn input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref()
    }

    /// Saves the whole model (`model.save(filepath, overwrite)`): the
    /// layers, the weights, the compile configuration and the optimiser's
    /// state, in the format the file name asks for (see [`ModelFormat`]):
    /// `.keras` and `.h5` for Keras, any other name (e.g.
    /// `model.safetensors`) hebb's own format, which [`load_model`]
    /// restores exactly.
    ///
    /// The file is written atomically: a failed save leaves any old file intact.
    ///
    /// # Errors
    /// [`Error::Serialize`] wrapping
    /// [`AlreadyExists`](hebb_serialize::Error::AlreadyExists) if `overwrite`
    /// is false and the file exists, or an I/O error naming the file (and,
    /// for a directory that does not exist, the directory: it is not
    /// created, as Keras does not create it);
    /// [`Error::RecompileNeeded`], as from [`fit`](Self::fit), if the
    /// optimiser was built for other weights than the model's (a layer added
    /// after training: compile the model again, then save);
    /// [`Error::Save`] when the model cannot be written in the format (a
    /// metric given as an object whose name hebb cannot resolve again; for
    /// Keras formats, an unbuilt model or an activation Keras does not have,
    /// such as `Step`).
    ///
    /// A data-parallel model ([`distribute`](Self::distribute)) is written by
    /// rank 0 only; on the other ranks `save` checks and writes nothing.
    pub fn save(&self, path: impl AsRef<Path>, overwrite: bool) -> Result<()> {
        let path = path.as_ref();
        // As `fit` checks: an optimiser built for other weights (a layer
        // added after training) asks for `compile` again, whatever its
        // state (SGD without momentum has no slots that would not fit).
        self.check_optimizer_fits(&self.trainable_names())?;
        // Data-parallel: the copies are identical and rank 0 writes.
        if !self.is_chief() {
            return Ok(());
        }
        let desc = describe(self, path)?;
        match ModelFormat::from_path(path) {
            ModelFormat::Hebb => native::write(&desc, path, overwrite),
            ModelFormat::KerasH5 => keras::h5::write(&desc, path, overwrite),
            ModelFormat::KerasArchive => keras::archive::write(&desc, path, overwrite),
        }
    }
}

/// The description of `model` for saving.
fn describe(model: &Sequential, path: &Path) -> Result<ModelDesc> {
    let layers = model
        .layers
        .iter()
        .zip(&model.given_names)
        .enumerate()
        .map(|(i, (layer, &given_name))| LayerDesc {
            name: layer.name().to_string(),
            given_name,
            class: layer.class_name().to_string(),
            config: layer.config(),
            input_shape: match i {
                0 => model.input_shape.clone(),
                _ => model.shapes.get(i - 1).cloned(),
            },
            state: layer.training_state(),
        })
        .collect();
    let weights = if model.built() {
        model
            .weights()
            .iter()
            .map(|v| (v.name().to_string(), v.value().clone()))
            .collect()
    } else {
        Vec::new()
    };
    let compile = match &model.compiled {
        None => None,
        Some(c) => {
            let metrics: Vec<String> = c.metrics.iter().map(|m| m.name().to_string()).collect();
            for m in &metrics {
                if hebb_layers::metrics::from_name(m, Some(c.loss.name())).is_err() {
                    return Err(save_error(
                        path,
                        format!(
                            "metric {m:?} cannot be restored by name; compile with metric names \
                             (hebb_layers::metrics::NAMES) to save the model"
                        ),
                    ));
                }
            }
            let optimizer_config: Vec<(String, f64)> = c
                .optimizer
                .config()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            let pairs: Vec<(&str, f64)> = optimizer_config
                .iter()
                .map(|(k, v)| (k.as_str(), *v))
                .collect();
            let mut rebuilt = match hebb_optim::from_config(c.optimizer.name(), &pairs) {
                Ok(o) => o,
                Err(e) => {
                    return Err(save_error(
                        path,
                        format!(
                            "the optimizer {} cannot be rebuilt from its configuration: {e}",
                            c.optimizer.name()
                        ),
                    ));
                }
            };
            // What load_model will do: the state must fit the weights (it
            // does not after a layer is added to a trained model).
            let slots: Vec<(String, Tensor)> = c
                .optimizer
                .slots()
                .into_iter()
                .map(|(n, t)| (n, t.clone()))
                .collect();
            let shapes: Vec<Vec<usize>> = model
                .trainable_variables()
                .iter()
                .map(|v| v.shape().to_vec())
                .collect();
            if let Err(e) = rebuilt.set_state(c.optimizer.iterations(), &slots, &shapes) {
                return Err(save_error(
                    path,
                    format!(
                        "the optimizer's state does not fit the model's weights ({e}); \
                         were layers added after training? compile the model again to reset it"
                    ),
                ));
            }
            Some(CompileDesc {
                optimizer: c.optimizer.name().to_string(),
                optimizer_config,
                loss: c.loss,
                metrics,
                iterations: c.optimizer.iterations(),
                slots,
            })
        }
    };
    Ok(ModelDesc {
        name: model.name.clone(),
        seed: model.seed,
        input_shape: model.input_shape.clone(),
        layers,
        weights,
        trainable: model.trainable_names(),
        compile,
        data_bytes: usize::MAX,
    })
}

/// Makes the layer a description gives from `registry`, named as saved.
fn make_layer(l: &LayerDesc, registry: &Registry, path: &Path) -> Result<Box<dyn Layer>> {
    let mut config = l.config.clone();
    if let Some(o) = config.as_object_mut() {
        // An automatic name is given again by the model, in Keras' order.
        o.insert(
            "name".into(),
            Value::String(if l.given_name {
                l.name.clone()
            } else {
                String::new()
            }),
        );
    }
    if !registry.contains(&l.class) {
        return Err(Error::UnsupportedLayer {
            path: path.to_path_buf(),
            layer: l.name.clone(),
            class: l.class.clone(),
        });
    }
    registry
        .from_config(&l.class, &config)
        .map_err(|e| Error::Unsupported {
            path: path.to_path_buf(),
            detail: format!("layer {}: {e}", l.name),
        })
}

/// The number of parameters a layer of hebb's with weights will create
/// (Dense, Conv2D, BatchNormalization; an upper bound for Dense), from its
/// configuration and its per-sample input and output shapes, before
/// anything is allocated; 0 for the other classes; `None` on overflow.
fn params_before_build(l: &LayerDesc, input: &[usize], output: &[usize]) -> Option<usize> {
    let flag = |key: &str| l.config.get(key).and_then(Value::as_bool).unwrap_or(true);
    match l.class.as_str() {
        "Dense" => {
            let features: usize = input.iter().product();
            let units: usize = output.iter().product();
            features.checked_mul(units)?.checked_add(units)
        }
        "Conv2D" => {
            // kernel_size is [h, w] (or one number) in a config the layer accepted.
            let window: usize = match l.config.get("kernel_size") {
                Some(Value::Array(dims)) => dims
                    .iter()
                    .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                    .try_fold(1usize, |acc, d| acc.checked_mul(d?))?,
                Some(v) => usize::try_from(v.as_u64()?).ok()?.checked_pow(2)?,
                None => 0,
            };
            let channels = *input.last()?;
            let filters = *output.last()?;
            let bias = if flag("use_bias") { filters } else { 0 };
            window
                .checked_mul(channels)?
                .checked_mul(filters)?
                .checked_add(bias)
        }
        "BatchNormalization" => {
            let axis = l.config.get("axis").and_then(Value::as_i64).unwrap_or(-1);
            let rank = i64::try_from(input.len()).ok()? + 1;
            let at = if axis < 0 { axis + rank } else { axis };
            let features = *input.get(usize::try_from(at - 1).ok()?)?;
            let kinds = 2 + usize::from(flag("center")) + usize::from(flag("scale"));
            features.checked_mul(kinds)
        }
        _ => Some(0),
    }
}

/// The model of a description's layers, built for its input shape (if
/// any), with fresh weights; the weights are assigned by [`assemble`].
///
/// Before any layer is built, the parameters of the Dense, Conv2D and
/// BatchNormalization layers are counted from their configurations and must fit in the file's
/// `data_bytes` bytes of weights, so a crafted configuration cannot make
/// hebb allocate; after building, all weights must.
///
/// # Errors
/// [`Error::UnsupportedLayer`] for a class `registry` lacks;
/// [`Error::ModelFile`] for layers that do not fit together, names that
/// are not as saved, or more parameters than the file holds.
pub(crate) fn build_layers(
    name: &str,
    seed: u64,
    input: Option<&[usize]>,
    layers: &[LayerDesc],
    data_bytes: usize,
    path: &Path,
    registry: &Registry,
) -> Result<Sequential> {
    let too_large = || {
        file_error(
            path,
            format!(
                "the configuration describes more parameters than the file's {data_bytes} bytes \
                 of weights can hold"
            ),
        )
    };
    let made = layers
        .iter()
        .map(|l| make_layer(l, registry, path))
        .collect::<Result<Vec<_>>>()?;
    if let Some(input) = input {
        let mut shape = input.to_vec();
        let mut params = 0usize;
        for (l, layer) in layers.iter().zip(&made) {
            let out = layer
                .compute_output_shape(&shape)
                .map_err(|e| file_error(path, format!("layer {}: {e}", l.name)))?;
            let n = params_before_build(l, &shape, &out).ok_or_else(too_large)?;
            params = params.checked_add(n).ok_or_else(too_large)?;
            shape = out;
        }
        if params.checked_mul(4).is_none_or(|b| b > data_bytes) {
            return Err(too_large());
        }
    }
    let mut model = Sequential::new().with_seed(seed).with_name(name);
    for (l, layer) in layers.iter().zip(made) {
        model
            .add_boxed(layer)
            .map_err(|e| file_error(path, format!("layer {}: {e}", l.name)))?;
        let got = model.layers.last().map(|l| l.name());
        if got != Some(l.name.as_str()) {
            return Err(file_error(
                path,
                format!(
                    "layer {} would be named {} in the model; names given by hebb are automatic \
                     only in the order Keras numbers them",
                    l.name,
                    got.unwrap_or("?")
                ),
            ));
        }
    }
    if let Some(input) = input {
        model
            .build(input)
            .map_err(|e| file_error(path, e.to_string()))?;
        let params = model.count_params();
        if params.checked_mul(4).is_none_or(|b| b > data_bytes) {
            return Err(too_large());
        }
    }
    Ok(model)
}

/// Each layer's weights `(name, shape)` of a built model, layer by layer.
pub(crate) fn layer_weights(model: &Sequential) -> Vec<Vec<(String, Vec<usize>)>> {
    model
        .layers
        .iter()
        .map(|l| {
            l.weights()
                .iter()
                .map(|v| (v.name().to_string(), v.shape().to_vec()))
                .collect()
        })
        .collect()
}

/// The trainable variables `(name, shape)` of a built model (the
/// optimiser's slots follow them).
pub(crate) fn trainable_shapes(model: &Sequential) -> Vec<(String, Vec<usize>)> {
    model
        .trainable_variables()
        .iter()
        .map(|v| (v.name().to_string(), v.shape().to_vec()))
        .collect()
}

/// Builds the model a description gives: layers, weights, compilation and
/// optimiser state, each checked against the others.
fn assemble(desc: ModelDesc, path: &Path, registry: &Registry) -> Result<Sequential> {
    if desc.layers.is_empty() && desc.input_shape.is_some() {
        return Err(file_error(path, "an input shape but no layers"));
    }
    let mut model = build_layers(
        &desc.name,
        desc.seed,
        desc.input_shape.as_deref(),
        &desc.layers,
        desc.data_bytes,
        path,
        registry,
    )?;
    let mut weights = desc.weights;
    if model.built() {
        let mut values = Vec::new();
        for var in model.weights() {
            let name = var.name();
            let Some(index) = weights.iter().position(|(n, _)| n == name) else {
                return Err(file_error(
                    path,
                    format!("the weights of {name} ({:?}) are missing", var.shape()),
                ));
            };
            let (_, tensor) = weights.swap_remove(index);
            if tensor.shape() != var.shape() {
                return Err(file_error(
                    path,
                    format!(
                        "{name} is {:?} in the file, but the configuration gives {:?}",
                        tensor.shape(),
                        var.shape()
                    ),
                ));
            }
            values.push(tensor);
        }
        if let Some((extra, _)) = weights.first() {
            return Err(file_error(
                path,
                format!("the file has weights {extra}, which the model does not have"),
            ));
        }
        for (var, value) in model.weights_mut().into_iter().zip(values) {
            var.assign(value)?;
        }
    } else if let Some((first, _)) = weights.first() {
        return Err(file_error(
            path,
            format!("the file has weights ({first}, ...) but no input shape to build the model"),
        ));
    }
    // After building, which may draw what the state replaces (Dropout's seed).
    for (layer, l) in model.layers.iter_mut().zip(&desc.layers) {
        if let Some(state) = &l.state {
            layer
                .set_training_state(state)
                .map_err(|e| file_error(path, format!("layer {}: {e}", l.name)))?;
        }
    }
    if let Some(c) = desc.compile {
        let pairs: Vec<(&str, f64)> = c
            .optimizer_config
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        let optimizer = hebb_optim::from_config(&c.optimizer, &pairs)
            .map_err(|e| file_error(path, format!("optimizer: {e}")))?;
        let metrics: Vec<&str> = c.metrics.iter().map(String::as_str).collect();
        model
            .compile(optimizer, c.loss, metrics)
            .map_err(|e| file_error(path, format!("compile configuration: {e}")))?;
        let shapes: Vec<Vec<usize>> = model
            .trainable_variables()
            .iter()
            .map(|v| v.shape().to_vec())
            .collect();
        if !model.built() && (c.iterations > 0 || !c.slots.is_empty()) {
            return Err(file_error(
                path,
                "optimizer state for a model without an input shape",
            ));
        }
        let names = model.trainable_names();
        if let Some(compiled) = model.compiled.as_mut() {
            compiled
                .optimizer
                .set_state(c.iterations, &c.slots, &shapes)
                .map_err(|e| file_error(path, format!("optimizer state: {e}")))?;
            // The loaded state belongs to these weights (see `fit`).
            if c.iterations > 0 || !c.slots.is_empty() {
                compiled.built_for = Some(names);
            }
        }
    }
    Ok(model)
}

/// The trainable weights of a description, in the optimiser's order.
pub(crate) fn trainable_weights(desc: &ModelDesc) -> Vec<(String, Tensor)> {
    desc.trainable
        .iter()
        .filter_map(|n| desc.weights.iter().find(|(w, _)| w == n).cloned())
        .collect()
}

/// Each layer of a description with its weights `(variable name, tensor)`
/// in the layer's order (for the Keras writers).
pub(crate) fn weights_by_layer<'a>(
    desc: &'a ModelDesc,
    path: &Path,
) -> Result<Vec<Vec<(&'a str, &'a Tensor)>>> {
    let mut out: Vec<Vec<(&str, &Tensor)>> = vec![Vec::new(); desc.layers.len()];
    for (name, t) in &desc.weights {
        let layer = name.split_once('/').map_or("", |(l, _)| l);
        let i = desc
            .layers
            .iter()
            .position(|l| l.name == layer)
            .ok_or_else(|| save_error(path, format!("weights {name} of no layer")))?;
        out[i].push((name.as_str(), t));
    }
    Ok(out)
}

/// `path` as a `PathBuf` for errors inside an archive: `model.keras/model.weights.h5`.
pub(crate) fn inner_path(path: &Path, member: &str) -> PathBuf {
    path.join(member)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hebb_tensor::random::chacha;
    use serde_json::json;

    fn desc(class: &str, config: Value) -> LayerDesc {
        LayerDesc {
            name: "l".into(),
            given_name: true,
            class: class.into(),
            config,
            input_shape: None,
            state: None,
        }
    }

    #[test]
    fn parameters_are_counted_before_building_as_building_makes_them() {
        for (class, config, input) in [
            (
                "Conv2D",
                json!({"filters": 5, "kernel_size": [3, 2], "use_bias": false}),
                &[7, 6, 3][..],
            ),
            (
                "Conv2D",
                json!({"filters": 4, "kernel_size": [3, 3]}),
                &[5, 5, 1],
            ),
            ("BatchNormalization", json!({}), &[4, 4, 6]),
            ("BatchNormalization", json!({"center": false}), &[10]),
            (
                "BatchNormalization",
                json!({"scale": false, "center": false}),
                &[2, 3],
            ),
            ("BatchNormalization", json!({"axis": 2}), &[3, 2]),
            ("Dense", json!({"units": 7}), &[5]),
            ("MaxPooling2D", json!({"pool_size": [2, 2]}), &[4, 4, 2]),
        ] {
            let mut layer = Registry::builtin().from_config(class, &config).unwrap();
            let output = layer.compute_output_shape(input).unwrap();
            layer.build(input, &mut chacha(0)).unwrap();
            let built: usize = layer.weights().iter().map(|w| w.value().len()).sum();
            let counted = params_before_build(&desc(class, config.clone()), input, &output);
            assert_eq!(counted, Some(built), "{class} {config} on {input:?}");
        }
        // Dense without bias: an upper bound.
        let counted = params_before_build(
            &desc("Dense", json!({"units": 7, "use_bias": false})),
            &[5],
            &[7],
        );
        assert_eq!(counted, Some(42));
        // A crafted configuration overflows to None, allocating nothing.
        let huge = desc(
            "Conv2D",
            json!({"filters": 1u64 << 40, "kernel_size": [1u64 << 20, 1u64 << 20]}),
        );
        assert_eq!(
            params_before_build(&huge, &[1 << 21, 1 << 21, 3], &[2, 2, 1 << 40]),
            None
        );
    }
}
