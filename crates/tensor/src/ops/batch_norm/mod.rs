//! Batch normalisation (Ioffe and Szegedy 2015) over the last axis, with
//! Keras 3's numerics, on the CPU and on CUDA GPUs: the kernels behind
//! hebb-layers' `BatchNormalization`, in the shape of PyTorch's
//! `native_batch_norm` and its backward.
//!
//! For `x` of shape `[.., C]`, seen as `[n, C]` (`n` = the product of the
//! other axes), with `γ` (1 when absent) and `β` (0 when absent):
//!
//! ```text
//! batch statistics:   μ_c = Σ x / n,  σ²_c = Σ (x - μ_c)² / n        (biased, two passes)
//!     moving_mean     ← moving_mean · momentum + μ_c · (1 - momentum)   (in f32)
//!     moving_variance ← moving_variance · momentum + σ²_c · (1 - momentum)
//! moving statistics:  μ_c = moving_mean, σ²_c = moving_variance
//! y = x · a_c + b_c,   a_c = γ_c · inv_std_c,   b_c = β_c - μ_c · a_c,   inv_std_c = 1 / sqrt(σ²_c + ε)
//! ```
//!
//! Backward, with `x̂ = (x - μ) · inv_std`: `dγ = Σ dy · x̂`, `dβ = Σ dy`;
//! through the batch statistics `dx = γ · inv_std · (dy - dβ / n - x̂ · dγ / n)`,
//! through moving statistics (an affine map) `dx = dy · a`.
//!
//! # Numerics: the same bits on every device
//!
//! The sums run in `f64` over blocks of [`ROWS_PER_BLOCK`] rows, each block
//! in row order, and the block sums are added in block order; `μ`,
//! `inv_std` and the backward's sums stay in `f64`, and are rounded to
//! `f32` only where the formulas above produce `f32` values (`a`, `b`, the
//! moving statistics, `dγ`, `dβ`, `dx`). The CUDA kernels (`batch_norm.cu`)
//! perform the same IEEE operations in the same order, each written with a
//! round-to-nearest intrinsic that the compiler cannot contract into a
//! fused multiply-add, and NVRTC compiles with IEEE division and square
//! root and no flush-to-zero; so the CPU and a GPU give the same bits, and
//! the result does not depend on the CPU's thread count.
//!
//! # Devices
//!
//! Every tensor of a call must be on `x`'s device. On a GPU a forward pass
//! is two kernel launches on the device's stream with the moving
//! statistics and five with the batch's, a backward pass one to three; the
//! per-channel values ([`BatchNormStats`]) stay in device memory and
//! nothing is copied to the host.

mod cpu_kernel;
#[cfg(feature = "cuda")]
pub(crate) mod cuda_kernel;

use crate::{Device, Error, Result, Tensor};

/// Rows (each of `C` channels) per block of the statistics' sums; fixed,
/// so that the order of the additions depends neither on the thread count
/// nor on the device.
pub const ROWS_PER_BLOCK: usize = 256;

/// What a [`BatchNorm::forward`] pass computed per channel, kept on its
/// device for the matching [`BatchNorm::backward`] (PyTorch's
/// `save_mean`/`save_invstd`, here in `f64`): `μ_c`, `1 / sqrt(σ²_c + ε)`,
/// the coefficients `a_c`, `b_c`, and whether the batch's statistics were
/// used. Also the scratch of the sums, reused from call to call.
#[derive(Default)]
pub struct BatchNormStats {
    channels: usize,
    rows: usize,
    batch: bool,
    state: State,
}

#[derive(Default)]
enum State {
    #[default]
    Empty,
    Cpu(cpu_kernel::Stats),
    #[cfg(feature = "cuda")]
    Cuda(cuda_kernel::Stats),
}

impl std::fmt::Debug for BatchNormStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchNormStats")
            .field("channels", &self.channels)
            .field("rows", &self.rows)
            .field("batch", &self.batch)
            .field("device", &self.device())
            .finish()
    }
}

impl BatchNormStats {
    /// Empty statistics, before any forward pass.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the last forward pass normalised with the batch's statistics
    /// (else with the moving ones).
    pub fn used_batch_statistics(&self) -> bool {
        self.batch
    }

