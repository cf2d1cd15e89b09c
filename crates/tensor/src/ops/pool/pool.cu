// 2-D pooling on channels-last images [n, h, w, c] (hebb-tensor, feature
// `cuda`). Every kernel runs one thread per element it writes (grid-stride
// loops; the backward passes gather, per input cell, from the outputs that
// read it, never scatter) and computes it with the CPU kernel's IEEE
// operations in the CPU kernel's order, so the results are the CPU's bit
// for bit (see cpu_kernel.rs and mod.rs). No kernel multiplies floats, so
// --fmad has nothing to contract.
//
// The geometry of a windowed pool comes as 12 size_t values, in this order:
// n, h, w, c (the input), oh, ow (the output), ph, pw (the pool), sh, sw
// (the strides), pt, pl (the padding before: top, left). Every window holds
// at least one image cell (the host's Pool2d guarantees it); padding cells
// are never read.

// [*start, *end) of the image cells along one axis that window o covers:
// the window's first cell is o * stride - pad, which may lie in the padding.
__device__ __forceinline__ void span(size_t o, size_t stride, size_t pad, size_t window,
                                     size_t size, long long *start, long long *end) {
    long long first = (long long)(o * stride) - (long long)pad;
    long long s = first > 0 ? first : 0;
    long long e = first + (long long)window;
    if (e < 0) e = 0;
    if (e > (long long)size) e = (long long)size;
    *start = s;
    *end = e > s ? e : s;
}

// [*lo, *hi] (inclusive; empty when *lo > *hi) of the windows along one axis
// that cover image cell i: those with o * stride - pad <= i < o * stride -
// pad + window, and o < out.
__device__ __forceinline__ void covering(size_t i, size_t stride, size_t pad, size_t window,
                                         size_t out, long long *lo, long long *hi) {
    long long s = (long long)stride;
    long long top = (long long)i + (long long)pad;  // o * stride <= top
    long long low = top - (long long)window + 1;    // o * stride >= low
    *lo = low <= 0 ? 0 : (low + s - 1) / s;
    long long h = top / s;
    *hi = h < (long long)out - 1 ? h : (long long)out - 1;
}

// Max pooling forward: out[b, oy, ox, ch] is the maximum of the window's
// image cells, scanned top to bottom, each row left to right; a value
// replaces the running maximum when strictly greater, or when it is NaN and
// the maximum is not (the first maximum wins ties, the first NaN wins).
// argmax gets its index within the sample, (iy * w + ix) * c + ch (the host
// checked that a sample has at most 2^32 - 1 elements).
extern "C" __global__ void max_pool_forward(
        size_t n, size_t h, size_t w, size_t c, size_t oh, size_t ow,
        size_t ph, size_t pw, size_t sh, size_t sw, size_t pt, size_t pl,
        float *out, unsigned int *argmax, const float *x) {
    size_t total = n * oh * ow * c;
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t o = (size_t)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += stride) {
        size_t ch = o % c;
        size_t t = o / c;
        size_t ox = t % ow;
        t /= ow;
        size_t oy = t % oh;
        size_t b = t / oh;
        long long y0, y1, x0, x1;
        span(oy, sh, pt, ph, h, &y0, &y1);
        span(ox, sw, pl, pw, w, &x0, &x1);
        const float *sample = x + b * h * w * c;
        size_t best_i = ((size_t)y0 * w + (size_t)x0) * c + ch;
        float best = sample[best_i];
        for (long long iy = y0; iy < y1; ++iy) {
            for (long long ix = x0; ix < x1; ++ix) {
                size_t i = ((size_t)iy * w + (size_t)ix) * c + ch;
                float v = sample[i];
                if (v > best || (isnan(v) && !isnan(best))) {
                    best = v;
                    best_i = i;
                }
            }
        }
        out[o] = best;
        argmax[o] = (unsigned int)best_i;
    }
}

