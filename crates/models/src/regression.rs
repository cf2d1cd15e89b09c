//! The lecture's one-variable linear regression (13.1), trained by batch,
//! stochastic and mini-batch gradient descent with the tape (the "low-level
//! API"), and its closed-form least-squares solution.
//!
//! The model is `ŷ = w·x + b`; the loss of a batch `B` of `t` samples is the
//! lecture's **summed** half squared error
//!
//! ```text
//! Loss(w, b) = ½ Σ_{i∈B} (y_i - (w·x_i + b))²
//! ```
//!
//! and one step of gradient descent with learning rate `η` is the
//! lecture's update ([`lecture_gradients`] computes the sums directly):
//!
//! ```text
//! w ← w - η Σ_{i∈B} x_i (w·x_i + b - y_i)
//! b ← b - η Σ_{i∈B} (w·x_i + b - y_i)
//! ```
//!
//! with `B` the whole set (BGD), one sample (SGD) or `t` samples (MBGD),
//! from [`MiniBatches`]. [`LinearRegression::fit`] computes the gradients
//! with a [`GradientTape`] and applies them with any [`Optimizer`] (an
//! [`Sgd`](hebb_optim::Sgd) with `learning_rate = η` is the update above; a
//! [`Scheduled`](hebb_optim::Scheduled) one follows a learning-rate
//! schedule). Because the loss is a sum, the same `η` moves `(w, b)` `t`
//! times further for a batch of `t` samples: `η = η₀ / t` keeps the step
//! per sample's gradient the same across batch sizes.
//!
//! The minimum of the loss over all `n` samples is the least-squares line
//! ([`RegressionData::least_squares`]):
//!
//! ```text
//! w* = Σ (x_i - x̄)(y_i - ȳ) / Σ (x_i - x̄)²,   b* = ȳ - w*·x̄
//! ```
//!
//! ```
//! use hebb_data::MiniBatches;
//! use hebb_models::regression::{LinearRegression, RegressionData};
//! use hebb_optim::Sgd;
//!
//! // y = 2x - 1 plus a little noise, 6 samples.
//! let data = RegressionData::new(
//!     vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
//!     vec![-0.9, 1.1, 2.9, 5.1, 7.0, 8.9],
//! )?;
//! let exact = data.least_squares()?;
//! let mut model = LinearRegression::new(0.0, 0.0);
//! let mut bgd = MiniBatches::full(data.len());
//! let mut sgd = Sgd::new(0.02); // η for the summed loss of 6 samples
//! let trace = model.fit(&data, &mut bgd, &mut sgd, 2000, false)?;
//! assert!((model.w() - exact.w).abs() < 1e-4 && (model.b() - exact.b).abs() < 1e-4);
//! assert!(trace.epochs.last().unwrap().loss - exact.loss < 1e-6);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::Instant;

use hebb_autograd::{GradientTape, Var, Variable};
use hebb_data::{IrisSplit, MiniBatches};
use hebb_layers::losses;
use hebb_optim::Optimizer;
use hebb_tensor::Tensor;

use crate::{Error, Result};

/// Column of Iris' petal length (cm), the regression's `x`.
pub const IRIS_PETAL_LENGTH: usize = 2;
/// Column of Iris' petal width (cm), the regression's `y`.
pub const IRIS_PETAL_WIDTH: usize = 3;

/// The samples `(x_i, y_i)` of a one-variable regression, as `f32` tensors
/// `[n]` for the tape and as `f64` copies of the same (`f32`-rounded)
/// values for exact losses and the closed-form solution.
#[derive(Debug, Clone)]
pub struct RegressionData {
    x: Tensor,
    y: Tensor,
    xs: Vec<f64>,
    ys: Vec<f64>,
}

