// Batch normalisation over x seen as [n, c] (hebb-tensor, feature `cuda`):
// the CPU kernel's arithmetic (ops/batch_norm/cpu_kernel.rs), operation for
// operation, so the results are the CPU's bits. Every double and float
// operation that the CPU rounds separately is written with a _rn intrinsic,
// which NVRTC never contracts into a fused multiply-add (--fmad=true would
// contract a plain `a * b + c`).
//
// `stats` holds 4 c doubles: mean[c], inv_std[c] (1 / sqrt(var + eps)),
// sdy[c] (sum of dy) and sdyx[c] (sum of dy * x_hat); `coef` 2 c floats:
// a[c] and b[c] of y = x * a + b. Sums run over blocks of `rb` rows: block
// k's partial sums of channel j, in row order, go to partial[k * 2c + j]
// (and partial[k * 2c + c + j]), and a channel's total adds the partials in
// block order, from 0.0, as the CPU does.

#define SUM_X 0     // x
#define SUM_SQ 1    // (x - mean)^2
#define SUM_GRAD 2  // dy, and dy * (x - mean) * inv_std

// Rows a thread loads before it adds them (in row order): enough loads in
// flight to cover the memory's latency with few threads per channel. The
// loops over a batch unroll completely, so its values stay in registers.
#define BATCH 32
#if defined(__CUDACC__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL
#endif

// One thread per (block k, channel j), k < ceil(n / rb), j < c. `g` and
// `stats` are read only by SUM_GRAD (SUM_SQ reads the mean).
extern "C" __global__ void bn_partial(size_t n, size_t c, size_t rb, int what, double *partial,
                                      const float *x, const float *g, const double *stats) {
    size_t blocks = (n + rb - 1) / rb;
    size_t m = blocks * c;
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x; t < m; t += stride) {
        size_t k = t / c, j = t % c;
        size_t r0 = k * rb, rows = (r0 + rb < n ? r0 + rb : n) - r0;
        const float *xp = x + r0 * c + j;
        const float *gp = g + r0 * c + j;
        double mean = what == SUM_X ? 0.0 : stats[j];
        double inv_std = what == SUM_GRAD ? stats[c + j] : 0.0;
        double s0 = 0.0, s1 = 0.0;
        for (size_t r = 0; r < rows; r += BATCH) {
            float xv[BATCH], gv[BATCH];
            // The loads first (none past the block's rows), then the sums.
            UNROLL
            for (int q = 0; q < BATCH; ++q) {
                if (r + q < rows) {
                    xv[q] = xp[(r + q) * c];
                    gv[q] = what == SUM_GRAD ? gp[(r + q) * c] : 0.0f;
                }
            }
            UNROLL
            for (int q = 0; q < BATCH; ++q) {
                if (r + q < rows) {
                    if (what == SUM_X) {
                        s0 = __dadd_rn(s0, (double)xv[q]);
                    } else if (what == SUM_SQ) {
                        double d = __dsub_rn((double)xv[q], mean);
                        s0 = __dadd_rn(s0, __dmul_rn(d, d));
                    } else {
                        double gq = (double)gv[q];
                        s0 = __dadd_rn(s0, gq);
                        double d = __dsub_rn((double)xv[q], mean);
                        s1 = __dadd_rn(s1, __dmul_rn(__dmul_rn(gq, d), inv_std));
                    }
                }
            }
        }
        partial[k * 2 * c + j] = s0;
        partial[k * 2 * c + c + j] = s1;
    }
}

// Channel j's two totals: the partials of every block added in block order.
__device__ __forceinline__ void totals(size_t c, size_t blocks, const double *partial, size_t j,
                                       double *s0, double *s1) {
    double a = 0.0, b = 0.0;
    for (size_t k = 0; k < blocks; k += BATCH) {
        double pa[BATCH], pb[BATCH];
        UNROLL
        for (int q = 0; q < BATCH; ++q) {
            if (k + q < blocks) {
                pa[q] = partial[(k + q) * 2 * c + j];
                pb[q] = partial[(k + q) * 2 * c + c + j];
            }
        }
        UNROLL
        for (int q = 0; q < BATCH; ++q) {
            if (k + q < blocks) {
                a = __dadd_rn(a, pa[q]);
                b = __dadd_rn(b, pb[q]);
            }
        }
    }
    *s0 = a;
    *s1 = b;
}

// a = (float)inv_std * gamma, b = beta - (float)mean * a (gamma 1 and beta 0
// when absent: the flags say, and the pointers then are stand-ins).
__device__ __forceinline__ void coefficients(size_t c, size_t j, float *coef, const double *stats,
                                             const float *gamma, const float *beta, int has_gamma,
                                             int has_beta) {
    float a = __fmul_rn((float)stats[c + j], has_gamma ? gamma[j] : 1.0f);
    float b = __fsub_rn(has_beta ? beta[j] : 0.0f, __fmul_rn((float)stats[j], a));
    coef[j] = a;
    coef[c + j] = b;
}

