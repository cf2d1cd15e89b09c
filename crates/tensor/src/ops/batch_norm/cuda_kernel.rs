//! CUDA kernels of batch normalisation (`batch_norm.cu`): the CPU kernel's
//! blocked `f64` sums and its arithmetic, operation for operation, with
//! the per-channel values kept in device memory between the forward and
//! the backward pass.
//!
//! A statistics pass is one launch of `bn_partial` (a thread per block of
//! [`ROWS_PER_BLOCK`] rows and channel, summing its rows in order) and one
//! of a per-channel kernel that adds the partials in block order and
//! finishes (mean; variance, moving statistics and coefficients; gradient
//! sums). Elementwise passes are a thread per element.
#![allow(unsafe_code)]

use std::sync::Arc;

use cudarc::driver::{CudaSlice, CudaViewMut, PushKernelArg};

use super::ROWS_PER_BLOCK;
use crate::cuda::{Backend, CudaSource, fail, grid};
use crate::{Error, Result};

pub(crate) const SOURCE: CudaSource = CudaSource {
    name: "hebb-tensor/batch_norm.cu",
    code: include_str!("batch_norm.cu"),
};

/// `bn_partial`'s sums (`batch_norm.cu`'s `SUM_*`).
#[derive(Debug, Clone, Copy)]
enum Sum {
    X = 0,
    Squares = 1,
    Grad = 2,
}

/// The per-channel values of the last pass, on one device.
pub(crate) struct Stats {
    backend: Arc<Backend>,
    c: usize,
    /// `mean[c], inv_std[c], Σdy[c], Σdy·x̂[c]` in `f64`.
    stats: CudaSlice<f64>,
    /// `a[c], b[c]` of `y = x · a + b`.
    coef: CudaSlice<f32>,
    /// Per-block partial sums, `2c` per block (grown as needed).
    partial: CudaSlice<f64>,
    /// `2c` floats that stand in for the gradients not asked for, and for
    /// an absent `γ` or `β` (the kernels then neither read nor write them).
    spare: CudaSlice<f32>,
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "batch-norm statistics of {} channels on {:?}",
            self.c, self.backend
        )
    }
}

impl Drop for Stats {
    /// cudarc frees without making the context current (see `CudaStorage`'s
    /// drop): bind it first, in case this thread never ran a GPU op.
    fn drop(&mut self) {
        let _ = self.backend.stream.context().bind_to_thread();
    }
}

/// `n` zeroed `T` on `backend`'s device (at least one).
fn zeroed<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
    backend: &Backend,
    n: usize,
) -> Result<CudaSlice<T>> {
    backend
        .stream
        .alloc_zeros::<T>(n.max(1))
        .map_err(|e| Error::Cuda {
            op: "batch_norm",
            message: format!(
                "could not allocate {n} values ({} bytes) of statistics: {e:?}",
                n * std::mem::size_of::<T>()
            ),
        })
}

/// The first `c` floats of `t`, or `spare` (`c` floats) without one.
fn or_spare<'a>(
    t: Option<&'a mut CudaSlice<f32>>,
    spare: CudaViewMut<'a, f32>,
    c: usize,
) -> CudaViewMut<'a, f32> {
    match t {
        Some(t) => t.slice_mut(..c),
        None => spare,
    }
}

/// Blocks of [`ROWS_PER_BLOCK`] rows in `n` rows.
fn blocks(n: usize) -> usize {
    n.div_ceil(ROWS_PER_BLOCK)
}

impl Stats {
    /// Statistics of `c` channels on `backend`'s device.
    pub(crate) fn new(backend: &Arc<Backend>, c: usize) -> Result<Self> {
        Ok(Self {
            backend: backend.clone(),
            c,
            stats: zeroed(backend, 4 * c)?,
            coef: zeroed(backend, 2 * c)?,
            partial: zeroed(backend, 2 * c)?,
            spare: zeroed(backend, 2 * c)?,
        })
    }

    /// The device holding the statistics.
    pub(crate) fn device(&self) -> crate::Device {
        crate::Device::Cuda(self.backend.ordinal)
    }