    /// `(n, C)` of the last forward pass's input seen as `[n, C]`.
    pub fn rows_and_channels(&self) -> (usize, usize) {
        (self.rows, self.channels)
    }

    /// The device holding the statistics; `None` before a forward pass.
    pub fn device(&self) -> Option<Device> {
        match &self.state {
            State::Empty => None,
            State::Cpu(_) => Some(Device::Cpu),
            #[cfg(feature = "cuda")]
            State::Cuda(s) => Some(s.device()),
        }
    }

    /// `(μ, 1 / sqrt(σ² + ε))` of the last forward pass, per channel, in
    /// `f64`, copied to the host (from a GPU this waits for the device).
    ///
    /// # Errors
    /// [`Error::Cuda`] if the copy from a GPU fails.
    pub fn to_host(&self) -> Result<(Vec<f64>, Vec<f64>)> {
        match &self.state {
            State::Empty => Ok((Vec::new(), Vec::new())),
            State::Cpu(s) => Ok((s.mean.clone(), s.inv_std.clone())),
            #[cfg(feature = "cuda")]
            State::Cuda(s) => s.download(),
        }
    }

    /// The host state for `c` channels (replacing another device's).
    fn cpu(&mut self, c: usize) -> &mut cpu_kernel::Stats {
        if !matches!(self.state, State::Cpu(_)) {
            self.state = State::Cpu(cpu_kernel::Stats::default());
        }
        match &mut self.state {
            State::Cpu(s) => {
                s.resize(c);
                s
            }
            _ => unreachable!("set to the CPU above"),
        }
    }

    /// The device state for `c` channels on `backend`'s device.
    #[cfg(feature = "cuda")]
    fn cuda(
        &mut self,
        backend: &std::sync::Arc<crate::cuda::Backend>,
        c: usize,
    ) -> Result<&mut cuda_kernel::Stats> {
        let fits = matches!(&self.state, State::Cuda(s) if s.fits(backend, c));
        if !fits {
            self.state = State::Cuda(cuda_kernel::Stats::new(backend, c)?);
        }
        match &mut self.state {
            State::Cuda(s) => Ok(s),
            _ => unreachable!("set to the device above"),
        }
    }
}

/// Where a forward pass takes its statistics from.
#[derive(Debug)]
pub enum Statistics<'a> {
    /// The batch's mean and biased variance (Keras' training mode); the
    /// moving statistics (`[C]` each) are updated in place with `momentum`
    /// (the weight of the old value; Keras' default 0.99). An empty batch
    /// (`n = 0`) uses the moving statistics and leaves them as they are.
    Batch {
        /// `moving_mean`, `[C]`.
        moving_mean: &'a mut Tensor,
        /// `moving_variance`, `[C]`.
        moving_variance: &'a mut Tensor,
        /// The weight of the old moving value.
        momentum: f64,
    },
    /// The moving statistics (inference, or a frozen layer), read only.
    Moving {
        /// `moving_mean`, `[C]`.
        moving_mean: &'a Tensor,
        /// `moving_variance`, `[C]`.
        moving_variance: &'a Tensor,
    },
}

/// The gradients a [`BatchNorm::backward`] pass writes, each where given:
/// a tensor is overwritten in place when it already has the shape, is on
/// the device and shares its buffer with no other tensor, else replaced.
#[derive(Debug, Default)]
pub struct Gradients<'a> {
    /// The input's gradient, `x`'s shape.
    pub dx: Option<&'a mut Tensor>,
    /// `γ`'s gradient `Σ dy · x̂`, `[C]`.
    pub dgamma: Option<&'a mut Tensor>,
    /// `β`'s gradient `Σ dy`, `[C]`.
    pub dbeta: Option<&'a mut Tensor>,
}