impl RegressionData {
    /// The samples `x[i] -> y[i]`.
    ///
    /// # Errors
    /// [`Error::Data`] if the lengths differ, there are no samples, or a
    /// value is not finite.
    pub fn new(x: Vec<f32>, y: Vec<f32>) -> Result<Self> {
        if x.len() != y.len() || x.is_empty() {
            return Err(Error::Data {
                detail: format!(
                    "regression data needs as many x as y values, at least one: got {} x and {} y",
                    x.len(),
                    y.len()
                ),
            });
        }
        if let Some(i) = (0..x.len()).find(|&i| !x[i].is_finite() || !y[i].is_finite()) {
            return Err(Error::Data {
                detail: format!(
                    "regression sample {i} is not finite: x = {}, y = {}",
                    x[i], y[i]
                ),
            });
        }
        let xs = x.iter().map(|&v| f64::from(v)).collect();
        let ys = y.iter().map(|&v| f64::from(v)).collect();
        let n = x.len();
        Ok(Self {
            x: Tensor::from_vec(x, &[n])?,
            y: Tensor::from_vec(y, &[n])?,
            xs,
            ys,
        })
    }

    /// The lecture-style regression on Iris: petal length (column 2, cm)
    /// -> petal width (column 3, cm), the rows of `splits` in order (pass
    /// the training and test splits for all 150 flowers).
    ///
    /// # Errors
    /// [`Error::Data`] if a split has fewer than 4 features per row or
    /// its feature count does not match its rows, or no rows are given.
    pub fn iris_petals(splits: &[&IrisSplit]) -> Result<Self> {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for split in splits {
            let f = split.n_features;
            if f <= IRIS_PETAL_WIDTH || split.features.len() != split.len() * f {
                return Err(Error::Data {
                    detail: format!(
                        "an Iris split needs [{}, >= 4] features, got {} values for {} rows of {f}",
                        split.len(),
                        split.features.len(),
                        split.len()
                    ),
                });
            }
            for row in split.features.chunks_exact(f) {
                x.push(row[IRIS_PETAL_LENGTH] as f32);
                y.push(row[IRIS_PETAL_WIDTH] as f32);
            }
        }
        Self::new(x, y)
    }

    /// `n`, the number of samples.
    pub fn len(&self) -> usize {
        self.xs.len()
    }

    /// Always false: a data set has at least one sample.
    pub fn is_empty(&self) -> bool {
        self.xs.is_empty()
    }

    /// `x`, shape `[n]`.
    pub fn x(&self) -> &Tensor {
        &self.x
    }

    /// `y`, shape `[n]`.
    pub fn y(&self) -> &Tensor {
        &self.y
    }

    /// The lecture's loss over all `n` samples, `½ Σ (y_i - (w·x_i + b))²`,
    /// in `f64`.
    pub fn loss(&self, w: f64, b: f64) -> f64 {
        0.5 * self
            .xs
            .iter()
            .zip(&self.ys)
            .map(|(&x, &y)| (y - (w * x + b)).powi(2))
            .sum::<f64>()
    }

    /// The closed-form least-squares solution `(w*, b*)` and its loss, in
    /// `f64` (formula in the [module docs](self)).
    ///
    /// # Errors
    /// [`Error::Data`] if all `x` are equal (the line is not determined).
    pub fn least_squares(&self) -> Result<LeastSquares> {
        let n = self.len() as f64;
        let x_mean = self.xs.iter().sum::<f64>() / n;
        let y_mean = self.ys.iter().sum::<f64>() / n;
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for (&x, &y) in self.xs.iter().zip(&self.ys) {
            sxy += (x - x_mean) * (y - y_mean);
            sxx += (x - x_mean) * (x - x_mean);
        }
        if sxx == 0.0 {
            return Err(Error::Data {
                detail: format!(
                    "least squares: all {} x values equal {x_mean}, so the slope is not determined",
                    self.len()
                ),
            });
        }
        let w = sxy / sxx;
        let b = y_mean - w * x_mean;
        Ok(LeastSquares {
            w,
            b,
            loss: self.loss(w, b),
        })
    }

