//! Callbacks run by `fit` (Keras `tf.keras.callbacks`): [`EarlyStopping`],
//! [`TerminateOnNaN`], [`CsvLogger`], [`ModelCheckpoint`].

use std::io::Write;
use std::path::{Path, PathBuf};

use hebb_tensor::Tensor;

use crate::{Error, Result};

/// Whether training goes on after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep training.
    Continue,
    /// Stop after this epoch (or batch) (`model.stop_training = True`).
    Stop,
}

/// The figures of one epoch, `(name, value)` in Keras' order
/// (`loss`, metrics, `val_loss`, `val_` metrics).
pub type Logs = [(String, f32)];

/// A hook into `fit` (Keras `Callback`). Every method has a default that does nothing.
pub trait Callback: Send {
    /// Called by `fit` before training with the model's weight names (in
    /// `get_weights` order) and layer names, once the model is built
    /// (Keras' `callback.set_model`); callbacks that write weights files
    /// use them.
    fn set_model_weights(&mut self, _weight_names: &[String], _layer_names: &[String]) {}

    /// Whether a data-parallel `fit` runs this callback on every rank
    /// (`true`, the default: it sees the reduced figures, the same on every
    /// rank, and decides the same) or on rank 0 only (`false`: callbacks
    /// that write files, as Horovod's examples keep them to rank 0).
    fn on_every_rank(&self) -> bool {
        true
    }

    /// Before the first epoch.
    ///
    /// # Errors
    /// Whatever the callback fails with (e.g. an unwritable log file).
    fn on_train_begin(&mut self) -> Result<()> {
        Ok(())
    }

    /// After each training batch with its mean loss.
    ///
    /// # Errors
    /// Whatever the callback fails with.
    fn on_batch_end(&mut self, _epoch: usize, _batch: usize, _loss: f32) -> Result<Control> {
        Ok(Control::Continue)
    }

    /// After each epoch, with its figures and the model's current weights
    /// (in `get_weights` order; cheap clones).
    ///
    /// # Errors
    /// Whatever the callback fails with.
    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        _logs: &Logs,
        _weights: &[Tensor],
    ) -> Result<Control> {
        Ok(Control::Continue)
    }

    /// Weights the model should end training with (EarlyStopping's
    /// `restore_best_weights`), asked for after the last epoch.
    fn weights_to_restore(&self) -> Option<Vec<Tensor>> {
        None
    }
}

fn lookup(logs: &Logs, key: &str) -> Option<f32> {
    logs.iter().find(|(k, _)| k == key).map(|&(_, v)| v)
}

/// The names in `logs`, joined by commas as Keras joins `logs.keys()`.
fn available(logs: &Logs) -> String {
    logs.iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Stops training when a monitored figure has stopped improving (Keras
/// `EarlyStopping(monitor="val_loss", min_delta=0, patience=0, mode="auto",
/// restore_best_weights=False)`). `mode` is `min` unless the name contains
/// `acc` or `auc` (Keras' `auto`).
///
/// An epoch whose logs lack the monitored figure (a misspelt name such as
/// `"val_los"`, or `val_loss` in an epoch without validation) neither counts
/// nor stops, and gives Keras' warning through [`crate::warnings`] (once
/// per distinct message): ``Early stopping conditioned on metric `val_los`
/// which is not available. Available metrics are: loss,accuracy``.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    monitor: String,
    min_delta: f32,
    patience: usize,
    restore_best_weights: bool,
    best: Option<f32>,
    best_weights: Option<Vec<Tensor>>,
    wait: usize,
    /// The epoch at which training was stopped, if it was (Keras `stopped_epoch`).
    pub stopped_epoch: Option<usize>,
}

impl EarlyStopping {
    /// Watches `monitor` (e.g. `"val_loss"`), stopping after `patience`
    /// epochs without an improvement larger than `min_delta`.
    pub fn new(monitor: &str, patience: usize) -> Self {
        Self {
            monitor: monitor.to_string(),
            min_delta: 0.0,
            patience,
            restore_best_weights: false,
            best: None,
            best_weights: None,
            wait: 0,
            stopped_epoch: None,
        }
    }

    /// The smallest change that counts as an improvement.
    pub fn min_delta(mut self, min_delta: f32) -> Self {
        self.min_delta = min_delta.abs();
        self
    }

    /// End training with the weights of the best epoch.
    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }

    fn maximise(&self) -> bool {
        self.monitor.contains("acc") || self.monitor.contains("auc")
    }
}

