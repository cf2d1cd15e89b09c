// Dropout's mask (hebb-tensor, feature `cuda`): the counter-based hash of
// ops/dropout/mod.rs, in 64-bit unsigned arithmetic that wraps as Rust's
// wrapping_add / wrapping_mul do, so every element is kept or dropped
// exactly as on the CPU.

#define GAMMA 0x9E3779B97F4A7C15ULL

// SplitMix64's output function (Steele, Lea and Flood 2014).
__device__ __forceinline__ unsigned long long mix(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// y[i] = kept(first + i) ? x[i] * scale : 0 for i < n, where element i is
// kept when the top 24 bits of mix(key + (first + i + 1) * GAMMA) reach
// `threshold`. Grid-stride loop, one thread per output element.
extern "C" __global__ void dropout(size_t n, float *y, const float *x, unsigned long long key,
                                   unsigned long long first, unsigned int threshold, float scale) {
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        unsigned long long index = first + (unsigned long long)i;
        unsigned long long bits = mix(key + (index + 1ULL) * GAMMA);
        y[i] = (bits >> 40) >= (unsigned long long)threshold ? x[i] * scale : 0.0f;
    }
}
