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

use super::MatRef as Operand;

impl<'a> Operand<'a> {
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
///
/// The loops run `i, p, j`: every `c_ij` still accumulates
/// `fma(a_ip, b_pj, c_ij)` for `p = 0, 1, ...` in turn (the same bits as an
/// inner loop over `p`), while the innermost loop over `j` is independent
/// from element to element, so it is vectorised, with the CPU's FMA
/// instructions chosen at run time (`pulp`; without them `mul_add` would be
/// a library call per element).
fn fma_gemm(out: &mut [f32], a: Operand<'_>, b: Operand<'_>, (k, n): (usize, usize)) {
    pulp::Arch::new().dispatch(FmaGemm { out, a, b, k, n });
}

/// The loops of [`fma_gemm`], as a `pulp` kernel: `with_simd` is inlined
/// into a function compiled with the CPU's vector and FMA features (a
/// closure handed to `dispatch` is not always inlined, and `mul_add`
/// outside that context is a library call).
struct FmaGemm<'a> {
    out: &'a mut [f32],
    a: Operand<'a>,
    b: Operand<'a>,
    k: usize,
    n: usize,
}

impl pulp::WithSimd for FmaGemm<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let Self { out, a, b, k, n } = self;
        let (ars, acs) = a.strides();
        let (brs, bcs) = b.strides();
        for (i, row) in out.chunks_exact_mut(n).enumerate() {
            row.fill(0.0);
            for p in 0..k {
                let a_ip = a.data[i * ars + p * acs];
                let b_row = p * brs;
                if bcs == 1 {
                    let b_p = &b.data[b_row..b_row + n];
                    for (c, &b_pj) in row.iter_mut().zip(b_p) {
                        *c = a_ip.mul_add(b_pj, *c);
                    }
                } else {
                    for (j, c) in row.iter_mut().enumerate() {
                        *c = a_ip.mul_add(b.data[b_row + j * bcs], *c);
                    }
                }
            }
        }
    }
}

/// `op(A)·op(B)` for `op(A)` `[m, k]` and `op(B)` `[k, n]`, row-major `[m, n]`.
pub(super) fn gemm(a: Operand<'_>, b: Operand<'_>, (m, k, n): (usize, usize, usize)) -> Vec<f32> {
    let mut out = vec![0.0f32; m * n];
    gemm_into(&mut out, a, b, (m, k, n));
    out
}

/// `C = op(A)·op(B)` written into `out` (`[m, n]` row-major, `m * n` long).
///
/// Products of at least [`PARALLEL_MACS`] multiply-adds are split between
/// the threads of rayon's pool (see [`split_gemm`]); every element is still
/// computed by the same kernel in the same `k` order, so the result does not
/// depend on the number of threads.
pub(crate) fn gemm_into(
    out: &mut [f32],
    a: Operand<'_>,
    b: Operand<'_>,
    (m, k, n): (usize, usize, usize),
) {
    gemm_on(out, a, b, (m, k, n), rayon::current_num_threads());
}

/// [`gemm_into`] on the calling thread only: for kernels that already run
/// many products in parallel (a convolution's image groups). The same bits
/// as [`gemm_into`].
pub(crate) fn gemm_into_serial(
    out: &mut [f32],
    a: Operand<'_>,
    b: Operand<'_>,
    (m, k, n): (usize, usize, usize),
) {
    gemm_on(out, a, b, (m, k, n), 1);
}

/// [`gemm_into`] on up to `threads` threads.
fn gemm_on(
    out: &mut [f32],
    a: Operand<'_>,
    b: Operand<'_>,
    (m, k, n): (usize, usize, usize),
    threads: usize,
) {
    debug_assert_eq!(out.len(), m * n);
    if m == 0 || n == 0 || k == 0 {
        out.fill(0.0);
        return;
    }
    if m <= SMALL_DIM || n <= SMALL_DIM || k <= SMALL_DIM {
        fma_gemm(out, a, b, (k, n));
        return;
    }
    let ct = DMatrixViewMut::from_slice(out, n, m);
    split_gemm(ct, b.view_t(), a.view_t(), threads);
}

/// Products smaller than this many multiply-adds run on one thread: below
/// it, handing half to a second core costs more than it saves (MNIST's
/// `[64, 784]·[784, 128]` is 6.4 M).
const PARALLEL_MACS: usize = 1 << 20;

/// Split points are multiples of this, so that each part keeps whole
/// micro-kernel tiles (`matrixmultiply`'s AVX-512 kernel is 16 wide).
const SPLIT_ALIGN: usize = 16;

/// `Cᵀ = Bᵀ·Aᵀ` (column-major views: `ct` `[n, m]`, `bt` `[n, k]`, `at`
/// `[k, m]`) on up to `threads` threads.
///
/// The product is cut in two along the larger of `m` and `n` and the halves
/// run under [`rayon::join`], recursively. Cutting along `m` (rows of `C`)
/// makes both halves pack all of `op(B)`, cutting along `n` repacks `op(A)`;
/// cutting the larger dimension repacks the smaller operand. Called from a
/// rayon worker (as `Sequential::fit` does), a join costs about a
/// microsecond; from another thread it also wakes the pool and waits.
fn split_gemm(
    mut ct: DMatrixViewMut<'_, f32>,
    bt: DMatrixView<'_, f32, Dyn, Dyn>,
    at: DMatrixView<'_, f32, Dyn, Dyn>,
    threads: usize,
) {
    let (n, m) = ct.shape();
    let k = at.nrows();
    let half = |len: usize| (len / 2).next_multiple_of(SPLIT_ALIGN);
    if threads < 2 || m * n * k < PARALLEL_MACS {
        ct.gemm(1.0, &bt, &at, 0.0);
        return;
    }
    let (left, right) = (threads / 2, threads - threads / 2);
    if m >= n && half(m) < m {
        let cut = half(m);
        let (c1, c2) = ct.columns_range_pair_mut(..cut, cut..);
        let (a1, a2) = (at.columns_range(..cut), at.columns_range(cut..));
        rayon::join(
            || split_gemm(c1, bt, a1, left),
            || split_gemm(c2, bt, a2, right),
        );
    } else if half(n) < n {
        let cut = half(n);
        let (c1, c2) = ct.rows_range_pair_mut(..cut, cut..);
        let (b1, b2) = (bt.rows_range(..cut), bt.rows_range(cut..));
        rayon::join(
            || split_gemm(c1, b1, at, left),
            || split_gemm(c2, b2, at, right),
        );
    } else {
        ct.gemm(1.0, &bt, &at, 0.0);
    }
}
