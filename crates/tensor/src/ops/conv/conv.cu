// im2col and col2im of the 2-D convolution (hebb-tensor, feature `cuda`);
// the products themselves go through cuBLAS (see cuda_kernel.rs).
//
// Images are NHWC [batch, h, w, c]; the column matrix is row-major
// [batch * oh * ow, kh * kw * c]: row r = (n * oh + oy) * ow + ox is the
// receptive field of output pixel (n, oy, ox), column q = (i * kw + j) * c + ch
// the kernel tap (i, j) and channel ch (the HWIO order of the kernel read as
// [kh * kw * c, filters]). Tap (i, j) of output pixel (oy, ox) reads the input
// pixel (oy * sh + i * dh - pt, ox * sw + j * dw - pl), or 0 outside the image.
//
// Every kernel has a 32-bit form (`_u32`, for buffers whose element counts
// all fit in 32 bits: the index arithmetic's divisions are then 32-bit, much
// cheaper on a GPU) and a 64-bit one (`_u64`), both from one template; the
// host picks. Every index a kernel forms is below the element count of the
// buffer it indexes, so it never overflows the type the host chose.

// cols[e] for e < total = batch * oh * ow * patch: one thread per OUTPUT
// (column) element, grid-stride loop; every element is written (zeros for
// taps in the padding).
template <typename I>
__device__ __forceinline__ void im2col_impl(size_t total, I h, I w, I c, I oh, I ow, I kh, I kw,
                                            I sh, I sw, I dh, I dw, I pt, I pl, float *cols,
                                            const float *x) {
    I patch = kh * kw * c;
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t g = (size_t)blockIdx.x * blockDim.x + threadIdx.x; g < total; g += stride) {
        I e = (I)g;
        I r = e / patch, q = e % patch;
        I ch = q % c, t = q / c;
        I j = t % kw, i = t / kw;
        I ox = r % ow, s = r / ow;
        I oy = s % oh, n = s / oh;
        // The input row and column plus the padding (never negative).
        I yy = oy * sh + i * dh, xx = ox * sw + j * dw;
        float v = 0.0f;
        if (yy >= pt && yy - pt < h && xx >= pl && xx - pl < w) {
            v = x[((n * h + (yy - pt)) * w + (xx - pl)) * c + ch];
        }
        cols[g] = v;
    }
}

// dx[e] for e < total = batch * h * w * c: one thread per OUTPUT (input
// pixel) element, a gather: the sum of the column entries that im2col copied
// from it, in a fixed order (output rows oy ascending, then output columns ox
// ascending; at most one tap (i, j) per output pixel), starting from 0 -- the
// order of the CPU's col2im, which scatters row by row. No atomics, so the
// result does not depend on the schedule. Every element is written (0 where
// no tap reads it, e.g. with strides larger than the dilated kernel).
template <typename I>
__device__ __forceinline__ void col2im_impl(size_t total, I h, I w, I c, I oh, I ow, I kh, I kw,
                                            I sh, I sw, I dh, I dw, I pt, I pl, float *dx,
                                            const float *cols) {
    I patch = kh * kw * c;
    size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t g = (size_t)blockIdx.x * blockDim.x + threadIdx.x; g < total; g += stride) {
        I e = (I)g;
        I ch = e % c, t = e / c;
        I ix = t % w, s = t / w;
        I iy = s % h, n = s / h;
        I yy = iy + pt, xx = ix + pl;
        float acc = 0.0f;
        // oy = (yy - i * dh) / sh grows as i falls: i descending gives oy ascending.
        for (I i = kh; i-- > 0;) {
            I oy_s = i * dh;
            if (oy_s > yy) continue;
            oy_s = yy - oy_s;
            if (oy_s % sh != 0) continue;
            I oy = oy_s / sh;
            if (oy >= oh) continue;
            I row0 = (n * oh + oy) * ow;
            for (I j = kw; j-- > 0;) {
                I ox_s = j * dw;
                if (ox_s > xx) continue;
                ox_s = xx - ox_s;
                if (ox_s % sw != 0) continue;
                I ox = ox_s / sw;
                if (ox >= ow) continue;
                acc += cols[(row0 + ox) * patch + (i * kw + j) * c + ch];
            }
        }
        dx[g] = acc;
    }
}

#define CONV_ARGS(I) (I) h, (I) w, (I) c, (I) oh, (I) ow, (I) kh, (I) kw, (I) sh, (I) sw, (I) dh, \
                     (I) dw, (I) pt, (I) pl

extern "C" __global__ void im2col_u32(size_t total, size_t h, size_t w, size_t c, size_t oh,
                                      size_t ow, size_t kh, size_t kw, size_t sh, size_t sw,
                                      size_t dh, size_t dw, size_t pt, size_t pl, float *cols,
                                      const float *x) {
    im2col_impl<unsigned int>(total, CONV_ARGS(unsigned int), cols, x);
}

extern "C" __global__ void im2col_u64(size_t total, size_t h, size_t w, size_t c, size_t oh,
                                      size_t ow, size_t kh, size_t kw, size_t sh, size_t sw,
                                      size_t dh, size_t dw, size_t pt, size_t pl, float *cols,
                                      const float *x) {
    im2col_impl<size_t>(total, CONV_ARGS(size_t), cols, x);
}

extern "C" __global__ void col2im_u32(size_t total, size_t h, size_t w, size_t c, size_t oh,
                                      size_t ow, size_t kh, size_t kw, size_t sh, size_t sw,
                                      size_t dh, size_t dw, size_t pt, size_t pl, float *dx,
                                      const float *cols) {
    col2im_impl<unsigned int>(total, CONV_ARGS(unsigned int), dx, cols);
}

extern "C" __global__ void col2im_u64(size_t total, size_t h, size_t w, size_t c, size_t oh,
                                      size_t ow, size_t kh, size_t kw, size_t sh, size_t sw,
                                      size_t dh, size_t dw, size_t pt, size_t pl, float *dx,
                                      const float *cols) {
    col2im_impl<size_t>(total, CONV_ARGS(size_t), dx, cols);
}
