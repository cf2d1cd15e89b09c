// Adam's fused updates (hebb-optim, src/adam.rs): one thread per element, the
// CPU loops' arithmetic in the same order. alpha = lr*sqrt(1-b2^t)/(1-b1^t),
// 1-b1 and 1-b2 are computed on the host, as for the CPU loops. Every
// operation is an explicit round-to-nearest intrinsic, which the compiler
// never contracts into a fused multiply-add, so each result is rounded
// exactly as on the CPU.

// f32::MIN_POSITIVE, the smallest normal float (2^-126).
#define HEBB_MIN_POSITIVE 1.17549435082228750797e-38f

// core.rs `ftz`: a subnormal becomes a zero of its sign.
__device__ __forceinline__ float hebb_ftz(float x) {
    return fabsf(x) < HEBB_MIN_POSITIVE ? __fmul_rn(0.0f, x) : x;
}

#define HEBB_FOR_EACH(i, n)                                               \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (size_t)gridDim.x * blockDim.x)

// m <- ftz(m + (g - m)*(1-b1))
__device__ __forceinline__ float hebb_adam_m(float m, float g, float one_minus_beta_1) {
    return hebb_ftz(__fadd_rn(m, __fmul_rn(__fsub_rn(g, m), one_minus_beta_1)));
}

// v <- ftz(v + (g*g - v)*(1-b2))
__device__ __forceinline__ float hebb_adam_v(float v, float g, float one_minus_beta_2) {
    return hebb_ftz(__fadd_rn(v, __fmul_rn(__fsub_rn(__fmul_rn(g, g), v), one_minus_beta_2)));
}

// w - (m*alpha) / (sqrt(v) + eps)
__device__ __forceinline__ float hebb_adam_w(float w, float m, float v, float alpha, float eps) {
    return __fsub_rn(w, __fdiv_rn(__fmul_rn(m, alpha), __fadd_rn(__fsqrt_rn(v), eps)));
}

extern "C" __global__ void adam(size_t n, float *w, float *m, float *v, const float *g,
                                float alpha, float one_minus_beta_1, float one_minus_beta_2,
                                float eps) {
    HEBB_FOR_EACH(i, n) {
        float gi = g[i];
        float mi = hebb_adam_m(m[i], gi, one_minus_beta_1);
        float vi = hebb_adam_v(v[i], gi, one_minus_beta_2);
        m[i] = mi;
        v[i] = vi;
        w[i] = hebb_adam_w(w[i], mi, vi, alpha, eps);
    }
}

// AMSGrad: vh <- max(vh, v) (fmaxf, like f32::max, ignores a NaN operand),
// and vh replaces v in the step.
extern "C" __global__ void adam_amsgrad(size_t n, float *w, float *m, float *v, float *vh,
                                        const float *g, float alpha, float one_minus_beta_1,
                                        float one_minus_beta_2, float eps) {
    HEBB_FOR_EACH(i, n) {
        float gi = g[i];
        float mi = hebb_adam_m(m[i], gi, one_minus_beta_1);
        float vi = hebb_adam_v(v[i], gi, one_minus_beta_2);
        float vhi = fmaxf(vh[i], vi);
        m[i] = mi;
        v[i] = vi;
        vh[i] = vhi;
        w[i] = hebb_adam_w(w[i], mi, vhi, alpha, eps);
    }
}
