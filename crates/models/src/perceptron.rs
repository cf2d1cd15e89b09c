//! Rosenblatt's perceptron and its training rule (lecture 12.1).

use hebb_tensor::Tensor;

use crate::{Error, Result};

/// A perceptron `ŷ = step(w_0 + Σ_j w_j x_j)`, trained by Rosenblatt's rule
/// `w_j ← w_j + η (y - ŷ) x_j` (with `x_0 = 1` for the bias `w_0`), one
/// sample at a time in the order given (lecture 12.1).
///
/// Training stops after the first epoch without a mistake. The rule
/// converges on linearly separable data (AND, OR, NAND, NOR) and never on
/// data that are not (XOR); [`fit`](Self::fit) then returns
/// [`Error::NotConverged`] after `max_epochs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Perceptron {
    /// `[w_0 (bias), w_1, ..., w_m]`; all zero initially.
    pub weights: Vec<f32>,
    /// The learning rate `η ∈ (0, 1)`.
    pub learning_rate: f32,
}

/// What a successful [`Perceptron::fit`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct PerceptronFit {
    /// Epochs run, the last one without mistakes.
    pub epochs: usize,
    /// Weight updates made in all.
    pub updates: usize,
}

impl Perceptron {
    /// A perceptron for `inputs` features with zero weights.
    pub fn new(inputs: usize, learning_rate: f32) -> Self {
        Self {
            weights: vec![0.0; inputs + 1],
            learning_rate,
        }
    }

    fn rows(&self, x: &Tensor) -> Result<Vec<Vec<f32>>> {
        let m = self.weights.len() - 1;
        if x.rank() != 2 || x.shape()[1] != m {
            return Err(Error::Shape {
                model: "Perceptron",
                detail: format!("expected inputs [n, {m}], got {:?}", x.shape()),
            });
        }
        Ok(x.to_vec()
            .chunks(m.max(1))
            .take(x.shape()[0])
            .map(<[f32]>::to_vec)
            .collect())
    }

    fn output(&self, row: &[f32]) -> f32 {
        let z = self.weights[0]
            + row
                .iter()
                .zip(&self.weights[1..])
                .map(|(x, w)| x * w)
                .sum::<f32>();
        if z >= 0.0 { 1.0 } else { 0.0 }
    }

    /// The outputs `ŷ` for `x` of shape `[n, m]`: `[n]` zeros and ones.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` is not `[n, m]`.
    pub fn predict(&self, x: &Tensor) -> Result<Tensor> {
        let rows = self.rows(x)?;
        let y: Vec<f32> = rows.iter().map(|r| self.output(r)).collect();
        Ok(Tensor::from_vec(y, &[rows.len()])?)
    }

    /// Trains with Rosenblatt's rule on `x` `[n, m]` and targets `y` (0 or 1).
    ///
    /// # Errors
    /// [`Error::Shape`] if the shapes do not fit; [`Error::NotConverged`]
    /// if an epoch without mistakes does not come within `max_epochs`.
    pub fn fit(&mut self, x: &Tensor, y: &[f32], max_epochs: usize) -> Result<PerceptronFit> {
        let rows = self.rows(x)?;
        if rows.len() != y.len() {
            return Err(Error::Shape {
                model: "Perceptron",
                detail: format!("{} samples but {} targets", rows.len(), y.len()),
            });
        }
        let mut updates = 0;
        let mut errors = 0;
        for epoch in 1..=max_epochs {
            errors = 0;
            for (row, &target) in rows.iter().zip(y) {
                let delta = self.learning_rate * (target - self.output(row));
                if delta != 0.0 {
                    errors += 1;
                    updates += 1;
                    self.weights[0] += delta;
                    for (w, &xj) in self.weights[1..].iter_mut().zip(row) {
                        *w += delta * xj;
                    }
                }
            }
            if errors == 0 {
                return Ok(PerceptronFit {
                    epochs: epoch,
                    updates,
                });
            }
        }
        Err(Error::NotConverged {
            epochs: max_epochs,
            errors,
            samples: rows.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Tensor {
        Tensor::from_vec(vec![0., 0., 0., 1., 1., 0., 1., 1.], &[4, 2]).unwrap()
    }

    #[test]
    fn learns_separable_gates() {
        for y in [
            [0., 0., 0., 1.],
            [0., 1., 1., 1.],
            [1., 1., 1., 0.],
            [1., 0., 0., 0.],
        ] {
            let mut p = Perceptron::new(2, 0.1);
            let fit = p.fit(&inputs(), &y, 100).unwrap();
            assert_eq!(
                p.predict(&inputs()).unwrap().to_vec(),
                y.to_vec(),
                "{fit:?}"
            );
        }
    }

    #[test]
    fn xor_does_not_converge() {
        let mut p = Perceptron::new(2, 0.1);
        let err = p.fit(&inputs(), &[0., 1., 1., 0.], 50).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NotConverged {
                    epochs: 50,
                    samples: 4,
                    ..
                }
            ),
            "{err}"
        );
    }
}