impl Callback for EarlyStopping {
    fn on_train_begin(&mut self) -> Result<()> {
        self.best = None;
        self.best_weights = None;
        self.wait = 0;
        self.stopped_epoch = None;
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, weights: &[Tensor]) -> Result<Control> {
        let Some(value) = lookup(logs, &self.monitor) else {
            // Keras warns and carries on when the figure is missing (a
            // misspelt name, or no validation this epoch).
            crate::warnings::warn(format!(
                "Early stopping conditioned on metric `{}` which is not available. \
                 Available metrics are: {}",
                self.monitor,
                available(logs)
            ));
            return Ok(Control::Continue);
        };
        let improved = match self.best {
            None => true,
            Some(best) if self.maximise() => value - self.min_delta > best,
            Some(best) => value + self.min_delta < best,
        };
        if improved {
            self.best = Some(value);
            self.wait = 0;
            if self.restore_best_weights {
                self.best_weights = Some(weights.to_vec());
            }
            return Ok(Control::Continue);
        }
        self.wait += 1;
        // Keras: stop once `patience` epochs in a row brought no improvement.
        if self.wait >= self.patience && epoch > 0 {
            self.stopped_epoch = Some(epoch);
            return Ok(Control::Stop);
        }
        Ok(Control::Continue)
    }

    fn weights_to_restore(&self) -> Option<Vec<Tensor>> {
        if self.restore_best_weights {
            self.best_weights.clone()
        } else {
            None
        }
    }
}

/// Stops training as soon as a batch loss is NaN or infinite (Keras
/// `TerminateOnNaN`). Without it, `fit` returns an error naming the epoch and
/// batch; with it, `fit` returns the history so far.
#[derive(Debug, Clone, Default)]
pub struct TerminateOnNaN {
    /// `(epoch, batch)` where training was stopped, if it was.
    pub stopped_at: Option<(usize, usize)>,
}

impl Callback for TerminateOnNaN {
    fn on_batch_end(&mut self, epoch: usize, batch: usize, loss: f32) -> Result<Control> {
        if loss.is_finite() {
            return Ok(Control::Continue);
        }
        self.stopped_at = Some((epoch, batch));
        Ok(Control::Stop)
    }
}

/// Writes each epoch's figures to a CSV file (Keras `CSVLogger`): a header
/// `epoch,<figures in sorted order>` then one row per epoch. The file is written to a
/// temporary file beside it and renamed into place after every epoch, so an
/// interrupted run never leaves a half-written log.
#[derive(Debug, Clone)]
pub struct CsvLogger {
    path: PathBuf,
    keys: Option<Vec<String>>,
    rows: Vec<String>,
    header: Option<String>,
}

