//! CUDA matrix products through cuBLAS `sgemm`, and the transpose kernel
//! (`matmul.cu`).
//!
//! # Row-major operands in a column-major library
//!
//! cuBLAS reads matrices column-major. A row-major `[r, c]` buffer read
//! column-major is its transpose, a `[c, r]` matrix with leading dimension
//! `c`. So instead of `C = op(A)·op(B)` (row-major, `[m, n]`) we ask cuBLAS
//! for `Cᵀ = op(B)ᵀ·op(A)ᵀ` (column-major `[n, m]`, `ldc = n`), which is the
//! same buffer: the operands swap, and cuBLAS's sizes are `m' = n`, `n' = m`,
//! `k' = k`.
//!
//! cuBLAS's first operand is `B`'s buffer, which it sees as `Sᵀ` where `S`
//! is `B` as stored (`[k, n]`, or `[n, k]` when `transpose_b`):
//! - no transpose: `op(B)ᵀ = Sᵀ` is the buffer as cuBLAS sees it, so
//!   `transa = N`; it is `m' × k' = n × k` with `lda = n`, the stored row
//!   length (cuBLAS needs `lda >= max(1, m') = n`: equal);
//! - `transpose_b`: `op(B)ᵀ = S = (Sᵀ)ᵀ`, so `transa = T`; the buffer seen
//!   column-major is `k' × m' = k × n` with `lda = k`, again the stored row
//!   length (cuBLAS needs `lda >= max(1, k')` for `T`: equal).
//!
//! The second operand is `A`'s buffer, `Rᵀ` where `R` is `A` as stored
//! (`[m, k]`, or `[k, m]` when `transpose_a`):
//! - no transpose: `op(A)ᵀ = Rᵀ`, `transb = N`, seen as `k' × n' = k × m`,
//!   `ldb = k` (needs `ldb >= max(1, k')`);
//! - `transpose_a`: `op(A)ᵀ = R`, `transb = T`, seen as `n' × k' = m × k`,
//!   `ldb = m` (needs `ldb >= max(1, n') = m`).
//!
//! In all four cases the leading dimension of an operand is the length of
//! its stored rows, `shape[1]`; only the `N`/`T` flag follows the transpose.
//! With `m`, `n` or `k` zero nothing is called (a zero `ld` would be
//! invalid): the result is zeros, as on the CPU. The test
//! `gemm_arguments_give_the_row_major_product` runs these arguments
//! through cuBLAS's definition of `sgemm` on the host, so the derivation is
//! checked without a GPU.
#![allow(unsafe_code)]

use cudarc::cublas::sys::cublasOperation_t;
use cudarc::cublas::{Gemm, GemmConfig};
use cudarc::driver::PushKernelArg;

use crate::cuda::{CudaSource, CudaStorage, fail, grid};
use crate::{Error, Result, Tensor};

pub(crate) const SOURCE: CudaSource = CudaSource {
    name: "hebb-tensor/matmul.cu",
    code: include_str!("matmul.cu"),
};

/// A dimension as cuBLAS's 32-bit `int`.
fn dim(d: usize) -> Result<i32> {
    i32::try_from(d).map_err(|_| Error::Cuda {
        op: "matmul",
        message: format!("dimension {d} exceeds cuBLAS's 32-bit sizes"),
    })
}

/// The cuBLAS operation for a transpose flag.
fn op(transpose: bool) -> cublasOperation_t {
    if transpose {
        cublasOperation_t::CUBLAS_OP_T
    } else {
        cublasOperation_t::CUBLAS_OP_N
    }
}

/// cuBLAS's arguments for row-major `C = op(A)·op(B)` with `A` stored as
/// `a_shape`, `B` as `b_shape`, `op(A)` `[m, k]` and `op(B)` `[k, n]`, all
/// three non-zero: `C` column-major is `Cᵀ = op(B)ᵀ·op(A)ᵀ`, so cuBLAS's
/// first operand is B's buffer and its second A's (see the module doc).
fn gemm_config(
    a_shape: &[usize],
    b_shape: &[usize],
    (transpose_a, transpose_b): (bool, bool),
    (m, k, n): (usize, usize, usize),
) -> Result<GemmConfig<f32>> {
    Ok(GemmConfig {
        transa: op(transpose_b),
        transb: op(transpose_a),
        m: dim(n)?,
        n: dim(m)?,
        k: dim(k)?,
        alpha: 1.0,
        lda: dim(b_shape[1])?,
        ldb: dim(a_shape[1])?,
        beta: 0.0,
        ldc: dim(n)?,
    })
}

/// `op(A)·op(B)` for rank-2 device tensors `a` (stored `a_shape`) and `b`
/// (stored `b_shape`) of one device, `op(A)` `[m, k]` and `op(B)` `[k, n]`
/// (checked by the caller): a row-major `[m, n]` tensor on that device.
pub(crate) fn matmul(
    a: &CudaStorage,
    a_shape: &[usize],
    b: &CudaStorage,
    b_shape: &[usize],
    transposes: (bool, bool),
    (m, k, n): (usize, usize, usize),
) -> Result<Tensor> {
    let backend = a.backend.clone();
    if m == 0 || n == 0 || k == 0 {
        // Nothing to multiply: zeros (and cuBLAS is not called with a 0 dimension).
        return Ok(Tensor::from_cuda(
            backend.zeros(m * n)?,
            vec![m, n],
            backend,
        ));
    }
    // cuBLAS writes every element (beta = 0 does not read C).
    let mut out = backend.output(m * n)?;
    let cfg = gemm_config(a_shape, b_shape, transposes, (m, k, n))?;
    // cudarc's kernel launches and copies make the device's context
    // current on the calling thread; its cuBLAS calls do not, and `fit`
    // runs on a rayon worker, not on the thread that made the context.
    backend
        .stream
        .context()
        .bind_to_thread()
        .map_err(fail("matmul"))?;
    // SAFETY: `b.data` holds the `k * n` elements of B and `a.data` the
    // `m * k` of A, read with the dimensions and leading dimensions
    // derived in the module doc (each within its buffer; checked
    // against cuBLAS's definition in the tests); `out` holds `m * n`
    // elements and is written as `[n, m]` column-major with `ldc = n`.
    // All three live on the stream of the cuBLAS handle.
    unsafe {
        backend
            .blas
            .gemm(cfg, b.data.as_ref(), a.data.as_ref(), &mut out)
    }
    .map_err(fail("matmul"))?;
    Ok(Tensor::from_cuda(out, vec![m, n], backend))
}