    /// The Hessian of the loss over all samples, `[[Σx², Σx], [Σx, n]]`:
    /// its eigenvalues bound the stable learning rates (BGD diverges for
    /// `η > 2 / λ_max`). Returns `(λ_min, λ_max)`.
    pub fn hessian_eigenvalues(&self) -> (f64, f64) {
        let sxx: f64 = self.xs.iter().map(|x| x * x).sum();
        let sx: f64 = self.xs.iter().sum();
        let n = self.len() as f64;
        let (trace, det) = (sxx + n, sxx * n - sx * sx);
        let disc = (trace * trace / 4.0 - det).max(0.0).sqrt();
        (trace / 2.0 - disc, trace / 2.0 + disc)
    }
}

/// The least-squares line and its (minimal) loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeastSquares {
    /// The slope `w*`.
    pub w: f64,
    /// The intercept `b*`.
    pub b: f64,
    /// `½ Σ (y_i - (w*·x_i + b*))²`.
    pub loss: f64,
}

/// The lecture's gradients of the summed loss over the samples `rows` (13.1):
/// `(Σ x_i (w·x_i + b - y_i), Σ (w·x_i + b - y_i))`, in `f64`.
///
/// # Errors
/// [`Error::Data`] if a row is `>= data.len()`.
pub fn lecture_gradients(
    data: &RegressionData,
    rows: &[usize],
    w: f64,
    b: f64,
) -> Result<(f64, f64)> {
    let (mut dw, mut db) = (0.0, 0.0);
    for &i in rows {
        let (x, y) = match (data.xs.get(i), data.ys.get(i)) {
            (Some(&x), Some(&y)) => (x, y),
            _ => {
                return Err(Error::Data {
                    detail: format!("row {i} is out of range for {} samples", data.len()),
                });
            }
        };
        let residual = w * x + b - y;
        dw += x * residual;
        db += residual;
    }
    Ok((dw, db))
}

/// The state of a training run at one moment: after `step` updates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Epochs completed (a point inside an epoch has the number of the
    /// epochs before it).
    pub epoch: usize,
    /// Updates applied.
    pub step: u64,
    /// Samples whose gradients were used, in all (`Σ` batch sizes).
    pub samples: u64,
    /// Wall-clock seconds spent in training steps so far (gathering the
    /// batch, the tape, the gradients, the update); evaluating the
    /// recorded losses is not counted.
    pub seconds: f64,
    /// The slope `w`.
    pub w: f64,
    /// The intercept `b`.
    pub b: f64,
    /// The loss over all samples, `½ Σ (y_i - (w·x_i + b))²`.
    pub loss: f64,
}

/// What [`LinearRegression::fit`] recorded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    /// The starting point, then one point after every epoch.
    pub epochs: Vec<Point>,
    /// The starting point, then one point after every update, if asked for
    /// (else empty).
    pub steps: Vec<Point>,
    /// Whether training stopped because the loss became NaN or infinite
    /// (the learning rate is too large); the last point is the first
    /// non-finite one.
    pub diverged: bool,
}

impl Trace {
    /// The first epoch point with `loss <= target` (the starting point
    /// counts as epoch 0).
    pub fn first_epoch_below(&self, target: f64) -> Option<&Point> {
        self.epochs.iter().find(|p| p.loss <= target)
    }

    /// The first step point with `loss <= target` (needs recorded steps).
    pub fn first_step_below(&self, target: f64) -> Option<&Point> {
        self.steps.iter().find(|p| p.loss <= target)
    }
}

/// `ŷ = w·x + b` with trainable `w` and `b` (each a [`Variable`] of shape `[1]`).
#[derive(Debug, Clone)]
pub struct LinearRegression {
    /// The slope, shape `[1]`, named `w`.
    pub w: Variable,
    /// The intercept, shape `[1]`, named `b`.
    pub b: Variable,
}

impl LinearRegression {
    /// The model with `w = w0`, `b = b0`.
    pub fn new(w0: f32, b0: f32) -> Self {
        Self {
            w: Variable::new("w", Tensor::full(&[1], w0)),
            b: Variable::new("b", Tensor::full(&[1], b0)),
        }
    }

    /// The current slope.
    pub fn w(&self) -> f64 {
        f64::from(self.w.value().as_slice()[0])
    }

    /// The current intercept.
    pub fn b(&self) -> f64 {
        f64::from(self.b.value().as_slice()[0])
    }

