// Adagrad's fused update (hebb-optim, src/adagrad.rs): one thread per
// element, the CPU loop's arithmetic in the same order (the accumulator only
// grows, so it is not flushed to zero). Every operation is an explicit
// round-to-nearest intrinsic, which the compiler never contracts into a
// fused multiply-add, so each result is rounded exactly as on the CPU.

#define HEBB_FOR_EACH(i, n)                                               \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (size_t)gridDim.x * blockDim.x)

// a <- a + g*g;  w <- w - (lr*g) / sqrt(a + eps)
extern "C" __global__ void adagrad(size_t n, float *w, float *a, const float *g, float lr,
                                   float eps) {
    HEBB_FOR_EACH(i, n) {
        float gi = g[i];
        float ai = __fadd_rn(a[i], __fmul_rn(gi, gi));
        a[i] = ai;
        w[i] = __fsub_rn(w[i], __fdiv_rn(__fmul_rn(lr, gi), __fsqrt_rn(__fadd_rn(ai, eps))));
    }
}
