// Row gather (hebb-tensor, feature `cuda`).

// out[r, j] = x[indices[r], j] for out row-major [count, row] and x
// row-major [n, row]: one thread per OUTPUT element o = r * row + j, so
// r = o / row and j = o % row (row > 0 whenever count * row > 0). The
// indices were checked to be below n on the host. Grid-stride loop.
extern "C" __global__ void gather_rows(size_t count, size_t row, float *out, const float *x,
                                       const unsigned long long *indices) {
    size_t total = count * row;
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t o = (size_t)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += stride) {
        size_t r = o / row;
        size_t j = o % row;
        out[o] = x[(size_t)indices[r] * row + j];
    }
}
