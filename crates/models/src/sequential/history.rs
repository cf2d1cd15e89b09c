//! [`History`]: what `fit` returns (Keras `History`).

/// Per-epoch figures of a `fit` (Keras `History.history`): `loss`, each
/// metric, then `val_loss` and `val_<metric>` when there is validation data,
/// in that order. Validation entries have one value per validated epoch
/// (every epoch unless `validation_freq > 1`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// The epochs run, 0-based (Keras `History.epoch`).
    pub epoch: Vec<usize>,
    /// `(key, values)` in Keras' order.
    pub history: Vec<(String, Vec<f32>)>,
}

impl History {
    /// The values recorded under `key` (`history.history["val_loss"]`), if any.
    pub fn get(&self, key: &str) -> Option<&[f32]> {
        self.history
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// The keys, in order.
    pub fn keys(&self) -> Vec<&str> {
        self.history.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// Appends `value` under `key`, creating the key at the end if new.
    pub(crate) fn push(&mut self, key: &str, value: f32) {
        match self.history.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => v.push(value),
            None => self.history.push((key.to_string(), vec![value])),
        }
    }
}