/// The trainable parameters of a batch normalisation over the last axis
/// (Keras `BatchNormalization(axis=-1)`): `γ` and `β` (`[C]` each; absent
/// with `scale=False` / `center=False`) and `ε` (Keras' default `1e-3`).
/// See the module docs for the formulas.
///
/// ```
/// use hebb_tensor::Tensor;
/// use hebb_tensor::ops::batch_norm::{BatchNorm, BatchNormStats, Gradients, Statistics};
///
/// let x = Tensor::from_vec(vec![1.0, 10.0, 3.0, 30.0], &[2, 2])?;
/// let (mut moving_mean, mut moving_variance) = (Tensor::zeros(&[2]), Tensor::ones(&[2]));
/// let (mut y, mut stats) = (Tensor::zeros(&[0]), BatchNormStats::new());
/// let bn = BatchNorm { gamma: None, beta: None, epsilon: 1e-3 };
/// let batch = Statistics::Batch {
///     moving_mean: &mut moving_mean,
///     moving_variance: &mut moving_variance,
///     momentum: 0.99,
/// };
/// bn.forward(&x, batch, &mut y, &mut stats)?;
/// let y = y.to_vec();
/// assert!((y[0] + 1.0).abs() < 1e-3 && (y[2] - 1.0).abs() < 1e-3);
/// // 1% of the way to the batch mean [2, 20].
/// assert!((moving_mean.to_vec()[1] - 0.2).abs() < 1e-7);
/// let mut dx = Tensor::zeros(&[0]);
/// let grads = Gradients { dx: Some(&mut dx), ..Gradients::default() };
/// bn.backward(&x, &Tensor::ones(&[2, 2]), &mut stats, grads)?;
/// assert!(dx.to_vec().iter().all(|g| g.abs() < 1e-6)); // a constant gradient vanishes
/// # Ok::<(), hebb_tensor::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct BatchNorm<'a> {
    /// `γ`, `[C]` (Keras `scale=True`); 1 when `None`.
    pub gamma: Option<&'a Tensor>,
    /// `β`, `[C]` (Keras `center=True`); 0 when `None`.
    pub beta: Option<&'a Tensor>,
    /// `ε`, added to the variance; finite and `>= 0`.
    pub epsilon: f64,
}

/// A `[C]` parameter `t` of `x` (name `what`): the right shape and device.
fn check_channel(op: &'static str, x: &Tensor, t: &Tensor, what: &str, c: usize) -> Result<()> {
    if t.shape() != [c] {
        return Err(Error::ShapeMismatch {
            op,
            lhs: x.shape().to_vec(),
            rhs: t.shape().to_vec(),
            detail: format!("{what} must be [{c}], one value per channel of the last axis"),
        });
    }
    x.same_device(t, op)
}

