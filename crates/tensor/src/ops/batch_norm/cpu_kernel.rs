//! Host kernels of batch normalisation over `x` seen as `[n, c]`
//! (row-major): per-channel sums in `f64` over blocks of
//! [`ROWS_PER_BLOCK`] rows, added in block order, so the result is the same
//! bits for any number of threads; elementwise passes in parallel over
//! blocks of rows.

use rayon::prelude::*;

use super::ROWS_PER_BLOCK;

/// The per-channel values of the last pass, and scratch, on the host.
#[derive(Debug, Default, Clone)]
pub(crate) struct Stats {
    /// `μ_c` of the pass (batch or moving), in `f64`.
    pub(crate) mean: Vec<f64>,
    /// `1 / sqrt(σ²_c + ε)` of the pass, in `f64`.
    pub(crate) inv_std: Vec<f64>,
    /// `a_c` and `β_c - μ_c a_c` of `y = x · a + b`.
    coef_a: Vec<f32>,
    coef_b: Vec<f32>,
    /// Per-channel sums of the last statistics pass (`Σ dy` and `Σ dy · x̂`
    /// after a backward pass).
    sum0: Vec<f64>,
    sum1: Vec<f64>,
    /// Per-block partial sums (two arrays of `c` per block).
    partial: Vec<f64>,
}

impl Stats {
    /// Sizes the per-channel arrays for `c` channels.
    pub(crate) fn resize(&mut self, c: usize) {
        for v in [
            &mut self.mean,
            &mut self.inv_std,
            &mut self.sum0,
            &mut self.sum1,
        ] {
            v.resize(c, 0.0);
        }
        self.coef_a.resize(c, 0.0);
        self.coef_b.resize(c, 0.0);
    }

    fn channels(&self) -> usize {
        self.mean.len()
    }

    /// The batch's mean and biased variance of `x` (`n = x.len() / c > 0`
    /// rows), the moving statistics' update `moving · keep + batch · take`
    /// (in `f32`, as Keras), and `inv_std` with `epsilon`.
    pub(crate) fn batch(
        &mut self,
        x: &[f32],
        epsilon: f64,
        (keep, take): (f32, f32),
        moving_mean: &mut [f32],
        moving_variance: &mut [f32],
    ) {
        let c = self.channels();
        let inv_n = 1.0 / (x.len() / c) as f64;
        blocked_sums(
            x,
            None,
            c,
            &mut self.partial,
            &mut self.sum0,
            &mut self.sum1,
            |v, _, _| (f64::from(v), 0.0),
        );
        for (mu, s) in self.mean.iter_mut().zip(&self.sum0) {
            *mu = s * inv_n;
        }
        let mean = &self.mean;
        blocked_sums(
            x,
            None,
            c,
            &mut self.partial,
            &mut self.sum0,
            &mut self.sum1,
            |v, _, j| {
                let d = f64::from(v) - mean[j];
                (d * d, 0.0)
            },
        );
        for j in 0..c {
            let var = self.sum0[j] * inv_n;
            self.inv_std[j] = 1.0 / (var + epsilon).sqrt();
            moving_mean[j] = moving_mean[j] * keep + self.mean[j] as f32 * take;
            moving_variance[j] = moving_variance[j] * keep + var as f32 * take;
        }
    }

    /// The moving statistics as the pass's statistics.
    pub(crate) fn moving(&mut self, epsilon: f64, moving_mean: &[f32], moving_variance: &[f32]) {
        for j in 0..self.channels() {
            self.mean[j] = f64::from(moving_mean[j]);
            self.inv_std[j] = 1.0 / (f64::from(moving_variance[j]) + epsilon).sqrt();
        }
    }

    /// `a = γ · inv_std` and `b = β - μ · a` (in `f32`; `γ` 1 and `β` 0
    /// when absent).
    pub(crate) fn coefficients(&mut self, gamma: Option<&[f32]>, beta: Option<&[f32]>) {
        for j in 0..self.channels() {
            let a = self.inv_std[j] as f32 * gamma.map_or(1.0, |g| g[j]);
            self.coef_a[j] = a;
            self.coef_b[j] = beta.map_or(0.0, |b| b[j]) - self.mean[j] as f32 * a;
        }
    }