    /// Whether these are `c` channels on `backend`'s device.
    pub(crate) fn fits(&self, backend: &Backend, c: usize) -> bool {
        self.c == c && self.backend.ordinal == backend.ordinal
    }

    /// `(mean, inv_std)` copied to the host (waits for the device).
    pub(crate) fn download(&self) -> Result<(Vec<f64>, Vec<f64>)> {
        let mut all = self
            .backend
            .stream
            .clone_dtoh(&self.stats)
            .map_err(fail("batch_norm"))?;
        all.truncate(2 * self.c);
        let inv_std = all.split_off(self.c);
        Ok((all, inv_std))
    }

    /// One `bn_partial` launch over `x` (and `g`) of `n` rows into `partial`.
    fn partial_sums(
        &mut self,
        what: Sum,
        x: &CudaSlice<f32>,
        g: Option<&CudaSlice<f32>>,
        n: usize,
    ) -> Result<()> {
        let c = self.c;
        let m = blocks(n) * c;
        if self.partial.len() < 2 * m {
            self.partial = zeroed(&self.backend, 2 * m)?;
        }
        let f = self.backend.function(&SOURCE, "bn_partial")?;
        let (n_, c_, rb, what_) = (n as u64, c as u64, ROWS_PER_BLOCK as u64, what as i32);
        let mut launch = self.backend.stream.launch_builder(&f);
        launch
            .arg(&n_)
            .arg(&c_)
            .arg(&rb)
            .arg(&what_)
            .arg(&mut self.partial)
            .arg(x)
            .arg(g.unwrap_or(x))
            .arg(&self.stats);
        // SAFETY: `bn_partial(size_t n, size_t c, size_t rb, int what,
        // double *partial, const float *x, const float *g, const double
        // *stats)`: thread t < blocks(n) * c reads x[r * c + j] (and g, of
        // x's length, the same) for rows r < n and channels j < c, stats[j]
        // and stats[c + j] (4c doubles), and writes partial[k * 2c + j] and
        // partial[k * 2c + c + j] for k < blocks(n), inside its 2m doubles;
        // the caller's x (and g) hold n * c floats.
        unsafe { launch.launch(grid(m)) }.map_err(fail("batch_norm"))?;
        Ok(())
    }

