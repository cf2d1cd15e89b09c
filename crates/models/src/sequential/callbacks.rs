//! Callbacks run by `fit` (Keras `tf.keras.callbacks`): [`EarlyStopping`],
//! [`TerminateOnNaN`], [`CsvLogger`].

use std::io::Write;
use std::path::PathBuf;

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
pub trait Callback {
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

/// Stops training when a monitored figure has stopped improving (Keras
/// `EarlyStopping(monitor="val_loss", min_delta=0, patience=0, mode="auto",
/// restore_best_weights=False)`). `mode` is `min` unless the name contains
/// `acc` or `auc` (Keras' `auto`).
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
            // Keras warns and carries on when the figure is missing (e.g. no validation this epoch).
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
