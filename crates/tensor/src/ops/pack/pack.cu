// Packing tensors into one flat buffer (hebb-tensor, feature `cuda`): what
// a data-parallel step all-reduces.

// dst[i] = s * src[i] for i < n. dst and src are views into (possibly)
// larger buffers, at the offsets the host chose. Grid-stride loop.
extern "C" __global__ void scale_copy(size_t n, float *dst, const float *src, float s) {
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        dst[i] = s * src[i];
    }
}