impl CsvLogger {
    /// A logger writing to `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            keys: None,
            rows: Vec::new(),
            header: None,
        }
    }

    fn write(&self) -> Result<()> {
        let io = |e: std::io::Error| Error::Io {
            path: self.path.clone(),
            detail: e.to_string(),
        };
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        if let Some(h) = &self.header {
            writeln!(tmp, "{h}").map_err(io)?;
        }
        for row in &self.rows {
            writeln!(tmp, "{row}").map_err(io)?;
        }
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(&self.path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

impl Callback for CsvLogger {
    fn on_every_rank(&self) -> bool {
        false
    }

    fn on_train_begin(&mut self) -> Result<()> {
        self.rows.clear();
        self.keys = None;
        self.header = None;
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, _weights: &[Tensor]) -> Result<Control> {
        // Keras 3: the columns are the first epoch's keys, sorted, plus their
        // `val_` twins when that epoch was not validated (validation_freq > 1);
        // a figure missing from an epoch is written as `NA`.
        let keys = self.keys.get_or_insert_with(|| {
            let mut keys: Vec<String> = logs.iter().map(|(k, _)| k.clone()).collect();
            keys.sort();
            if !keys.iter().any(|k| k.starts_with("val_")) {
                let val: Vec<String> = keys.iter().map(|k| format!("val_{k}")).collect();
                keys.extend(val);
            }
            keys
        });
        let values: Vec<String> = keys
            .iter()
            .map(|k| lookup(logs, k).map_or_else(|| "NA".to_string(), |v| v.to_string()))
            .collect();
        if self.header.is_none() {
            self.header = Some(format!("epoch,{}", keys.join(",")));
        }
        self.rows.push(format!("{epoch},{}", values.join(",")));
        self.write()?;
        Ok(Control::Continue)
    }
}

/// Saves the model's weights after epochs (Keras
/// `ModelCheckpoint(filepath, monitor="val_loss", save_best_only=False,
/// save_weights_only=True, mode="auto")`), in the format of
/// [`Sequential::save_weights`](super::Sequential::save_weights), so that
/// [`load_weights`](super::Sequential::load_weights) reads the files back.
/// Made by [`Sequential::model_checkpoint`](super::Sequential::model_checkpoint),
/// which gives it the weights' names.
///
/// `filepath` may name the epoch and the epoch's figures as Keras does with
/// Python's `str.format`: `{epoch}` is the 1-based epoch, zero-padded to two
/// digits (Keras' usual `{epoch:02d}`); `{epoch:03d}`, `{epoch:d}` and
/// `{val_loss:.4f}`, `{loss}` (any figure in the logs, with an optional
/// `.Nf` precision) are understood too; `{{` and `}}` are literal braces.
/// Without a placeholder each save replaces the one before.
///
/// With `save_best_only`, the weights are saved only in epochs where the
/// monitored figure improves on the best so far, strictly, the best starting
/// at +inf (-inf when maximising) as in Keras, so NaN never improves: lower
/// is better unless the name contains `acc` or `auc` (Keras' `auto` mode). Epochs without the
/// figure (a misspelt name, or an epoch not validated) are skipped with
/// Keras' warning through [`crate::warnings`], once per distinct message:
/// `Can save best model only with val_los available, skipping. Available
/// metrics are: loss,accuracy`. Without `save_best_only` the monitored
/// figure is not used (as in Keras). Files are written atomically
/// (temporary file, sync, rename), replacing older ones; missing parent
/// directories are created.
#[derive(Debug, Clone)]
pub struct ModelCheckpoint {
    filepath: PathBuf,
    names: Vec<String>,
    layers: Vec<String>,
    monitor: String,
    save_best_only: bool,
    verbose: u8,
    best: Option<f32>,
}

impl ModelCheckpoint {
    /// Takes the weight and layer names of the built model.
    fn take_names(&mut self, weight_names: &[String], layer_names: &[String]) {
        self.names = weight_names.to_vec();
        self.layers = layer_names.to_vec();
    }

    /// A checkpoint saving tensors `names` (in `get_weights` order) to
    /// `filepath`, recording `layers` in the file's metadata.
    pub(crate) fn new(filepath: PathBuf, names: Vec<String>, layers: Vec<String>) -> Self {
        Self {
            filepath,
            names,
            layers,
            monitor: "val_loss".into(),
            save_best_only: false,
            verbose: 0,
            best: None,
        }
    }

    /// The figure that decides what "best" is (Keras' default `"val_loss"`).
    pub fn monitor(mut self, monitor: &str) -> Self {
        self.monitor = monitor.to_string();
        self
    }

    /// Save only when the monitored figure improves (default false: save every epoch).
    pub fn save_best_only(mut self, save_best_only: bool) -> Self {
        self.save_best_only = save_best_only;
        self
    }

    /// 1: print a line for each save (and each epoch that did not improve);
    /// 0 (default): silent. Warnings (a monitored figure missing from the
    /// logs) are given either way.
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }

    /// The best value of the monitored figure so far (Keras' `best`), once
    /// an epoch has been saved with `save_best_only`.
    pub fn best(&self) -> Option<f32> {
        self.best
    }

    fn maximise(&self) -> bool {
        self.monitor.contains("acc") || self.monitor.contains("auc")
    }

    /// `filepath` with its placeholders filled in for `epoch` (0-based).
    fn path_for(&self, epoch: usize, logs: &Logs) -> Result<PathBuf> {
        let template = self.filepath.to_string_lossy();
        if !template.contains(['{', '}']) {
            return Ok(self.filepath.clone());
        }
        let fail = |detail: String| Error::Data {
            detail: format!(
                "ModelCheckpoint: filepath {}: {detail}",
                self.filepath.display()
            ),
        };
        let mut out = String::new();
        let mut rest = template.as_ref();
        while let Some(i) = rest.find(['{', '}']) {
            out.push_str(&rest[..i]);
            let brace = rest.as_bytes()[i];
            rest = &rest[i + 1..];
            if rest.as_bytes().first() == Some(&brace) {
                out.push(char::from(brace));
                rest = &rest[1..];
                continue;
            }
            if brace == b'}' {
                return Err(fail("a single '}' (write '}}' for a literal brace)".into()));
            }
            let Some(end) = rest.find('}') else {
                return Err(fail("a '{' without its '}'".into()));
            };
            let field = &rest[..end];
            rest = &rest[end + 1..];
            let (key, spec) = field.split_once(':').unwrap_or((field, ""));
            let spec = Spec::parse(spec)
                .ok_or_else(|| fail(format!("{{{field}}}: format spec {spec:?} is not understood (use e.g. {{epoch:02d}} or {{val_loss:.4f}})")))?;
            if key == "epoch" {
                out.push_str(
                    &spec
                        .integer(epoch + 1)
                        .ok_or_else(|| fail(format!("{{{field}}}: the epoch is an integer")))?,
                );
            } else if let Some(value) = lookup(logs, key) {
                out.push_str(&spec.float(value).ok_or_else(|| {
                    fail(format!("{{{field}}}: {key} is a number, format it as .Nf"))
                })?);
            } else {
                let known: Vec<&str> = std::iter::once("epoch")
                    .chain(logs.iter().map(|(k, _)| k.as_str()))
                    .collect();
                return Err(fail(format!(
                    "{{{key}}} is neither epoch nor a figure of epoch {} ({})",
                    epoch + 1,
                    known.join(", ")
                )));
            }
        }
        out.push_str(rest);
        Ok(PathBuf::from(out))
    }

    fn save(&self, path: &Path, weights: &[Tensor]) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::Io {
                path: dir.to_path_buf(),
                detail: e.to_string(),
            })?;
        }
        super::Sequential::write_weights_file(path, &self.names, weights, &self.layers, true)
    }
}

