// Elementwise unary ops on f32, one thread per element (hebb-tensor, feature `cuda`).
// The op codes are UnaryOp's, see cuda_kernel.rs; the formulas are the CPU kernel's.
// Float literals carry the `f` suffix so that nothing is computed in double.

extern "C" __global__ void fill(size_t n, float *out, float value) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = value;
}

#define U_NEG 0
#define U_EXP 1
#define U_LOG 2
#define U_SQRT 3
#define U_SQUARE 4
#define U_ABS 5
#define U_RECIPROCAL 6
#define U_SIGMOID 7
#define U_TANH 8
#define U_RELU 9
#define U_STEP 10
#define U_SIGN 11
#define U_ADD_SCALAR 12
#define U_MUL_SCALAR 13
#define U_POWF 14
#define U_CLIP 15
#define U_LEAKY_RELU 16
#define U_LOG1P 17

__device__ __forceinline__ float unary_op(int op, float v, float p, float q) {
    switch (op) {
    case U_NEG: return -v;
    case U_EXP: return expf(v);
    case U_LOG: return logf(v);
    case U_SQRT: return sqrtf(v);
    case U_SQUARE: return v * v;
    case U_ABS: return fabsf(v);
    case U_RECIPROCAL: return 1.0f / v;
    case U_SIGMOID:
        // Two branches keep e^x from overflowing for either sign; NaN takes
        // the second branch and stays NaN, as on the CPU.
        if (v >= 0.0f) {
            return 1.0f / (1.0f + expf(-v));
        } else {
            float e = expf(v);
            return e / (1.0f + e);
        }
    case U_TANH: return tanhf(v);
    case U_RELU: return v < 0.0f ? 0.0f : v;  // NaN stays NaN
    case U_STEP: return v >= 0.0f ? 1.0f : 0.0f;
    case U_SIGN: return v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : v);  // keeps +-0 and NaN
    case U_ADD_SCALAR: return v + p;
    case U_MUL_SCALAR: return v * p;
    case U_POWF: return powf(v, p);
    case U_CLIP: return v < p ? p : (v > q ? q : v);  // p = min, q = max; NaN stays NaN
    case U_LEAKY_RELU: return v >= 0.0f ? v : v * p;  // p = slope
    case U_LOG1P: return log1pf(v);
    }
    return __int_as_float(0x7fc00000);  // unknown op code: NaN
}

// out[i] = op(x[i]) for i < n; `p` and `q` are the op's scalars (0 when unused).
extern "C" __global__ void unary(size_t n, int op, float *out, const float *x, float p, float q) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        out[i] = unary_op(op, x[i], p, q);
    }
}