    /// Records `½ Σ (y - (w·x + b))²` on `tape` for `x` and `y` of shape `[t]`
    /// (`losses::half_squared_error`), watching `w` and `b`.
    ///
    /// # Errors
    /// [`Error::Layers`] if the shapes of `x` and `y` differ.
    pub fn loss<'t>(&self, tape: &'t GradientTape, x: Tensor, y: Tensor) -> Result<Var<'t>> {
        let pred = tape
            .constant(x)
            .mul(tape.watch(&self.w))
            .and_then(|p| p.add(tape.watch(&self.b)))
            .map_err(hebb_layers::Error::from)?;
        Ok(losses::half_squared_error(tape.constant(y), pred)?)
    }

    /// One gradient-descent step on the samples `rows` of `data`: the batch
    /// loss and its gradients with a tape (`with tf.GradientTape() as
    /// tape: ...; grads = tape.gradient(loss, [w, b])`), then
    /// `optimizer.apply_gradients`. Returns the batch loss before the update.
    ///
    /// # Errors
    /// A row out of range ([`Error::Layers`]), the optimiser's errors.
    pub fn step(
        &mut self,
        data: &RegressionData,
        rows: &[usize],
        optimizer: &mut dyn Optimizer,
    ) -> Result<f32> {
        let (x, y) = if rows.len() == data.len() && rows.iter().enumerate().all(|(i, &r)| i == r) {
            (data.x.clone(), data.y.clone())
        } else {
            (data.x.gather_rows(rows)?, data.y.gather_rows(rows)?)
        };
        let (loss_value, grads) = {
            let tape = GradientTape::new();
            let loss = self.loss(&tape, x, y)?;
            let grads = tape
                .gradient_of(loss, &[&self.w, &self.b])
                .map_err(hebb_layers::Error::from)?;
            (loss.value().item()?, grads)
        };
        optimizer.apply_gradients(&mut [&mut self.w, &mut self.b], &grads)?;
        Ok(loss_value)
    }

    /// Trains for `epochs` epochs over the batches of `batches` (BGD, SGD or
    /// MBGD, shuffled or not), one [`step`](Self::step) per batch, and
    /// records the loss over all samples and `(w, b)` after every epoch and,
    /// if `record_steps`, after every step. Training stops early, with
    /// [`Trace::diverged`] set, if that loss becomes NaN or infinite.
    ///
    /// # Errors
    /// [`Error::Data`] if `batches` is not for `data.len()` samples; those
    /// of [`step`](Self::step).
    pub fn fit(
        &mut self,
        data: &RegressionData,
        batches: &mut MiniBatches,
        optimizer: &mut dyn Optimizer,
        epochs: usize,
        record_steps: bool,
    ) -> Result<Trace> {
        if batches.n_samples() != data.len() {
            return Err(Error::Data {
                detail: format!(
                    "the mini-batches are for {} samples, the regression data has {}",
                    batches.n_samples(),
                    data.len()
                ),
            });
        }
        if batches.batches_per_epoch() == 0 && epochs > 0 {
            return Err(Error::Data {
                detail: format!(
                    "no batch to train on: {} samples in batches of {} with the short last batch dropped",
                    batches.n_samples(),
                    batches.batch_size()
                ),
            });
        }
        let mut here = Point {
            epoch: 0,
            step: 0,
            samples: 0,
            seconds: 0.0,
            w: self.w(),
            b: self.b(),
            loss: data.loss(self.w(), self.b()),
        };
        let mut trace = Trace {
            epochs: vec![here],
            steps: if record_steps { vec![here] } else { Vec::new() },
            diverged: false,
        };
        for epoch in 0..epochs {
            for rows in batches.epoch(epoch as u64) {
                let start = Instant::now();
                self.step(data, rows, optimizer)?;
                here.seconds += start.elapsed().as_secs_f64();
                here.step += 1;
                here.samples += rows.len() as u64;
                (here.w, here.b) = (self.w(), self.b());
                if record_steps || !here.w.is_finite() || !here.b.is_finite() {
                    here.loss = data.loss(here.w, here.b);
                    if record_steps {
                        trace.steps.push(here);
                    }
                    if !here.loss.is_finite() {
                        break;
                    }
                }
            }
            here.epoch = epoch + 1;
            here.loss = data.loss(here.w, here.b);
            trace.epochs.push(here);
            if !here.loss.is_finite() {
                trace.diverged = true;
                break;
            }
        }
        Ok(trace)
    }
}

