// SGD's fused updates (hebb-optim, src/sgd.rs): one thread per element, the
// CPU loops' arithmetic in the same order. Every operation is an explicit
// round-to-nearest intrinsic (__fmul_rn, __fsub_rn, __fadd_rn), which the
// compiler never contracts into a fused multiply-add, so each result is
// rounded exactly as on the CPU.

// f32::MIN_POSITIVE, the smallest normal float (2^-126).
#define HEBB_MIN_POSITIVE 1.17549435082228750797e-38f

// core.rs `ftz`: a subnormal becomes a zero of its sign.
__device__ __forceinline__ float hebb_ftz(float x) {
    return fabsf(x) < HEBB_MIN_POSITIVE ? __fmul_rn(0.0f, x) : x;
}

#define HEBB_FOR_EACH(i, n)                                               \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (size_t)gridDim.x * blockDim.x)

// momentum = 0:  w <- w - g*lr
extern "C" __global__ void sgd(size_t n, float *w, const float *g, float lr) {
    HEBB_FOR_EACH(i, n) {
        w[i] = __fsub_rn(w[i], __fmul_rn(g[i], lr));
    }
}

// v <- ftz(v*mu - g*lr);  w <- w + v
extern "C" __global__ void sgd_momentum(size_t n, float *w, float *v, const float *g,
                                        float lr, float mu) {
    HEBB_FOR_EACH(i, n) {
        float gi = g[i];
        float vi = hebb_ftz(__fsub_rn(__fmul_rn(v[i], mu), __fmul_rn(gi, lr)));
        v[i] = vi;
        w[i] = __fadd_rn(w[i], vi);
    }
}

// v <- ftz(v*mu - g*lr);  w <- w + (v*mu - g*lr)
extern "C" __global__ void sgd_nesterov(size_t n, float *w, float *v, const float *g,
                                        float lr, float mu) {
    HEBB_FOR_EACH(i, n) {
        float gi = g[i];
        float vi = hebb_ftz(__fsub_rn(__fmul_rn(v[i], mu), __fmul_rn(gi, lr)));
        v[i] = vi;
        w[i] = __fadd_rn(w[i], __fsub_rn(__fmul_rn(vi, mu), __fmul_rn(gi, lr)));
    }
}
