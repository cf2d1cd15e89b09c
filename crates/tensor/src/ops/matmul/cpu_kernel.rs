//! Host GEMM: nalgebra for large products, a fused-multiply-add loop for small ones.
//!
//! When any dimension is at most 5, nalgebra would not call `matrixmultiply`
//! but run its own loop of separate multiplies and adds. TensorFlow's CPU
//! kernels accumulate each element of `C` as one chain of fused
//! multiply-adds in `k` order, `c = fma(a_ik, b_kj, c)`, and the lecture's
//! Iris networks (`[120, 4]·[4, 16]`, `[120, 16]·[16, 3]`, ...) are all such
//! small products, so here they get exactly that chain: the printed losses
//! then agree with TensorFlow's to the last bit.
//!
//! A row-major `[r, c]` buffer read as a column-major nalgebra matrix is its
//! transpose, so the kernel computes `Cᵀ = op(B)ᵀ · op(A)ᵀ` into the output
//! buffer seen column-major, which is `C` row-major. Large products go
//! through nalgebra to `matrixmultiply` over strided views (no copies).

use nalgebra::{DMatrixView, DMatrixViewMut, Dyn};

/// nalgebra hands a product to `matrixmultiply` when every dimension exceeds this.
const SMALL_DIM: usize = 5;

/// A row-major `[rows, cols]` operand `X`, used as `op(X)`: `X` or `Xᵀ`.
#[derive(Clone, Copy)]
pub(super) struct Operand<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    transpose: bool,
}

impl<'a> Operand<'a> {
    /// A rank-2 tensor as an operand.
    pub(super) fn of(t: &'a crate::Tensor, transpose: bool) -> Self {
        Self {
            data: t.as_slice(),
            rows: t.shape[0],
            cols: t.shape[1],
            transpose,
        }
    }

    /// Strides `(row, col)` of `op(X)` in the buffer: `op(X)[i][j] = data[i * rs + j * cs]`.
    fn strides(&self) -> (usize, usize) {
        if self.transpose {
            (1, self.cols)
        } else {
            (self.cols, 1)
        }
    }

    /// The column-major view of `op(X)ᵀ` (whose row and column strides are `op(X)`'s swapped).
    fn view_t(&self) -> DMatrixView<'a, f32, Dyn, Dyn> {
        let (rs, cs) = self.strides();
        let (r, c) = if self.transpose {
            (self.rows, self.cols)
        } else {
            (self.cols, self.rows)
        };
        DMatrixView::from_slice_with_strides_generic(self.data, Dyn(r), Dyn(c), Dyn(cs), Dyn(rs))
    }
}

/// `C = op(A)·op(B)` with each element one fused-multiply-add chain in `k` order.
fn fma_gemm(out: &mut [f32], a: Operand<'_>, b: Operand<'_>, (k, n): (usize, usize)) {
    let (ars, acs) = a.strides();
    let (brs, bcs) = b.strides();
    for (i, row) in out.chunks_exact_mut(n).enumerate() {
        for (j, c) in row.iter_mut().enumerate() {
            *c = (0..k).fold(0.0f32, |acc, p| {
                a.data[i * ars + p * acs].mul_add(b.data[p * brs + j * bcs], acc)
            });
        }
    }
}

/// `op(A)·op(B)` for `op(A)` `[m, k]` and `op(B)` `[k, n]`, row-major `[m, n]`.
pub(super) fn gemm(a: Operand<'_>, b: Operand<'_>, (m, k, n): (usize, usize, usize)) -> Vec<f32> {
    let mut out = vec![0.0f32; m * n];
    if m == 0 || n == 0 || k == 0 {
        return out;
    }
    if m <= SMALL_DIM || n <= SMALL_DIM || k <= SMALL_DIM {
        fma_gemm(&mut out, a, b, (k, n));
        return out;
    }
    let mut ct = DMatrixViewMut::from_slice(&mut out, n, m);
    ct.gemm(1.0, &b.view_t(), &a.view_t(), 0.0);
    out
}