    /// The batch's statistics of `x` (`n > 0` rows), the moving statistics'
    /// update and the coefficients.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn batch(
        &mut self,
        x: &CudaSlice<f32>,
        n: usize,
        epsilon: f64,
        (keep, take): (f32, f32),
        moving_mean: &mut CudaSlice<f32>,
        moving_variance: &mut CudaSlice<f32>,
        (gamma, beta): (Option<&CudaSlice<f32>>, Option<&CudaSlice<f32>>),
    ) -> Result<()> {
        let c = self.c;
        let inv_n = 1.0 / n as f64;
        let (c_, blocks_) = (c as u64, blocks(n) as u64);
        self.partial_sums(Sum::X, x, None, n)?;
        let f = self.backend.function(&SOURCE, "bn_mean")?;
        let mut launch = self.backend.stream.launch_builder(&f);
        launch
            .arg(&c_)
            .arg(&blocks_)
            .arg(&inv_n)
            .arg(&mut self.stats)
            .arg(&self.partial);
        // SAFETY: `bn_mean(size_t c, size_t blocks, double inv_n, double
        // *stats, const double *partial)`: thread j < c writes stats[j] (of
        // 4c) and reads partial[k * 2c + j], partial[k * 2c + c + j] for
        // k < blocks, which the last `partial_sums` wrote (2 * blocks * c
        // doubles).
        unsafe { launch.launch(grid(c)) }.map_err(fail("batch_norm"))?;
        self.partial_sums(Sum::Squares, x, None, n)?;
        let f = self.backend.function(&SOURCE, "bn_variance")?;
        let (has_gamma, has_beta) = (i32::from(gamma.is_some()), i32::from(beta.is_some()));
        let mut launch = self.backend.stream.launch_builder(&f);
        launch
            .arg(&c_)
            .arg(&blocks_)
            .arg(&inv_n)
            .arg(&epsilon)
            .arg(&keep)
            .arg(&take)
            .arg(&mut self.stats)
            .arg(&mut self.coef)
            .arg(moving_mean)
            .arg(moving_variance)
            .arg(&self.partial)
            .arg(gamma.unwrap_or(&self.spare))
            .arg(beta.unwrap_or(&self.spare))
            .arg(&has_gamma)
            .arg(&has_beta);
        // SAFETY: `bn_variance(size_t c, size_t blocks, double inv_n, double
        // eps, float keep, float take, double *stats, float *coef, float
        // *moving_mean, float *moving_var, const double *partial, const
        // float *gamma, const float *beta, int has_gamma, int has_beta)`:
        // thread j < c touches index j and c + j of stats (4c), coef (2c),
        // index j of the moving statistics, gamma and beta (c each, checked
        // by the caller; `spare` holds 2c), and the partials as `bn_mean`.
        unsafe { launch.launch(grid(c)) }.map_err(fail("batch_norm"))?;
        Ok(())
    }

    /// The moving statistics as the pass's, and the coefficients.
    pub(crate) fn moving(
        &mut self,
        epsilon: f64,
        moving_mean: &CudaSlice<f32>,
        moving_variance: &CudaSlice<f32>,
        (gamma, beta): (Option<&CudaSlice<f32>>, Option<&CudaSlice<f32>>),
    ) -> Result<()> {
        let c_ = self.c as u64;
        let (has_gamma, has_beta) = (i32::from(gamma.is_some()), i32::from(beta.is_some()));
        let f = self.backend.function(&SOURCE, "bn_moving")?;
        let mut launch = self.backend.stream.launch_builder(&f);
        launch
            .arg(&c_)
            .arg(&epsilon)
            .arg(&mut self.stats)
            .arg(&mut self.coef)
            .arg(moving_mean)
            .arg(moving_variance)
            .arg(gamma.unwrap_or(&self.spare))
            .arg(beta.unwrap_or(&self.spare))
            .arg(&has_gamma)
            .arg(&has_beta);
        // SAFETY: `bn_moving(size_t c, double eps, double *stats, float
        // *coef, const float *moving_mean, const float *moving_var, const
        // float *gamma, const float *beta, int has_gamma, int has_beta)`:
        // thread j < c touches index j and c + j of stats (4c) and coef
        // (2c), and index j of the c-element moving statistics, gamma and
        // beta (or `spare`, 2c, not read).
        unsafe { launch.launch(grid(self.c)) }.map_err(fail("batch_norm"))?;
        Ok(())
    }

    /// `y = x · a + b` over `total` elements.
    pub(crate) fn apply(
        &self,
        x: &CudaSlice<f32>,
        y: &mut CudaSlice<f32>,
        total: usize,
    ) -> Result<()> {
        if total == 0 {
            return Ok(());
        }
        let f = self.backend.function(&SOURCE, "bn_apply")?;
        let (total_, c_) = (total as u64, self.c as u64);
        let mut launch = self.backend.stream.launch_builder(&f);
        launch.arg(&total_).arg(&c_).arg(y).arg(x).arg(&self.coef);
        // SAFETY: `bn_apply(size_t total, size_t c, float *y, const float
        // *x, const float *coef)`: thread i < total writes y[i] and reads
        // x[i] (both of `total` floats, distinct buffers) and coef[i % c],
        // coef[c + i % c] (2c).
        unsafe { launch.launch(grid(total)) }.map_err(fail("batch_norm"))?;
        Ok(())
    }

    /// `Σ dy` and `Σ dy · x̂` per channel into the statistics, and as floats
    /// into `dgamma` (`Σ dy · x̂`) and `dbeta` (`Σ dy`) where given.
    pub(crate) fn grad_sums(
        &mut self,
        x: &CudaSlice<f32>,
        g: &CudaSlice<f32>,
        n: usize,
        dgamma: Option<&mut CudaSlice<f32>>,
        dbeta: Option<&mut CudaSlice<f32>>,
    ) -> Result<()> {
        let c = self.c;
        self.partial_sums(Sum::Grad, x, Some(g), n)?;
        let (want_gamma, want_beta) = (i32::from(dgamma.is_some()), i32::from(dbeta.is_some()));
        let (spare_gamma, spare_beta) = self.spare.split_at_mut(c);
        let mut dg = or_spare(dgamma, spare_gamma, c);
        let mut db = or_spare(dbeta, spare_beta, c);
        let f = self.backend.function(&SOURCE, "bn_grad_sums")?;
        let (c_, blocks_) = (c as u64, blocks(n) as u64);
        let mut launch = self.backend.stream.launch_builder(&f);
        launch
            .arg(&c_)
            .arg(&blocks_)
            .arg(&mut self.stats)
            .arg(&mut dg)
            .arg(&mut db)
            .arg(&self.partial)
            .arg(&want_gamma)
            .arg(&want_beta);
        // SAFETY: `bn_grad_sums(size_t c, size_t blocks, double *stats,
        // float *dgamma, float *dbeta, const double *partial, int
        // want_gamma, int want_beta)`: thread j < c writes stats[2c + j],
        // stats[3c + j] (of 4c), dgamma[j] and dbeta[j] (views of c floats:
        // the caller's gradients or halves of `spare`), and reads the
        // partials that `partial_sums` just wrote, as `bn_mean`.
        unsafe { launch.launch(grid(c)) }.map_err(fail("batch_norm"))?;
        Ok(())
    }

    /// The input gradient through the batch statistics (after
    /// [`grad_sums`](Self::grad_sums)) over `n` rows.
    pub(crate) fn dx_batch(
        &self,
        x: &CudaSlice<f32>,
        g: &CudaSlice<f32>,
        n: usize,
        gamma: Option<&CudaSlice<f32>>,
        dx: &mut CudaSlice<f32>,
    ) -> Result<()> {
        let total = n * self.c;
        if total == 0 {
            return Ok(());
        }
        let f = self.backend.function(&SOURCE, "bn_dx_batch")?;
        let (total_, c_, inv_n) = (total as u64, self.c as u64, 1.0 / n as f64);
        let has_gamma = i32::from(gamma.is_some());
        let mut launch = self.backend.stream.launch_builder(&f);
        launch
            .arg(&total_)
            .arg(&c_)
            .arg(&inv_n)
            .arg(dx)
            .arg(x)
            .arg(g)
            .arg(&self.stats)
            .arg(gamma.unwrap_or(&self.spare))
            .arg(&has_gamma);
        // SAFETY: `bn_dx_batch(size_t total, size_t c, double inv_n, float
        // *dx, const float *x, const float *g, const double *stats, const
        // float *gamma, int has_gamma)`: thread i < total writes dx[i],
        // reads x[i] and g[i] (all of `total` floats; dx a distinct
        // buffer), stats[j + k c] for k < 4 (4c) and gamma[j] (c, or
        // `spare` unread), j = i % c.
        unsafe { launch.launch(grid(total)) }.map_err(fail("batch_norm"))?;
        Ok(())
    }

    /// The input gradient of the affine map, `dx = dy · a`, over `total` elements.
    pub(crate) fn dx_affine(
        &self,
        g: &CudaSlice<f32>,
        dx: &mut CudaSlice<f32>,
        total: usize,
    ) -> Result<()> {
        if total == 0 {
            return Ok(());
        }
        let f = self.backend.function(&SOURCE, "bn_dx_affine")?;
        let (total_, c_) = (total as u64, self.c as u64);
        let mut launch = self.backend.stream.launch_builder(&f);
        launch.arg(&total_).arg(&c_).arg(dx).arg(g).arg(&self.coef);
        // SAFETY: `bn_dx_affine(size_t total, size_t c, float *dx, const
        // float *g, const float *coef)`: thread i < total writes dx[i] and
        // reads g[i] (both `total` floats, distinct buffers) and coef[i % c] (2c).
        unsafe { launch.launch(grid(total)) }.map_err(fail("batch_norm"))?;
        Ok(())
    }
}