/// A Python format spec `[0][width][.precision][d|f]`, the part of it a
/// checkpoint path needs.
#[derive(Debug, Clone, Copy)]
struct Spec {
    zero: bool,
    width: usize,
    precision: Option<usize>,
    kind: Option<char>,
}

impl Spec {
    fn parse(spec: &str) -> Option<Self> {
        let (zero, spec) = match spec.strip_prefix('0') {
            Some(rest) => (true, rest),
            None => (false, spec),
        };
        let (spec, kind) = match spec.chars().last() {
            Some(c @ ('d' | 'f')) => (&spec[..spec.len() - 1], Some(c)),
            _ => (spec, None),
        };
        let (width, precision) = spec.split_once('.').unwrap_or((spec, ""));
        let number = |s: &str| -> Option<Option<usize>> {
            if s.is_empty() {
                Some(None)
            } else if s.bytes().all(|b| b.is_ascii_digit()) && s.len() <= 3 {
                s.parse().ok().map(Some)
            } else {
                None
            }
        };
        let width = number(width)?.unwrap_or(0);
        let precision = if spec.contains('.') {
            Some(number(precision)??)
        } else {
            None
        };
        Some(Self {
            zero,
            width,
            precision,
            kind,
        })
    }

    /// `{epoch}` alone is `{epoch:02d}`.
    fn integer(self, value: usize) -> Option<String> {
        if self.precision.is_some() || self.kind == Some('f') {
            return None;
        }
        let (zero, width) = if self.kind.is_none() && self.width == 0 && !self.zero {
            (true, 2)
        } else {
            (self.zero, self.width)
        };
        Some(if zero {
            format!("{value:0width$}")
        } else {
            format!("{value:width$}")
        })
    }

    fn float(self, value: f32) -> Option<String> {
        if self.kind == Some('d') {
            return None;
        }
        let width = self.width;
        Some(match (self.precision, self.zero) {
            (Some(p), true) => format!("{value:0width$.p$}"),
            (Some(p), false) => format!("{value:width$.p$}"),
            (None, true) => format!("{value:0width$}"),
            (None, false) => format!("{value:width$}"),
        })
    }
}

impl Callback for ModelCheckpoint {
    fn on_every_rank(&self) -> bool {
        false
    }

    fn set_model_weights(&mut self, weight_names: &[String], layer_names: &[String]) {
        self.take_names(weight_names, layer_names);
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, weights: &[Tensor]) -> Result<Control> {
        if weights.len() != self.names.len() {
            return Err(Error::Weights {
                detail: format!(
                    "ModelCheckpoint was made for {} weight tensors ({}) but the model has {}; make it after the last add",
                    self.names.len(),
                    self.names.join(", "),
                    weights.len()
                ),
            });
        }
        if self.save_best_only {
            let Some(value) = lookup(logs, &self.monitor) else {
                // Keras' warning, with the figures that are there.
                crate::warnings::warn(format!(
                    "Can save best model only with {} available, skipping. \
                     Available metrics are: {}",
                    self.monitor,
                    available(logs)
                ));
                return Ok(Control::Continue);
            };
            // Keras starts from +inf (min) or -inf (max) and compares strictly.
            let best = self.best.unwrap_or(if self.maximise() {
                f32::NEG_INFINITY
            } else {
                f32::INFINITY
            });
            let improved = if self.maximise() {
                value > best
            } else {
                value < best
            };
            if !improved {
                if self.verbose > 0 {
                    println!(
                        "Epoch {}: {} did not improve from {best:.5}",
                        epoch + 1,
                        self.monitor
                    );
                }
                return Ok(Control::Continue);
            }
            let path = self.path_for(epoch, logs)?;
            if self.verbose > 0 {
                println!(
                    "Epoch {}: {} improved from {best:.5} to {value:.5}, saving model to {}",
                    epoch + 1,
                    self.monitor,
                    path.display()
                );
            }
            self.save(&path, weights)?;
            self.best = Some(value);
        } else {
            let path = self.path_for(epoch, logs)?;
            if self.verbose > 0 {
                println!("Epoch {}: saving model to {}", epoch + 1, path.display());
            }
            self.save(&path, weights)?;
        }
        Ok(Control::Continue)
    }
}
