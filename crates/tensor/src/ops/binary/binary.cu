// Elementwise binary ops on f32 with NumPy broadcasting, one thread per
// output element (hebb-tensor, feature `cuda`). The op codes are BinaryOp's,
// see cuda_kernel.rs; the formulas are the CPU kernel's.

#define B_ADD 0
#define B_SUB 1
#define B_MUL 2
#define B_DIV 3
#define B_MAXIMUM 4
#define B_MINIMUM 5
#define B_EQUAL 6
#define B_GREATER 7
#define B_GREATER_EQUAL 8
#define B_LESS 9
#define B_LESS_EQUAL 10

// Must equal MAX_RANK in cuda_kernel.rs.
#define MAX_RANK 8

// The output's dimensions (after merging runs that both operands walk
// alike) and each operand's element stride per dimension, 0 where it is
// broadcast. Only the first `rank` entries are used. All fields are 64-bit,
// so the layout has no padding and matches the Rust `#[repr(C)]` struct.
struct Layout {
    unsigned long long rank;
    unsigned long long shape[MAX_RANK];
    unsigned long long a[MAX_RANK];
    unsigned long long b[MAX_RANK];
};

__device__ __forceinline__ float binary_op(int op, float x, float y) {
    switch (op) {
    case B_ADD: return x + y;
    case B_SUB: return x - y;
    case B_MUL: return x * y;
    case B_DIV: return x / y;
    // NaN propagates, as in tf.maximum / tf.minimum.
    case B_MAXIMUM: return (isnan(x) || x >= y) ? x : y;
    case B_MINIMUM: return (isnan(x) || x <= y) ? x : y;
    case B_EQUAL: return x == y ? 1.0f : 0.0f;
    case B_GREATER: return x > y ? 1.0f : 0.0f;
    case B_GREATER_EQUAL: return x >= y ? 1.0f : 0.0f;
    case B_LESS: return x < y ? 1.0f : 0.0f;
    case B_LESS_EQUAL: return x <= y ? 1.0f : 0.0f;
    }
    return __int_as_float(0x7fc00000);  // unknown op code: NaN
}

// out[i] = op(a[ia], b[ib]) for i < n, where ia and ib are the offsets of
// output element i (row-major in l.shape) in the two operands.
extern "C" __global__ void binary(size_t n, int op, float *out, const float *a, const float *b, struct Layout l) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    int rank = (int)l.rank;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        size_t rest = i, ia = 0, ib = 0;
        for (int d = rank - 1; d >= 0; --d) {
            size_t dim = (size_t)l.shape[d];
            size_t k = rest % dim;
            rest /= dim;
            ia += k * (size_t)l.a[d];
            ib += k * (size_t)l.b[d];
        }
        out[i] = binary_op(op, a[ia], b[ib]);
    }
}

// sum_to_shape where the summed axes are not one run (e.g. [4, 5, 6, 7] ->
// [1, 5, 1, 7]): out[r] = the sum over j < n of x[ko + so], where ko is the
// offset of output r (row-major in keep.shape, strides keep.a) and so that of
// summed element j (row-major in sum.shape, strides sum.a). Accumulates in
// double and rounds once, as the reduce kernels (chaining one reduction per
// run would round each partial sum to f32). One thread per output.
extern "C" __global__ void sum_axes(size_t m, size_t n, float *out, const float *x, struct Layout keep,
                                    struct Layout sum) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    int keep_rank = (int)keep.rank, sum_rank = (int)sum.rank;
    for (size_t r = (size_t)blockIdx.x * blockDim.x + threadIdx.x; r < m; r += stride) {
        size_t rest = r, base = 0;
        for (int d = keep_rank - 1; d >= 0; --d) {
            size_t dim = (size_t)keep.shape[d];
            base += (rest % dim) * (size_t)keep.a[d];
            rest /= dim;
        }
        double acc = 0.0;
        for (size_t j = 0; j < n; ++j) {
            size_t rj = j, off = 0;
            for (int d = sum_rank - 1; d >= 0; --d) {
                size_t dim = (size_t)sum.shape[d];
                off += (rj % dim) * (size_t)sum.a[d];
                rj /= dim;
            }
            acc += (double)x[base + off];
        }
        out[r] = (float)acc;
    }
}
