// Reductions along the middle axis of [outer, n, inner] (hebb-tensor, feature `cuda`).
// Output r = o * inner + i reduces x[(o * n + j) * inner + i] over j < n.
// The op codes are Reduce's, see cuda_kernel.rs. Sums accumulate in double
// and are rounded to f32 once at the end; max and min propagate NaN; argmax
// never picks NaN and takes the first of equal maxima (index 0 when no
// element exceeds -inf), as the CPU kernel does.

#define R_SUM 0
#define R_MEAN 1
#define R_MAX 2
#define R_MIN 3
#define R_ARGMAX 4

// Threads per block of reduce_block; a power of two (the tree halves it).
#define RB 256

// Folds the element v at index j (j increasing) into (acc, best), the running
// state of `how`, as the CPU loop does: the first of equal maxima (minima)
// is kept, and every NaN replaces the maximum (minimum), so NaN propagates.
__device__ __forceinline__ void fold(int how, double *acc, size_t *best, double v, size_t j) {
    switch (how) {
    case R_SUM:
    case R_MEAN: *acc += v; break;
    case R_MAX: if (isnan(v) || v > *acc) { *acc = v; *best = j; } break;
    case R_MIN: if (isnan(v) || v < *acc) { *acc = v; *best = j; } break;
    case R_ARGMAX: if (v > *acc) { *acc = v; *best = j; } break;
    }
}

// The state before any element: 0 for sums, -inf / +inf for max / min (so
// that NaN still wins and any number replaces it), (-inf, 0) for argmax.
__device__ __forceinline__ double start(int how) {
    switch (how) {
    case R_MAX:
    case R_ARGMAX: return -__longlong_as_double(0x7ff0000000000000LL);
    case R_MIN: return __longlong_as_double(0x7ff0000000000000LL);
    }
    return 0.0;
}

// Merges the state (v, j) of other elements of the axis into (acc, best), in
// any order: a NaN maximum (minimum) wins; among equal values (-0 == +0) the
// smaller index wins, so max, min and argmax pick the CPU's element.
__device__ __forceinline__ void merge(int how, double *acc, size_t *best, double v, size_t j) {
    bool take;
    switch (how) {
    case R_SUM:
    case R_MEAN: *acc += v; return;
    case R_MAX:
        take = !isnan(*acc) && (isnan(v) || v > *acc || (v == *acc && j < *best));
        break;
    case R_MIN:
        take = !isnan(*acc) && (isnan(v) || v < *acc || (v == *acc && j < *best));
        break;
    default:  // R_ARGMAX: NaN never compares greater.
        take = v > *acc || (v == *acc && j < *best);
        break;
    }
    if (take) { *acc = v; *best = j; }
}

__device__ __forceinline__ float finish(int how, double acc, size_t best, size_t n) {
    switch (how) {
    case R_MEAN: return (float)(acc / (double)n);  // 0/0 = NaN for an empty axis
    case R_ARGMAX: return (float)best;
    }
    return (float)acc;
}

// One thread per output, looping over the axis (coalesced when inner > 1).
extern "C" __global__ void reduce_thread(size_t outer, size_t n, size_t inner, int how, float *out, const float *x) {
    size_t m = outer * inner;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t r = (size_t)blockIdx.x * blockDim.x + threadIdx.x; r < m; r += stride) {
        size_t o = r / inner, i = r % inner;
        const float *base = x + o * n * inner + i;
        double acc = start(how);
        size_t best = 0;
        for (size_t j = 0; j < n; ++j) fold(how, &acc, &best, (double)base[j * inner], j);
        out[r] = finish(how, acc, best, n);
    }
}

// One block of RB threads per output: each thread folds every RB-th element
// of the axis, then the block merges the RB states in a tree. For long axes
// with few outputs (sum_all, a row's sum).
extern "C" __global__ void reduce_block(size_t outer, size_t n, size_t inner, int how, float *out, const float *x) {
    __shared__ double s_acc[RB];
    __shared__ size_t s_best[RB];
    size_t m = outer * inner;
    unsigned t = threadIdx.x;
    for (size_t r = blockIdx.x; r < m; r += gridDim.x) {  // uniform per block
        size_t o = r / inner, i = r % inner;
        const float *base = x + o * n * inner + i;
        double acc = start(how);
        size_t best = 0;
        for (size_t j = t; j < n; j += RB) fold(how, &acc, &best, (double)base[j * inner], j);
        s_acc[t] = acc;
        s_best[t] = best;
        __syncthreads();
        for (unsigned half = RB / 2; half > 0; half >>= 1) {
            if (t < half) {
                double a = s_acc[t];
                size_t b = s_best[t];
                merge(how, &a, &b, s_acc[t + half], s_best[t + half]);
                s_acc[t] = a;
                s_best[t] = b;
            }
            __syncthreads();
        }
        if (t == 0) out[r] = finish(how, s_acc[0], s_best[0], n);
        __syncthreads();  // s_acc[0] is read before the next output overwrites it
    }
}