impl BatchNorm<'_> {
    /// Checks `x` and the parameters; returns `(n, C)`.
    fn check(&self, op: &'static str, x: &Tensor) -> Result<(usize, usize)> {
        let c = match x.shape().last() {
            Some(&c) if c > 0 => c,
            _ => {
                return Err(Error::InvalidArgument {
                    op,
                    reason: format!(
                        "needs an input [.., channels] with at least one channel, got shape {:?}",
                        x.shape()
                    ),
                });
            }
        };
        if !(self.epsilon.is_finite() && self.epsilon >= 0.0) {
            return Err(Error::InvalidArgument {
                op,
                reason: format!("epsilon must be finite and >= 0, got {}", self.epsilon),
            });
        }
        if let Some(g) = self.gamma {
            check_channel(op, x, g, "gamma", c)?;
        }
        if let Some(b) = self.beta {
            check_channel(op, x, b, "beta", c)?;
        }
        Ok((x.len() / c, c))
    }

    /// The forward pass: `out` becomes `y` (`x`'s shape, on its device;
    /// its buffer reused when it has that many elements there and nothing
    /// shares it), `stats` what the backward pass needs; with
    /// [`Statistics::Batch`] the moving statistics are updated in place.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an input without channels (`[]` or
    /// `[.., 0]`), a bad `ε`, or a non-finite momentum;
    /// [`Error::ShapeMismatch`] naming both shapes if `γ`, `β` or a moving
    /// statistic is not `[C]`; [`Error::DeviceMismatch`] unless all are on
    /// `x`'s device; [`Error::Cuda`] if a launch or an allocation fails.
    pub fn forward(
        &self,
        x: &Tensor,
        statistics: Statistics<'_>,
        out: &mut Tensor,
        stats: &mut BatchNormStats,
    ) -> Result<()> {
        const OP: &str = "batch_norm";
        let (n, c) = self.check(OP, x)?;
        let (batch, keep_take) = match &statistics {
            Statistics::Batch {
                moving_mean,
                moving_variance,
                momentum,
            } => {
                check_channel(OP, x, moving_mean, "moving_mean", c)?;
                check_channel(OP, x, moving_variance, "moving_variance", c)?;
                if !momentum.is_finite() {
                    return Err(Error::InvalidArgument {
                        op: OP,
                        reason: format!("momentum must be finite, got {momentum}"),
                    });
                }
                // Keras: moving = moving · momentum + batch · (1 - momentum), in float32.
                (n > 0, (*momentum as f32, (1.0 - momentum) as f32))
            }
            Statistics::Moving {
                moving_mean,
                moving_variance,
            } => {
                check_channel(OP, x, moving_mean, "moving_mean", c)?;
                check_channel(OP, x, moving_variance, "moving_variance", c)?;
                (false, (1.0, 0.0))
            }
        };
        stats.channels = c;
        stats.rows = n;
        stats.batch = batch;
        #[cfg(feature = "cuda")]
        if let Some(xc) = x.cuda() {
            return self.forward_cuda(xc, x.shape(), statistics, keep_take, out, stats);
        }
        let eps = self.epsilon;
        let st = stats.cpu(c);
        match statistics {
            Statistics::Batch {
                moving_mean,
                moving_variance,
                ..
            } if batch => st.batch(
                x.as_slice(),
                eps,
                keep_take,
                moving_mean.as_mut_slice(),
                moving_variance.as_mut_slice(),
            ),
            Statistics::Batch {
                moving_mean,
                moving_variance,
                ..
            } => st.moving(eps, moving_mean.as_slice(), moving_variance.as_slice()),
            Statistics::Moving {
                moving_mean,
                moving_variance,
            } => st.moving(eps, moving_mean.as_slice(), moving_variance.as_slice()),
        }
        st.coefficients(
            self.gamma.map(Tensor::as_slice),
            self.beta.map(Tensor::as_slice),
        );
        let y = super::output::host(OP, out, x.shape())?;
        st.apply(x.as_slice(), y);
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn forward_cuda(
        &self,
        x: &crate::cuda::CudaStorage,
        shape: &[usize],
        statistics: Statistics<'_>,
        keep_take: (f32, f32),
        out: &mut Tensor,
        stats: &mut BatchNormStats,
    ) -> Result<()> {
        const OP: &str = "batch_norm";
        let (n, c, batch) = (stats.rows, stats.channels, stats.batch);
        let backend = x.backend.clone();
        let params = (
            self.gamma.and_then(Tensor::cuda).map(|s| s.data.as_ref()),
            self.beta.and_then(Tensor::cuda).map(|s| s.data.as_ref()),
        );
        let st = stats.cuda(&backend, c)?;
        match statistics {
            Statistics::Batch {
                moving_mean,
                moving_variance,
                ..
            } if batch => {
                let mm = device_buffer(OP, moving_mean)?;
                let mv = device_buffer(OP, moving_variance)?;
                st.batch(&x.data, n, self.epsilon, keep_take, mm, mv, params)?;
            }
            Statistics::Batch {
                moving_mean,
                moving_variance,
                ..
            } => st.moving(
                self.epsilon,
                read_buffer(OP, moving_mean)?,
                read_buffer(OP, moving_variance)?,
                params,
            )?,
            Statistics::Moving {
                moving_mean,
                moving_variance,
            } => st.moving(
                self.epsilon,
                read_buffer(OP, moving_mean)?,
                read_buffer(OP, moving_variance)?,
                params,
            )?,
        }
        let y = super::output::device(OP, out, shape, &backend)?;
        st.apply(&x.data, y, n * c)
    }

    /// The backward pass of the last [`forward`](Self::forward) with
    /// `stats` (same `x`), from the output's gradient `dy` (`x`'s shape):
    /// writes the [`Gradients`] asked for (see the module docs).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `dy` is not `x`'s shape, or `x` is not
    /// the shape `stats` was computed for; [`Error::InvalidArgument`] if
    /// `stats` is from no forward pass or from another device;
    /// [`Error::DeviceMismatch`], [`Error::Cuda`] as [`forward`](Self::forward).
    pub fn backward(
        &self,
        x: &Tensor,
        dy: &Tensor,
        stats: &mut BatchNormStats,
        grads: Gradients<'_>,
    ) -> Result<()> {
        const OP: &str = "batch_norm_backward";
        let (n, c) = self.check(OP, x)?;
        if dy.shape() != x.shape() {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: x.shape().to_vec(),
                rhs: dy.shape().to_vec(),
                detail: "the output's gradient must have the input's shape".into(),
            });
        }
        x.same_device(dy, OP)?;
        if stats.rows_and_channels() != (n, c) {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: x.shape().to_vec(),
                rhs: vec![stats.rows, stats.channels],
                detail: "the statistics are from a forward pass over another shape ([rows, channels] shown)".into(),
            });
        }
        if stats.device() != Some(x.device()) {
            return Err(Error::InvalidArgument {
                op: OP,
                reason: format!(
                    "the statistics are from {} and the input is on {}; run the forward pass first",
                    stats
                        .device()
                        .map_or("no forward pass".to_string(), |d| d.to_string()),
                    x.device()
                ),
            });
        }
        let batch = stats.batch;
        let Gradients { dx, dgamma, dbeta } = grads;
        let sums = dgamma.is_some() || dbeta.is_some() || (batch && dx.is_some());
        #[cfg(feature = "cuda")]
        if let (Some(xc), Some(gc)) = (x.cuda(), dy.cuda()) {
            let backend = xc.backend.clone();
            let gamma = self.gamma.and_then(Tensor::cuda).map(|s| s.data.as_ref());
            let st = stats.cuda(&backend, c)?;
            if sums {
                let dg = match dgamma {
                    Some(t) => Some(super::output::device(OP, t, &[c], &backend)?),
                    None => None,
                };
                let db = match dbeta {
                    Some(t) => Some(super::output::device(OP, t, &[c], &backend)?),
                    None => None,
                };
                st.grad_sums(&xc.data, &gc.data, n, dg, db)?;
            }
            if let Some(dx) = dx {
                let d = super::output::device(OP, dx, x.shape(), &backend)?;
                if batch {
                    st.dx_batch(&xc.data, &gc.data, n, gamma, d)?;
                } else {
                    st.dx_affine(&gc.data, d, n * c)?;
                }
            }
            return Ok(());
        }
        let st = stats.cpu(c);
        let (xs, gs) = (x.as_slice(), dy.as_slice());
        if sums {
            st.grad_sums(xs, gs);
        }
        let (sdyx, sdy) = st.sums();
        for (t, s) in [(dgamma, sdyx), (dbeta, sdy)] {
            if let Some(t) = t {
                let d = super::output::host(OP, t, &[c])?;
                for (d, s) in d.iter_mut().zip(s) {
                    *d = *s as f32;
                }
            }
        }
        if let Some(dx) = dx {
            let d = super::output::host(OP, dx, x.shape())?;
            if batch {
                st.dx_batch(xs, gs, self.gamma.map(Tensor::as_slice), d);
            } else {
                st.dx_affine(gs, d);
            }
        }
        Ok(())
    }
}