#[cfg(test)]
mod tests {
    use hebb_optim::schedules::{InverseTimeDecay, Scheduled};
    use hebb_optim::{Adam, Sgd};

    use super::*;

    fn line() -> RegressionData {
        // y ≈ 0.4x - 0.35, a small Iris-like set.
        let x = vec![1.4, 1.3, 4.7, 4.5, 4.9, 6.0, 5.1, 5.9, 1.5, 3.9, 5.6, 4.2];
        let y = vec![0.2, 0.2, 1.4, 1.5, 1.5, 2.5, 1.9, 2.1, 0.1, 1.1, 2.4, 1.3];
        RegressionData::new(x, y).unwrap()
    }

    #[test]
    fn closed_form_on_an_exact_line() {
        let data = RegressionData::new(vec![1.0, 2.0, 4.0], vec![1.0, 3.0, 7.0]).unwrap();
        let ls = data.least_squares().unwrap();
        assert!(
            (ls.w - 2.0).abs() < 1e-12 && (ls.b + 1.0).abs() < 1e-12,
            "{ls:?}"
        );
        assert!(ls.loss < 1e-24);
        assert_eq!(data.loss(0.0, 0.0), 0.5 * (1.0 + 9.0 + 49.0));
        let flat = RegressionData::new(vec![2.0, 2.0], vec![1.0, 3.0]).unwrap();
        assert!(matches!(flat.least_squares(), Err(Error::Data { .. })));
        assert!(RegressionData::new(vec![1.0], vec![]).is_err());
        assert!(RegressionData::new(vec![f32::NAN], vec![1.0]).is_err());
    }

    #[test]
    fn tape_gradients_are_the_lecture_formulas() {
        let data = line();
        let model = LinearRegression::new(0.3, -0.1);
        let rows = [3usize, 0, 7, 7, 10];
        let tape = GradientTape::new();
        let x = data.x().gather_rows(&rows).unwrap();
        let y = data.y().gather_rows(&rows).unwrap();
        let loss = model.loss(&tape, x, y).unwrap();
        let grads = tape.gradient_of(loss, &[&model.w, &model.b]).unwrap();
        let (dw, db) = lecture_gradients(&data, &rows, model.w(), model.b()).unwrap();
        assert!(
            (f64::from(grads[0].to_vec()[0]) - dw).abs() < 1e-4,
            "{grads:?} {dw}"
        );
        assert!(
            (f64::from(grads[1].to_vec()[0]) - db).abs() < 1e-5,
            "{grads:?} {db}"
        );
        assert!(lecture_gradients(&data, &[12], 0.0, 0.0).is_err());
    }

    #[test]
    fn one_sgd_step_is_the_lecture_update() {
        let data = line();
        let mut model = LinearRegression::new(0.3, -0.1);
        let (w0, b0) = (model.w(), model.b());
        let rows = [1usize, 5, 6];
        let eta = 0.01;
        let (dw, db) = lecture_gradients(&data, &rows, w0, b0).unwrap();
        let loss = model.step(&data, &rows, &mut Sgd::new(eta)).unwrap();
        let batch = RegressionData::new(
            rows.iter().map(|&i| data.xs[i] as f32).collect(),
            rows.iter().map(|&i| data.ys[i] as f32).collect(),
        )
        .unwrap();
        assert!((f64::from(loss) - batch.loss(w0, b0)).abs() < 1e-5);
        assert!((model.w() - (w0 - f64::from(eta) * dw)).abs() < 1e-6);
        assert!((model.b() - (b0 - f64::from(eta) * db)).abs() < 1e-6);
    }

