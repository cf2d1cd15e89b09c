//! Host GEMM through nalgebra.
//!
//! A row-major `[r, c]` buffer read as a column-major nalgebra matrix is its
//! transpose, so the kernel computes `Cᵀ = op(B)ᵀ · op(A)ᵀ` into the output
//! buffer seen column-major, which is `C` row-major. Large products go to
//! `matrixmultiply` through strided views (no copies); for small ones
//! nalgebra runs its own loops, which need contiguous operands, so a
//! transposed operand is copied first.

use nalgebra::{DMatrixView, DMatrixViewMut, Dyn};

/// nalgebra hands a product to `matrixmultiply` when every dimension exceeds this.
const SMALL_DIM: usize = 5;

fn transposed(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows * cols);
    for j in 0..cols {
        out.extend((0..rows).map(|i| data[i * cols + j]));
    }
    out
}

/// The column-major view of `op(X)ᵀ`, where `X` is the row-major `[rows, cols]` buffer.
fn view_t<'a>(
    data: &'a [f32],
    shape: &[usize],
    transpose: bool,
    strided_ok: bool,
    scratch: &'a mut Option<Vec<f32>>,
) -> DMatrixView<'a, f32, Dyn, Dyn> {
    let (rows, cols) = (shape[0], shape[1]);
    if !transpose {
        // op(X)ᵀ = Xᵀ: the buffer itself, column-major (cols × rows).
        return col_major(data, cols, rows);
    }
    // op(X)ᵀ = X (rows × cols): row-major, so strided, or copied to column-major.
    if strided_ok {
        return DMatrixView::from_slice_with_strides_generic(
            data,
            Dyn(rows),
            Dyn(cols),
            Dyn(cols),
            Dyn(1),
        );
    }
    let buf: &'a Vec<f32> = scratch.insert(transposed(data, rows, cols));
    col_major(buf, rows, cols)
}

/// A contiguous column-major `rows × cols` view.
fn col_major(data: &[f32], rows: usize, cols: usize) -> DMatrixView<'_, f32, Dyn, Dyn> {
    DMatrixView::from_slice_with_strides_generic(data, Dyn(rows), Dyn(cols), Dyn(1), Dyn(rows))
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
    let strided_ok = m > SMALL_DIM && n > SMALL_DIM && k > SMALL_DIM;
    let (mut sa, mut sb) = (None, None);
    let at = view_t(a, a_shape, ta, strided_ok, &mut sa);
    let bt = view_t(b, b_shape, tb, strided_ok, &mut sb);
    let mut ct = DMatrixViewMut::from_slice(&mut out, n, m);
    ct.gemm(1.0, &bt, &at, 0.0);
    out
}