// One thread per channel: mean[j] = (sum of x) * inv_n.
extern "C" __global__ void bn_mean(size_t c, size_t blocks, double inv_n, double *stats,
                                   const double *partial) {
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x; j < c; j += stride) {
        double s0, s1;
        totals(c, blocks, partial, j, &s0, &s1);
        stats[j] = __dmul_rn(s0, inv_n);
    }
}

// One thread per channel: the biased variance, inv_std, the moving
// statistics' update (in float, as Keras: moving * keep + batch * take) and
// the coefficients.
extern "C" __global__ void bn_variance(size_t c, size_t blocks, double inv_n, double eps, float keep,
                                       float take, double *stats, float *coef, float *moving_mean,
                                       float *moving_var, const double *partial, const float *gamma,
                                       const float *beta, int has_gamma, int has_beta) {
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x; j < c; j += stride) {
        double s0, s1;
        totals(c, blocks, partial, j, &s0, &s1);
        double var = __dmul_rn(s0, inv_n);
        stats[c + j] = __ddiv_rn(1.0, __dsqrt_rn(__dadd_rn(var, eps)));
        moving_mean[j] = __fadd_rn(__fmul_rn(moving_mean[j], keep), __fmul_rn((float)stats[j], take));
        moving_var[j] = __fadd_rn(__fmul_rn(moving_var[j], keep), __fmul_rn((float)var, take));
        coefficients(c, j, coef, stats, gamma, beta, has_gamma, has_beta);
    }
}

// One thread per channel: the moving statistics as the pass's statistics
// (inference, a frozen layer, an empty batch) and the coefficients.
extern "C" __global__ void bn_moving(size_t c, double eps, double *stats, float *coef,
                                     const float *moving_mean, const float *moving_var,
                                     const float *gamma, const float *beta, int has_gamma,
                                     int has_beta) {
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x; j < c; j += stride) {
        stats[j] = (double)moving_mean[j];
        stats[c + j] = __ddiv_rn(1.0, __dsqrt_rn(__dadd_rn((double)moving_var[j], eps)));
        coefficients(c, j, coef, stats, gamma, beta, has_gamma, has_beta);
    }
}

// One thread per channel: sdy and sdyx from the partials, and as floats into
// dgamma (sdyx) and dbeta (sdy) where asked for.
extern "C" __global__ void bn_grad_sums(size_t c, size_t blocks, double *stats, float *dgamma,
                                        float *dbeta, const double *partial, int want_gamma,
                                        int want_beta) {
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x; j < c; j += stride) {
        double s0, s1;
        totals(c, blocks, partial, j, &s0, &s1);
        stats[2 * c + j] = s0;
        stats[3 * c + j] = s1;
        if (want_gamma) dgamma[j] = (float)s1;
        if (want_beta) dbeta[j] = (float)s0;
    }
}

// The channel of element i, i % c, in 32-bit arithmetic when `small` (every
// index below 2^32): a 64-bit remainder costs several times more.
__device__ __forceinline__ size_t channel(size_t i, size_t c, bool small) {
    return small ? (size_t)((unsigned)i % (unsigned)c) : i % c;
}

// y[i] = x[i] * a[j] + b[j], j = i % c (total = n * c elements).
extern "C" __global__ void bn_apply(size_t total, size_t c, float *y, const float *x,
                                    const float *coef) {
    bool small = total <= 0xffffffffu;
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        size_t j = channel(i, c, small);
        y[i] = __fadd_rn(__fmul_rn(x[i], coef[j]), coef[c + j]);
    }
}

// The input gradient through the batch statistics:
// dx = (gamma * inv_std) * ((dy - sdy * inv_n) - (x_hat * sdyx) * inv_n).
extern "C" __global__ void bn_dx_batch(size_t total, size_t c, double inv_n, float *dx,
                                       const float *x, const float *g, const double *stats,
                                       const float *gamma, int has_gamma) {
    bool small = total <= 0xffffffffu;
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        size_t j = channel(i, c, small);
        double inv_std = stats[c + j];
        double k = __dmul_rn(has_gamma ? (double)gamma[j] : 1.0, inv_std);
        double xhat = __dmul_rn(__dsub_rn((double)x[i], stats[j]), inv_std);
        double v = __dsub_rn(__dsub_rn((double)g[i], __dmul_rn(stats[2 * c + j], inv_n)),
                             __dmul_rn(__dmul_rn(xhat, stats[3 * c + j]), inv_n));
        dx[i] = (float)__dmul_rn(k, v);
    }
}

// The input gradient of the affine map (moving statistics): dx = dy * a.
extern "C" __global__ void bn_dx_affine(size_t total, size_t c, float *dx, const float *g,
                                        const float *coef) {
    bool small = total <= 0xffffffffu;
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        size_t j = channel(i, c, small);
        dx[i] = __fmul_rn(g[i], coef[j]);
    }
}
