// Transpose of a row-major matrix (hebb-tensor, feature `cuda`); the
// products themselves go through cuBLAS (see cuda_kernel.rs).

// out = xᵀ for x row-major [rows, cols], out row-major [cols, rows]:
// out[j * rows + i] = x[i * cols + j]. One thread per OUTPUT element o,
// so writes are coalesced: o = j * rows + i, hence j = o / rows and
// i = o % rows (rows > 0 whenever n = rows * cols > 0). Grid-stride loop,
// so any grid size covers every element.
extern "C" __global__ void transpose(size_t rows, size_t cols, float *out, const float *x) {
    size_t n = rows * cols;
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t o = (size_t)blockIdx.x * blockDim.x + threadIdx.x; o < n; o += stride) {
        size_t j = o / rows;
        size_t i = o % rows;
        out[o] = x[i * cols + j];
    }
}
