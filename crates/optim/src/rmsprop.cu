// RMSprop's fused updates (hebb-optim, src/rmsprop.rs): one thread per
// element, the CPU loops' arithmetic in the same order; rho, 1-rho, mu and
// eps are rounded to f32 on the host. The averages v and a are flushed to
// zero when subnormal, the momentum m is not (as on the CPU). Every
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

// v <- ftz(rho*v + (1-rho)*(g*g))
__device__ __forceinline__ float hebb_rms_v(float v, float g, float rho, float one_minus_rho) {
    return hebb_ftz(__fadd_rn(__fmul_rn(rho, v), __fmul_rn(one_minus_rho, __fmul_rn(g, g))));
}

// a <- ftz(rho*a + (1-rho)*g)
__device__ __forceinline__ float hebb_rms_a(float a, float g, float rho, float one_minus_rho) {
    return hebb_ftz(__fadd_rn(__fmul_rn(rho, a), __fmul_rn(one_minus_rho, g)));
}

// (lr*g) / sqrt(d)
__device__ __forceinline__ float hebb_rms_delta(float g, float d, float lr) {
    return __fdiv_rn(__fmul_rn(lr, g), __fsqrt_rn(d));
}

// w <- w - (lr*g) / sqrt(v + eps)
extern "C" __global__ void rmsprop(size_t n, float *w, float *v, const float *g, float lr,
                                   float rho, float one_minus_rho, float eps) {
    HEBB_FOR_EACH(i, n) {
        float gi = g[i];
        float vi = hebb_rms_v(v[i], gi, rho, one_minus_rho);
        v[i] = vi;
        w[i] = __fsub_rn(w[i], hebb_rms_delta(gi, __fadd_rn(vi, eps), lr));
    }
}

// m <- mu*m + (lr*g) / sqrt(v + eps);  w <- w - m
extern "C" __global__ void rmsprop_momentum(size_t n, float *w, float *v, float *m,
                                            const float *g, float lr, float rho,
                                            float one_minus_rho, float eps, float mu) {
    HEBB_FOR_EACH(i, n) {
        float gi = g[i];
        float vi = hebb_rms_v(v[i], gi, rho, one_minus_rho);
        float mi = __fadd_rn(__fmul_rn(mu, m[i]), hebb_rms_delta(gi, __fadd_rn(vi, eps), lr));
        v[i] = vi;
        m[i] = mi;
        w[i] = __fsub_rn(w[i], mi);
    }
}

// a <- ftz(rho*a + (1-rho)*g);  w <- w - (lr*g) / sqrt((v - a*a) + eps)
extern "C" __global__ void rmsprop_centered(size_t n, float *w, float *v, float *a,
                                            const float *g, float lr, float rho,
                                            float one_minus_rho, float eps) {
    HEBB_FOR_EACH(i, n) {
        float gi = g[i];
        float vi = hebb_rms_v(v[i], gi, rho, one_minus_rho);
        float ai = hebb_rms_a(a[i], gi, rho, one_minus_rho);
        v[i] = vi;
        a[i] = ai;
        float d = __fadd_rn(__fsub_rn(vi, __fmul_rn(ai, ai)), eps);
        w[i] = __fsub_rn(w[i], hebb_rms_delta(gi, d, lr));
    }
}

// m <- mu*m + (lr*g) / sqrt((v - a*a) + eps);  w <- w - m
extern "C" __global__ void rmsprop_centered_momentum(size_t n, float *w, float *v, float *a,
                                                     float *m, const float *g, float lr,
                                                     float rho, float one_minus_rho, float eps,
                                                     float mu) {
    HEBB_FOR_EACH(i, n) {
        float gi = g[i];
        float vi = hebb_rms_v(v[i], gi, rho, one_minus_rho);
        float ai = hebb_rms_a(a[i], gi, rho, one_minus_rho);
        float d = __fadd_rn(__fsub_rn(vi, __fmul_rn(ai, ai)), eps);
        float mi = __fadd_rn(__fmul_rn(mu, m[i]), hebb_rms_delta(gi, d, lr));
        v[i] = vi;
        a[i] = ai;
        m[i] = mi;
        w[i] = __fsub_rn(w[i], mi);
    }
}
