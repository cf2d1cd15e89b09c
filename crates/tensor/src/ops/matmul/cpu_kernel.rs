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

/// The column-major view of `op(X)ᵀ`, where `X` is the row-major `[rows, cols]` buffer.
fn view_t<'a>(data: &'a [f32], shape: &[usize], transpose: bool) -> DMatrixView<'a, f32, Dyn, Dyn> {
    let (rows, cols) = (shape[0], shape[1]);
    if transpose {
        // op(X)ᵀ = X (rows × cols), row-major: strided.
        DMatrixView::from_slice_with_strides_generic(data, Dyn(rows), Dyn(cols), Dyn(cols), Dyn(1))
    } else {
        // op(X)ᵀ = Xᵀ: the buffer itself, column-major (cols × rows).
        DMatrixView::from_slice_with_strides_generic(data, Dyn(cols), Dyn(rows), Dyn(1), Dyn(cols))
    }
}

/// `C = op(A)·op(B)` with each element one fused-multiply-add chain in `k` order.
#[allow(clippy::too_many_arguments)]
fn fma_gemm(
    out: &mut [f32],
    a: &[f32],
    a_shape: &[usize],
    ta: bool,
    b: &[f32],
    b_shape: &[usize],
    tb: bool,
    (m, k, n): (usize, usize, usize),
) {
    // op(A)[i][p] = a[i * ars + p * acs], op(B)[p][j] = b[p * brs + j * bcs].
    let (ars, acs) = if ta { (1, a_shape[1]) } else { (a_shape[1], 1) };
    let (brs, bcs) = if tb { (1, b_shape[1]) } else { (b_shape[1], 1) };
    for (i, row) in out.chunks_exact_mut(n).enumerate().take(m) {
        for (j, c) in row.iter_mut().enumerate() {
            *c = (0..k).fold(0.0f32, |acc, p| {
                a[i * ars + p * acs].mul_add(b[p * brs + j * bcs], acc)
            });
        }
    }
}

pub(super) fn gemm(
    a: &[f32],
    a_shape: &[usize],
    ta: bool,
    b: &[f32],
    b_shape: &[usize],
    tb: bool,
    (m, k, n): (usize, usize, usize),
) -> Vec<f32> {
    let mut out = vec![0.0f32; m * n];
    if m == 0 || n == 0 || k == 0 {
        return out;
    }
    if m <= SMALL_DIM || n <= SMALL_DIM || k <= SMALL_DIM {
        fma_gemm(&mut out, a, a_shape, ta, b, b_shape, tb, (m, k, n));
        return out;
    }
    let at = view_t(a, a_shape, ta);
    let bt = view_t(b, b_shape, tb);
    let mut ct = DMatrixViewMut::from_slice(&mut out, n, m);
    ct.gemm(1.0, &bt, &at, 0.0);
    out
}
