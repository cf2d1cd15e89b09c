// A fake cuBLAS (libcublas.so.12) for tests on machines without a GPU: the
// handle calls and a column-major reference sgemm (and sgemv) that follow
// cuBLAS's documented semantics, including its argument checks. Device
// pointers are the fake driver's host buffers; every matrix an operation
// reads or writes must lie inside one live allocation of the fake driver
// (libcuda.so.1, linked in), which catches wrong leading dimensions.

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <vector>

#define FK_EXPORT extern "C" __attribute__((visibility("default")))

extern "C" int fakecuda_check_range(const void *p, size_t bytes, const char *what);

typedef int cublasStatus_t;
struct FkBlas {
    int magic = 0x626c6173;
    void *stream = nullptr;
    int pointer_mode = 0;  // CUBLAS_POINTER_MODE_HOST
    int math_mode = 0;
};
typedef FkBlas *cublasHandle_t;

enum {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_ARCH_MISMATCH = 8,
    CUBLAS_STATUS_MAPPING_ERROR = 11,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_INTERNAL_ERROR = 14,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
};
enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 };

static cublasStatus_t fail(cublasStatus_t code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("[fake-cublas] error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (cublasStatus_t %d)\n", code);
    va_end(ap);
    const char *a = getenv("FAKE_CUDA_ABORT");
    if (a && *a && strcmp(a, "0") != 0) abort();
    return code;
}

static std::mutex g_mu;
static std::set<cublasHandle_t> g_handles;

static bool valid(cublasHandle_t h) {
    std::lock_guard<std::mutex> g(g_mu);
    return g_handles.count(h) != 0;
}

FK_EXPORT cublasStatus_t cublasCreate_v2(cublasHandle_t *h) {
    if (!h) return fail(CUBLAS_STATUS_INVALID_VALUE, "cublasCreate: null handle pointer");
    auto *b = new FkBlas;
    std::lock_guard<std::mutex> g(g_mu);
    g_handles.insert(b);
    *h = b;
    return CUBLAS_STATUS_SUCCESS;
}

FK_EXPORT cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
    std::lock_guard<std::mutex> g(g_mu);
    if (!g_handles.erase(h)) return fail(CUBLAS_STATUS_NOT_INITIALIZED, "cublasDestroy(%p): not a handle", (void *)h);
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

FK_EXPORT cublasStatus_t cublasSetStream_v2(cublasHandle_t h, void *stream) {
    if (!valid(h)) return fail(CUBLAS_STATUS_NOT_INITIALIZED, "cublasSetStream: %p is not a handle", (void *)h);
    h->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}