/// The transpose of the row-major `[rows, cols]` device tensor `x`.
pub(crate) fn transpose(x: &CudaStorage, (rows, cols): (usize, usize)) -> Result<Tensor> {
    let backend = x.backend.clone();
    let count = rows * cols;
    let mut out = backend.output(count)?;
    if count > 0 {
        let f = backend.function(&SOURCE, "transpose")?;
        let (r, c) = (rows as u64, cols as u64);
        let mut launch = backend.stream.launch_builder(&f);
        launch.arg(&r).arg(&c).arg(&mut out).arg(x.data.as_ref());
        // SAFETY: `x` and `out` hold `rows * cols` f32; the kernel's
        // signature is (size_t, size_t, float *, const float *) and it only
        // touches indices below `rows * cols` in either buffer.
        unsafe { launch.launch(grid(count)) }.map_err(fail("transpose"))?;
    }
    Ok(Tensor::from_cuda(out, vec![cols, rows], backend))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cuBLAS `sgemm` as its documentation defines it, on host buffers:
    /// `C = alpha·op(A)·op(B) + beta·C`, column-major, `op(A)` `m × k`
    /// read from `A[i + l·lda]` (`N`) or `A[l + i·lda]` (`T`), likewise `B`,
    /// `C[i + j·ldc]`; it panics where cuBLAS would return
    /// `CUBLAS_STATUS_INVALID_VALUE` (a leading dimension too small) or
    /// where an index leaves its buffer.
    fn reference_sgemm(cfg: &GemmConfig<f32>, a: &[f32], b: &[f32], c: &mut [f32]) {
        let [m, n, k, lda, ldb, ldc] =
            [cfg.m, cfg.n, cfg.k, cfg.lda, cfg.ldb, cfg.ldc].map(|d| usize::try_from(d).unwrap());
        let n_op = |t| t == cublasOperation_t::CUBLAS_OP_N;
        assert!(
            lda >= if n_op(cfg.transa) { m } else { k }.max(1),
            "lda {lda}"
        );
        assert!(
            ldb >= if n_op(cfg.transb) { k } else { n }.max(1),
            "ldb {ldb}"
        );
        assert!(ldc >= m.max(1), "ldc {ldc}");
        let op_a = |i: usize, l: usize| {
            if n_op(cfg.transa) {
                a[i + l * lda]
            } else {
                a[l + i * lda]
            }
        };
        let op_b = |l: usize, j: usize| {
            if n_op(cfg.transb) {
                b[l + j * ldb]
            } else {
                b[j + l * ldb]
            }
        };
        for j in 0..n {
            for i in 0..m {
                let dot: f32 = (0..k).map(|l| op_a(i, l) * op_b(l, j)).sum();
                // With beta = 0, C is not read (it may hold NaN).
                c[i + j * ldc] = if cfg.beta == 0.0 {
                    cfg.alpha * dot
                } else {
                    cfg.alpha * dot + cfg.beta * c[i + j * ldc]
                };
            }
        }
    }

    /// The arguments derived in the module doc, run through cuBLAS's
    /// definition with B's buffer first and A's second, give the row-major
    /// product of the CPU kernel for every transpose combination and for
    /// shapes where a wrong leading dimension would read out of bounds
    /// or mix rows (non-square, 1×k, k×1).
    #[test]
    fn gemm_arguments_give_the_row_major_product() {
        for (m, k, n) in [
            (2, 3, 4),
            (37, 61, 5),
            (1, 7, 1),
            (5, 1, 3),
            (1, 9, 6),
            (6, 9, 1),
            (4, 4, 4),
        ] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a_shape = if ta { [k, m] } else { [m, k] };
                let b_shape = if tb { [n, k] } else { [k, n] };
                let a: Vec<f32> = (0..m * k)
                    .map(|i| ((i * 7 % 13) as f32 - 6.0) / 4.0)
                    .collect();
                let b: Vec<f32> = (0..k * n)
                    .map(|i| ((i * 5 % 11) as f32 - 5.0) / 8.0)
                    .collect();
                let (at, bt) = (
                    Tensor::from_vec(a.clone(), &a_shape).unwrap(),
                    Tensor::from_vec(b.clone(), &b_shape).unwrap(),
                );
                let want = at.matmul_with(&bt, ta, tb).unwrap().to_vec();
                let cfg = gemm_config(&a_shape, &b_shape, (ta, tb), (m, k, n)).unwrap();
                let mut c = vec![f32::NAN; m * n];
                reference_sgemm(&cfg, &b, &a, &mut c[..]);
                for (x, y) in c.iter().zip(&want) {
                    assert!(
                        (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                        "{m}x{k}x{n} ({ta}, {tb}): {c:?} vs {want:?}"
                    );
                }
            }
        }
    }
}
