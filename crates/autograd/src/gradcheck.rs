//! Gradient checking: the tape's gradients against central finite differences.
//!
//! For a function `f` of some tensors, the checked scalar is
//! `L = Σ_i w_i f(x)_i` with fixed pseudo-random weights `w_i ∈ [-1, 1]`
//! (a plain sum would hide errors in ops whose outputs sum to a constant,
//! such as softmax). The numeric derivative of `L` by each input element is
//! `(L(x + h) - L(x - h)) / 2h`, with `L` accumulated in `f64`.
//!
//! Tolerance, in `f32`: `h = 2^-7` is exact to add to any `|x| < 2`, so the
//! perturbation itself is not rounded; each `f` value carries a relative
//! rounding error of a few `f32` ulps (`~1e-7 · |L|`), which the division by
//! `2h = 2^-6` turns into `~1e-5 · |L|`; the truncation error of the central
//! difference is `h²/6 · |L'''| ≈ 3e-6 · |L'''|`. A tolerance of
//! `|analytic - numeric| <= 1e-3 + 1e-3 · |numeric|` (scaled by the size of
//! `L` for large outputs) is therefore two orders of magnitude above the
//! expected error, yet far below the size of a wrong rule (a missing factor,
//! a sign, a transposed operand).

use hebb_tensor::Tensor;

use crate::{GradientTape, Result, Var};

/// Settings of a gradient check.
#[derive(Debug, Clone, Copy)]
pub struct GradCheck {
    /// Finite-difference step (default `2^-7`).
    pub h: f32,
    /// Absolute tolerance (default `1e-3`).
    pub atol: f64,
    /// Relative tolerance (default `1e-3`).
    pub rtol: f64,
}

impl Default for GradCheck {
    fn default() -> Self {
        Self {
            h: 1.0 / 128.0,
            atol: 1e-3,
            rtol: 1e-3,
        }
    }
}

/// The worst element found by [`GradCheck::run`].
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// Which input tensor.
    pub input: usize,
    /// Row-major element index within it.
    pub index: usize,
    /// The tape's gradient.
    pub analytic: f64,
    /// The central difference.
    pub numeric: f64,
}

/// Deterministic weights in `[-1, 1]` for the checked scalar.
fn weights(n: usize) -> Vec<f32> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

impl GradCheck {
    /// Compares the tape's gradient of `Σ w·f(inputs)` with central
    /// differences for every element of every input. Returns `Ok(None)` when
    /// all agree within tolerance, else the worst mismatch.
    ///
    /// # Errors
    /// Whatever `f` returns.
    pub fn run<F>(&self, inputs: &[Tensor], f: F) -> Result<Option<Mismatch>>
    where
        F: for<'t> Fn(&'t GradientTape, &[Var<'t>]) -> Result<Var<'t>>,
    {
        // Analytic.
        let tape = GradientTape::new();
        let vars: Vec<Var<'_>> = inputs
            .iter()
            .map(|x| tape.watch_tensor(x.clone()))
            .collect();
        let y = f(&tape, &vars)?;
        let w = Tensor::from_vec(weights(y.value().len()), &y.shape())?;
        let target = y.mul(tape.constant(w.clone()))?.sum_all();
        let analytic = tape.gradient(target, &vars)?;

        // Numeric.
        let w = w.to_vec();
        let eval = |xs: &[Tensor]| -> Result<f64> {
            let tape = GradientTape::new();
            let vars: Vec<Var<'_>> = xs.iter().map(|x| tape.constant(x.clone())).collect();
            let y = f(&tape, &vars)?.value().to_vec();
            Ok(y.iter()
                .zip(&w)
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum())
        };
        let scale = eval(inputs)?.abs().max(1.0);
        let mut worst: Option<(f64, Mismatch)> = None;
        for (i, x) in inputs.iter().enumerate() {
            let base = x.to_vec();
            let grad = analytic[i].to_vec();
            for j in 0..base.len() {
                let mut xs = inputs.to_vec();
                let mut probe = base.clone();
                probe[j] = base[j] + self.h;
                xs[i] = Tensor::from_vec(probe.clone(), x.shape())?;
                let plus = eval(&xs)?;
                probe[j] = base[j] - self.h;
                xs[i] = Tensor::from_vec(probe, x.shape())?;
                let minus = eval(&xs)?;
                let numeric = (plus - minus) / (2.0 * f64::from(self.h));
                let a = f64::from(grad[j]);
                let excess = (a - numeric).abs() - (self.atol * scale + self.rtol * numeric.abs());
                if excess > 0.0 && worst.as_ref().is_none_or(|(e, _)| excess > *e) {
                    let m = Mismatch {
                        input: i,
                        index: j,
                        analytic: a,
                        numeric,
                    };
                    worst = Some((excess, m));
                }
            }
        }
        Ok(worst.map(|(_, m)| m))
    }
}
