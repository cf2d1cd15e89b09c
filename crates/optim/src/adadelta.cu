// Adadelta's fused update (hebb-optim, src/adadelta.rs): one thread per
// element, the CPU loop's arithmetic in the same order; rho, 1-rho and eps
// are rounded to f32 on the host. Every operation is an explicit
// round-to-nearest intrinsic, which the compiler never contracts into a
// fused multiply-add, so each result is rounded exactly as on the CPU.

// f32::MIN_POSITIVE, the smallest normal float (2^-126).
#define HEBB_MIN_POSITIVE 1.17549435082228750797e-38f

// core.rs `ftz`: a subnormal becomes a zero of its sign.
__device__ __forceinline__ float hebb_ftz(float x) {
    return fabsf(x) < HEBB_MIN_POSITIVE ? __fmul_rn(0.0f, x) : x;
}

#define HEBB_FOR_EACH(i, n)                                               \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (size_t)gridDim.x * blockDim.x)

// ag    <- ftz(rho*ag + (1-rho)*(g*g))
// delta <- -((sqrt(adx + eps) * g) / sqrt(ag + eps))
// adx   <- ftz(rho*adx + (1-rho)*(delta*delta))
// w     <- w + lr*delta
extern "C" __global__ void adadelta(size_t n, float *w, float *ag, float *adx, const float *g,
                                    float lr, float rho, float one_minus_rho, float eps) {
    HEBB_FOR_EACH(i, n) {
        float gi = g[i];
        float agi = hebb_ftz(__fadd_rn(__fmul_rn(rho, ag[i]), __fmul_rn(one_minus_rho, __fmul_rn(gi, gi))));
        float adxi = adx[i];
        float delta = -__fdiv_rn(__fmul_rn(__fsqrt_rn(__fadd_rn(adxi, eps)), gi),
                                 __fsqrt_rn(__fadd_rn(agi, eps)));
        adxi = hebb_ftz(__fadd_rn(__fmul_rn(rho, adxi), __fmul_rn(one_minus_rho, __fmul_rn(delta, delta))));
        ag[i] = agi;
        adx[i] = adxi;
        w[i] = __fadd_rn(w[i], __fmul_rn(lr, delta));
    }
}