FK_EXPORT cublasStatus_t cublasGetStream_v2(cublasHandle_t h, void **stream) {
    if (!valid(h)) return fail(CUBLAS_STATUS_NOT_INITIALIZED, "cublasGetStream: %p is not a handle", (void *)h);
    if (stream) *stream = h->stream;
    return CUBLAS_STATUS_SUCCESS;
}
FK_EXPORT cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t h, int mode) {
    if (!valid(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode != 0 && mode != 1) return fail(CUBLAS_STATUS_INVALID_VALUE, "cublasSetPointerMode(%d)", mode);
    h->pointer_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}
FK_EXPORT cublasStatus_t cublasGetPointerMode_v2(cublasHandle_t h, int *mode) {
    if (!valid(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode) *mode = h->pointer_mode;
    return CUBLAS_STATUS_SUCCESS;
}
FK_EXPORT cublasStatus_t cublasSetMathMode(cublasHandle_t h, int mode) {
    if (!valid(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->math_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}
FK_EXPORT cublasStatus_t cublasGetMathMode(cublasHandle_t h, int *mode) {
    if (!valid(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode) *mode = h->math_mode;
    return CUBLAS_STATUS_SUCCESS;
}
FK_EXPORT cublasStatus_t cublasGetVersion_v2(cublasHandle_t, int *v) {
    if (v) *v = 120900;
    return CUBLAS_STATUS_SUCCESS;
}
FK_EXPORT cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t h, void *, size_t) {
    return valid(h) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}
FK_EXPORT const char *cublasGetStatusName(cublasStatus_t s) {
    switch (s) {
    case 0: return "CUBLAS_STATUS_SUCCESS";
    case 1: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case 3: return "CUBLAS_STATUS_ALLOC_FAILED";
    case 7: return "CUBLAS_STATUS_INVALID_VALUE";
    case 8: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case 11: return "CUBLAS_STATUS_MAPPING_ERROR";
    case 13: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case 14: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case 15: return "CUBLAS_STATUS_NOT_SUPPORTED";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}
FK_EXPORT const char *cublasGetStatusString(cublasStatus_t s) { return cublasGetStatusName(s); }

// A scalar argument: host memory in pointer mode HOST, device memory in DEVICE.
static bool scalar(cublasHandle_t h, const float *p, float *out, const char *fn, const char *name) {
    if (!p) {
        fail(CUBLAS_STATUS_INVALID_VALUE, "%s: %s is null", fn, name);
        return false;
    }
    char what[128];
    snprintf(what, sizeof what, "%s: %s in device pointer mode", fn, name);
    if (h->pointer_mode == 1 && !fakecuda_check_range(p, sizeof(float), what)) return false;
    *out = *p;
    return true;
}

// The elements of a column-major rows x cols matrix with leading dimension ld.
static size_t extent(int rows, int cols, int ld) {
    if (rows == 0 || cols == 0) return 0;
    return (size_t)(cols - 1) * (size_t)ld + (size_t)rows;
}

static bool in_device(const float *p, size_t elems, const char *fn, const char *name) {
    if (elems == 0) return true;
    char what[128];
    snprintf(what, sizeof what, "%s: matrix %s", fn, name);
    return fakecuda_check_range(p, elems * sizeof(float), what) != 0;
}

// C = alpha * op(A) * op(B) + beta * C, column-major; op(A) m x k, op(B) k x n.
// Each element is the float sum over l in order 0..k-1 of a*b (one rounding
// per multiply and per add); with beta == 0, C is not read.
FK_EXPORT cublasStatus_t cublasSgemm_v2(cublasHandle_t h, int transa, int transb, int m, int n, int k,
                                        const float *alpha_p, const float *A, int lda, const float *B, int ldb,
                                        const float *beta_p, float *C, int ldc) {
    const char *fn = "cublasSgemm";
    if (!valid(h)) return fail(CUBLAS_STATUS_NOT_INITIALIZED, "%s: %p is not a handle", fn, (void *)h);
    if (transa < 0 || transa > 2 || transb < 0 || transb > 2)
        return fail(CUBLAS_STATUS_INVALID_VALUE, "%s: transa %d / transb %d", fn, transa, transb);
    if (m < 0 || n < 0 || k < 0) return fail(CUBLAS_STATUS_INVALID_VALUE, "%s: m %d n %d k %d", fn, m, n, k);
    bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
    int a_rows = ta ? k : m, a_cols = ta ? m : k;
    int b_rows = tb ? n : k, b_cols = tb ? k : n;
    auto max1 = [](int v) { return v > 1 ? v : 1; };
    if (lda < max1(a_rows)) return fail(CUBLAS_STATUS_INVALID_VALUE, "%s: lda %d < max(1, %d)", fn, lda, a_rows);
    if (ldb < max1(b_rows)) return fail(CUBLAS_STATUS_INVALID_VALUE, "%s: ldb %d < max(1, %d)", fn, ldb, b_rows);
    if (ldc < max1(m)) return fail(CUBLAS_STATUS_INVALID_VALUE, "%s: ldc %d < max(1, %d)", fn, ldc, m);
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    float alpha, beta;
    if (!scalar(h, alpha_p, &alpha, fn, "alpha") || !scalar(h, beta_p, &beta, fn, "beta"))
        return CUBLAS_STATUS_INVALID_VALUE;
    if ((alpha == 0.0f || k == 0) && beta == 1.0f) return CUBLAS_STATUS_SUCCESS;
    bool use_ab = alpha != 0.0f && k > 0;
    if (use_ab) {
        if (!in_device(A, extent(a_rows, a_cols, lda), fn, "A")) return fail(CUBLAS_STATUS_INVALID_VALUE, "%s: A (%d x %d, lda %d) is not inside device memory", fn, a_rows, a_cols, lda);
        if (!in_device(B, extent(b_rows, b_cols, ldb), fn, "B")) return fail(CUBLAS_STATUS_INVALID_VALUE, "%s: B (%d x %d, ldb %d) is not inside device memory", fn, b_rows, b_cols, ldb);
    }
    if (!in_device(C, extent(m, n, ldc), fn, "C")) return fail(CUBLAS_STATUS_INVALID_VALUE, "%s: C (%d x %d, ldc %d) is not inside device memory", fn, m, n, ldc);

    // op(A) packed column-major m x k, so the inner loop runs over i.
    std::vector<float> Ap;
    if (use_ab) {
        Ap.resize((size_t)m * k);
        for (int l = 0; l < k; ++l)
            for (int i = 0; i < m; ++i)
                Ap[(size_t)l * m + i] = ta ? A[(size_t)i * lda + l] : A[(size_t)l * lda + i];
    }
    std::vector<float> acc((size_t)m);
    for (int j = 0; j < n; ++j) {
        float *c = C + (size_t)j * ldc;
        if (use_ab) {
            for (int i = 0; i < m; ++i) acc[i] = 0.0f;
            for (int l = 0; l < k; ++l) {
                float b = tb ? B[(size_t)l * ldb + j] : B[(size_t)j * ldb + l];
                const float *a = &Ap[(size_t)l * m];
                for (int i = 0; i < m; ++i) acc[i] += a[i] * b;
            }
        }
        for (int i = 0; i < m; ++i) {
            float ab = use_ab ? alpha * acc[i] : 0.0f;
            c[i] = beta == 0.0f ? ab : ab + beta * c[i];
        }
    }
    return CUBLAS_STATUS_SUCCESS;
}

// y = alpha * op(A) * x + beta * y, column-major A m x n.
FK_EXPORT cublasStatus_t cublasSgemv_v2(cublasHandle_t h, int trans, int m, int n, const float *alpha_p, const float *A,
                                        int lda, const float *x, int incx, const float *beta_p, float *y, int incy) {
    const char *fn = "cublasSgemv";
    if (!valid(h)) return fail(CUBLAS_STATUS_NOT_INITIALIZED, "%s: %p is not a handle", fn, (void *)h);
    if (trans < 0 || trans > 2 || m < 0 || n < 0 || lda < (m > 1 ? m : 1) || incx == 0 || incy == 0)
        return fail(CUBLAS_STATUS_INVALID_VALUE, "%s: trans %d m %d n %d lda %d incx %d incy %d", fn, trans, m, n, lda, incx, incy);
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    float alpha, beta;
    if (!scalar(h, alpha_p, &alpha, fn, "alpha") || !scalar(h, beta_p, &beta, fn, "beta")) return CUBLAS_STATUS_INVALID_VALUE;
    bool t = trans != CUBLAS_OP_N;
    int xl = t ? m : n, yl = t ? n : m;
    if (!in_device(A, extent(m, n, lda), fn, "A") ||
        !in_device(x, (size_t)(xl - 1) * (size_t)abs(incx) + 1, fn, "x") ||
        !in_device(y, (size_t)(yl - 1) * (size_t)abs(incy) + 1, fn, "y"))
        return fail(CUBLAS_STATUS_INVALID_VALUE, "%s: an operand is not inside device memory", fn);
    auto xi = [&](int i) { return x[(size_t)(incx > 0 ? i : xl - 1 - i) * (size_t)abs(incx)]; };
    auto yp = [&](int i) -> float & { return y[(size_t)(incy > 0 ? i : yl - 1 - i) * (size_t)abs(incy)]; };
    for (int i = 0; i < yl; ++i) {
        float s = 0.0f;
        for (int l = 0; l < xl; ++l) s += (t ? A[(size_t)i * lda + l] : A[(size_t)l * lda + i]) * xi(l);
        float v = alpha * s;
        yp(i) = beta == 0.0f ? v : v + beta * yp(i);
    }
    return CUBLAS_STATUS_SUCCESS;
}
