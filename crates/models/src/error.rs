//! The error type of hebb-models.

/// Errors from building, training or running models.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A layer, loss or tape op failed; the message names it and the shapes.
    #[error(transparent)]
    Layers(#[from] hebb_layers::Error),
    /// Inputs do not fit the model.
    #[error("{model}: {detail}")]
    Shape {
        /// The model.
        model: &'static str,
        /// Which shapes do not fit.
        detail: String,
    },
    /// The perceptron rule made mistakes in every epoch up to the limit: the
    /// data are not linearly separable (XOR), or the limit is too low.
    #[error(
        "perceptron did not converge within {epochs} epochs ({errors} of {samples} samples still misclassified in the last epoch)"
    )]
    NotConverged {
        /// The epoch limit reached.
        epochs: usize,
        /// Misclassified samples in the last epoch.
        errors: usize,
        /// Samples per epoch.
        samples: usize,
    },
    /// A `Sequential` layer cannot be built (shapes, names).
    #[error("layer {layer}: {detail}")]
    Build {
        /// The layer's name.
        layer: String,
        /// What does not fit.
        detail: String,
    },
    /// The model's input shape is not known yet.
    #[error(
        "model {model} is not built yet: give the first layer an input_shape, or call build/fit first"
    )]
    NotBuilt {
        /// The model's name.
        model: String,
    },
    /// `fit`/`evaluate` before `compile`.
    #[error("model {model} must be compiled first: call compile(optimizer, loss, metrics)")]
    NotCompiled {
        /// The model's name.
        model: String,
    },
    /// Class-index targets with a class the model has no output for (MNIST's
    /// labels 0..=9 given to a model of 3 outputs), found before training or
    /// evaluating, whatever the number of outputs.
    /// Labels are reported as given: `9`, or `1e30` for a label no `usize`
    /// holds.
    #[error(
        "labels have classes up to {} but the model has {outputs} output{} (layer {layer}): \
         label {} of sample {first_sample} is the first without an output, \
         and these labels need at least {} units in the last layer",
        label_text(*.max_label),
        plural(*.outputs),
        label_text(*.first_label),
        units_for(*.max_label)
    )]
    LabelsOutOfRange {
        /// The largest label, a class index (a whole number `>= 0`), as given.
        max_label: f32,
        /// The model's outputs per sample (the last axis).
        outputs: usize,
        /// The layer that sets the number of outputs (the last `Dense`).
        layer: String,
        /// The first sample (in the targets' order) whose label is `>= outputs`.
        first_sample: usize,
        /// Its label, as given.
        first_label: f32,
    },
    /// `fit` with an optimiser that was built for other variables: a layer
    /// was added (or the model otherwise changed) after training, and the
    /// optimiser's state belongs to the old weights. Keras requires
    /// `compile` again after changing a model.
    #[error(
        "model {model}: {detail}; compile the model again (Keras requires compile after changing the model)"
    )]
    RecompileNeeded {
        /// The model's name.
        model: String,
        /// What changed, e.g. `the optimizer (SGD) was built for 2 weight
        /// tensors (dense/kernel, dense/bias), the model now has 4 (...)`.
        detail: String,
    },
    /// Weights that do not fit the model.
    #[error("weights do not fit the model: {detail}")]
    Weights {
        /// Which tensor differs.
        detail: String,
    },
    /// Data-parallel training failed: ranks running different programs, a
    /// batch smaller than the number of workers, a broken group (a dead
    /// worker), the engine missing.
    #[error("data-parallel training: {detail}")]
    Distributed {
        /// What is wrong, and the fix.
        detail: String,
    },
    /// Inputs or targets that do not fit (counts, ranks, options).
    #[error("{detail}")]
    Data {
        /// What is wrong.
        detail: String,
    },
    /// `fit`'s `validation_split` leaves no training or no validation
    /// samples: Keras takes the first `split_at = floor(samples · (1 -
    /// validation_split))` samples for training and the rest for validation,
    /// and refuses a split where either part is empty (`split_at` 0 or
    /// `samples`), rather than train without validation or on nothing.
    #[error(
        "training data contains {samples} sample{}, which is not sufficient to split it into a \
         validation and training set as specified by validation_split={validation_split:?} \
         ({train} sample{} for training, {validation} for validation; each needs at least 1). \
         Either provide more data, or a different value for validation_split",
        plural(*.samples),
        plural(*.train)
    )]
    ValidationSplit {
        /// The number of samples given to `fit`.
        samples: usize,
        /// The fraction asked for (printed in Rust's shortest form that
        /// reads back as the same value: `1e-17`, `2.2250738585072014e-308`).
        validation_split: f64,
        /// Samples left for training (`split_at`).
        train: usize,
        /// Samples left for validation (`samples - split_at`).
        validation: usize,
    },
    /// An optimiser could not be made or applied.
    #[error(transparent)]
    Optim(#[from] hebb_optim::Error),
    /// A file could not be written.
    #[error("{}: {detail}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The system's message.
        detail: String,
    },
    /// Writing or reading a weights file failed (I/O, an existing file with
    /// `overwrite = false`, not a safetensors file, a dtype other than F32);
    /// the message names the file.
    #[error(transparent)]
    Serialize(#[from] hebb_serialize::Error),
    /// A weights file whose tensors do not fit the model: the first variable
    /// (in the model's order) that is missing from the file or has another
    /// shape, or a tensor the model lacks.
    #[error("weights file {} does not fit model {model}: {detail}", path.display())]
    WeightsFile {
        /// The file.
        path: std::path::PathBuf,
        /// The model's name.
        model: String,
        /// E.g. `dense_1/kernel is [128, 10] in the model but [64, 10] in the file`.
        detail: String,
    },
    /// A model file whose contents do not make a model: a configuration
    /// that is not valid JSON or lacks a field, weights missing from the
    /// file or of another shape than the configuration gives, optimiser
    /// state that does not fit. The message names the file and the layer,
    /// tensor or field.
    #[error("model file {}: {detail}", path.display())]
    ModelFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, e.g. `dense_1/kernel is [64, 10] in the file but the configuration gives [128, 10]`.
        detail: String,
    },
    /// A Keras model file with a layer hebb does not have.
    #[error(
        "model file {}: layer {layer} is a Keras {class}, which hebb does not support \
         (hebb knows InputLayer and the classes of hebb_layers::Registry::builtin(); a layer \
         of one's own is loaded with load_model_with_registry)",
        path.display()
    )]
    UnsupportedLayer {
        /// The file.
        path: std::path::PathBuf,
        /// The layer's name.
        layer: String,
        /// Its Keras class name, e.g. `Conv2D`.
        class: String,
    },
    /// A Keras model file that uses a feature hebb does not have (an
    /// activation, a Dense without bias, a functional model, a dtype other
    /// than float32, ...).
    #[error("model file {}: not supported by hebb: {detail}", path.display())]
    Unsupported {
        /// The file.
        path: std::path::PathBuf,
        /// Which feature, and where.
        detail: String,
    },
    /// A file that is none of the formats `load_model` reads (a hebb
    /// safetensors model, a Keras HDF5 `.h5` or a Keras 3 `.keras` archive).
    #[error("{}: not a model file hebb reads: {detail}", path.display())]
    UnknownFormat {
        /// The file.
        path: std::path::PathBuf,
        /// What the file looks like instead.
        detail: String,
    },
    /// `save` cannot write this model in the format asked for (e.g. an
    /// activation Keras does not have, to a `.keras` file).
    #[error("cannot save model to {}: {detail}", path.display())]
    Save {
        /// The file.
        path: std::path::PathBuf,
        /// Why not.
        detail: String,
    },
    /// A batch loss became NaN or infinite during `fit`.
    #[error("training diverged: loss is {loss} at epoch {} batch {batch}; check the data for NaN or infinite values, or try a smaller learning rate", epoch + 1)]
    NonFiniteBatchLoss {
        /// The epoch (0-based; printed 1-based as Keras does).
        epoch: usize,
        /// The batch within the epoch (0-based).
        batch: usize,
        /// The loss value.
        loss: f32,
    },
    /// The loss became NaN or infinite.
    #[error(
        "training diverged: loss is {loss} at iteration {iteration}; try a smaller learning rate"
    )]
    NonFiniteLoss {
        /// The iteration (0-based) whose loss is not finite.
        iteration: usize,
        /// The loss value.
        loss: f32,
    },
}

impl From<hebb_tensor::Error> for Error {
    fn from(e: hebb_tensor::Error) -> Self {
        Error::Layers(e.into())
    }
}

impl From<hebb_autograd::Error> for Error {
    fn from(e: hebb_autograd::Error) -> Self {
        Error::Layers(e.into())
    }
}

/// `"s"` unless `n` is 1.
fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A class label as given: a whole number below 2^53 as an integer (`9`),
/// anything else in Rust's shortest round-trip form (`1e30`).
fn label_text(label: f32) -> String {
    if label.fract() == 0.0 && f64::from(label).abs() < 9_007_199_254_740_992.0 {
        format!("{}", label as i64)
    } else {
        format!("{label:?}")
    }
}

/// The number of units labels up to `max_label` need: `max_label + 1`
/// (`10` for MNIST's 9; `1e30 + 1` where the sum is not exact).
fn units_for(max_label: f32) -> String {
    if max_label >= 0.0 && f64::from(max_label) < 9_007_199_254_740_992.0 {
        (max_label as u64 + 1).to_string()
    } else {
        format!("{} + 1", label_text(max_label))
    }
}

/// `Result` with hebb-models' [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