    #[test]
    fn bgd_reaches_the_closed_form_and_sgd_records_every_step() {
        let data = line();
        let exact = data.least_squares().unwrap();
        let (_, l_max) = data.hessian_eigenvalues();
        let mut model = LinearRegression::new(0.0, 0.0);
        let mut bgd = MiniBatches::full(data.len());
        let eta = (1.0 / l_max) as f32;
        let trace = model
            .fit(&data, &mut bgd, &mut Sgd::new(eta), 3000, false)
            .unwrap();
        assert!(
            (model.w() - exact.w).abs() < 1e-4,
            "{} vs {}",
            model.w(),
            exact.w
        );
        assert!(
            (model.b() - exact.b).abs() < 1e-4,
            "{} vs {}",
            model.b(),
            exact.b
        );
        assert_eq!(trace.epochs.len(), 3001);
        assert_eq!(trace.epochs[3000].step, 3000);
        assert!(trace.steps.is_empty() && !trace.diverged);
        // The loss of the full batch never rises with a stable rate.
        assert!(
            trace
                .epochs
                .windows(2)
                .all(|p| p[1].loss <= p[0].loss + 1e-9)
        );

        let mut model = LinearRegression::new(0.0, 0.0);
        let mut sgd = MiniBatches::stochastic(data.len()).with_shuffle(1);
        let trace = model
            .fit(&data, &mut sgd, &mut Sgd::new(0.005), 3, true)
            .unwrap();
        assert_eq!(trace.steps.len(), 1 + 3 * data.len());
        assert_eq!(trace.epochs.len(), 4);
        assert_eq!(trace.steps.last().unwrap().samples, 3 * data.len() as u64);
        let (end, last) = (trace.epochs[3], *trace.steps.last().unwrap());
        assert_eq!((end.epoch, last.epoch), (3, 2)); // the last step is inside epoch 3
        assert_eq!(Point { epoch: 3, ..last }, end);
        assert!(trace.epochs[3].loss < trace.epochs[0].loss / 10.0);
        assert!(trace.first_epoch_below(trace.epochs[3].loss).is_some());
    }

    #[test]
    fn too_large_a_rate_diverges_and_is_reported() {
        let data = line();
        let (_, l_max) = data.hessian_eigenvalues();
        let mut model = LinearRegression::new(0.0, 0.0);
        let eta = (10.0 / l_max) as f32;
        let trace = model
            .fit(
                &data,
                &mut MiniBatches::full(data.len()),
                &mut Sgd::new(eta),
                10_000,
                false,
            )
            .unwrap();
        assert!(trace.diverged);
        assert!(trace.epochs.len() < 10_001);
        assert!(!trace.epochs.last().unwrap().loss.is_finite());
    }

    #[test]
    fn schedules_and_adaptive_optimisers_plug_in() {
        let data = line();
        let exact = data.least_squares().unwrap();
        let mut model = LinearRegression::new(0.0, 0.0);
        let mut sgd = MiniBatches::stochastic(data.len()).with_shuffle(3);
        let schedule = InverseTimeDecay::new(0.04, data.len() as u64, 0.05, false).unwrap();
        let mut optimizer = Scheduled::new(Sgd::new(0.0), schedule);
        model
            .fit(&data, &mut sgd, &mut optimizer, 200, false)
            .unwrap();
        assert_eq!(optimizer.iterations(), 200 * data.len() as u64);
        assert!(data.loss(model.w(), model.b()) < exact.loss * 1.01);

        let mut model = LinearRegression::new(0.0, 0.0);
        let mut mbgd = MiniBatches::new(data.len(), 4).unwrap();
        model
            .fit(&data, &mut mbgd, &mut Adam::new(0.05), 300, false)
            .unwrap();
        assert!(data.loss(model.w(), model.b()) < exact.loss * 1.05);
    }

    #[test]
    fn mismatched_batches_are_an_error() {
        let data = line();
        let mut model = LinearRegression::new(0.0, 0.0);
        let err = model
            .fit(
                &data,
                &mut MiniBatches::full(5),
                &mut Sgd::new(0.1),
                1,
                false,
            )
            .unwrap_err();
        assert!(err.to_string().contains("12"), "{err}");
    }
}