// Max pooling backward as a gather: grad_in[b, iy, ix, ch] is 0 plus, in
// increasing output order (the CPU's scatter order), the gradient of every
// output of the same sample and channel whose window covers the cell and
// whose argmax is this cell. Cells that were no maximum get 0.
extern "C" __global__ void max_pool_backward(
        size_t n, size_t h, size_t w, size_t c, size_t oh, size_t ow,
        size_t ph, size_t pw, size_t sh, size_t sw, size_t pt, size_t pl,
        float *grad_in, const float *grad_out, const unsigned int *argmax) {
    size_t total = n * h * w * c;
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        size_t ch = i % c;
        size_t t = i / c;
        size_t ix = t % w;
        t /= w;
        size_t iy = t % h;
        size_t b = t / h;
        unsigned int local = (unsigned int)((iy * w + ix) * c + ch);
        long long oy0, oy1, ox0, ox1;
        covering(iy, sh, pt, ph, oh, &oy0, &oy1);
        covering(ix, sw, pl, pw, ow, &ox0, &ox1);
        float sum = 0.0f;
        for (long long oy = oy0; oy <= oy1; ++oy) {
            for (long long ox = ox0; ox <= ox1; ++ox) {
                size_t o = ((b * oh + (size_t)oy) * ow + (size_t)ox) * c + ch;
                if (argmax[o] == local) {
                    sum += grad_out[o];
                }
            }
        }
        grad_in[i] = sum;
    }
}

// Average pooling forward: the window's image cells added from 0 in scan
// order, divided by their count (only the cells inside the image count).
extern "C" __global__ void avg_pool_forward(
        size_t n, size_t h, size_t w, size_t c, size_t oh, size_t ow,
        size_t ph, size_t pw, size_t sh, size_t sw, size_t pt, size_t pl,
        float *out, const float *x) {
    size_t total = n * oh * ow * c;
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t o = (size_t)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += stride) {
        size_t ch = o % c;
        size_t t = o / c;
        size_t ox = t % ow;
        t /= ow;
        size_t oy = t % oh;
        size_t b = t / oh;
        long long y0, y1, x0, x1;
        span(oy, sh, pt, ph, h, &y0, &y1);
        span(ox, sw, pl, pw, w, &x0, &x1);
        const float *sample = x + b * h * w * c;
        float sum = 0.0f;
        for (long long iy = y0; iy < y1; ++iy) {
            for (long long ix = x0; ix < x1; ++ix) {
                sum += sample[((size_t)iy * w + (size_t)ix) * c + ch];
            }
        }
        out[o] = sum / (float)((y1 - y0) * (x1 - x0));
    }
}

// Average pooling backward as a gather: grad_in[b, iy, ix, ch] is 0 plus,
// in increasing output order (the CPU's scatter order), g / count of every
// window covering the cell (count: that window's image cells).
extern "C" __global__ void avg_pool_backward(
        size_t n, size_t h, size_t w, size_t c, size_t oh, size_t ow,
        size_t ph, size_t pw, size_t sh, size_t sw, size_t pt, size_t pl,
        float *grad_in, const float *grad_out) {
    size_t total = n * h * w * c;
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        size_t ch = i % c;
        size_t t = i / c;
        size_t ix = t % w;
        t /= w;
        size_t iy = t % h;
        size_t b = t / h;
        long long oy0, oy1, ox0, ox1;
        covering(iy, sh, pt, ph, oh, &oy0, &oy1);
        covering(ix, sw, pl, pw, ow, &ox0, &ox1);
        float sum = 0.0f;
        for (long long oy = oy0; oy <= oy1; ++oy) {
            long long y0, y1;
            span((size_t)oy, sh, pt, ph, h, &y0, &y1);
            for (long long ox = ox0; ox <= ox1; ++ox) {
                long long x0, x1;
                span((size_t)ox, sw, pl, pw, w, &x0, &x1);
                size_t o = ((b * oh + (size_t)oy) * ow + (size_t)ox) * c + ch;
                sum += grad_out[o] / (float)((y1 - y0) * (x1 - x0));
            }
        }
        grad_in[i] = sum;
    }
}

// Global average pooling forward: out[b, ch] is the mean of the `cells`
// values x[b, cell, ch], added in double in scan order and divided in
// double, rounded to float once (as the CPU kernel).
extern "C" __global__ void global_avg_forward(size_t n, size_t cells, size_t c, float *out,
                                              const float *x) {
    size_t total = n * c;
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t o = (size_t)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += stride) {
        size_t ch = o % c;
        size_t b = o / c;
        const float *sample = x + b * cells * c + ch;
        double sum = 0.0;
        for (size_t cell = 0; cell < cells; ++cell) {
            sum += (double)sample[cell * c];
        }
        out[o] = (float)(sum / (double)cells);
    }
}

// Global average pooling backward: grad_in[b, cell, ch] = grad_out[b, ch] / cells.
extern "C" __global__ void global_avg_backward(size_t n, size_t cells, size_t c, float *grad_in,
                                               const float *grad_out) {
    size_t total = n * cells * c;
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        size_t ch = i % c;
        size_t b = i / (cells * c);
        grad_in[i] = grad_out[b * c + ch] / (float)cells;
    }
}
