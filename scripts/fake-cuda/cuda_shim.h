// Device-side shim of the fake CUDA driver (scripts/fake-cuda): lets g++
// compile the project's .cu kernels as plain C++ that runs on the CPU.
// Included at the top of every generated kernel translation unit, before
// the kernel source (which is wrapped in its own namespace).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <math.h>

// ---- the runtime's view (defined in fake_cuda.cpp) --------------------------

struct fk_uint3 {
    unsigned int x, y, z;
};

// The launch's indices. Launches are serialised and each CUDA thread runs on
// the launching OS thread (sequentially, or as a fiber), so plain globals
// that the scheduler sets before running or resuming a thread are enough.
extern "C" fk_uint3 fk_threadIdx, fk_blockIdx, fk_blockDim, fk_gridDim;
#define threadIdx fk_threadIdx
#define blockIdx fk_blockIdx
#define blockDim fk_blockDim
#define gridDim fk_gridDim
#define warpSize 32

extern "C" void fk_syncthreads(void);
extern "C" unsigned long long fk_shfl(unsigned mask, unsigned long long bits, int kind, int arg,
                                      int width);
extern "C" void fk_syncwarp(unsigned mask);

// One kernel parameter as the generated wrapper sees it.
struct fk_param {
    unsigned long size;  // sizeof the C++ parameter type
    int is_pointer;      // a pointer: must point into a live device allocation
    const char *type;    // the declared type, for messages
};

typedef void (*fk_wrapper)(void **params);

// Registers a natively compiled kernel (called from static constructors of
// the generated translation units).
extern "C" void fk_register_kernel(const char *module, const char *source_path, const char *name,
                                   fk_wrapper run, int nparams, const fk_param *params,
                                   int uses_sync);

// ---- CUDA C keywords --------------------------------------------------------

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
// One block runs at a time, so a function-static is per block as long as the
// kernel writes its shared memory before reading it (as CUDA requires).
#define __shared__ static
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __grid_constant__

// ---- intrinsics -------------------------------------------------------------
// Compiled with -ffp-contract=off -fno-fast-math: each is one IEEE operation
// rounded to nearest, like the _rn intrinsics on a GPU.

using std::isfinite;
using std::isinf;
using std::isnan;
using std::signbit;

static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fsqrt_rn(float a) { return std::sqrt(a); }
static inline float __frcp_rn(float a) { return 1.0f / a; }
static inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
static inline double __dsqrt_rn(double a) { return std::sqrt(a); }
static inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }

template <class To, class From>
static inline To fk_bit_cast(From v) {
    static_assert(sizeof(To) == sizeof(From), "bit cast between types of different sizes");
    To t;
    std::memcpy(&t, &v, sizeof t);
    return t;
}
static inline float __int_as_float(int v) { return fk_bit_cast<float>(v); }
static inline float __uint_as_float(unsigned v) { return fk_bit_cast<float>(v); }
static inline int __float_as_int(float v) { return fk_bit_cast<int>(v); }
static inline unsigned __float_as_uint(float v) { return fk_bit_cast<unsigned>(v); }
static inline double __longlong_as_double(long long v) { return fk_bit_cast<double>(v); }
static inline long long __double_as_longlong(double v) { return fk_bit_cast<long long>(v); }

template <class T>
static inline T __ldg(const T *p) { return *p; }

// ---- synchronisation --------------------------------------------------------

static inline void __syncthreads() { fk_syncthreads(); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) { fk_syncwarp(mask); }

#define FK_SHFL_IDX 0
#define FK_SHFL_UP 1
#define FK_SHFL_DOWN 2
#define FK_SHFL_XOR 3

template <class T>
static inline T fk_shfl_t(unsigned mask, T v, int kind, int arg, int width) {
    static_assert(sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
    unsigned long long bits = 0;
    std::memcpy(&bits, &v, sizeof v);
    bits = fk_shfl(mask, bits, kind, arg, width);
    T r;
    std::memcpy(&r, &bits, sizeof r);
    return r;
}
template <class T>
static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    return fk_shfl_t(mask, v, FK_SHFL_IDX, src, width);
}
template <class T>
static inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return fk_shfl_t(mask, v, FK_SHFL_UP, (int)delta, width);
}
template <class T>
static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return fk_shfl_t(mask, v, FK_SHFL_DOWN, (int)delta, width);
}
template <class T>
static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    return fk_shfl_t(mask, v, FK_SHFL_XOR, lane_mask, width);
}

// Atomics: CUDA threads never run concurrently here (sequentially, or as
// cooperative fibers that switch only at barriers), so a plain
// read-modify-write is atomic.
template <class T>
static inline T atomicAdd(T *p, T v) { T old = *p; *p = old + v; return old; }
template <class T>
static inline T atomicExch(T *p, T v) { T old = *p; *p = v; return old; }
template <class T>
static inline T atomicMax(T *p, T v) { T old = *p; if (v > old) *p = v; return old; }
template <class T>
static inline T atomicMin(T *p, T v) { T old = *p; if (v < old) *p = v; return old; }
template <class T>
static inline T atomicCAS(T *p, T cmp, T v) { T old = *p; if (old == cmp) *p = v; return old; }