    /// `y = x · a + b` per channel.
    pub(crate) fn apply(&self, x: &[f32], y: &mut [f32]) {
        let c = self.channels();
        let (a, b) = (&self.coef_a, &self.coef_b);
        y.par_chunks_mut(ROWS_PER_BLOCK * c)
            .zip(x.par_chunks(ROWS_PER_BLOCK * c))
            .for_each(|(y, x)| {
                for (y, x) in y.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
                    for j in 0..c {
                        y[j] = x[j] * a[j] + b[j];
                    }
                }
            });
    }

    /// `Σ dy` and `Σ dy · x̂` per channel, with the pass's statistics.
    pub(crate) fn grad_sums(&mut self, x: &[f32], g: &[f32]) {
        let c = self.channels();
        let (mean, inv_std) = (&self.mean, &self.inv_std);
        blocked_sums(
            x,
            Some(g),
            c,
            &mut self.partial,
            &mut self.sum0,
            &mut self.sum1,
            |v, g, j| {
                let g = f64::from(g);
                (g, g * (f64::from(v) - mean[j]) * inv_std[j])
            },
        );
    }

    /// `Σ dy · x̂` (the gradient of `γ`) and `Σ dy` (of `β`) of the last
    /// [`grad_sums`](Self::grad_sums).
    pub(crate) fn sums(&self) -> (&[f64], &[f64]) {
        (&self.sum1, &self.sum0)
    }

    /// The input gradient through the batch statistics (after
    /// [`grad_sums`](Self::grad_sums)):
    /// `dx = γ · inv_std · (dy - Σdy / n - x̂ · Σ(dy · x̂) / n)`.
    pub(crate) fn dx_batch(&self, x: &[f32], g: &[f32], gamma: Option<&[f32]>, dst: &mut [f32]) {
        let c = self.channels();
        let inv_n = 1.0 / (x.len() / c) as f64;
        let block = ROWS_PER_BLOCK * c;
        let (mean, inv_std, sdy, sdyx) = (&self.mean, &self.inv_std, &self.sum0, &self.sum1);
        dst.par_chunks_mut(block)
            .zip(x.par_chunks(block).zip(g.par_chunks(block)))
            .for_each(|(d, (x, g))| {
                for ((d, x), g) in d
                    .chunks_exact_mut(c)
                    .zip(x.chunks_exact(c))
                    .zip(g.chunks_exact(c))
                {
                    for j in 0..c {
                        let k = gamma.map_or(1.0, |gm| f64::from(gm[j])) * inv_std[j];
                        let xhat = (f64::from(x[j]) - mean[j]) * inv_std[j];
                        let v = f64::from(g[j]) - sdy[j] * inv_n - xhat * sdyx[j] * inv_n;
                        d[j] = (k * v) as f32;
                    }
                }
            });
    }

    /// The input gradient of the affine map: `dx = dy · a`.
    pub(crate) fn dx_affine(&self, g: &[f32], dst: &mut [f32]) {
        let c = self.channels();
        let a = &self.coef_a;
        let block = ROWS_PER_BLOCK * c;
        dst.par_chunks_mut(block)
            .zip(g.par_chunks(block))
            .for_each(|(d, g)| {
                for (d, g) in d.chunks_exact_mut(c).zip(g.chunks_exact(c)) {
                    for j in 0..c {
                        d[j] = g[j] * a[j];
                    }
                }
            });
    }
}

/// Two per-channel sums over the rows of `x` (`[n, c]` row-major) in blocks
/// of [`ROWS_PER_BLOCK`] rows, added in block order: `Σ f(x, g, j).0` and
/// `Σ f(x, g, j).1` for channel `j`, into `s0` and `s1`. `partial` is scratch.
fn blocked_sums(
    x: &[f32],
    g: Option<&[f32]>,
    c: usize,
    partial: &mut Vec<f64>,
    s0: &mut [f64],
    s1: &mut [f64],
    f: impl Fn(f32, f32, usize) -> (f64, f64) + Sync,
) {
    let block = ROWS_PER_BLOCK * c;
    let blocks = x.len().div_ceil(block);
    partial.clear();
    partial.resize(blocks * 2 * c, 0.0);
    partial
        .par_chunks_mut(2 * c)
        .enumerate()
        .for_each(|(b, acc)| {
            let start = b * block;
            let end = (start + block).min(x.len());
            let (a0, a1) = acc.split_at_mut(c);
            for (k, row) in x[start..end].chunks_exact(c).enumerate() {
                let offset = start + k * c;
                for (j, &v) in row.iter().enumerate() {
                    let gv = g.map_or(0.0, |g| g[offset + j]);
                    let (p, q) = f(v, gv, j);
                    a0[j] += p;
                    a1[j] += q;
                }
            }
        });
    s0.fill(0.0);
    s1.fill(0.0);
    for acc in partial.chunks_exact(2 * c) {
        for j in 0..c {
            s0[j] += acc[j];
            s1[j] += acc[c + j];
        }
    }
}
