// Softmax and the fused cross-entropy losses over the rows of a row-major
// [rows, classes] matrix (hebb-tensor, feature `cuda`). The formulas and
// their order of operations are cpu_kernel.rs's; see mod.rs for the math.

#define WARP 32
#define FULL_MASK 0xffffffffu
// NVRTC has no <math.h> macros: -inf and a quiet NaN by their bits.
#define NEG_INF __int_as_float(0xff800000)
#define QUIET_NAN __int_as_float(0x7fc00000)

__device__ float warp_max(float v) {
    for (int offset = WARP / 2; offset > 0; offset /= 2) {
        v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, offset));
    }
    return v;
}

__device__ float warp_sum(float v) {
    for (int offset = WARP / 2; offset > 0; offset /= 2) {
        v += __shfl_xor_sync(FULL_MASK, v, offset);
    }
    return v;
}

// Softmax of each row: one warp per row. Lane l handles the columns
// l, l + 32, ... of the row; every lane of a warp has the same `row`, so the
// loop condition is uniform and all 32 lanes reach every shuffle. A lane
// writes e = exp(x - max) to out[j] and later rescales the same out[j], so
// no synchronisation is needed between the passes.
//   pass 1: max = max_j x_j         (fmaxf ignores NaN, as f32::max does)
//   pass 2: e_j = exp(x_j - max), sum = Σ e_j
//   pass 3: out_j = e_j * (1 / sum)
// Launched with blockDim.x a multiple of 32; rows advance by the number of
// warps in the grid.
extern "C" __global__ void softmax_rows(size_t rows, size_t classes, float *out, const float *x) {
    size_t lane = threadIdx.x % WARP;
    size_t warps = ((size_t)blockDim.x * gridDim.x) / WARP;
    for (size_t row = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) / WARP; row < rows; row += warps) {
        const float *xr = x + row * classes;
        float *yr = out + row * classes;
        float m = NEG_INF;
        for (size_t j = lane; j < classes; j += WARP) m = fmaxf(m, xr[j]);
        m = warp_max(m);
        float s = 0.0f;
        for (size_t j = lane; j < classes; j += WARP) {
            float e = expf(xr[j] - m);
            yr[j] = e;
            s += e;
        }
        s = warp_sum(s);
        float inv = 1.0f / s;
        for (size_t j = lane; j < classes; j += WARP) yr[j] *= inv;
    }
}

// One thread per row r of the logits z [rows, classes]: writes
// grad[r, :] = softmax(z_r) (before subtracting the labels) and returns the
// row's max m and ln(sum) with sum = Σ_j exp(z_rj - m), so that
// logsumexp(z_r) = m + ln(sum) and  lse - z_rj = (m - z_rj) + ln(sum).
__device__ void softmax_row(size_t classes, const float *zr, float *gr, float *m_out, float *ln_sum_out) {
    float m = NEG_INF;
    for (size_t j = 0; j < classes; ++j) m = fmaxf(m, zr[j]);
    float s = 0.0f;
    for (size_t j = 0; j < classes; ++j) {
        float e = expf(zr[j] - m);
        gr[j] = e;
        s += e;
    }
    float inv = 1.0f / s;
    for (size_t j = 0; j < classes; ++j) gr[j] *= inv;
    *m_out = m;
    *ln_sum_out = logf(s);
}

// Sparse labels [rows] (class indices stored as f32):
//   loss[r] = (m - z[r, y_r]) + ln(sum)            = logsumexp(z_r) - z[r, y_r]
//   grad[r, j] = softmax(z_r)_j - (j == y_r)
// A label that is not an integer in 0..classes (NaN included) gives a NaN
// loss and a NaN gradient row: the kernel cannot return an error.
extern "C" __global__ void softmax_xent_sparse(size_t rows, size_t classes, float *loss, float *grad,
                                               const float *z, const float *labels) {
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t r = (size_t)blockIdx.x * blockDim.x + threadIdx.x; r < rows; r += stride) {
        const float *zr = z + r * classes;
        float *gr = grad + r * classes;
        float y = labels[r];
        // NaN fails every comparison, so it is rejected too.
        bool valid = y >= 0.0f && (double)y < (double)classes && floorf(y) == y;
        if (!valid) {
            loss[r] = QUIET_NAN;
            for (size_t j = 0; j < classes; ++j) gr[j] = QUIET_NAN;
            continue;
        }
        size_t t = (size_t)y;
        float m, ln_sum;
        softmax_row(classes, zr, gr, &m, &ln_sum);
        gr[t] -= 1.0f;
        loss[r] = (m - zr[t]) + ln_sum;
    }
}

// Dense labels y [rows, classes] (target probabilities), with total = Σ_j y_rj:
//   loss[r] = Σ_{j: y_rj != 0} y_rj * ((m - z_rj) + ln(sum))  = -Σ_j y_rj log softmax(z_r)_j
//   grad[r, j] = softmax(z_r)_j * total - y_rj
// Terms with y = 0 are skipped, so that a logit of -inf there adds 0, not NaN.
extern "C" __global__ void softmax_xent_dense(size_t rows, size_t classes, float *loss, float *grad,
                                              const float *z, const float *labels) {
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t r = (size_t)blockIdx.x * blockDim.x + threadIdx.x; r < rows; r += stride) {
        const float *zr = z + r * classes;
        const float *yr = labels + r * classes;
        float *gr = grad + r * classes;
        float m, ln_sum;
        softmax_row(classes, zr, gr, &m, &ln_sum);
        float total = 0.0f;
        float l = 0.0f;
        for (size_t j = 0; j < classes; ++j) {
            float y = yr[j];
            total += y;
            if (y != 0.0f) l += y * ((m - zr[j]) + ln_sum);
        }
        for (size_t j = 0; j < classes; ++j) gr[j] = gr[j] * total - yr[j];
        loss[r] = l;
    }
}

// The logistic function in two branches, as hebb_tensor::ops::unary::sigmoid.
__device__ float sigmoid(float x) {
    if (x >= 0.0f) {
        return 1.0f / (1.0f + expf(-x));
    }
    float e = expf(x);
    return e / (1.0f + e);
}

// Sigmoid cross-entropy, labels y [rows, classes], c = classes:
//   loss[r] = (Σ_j max(z,0) - z*y + log(1 + exp(-|z|))) / c
//   grad[r, j] = (sigmoid(z_rj) - y_rj) / c
extern "C" __global__ void sigmoid_xent(size_t rows, size_t classes, float *loss, float *grad,
                                        const float *z, const float *labels) {
    size_t stride = (size_t)blockDim.x * gridDim.x;
    float c = (float)classes;
    for (size_t r = (size_t)blockIdx.x * blockDim.x + threadIdx.x; r < rows; r += stride) {
        const float *zr = z + r * classes;
        const float *yr = labels + r * classes;
        float *gr = grad + r * classes;
        float l = 0.0f;
        for (size_t j = 0; j < classes; ++j) {
            float x = zr[j];
            float y = yr[j];
            l += (fmaxf(x, 0.0f) - x * y) + log1pf(expf(-fabsf(x)));
            gr[j] = (sigmoid(x) - y) / c;
        }
        loss[r] = l / c;
    }
}