/// The device buffer of a moving statistic, for an in-place update.
#[cfg(feature = "cuda")]
fn device_buffer<'t>(
    op: &'static str,
    t: &'t mut Tensor,
) -> Result<&'t mut cudarc::driver::CudaSlice<f32>> {
    match crate::cuda::device_buffer_mut(t)? {
        Some(b) => Ok(b),
        None => Err(Error::DeviceMismatch {
            op,
            lhs: Device::Cuda(0),
            rhs: Device::Cpu,
        }),
    }
}

/// The device buffer of a tensor checked to be on the GPU.
#[cfg(feature = "cuda")]
fn read_buffer<'t>(op: &'static str, t: &'t Tensor) -> Result<&'t cudarc::driver::CudaSlice<f32>> {
    t.cuda()
        .map(|s| s.data.as_ref())
        .ok_or(Error::DeviceMismatch {
            op,
            lhs: Device::Cuda(0),
            rhs: Device::Cpu,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::RandomState;

    fn randn(shape: &[usize], seed: u32) -> Tensor {
        RandomState::new(seed).randn_tensor(shape).unwrap()
    }

    /// Plain per-channel reference in `f64`: (y, mean, biased variance).
    fn reference(
        x: &Tensor,
        gamma: &[f32],
        beta: &[f32],
        eps: f64,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let c = gamma.len();
        let xs = x.as_slice();
        let n = xs.len() / c;
        let (mut mean, mut var) = (vec![0.0; c], vec![0.0; c]);
        for j in 0..c {
            let col: Vec<f64> = (0..n).map(|i| f64::from(xs[i * c + j])).collect();
            mean[j] = col.iter().sum::<f64>() / n as f64;
            var[j] = col.iter().map(|v| (v - mean[j]).powi(2)).sum::<f64>() / n as f64;
        }
        let y = xs
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let j = i % c;
                (f64::from(v) - mean[j]) / (var[j] + eps).sqrt() * f64::from(gamma[j])
                    + f64::from(beta[j])
            })
            .collect();
        (y, mean, var)
    }

    #[test]
    fn training_pass_matches_the_reference_over_several_blocks() -> Result<()> {
        let x = randn(&[3, ROWS_PER_BLOCK + 5, 4], 1);
        let gamma = Tensor::from_vec(vec![0.5, 1.0, 1.5, -2.0], &[4])?;
        let beta = Tensor::from_vec(vec![0.0, 1.0, -1.0, 0.25], &[4])?;
        let (mut mm, mut mv) = (Tensor::zeros(&[4]), Tensor::ones(&[4]));
        let (mut y, mut stats) = (Tensor::zeros(&[0]), BatchNormStats::new());
        let bn = BatchNorm {
            gamma: Some(&gamma),
            beta: Some(&beta),
            epsilon: 1e-3,
        };
        let batch = Statistics::Batch {
            moving_mean: &mut mm,
            moving_variance: &mut mv,
            momentum: 0.9,
        };
        bn.forward(&x, batch, &mut y, &mut stats)?;
        let (want, mean, var) = reference(&x, gamma.as_slice(), beta.as_slice(), 1e-3);
        for (i, (&a, &b)) in y.as_slice().iter().zip(&want).enumerate() {
            assert!(
                (f64::from(a) - b).abs() < 1e-5 * (1.0 + b.abs()),
                "y[{i}] {a} vs {b}"
            );
        }
        for j in 0..4 {
            assert!((f64::from(mm.as_slice()[j]) - 0.1 * mean[j]).abs() < 1e-6);
            assert!((f64::from(mv.as_slice()[j]) - (0.9 + 0.1 * var[j])).abs() < 1e-6);
        }
        assert!(stats.used_batch_statistics());
        assert_eq!(stats.rows_and_channels(), (3 * (ROWS_PER_BLOCK + 5), 4));
        Ok(())
    }

    #[test]
    fn empty_batches_and_bad_arguments() -> Result<()> {
        let bn = BatchNorm {
            gamma: None,
            beta: None,
            epsilon: 1e-3,
        };
        let (mut mm, mut mv) = (Tensor::full(&[3], 0.5), Tensor::full(&[3], 2.0));
        let (mut y, mut stats) = (Tensor::zeros(&[0]), BatchNormStats::new());
        let empty = Tensor::zeros(&[0, 3]);
        let batch = Statistics::Batch {
            moving_mean: &mut mm,
            moving_variance: &mut mv,
            momentum: 0.99,
        };
        bn.forward(&empty, batch, &mut y, &mut stats)?;
        assert_eq!(y.shape(), &[0, 3]);
        assert!(!stats.used_batch_statistics());
        assert_eq!((mm.to_vec(), mv.to_vec()), (vec![0.5; 3], vec![2.0; 3]));
        let x = Tensor::ones(&[2, 3]);
        let e = bn
            .backward(&x, &x, &mut stats, Gradients::default())
            .unwrap_err();
        assert!(e.to_string().contains("[2, 3]"), "{e}");
        let wrong = Tensor::ones(&[2]);
        let moving = Statistics::Moving {
            moving_mean: &wrong,
            moving_variance: &mv,
        };
        let e = bn.forward(&x, moving, &mut y, &mut stats).unwrap_err();
        assert!(e.to_string().contains("moving_mean must be [3]"), "{e}");
        let moving = Statistics::Moving {
            moving_mean: &mm,
            moving_variance: &mv,
        };
        let e = bn
            .forward(&Tensor::zeros(&[2, 0]), moving, &mut y, &mut stats)
            .unwrap_err();
        assert!(e.to_string().contains("at least one channel"), "{e}");
        Ok(())
    }
}
