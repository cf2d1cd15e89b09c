// A fake CUDA driver (libcuda.so.1) for tests on machines without a GPU.
// See README.md: one device, one synchronous "stream", memory from the host
// (mmap with a guard page after each buffer), modules resolved to the
// natively compiled kernels registered by the generated k_*.cpp units, and
// cuLaunchKernel running the grid on the calling thread.
//
// Only the driver API that cudarc's safe layer calls on hebb's paths is
// implemented; everything returns CUresult codes as the real driver does
// (0 = CUDA_SUCCESS) and prints a "[fake-cuda]" line to stderr on errors.

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cuda_shim.h"

#define FK_EXPORT extern "C" __attribute__((visibility("default")))

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
struct FkContext;
struct FkModule;
struct FkFunction;
typedef FkContext *CUcontext;
typedef void *CUstream;
typedef void *CUevent;
typedef FkModule *CUmodule;
typedef FkFunction *CUfunction;
typedef void *CUmemoryPool;
typedef void (*CUhostFn)(void *userData);

enum {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_DEINITIALIZED = 4,
    CUDA_ERROR_NO_DEVICE = 100,
    CUDA_ERROR_INVALID_DEVICE = 101,
    CUDA_ERROR_INVALID_IMAGE = 200,
    CUDA_ERROR_INVALID_CONTEXT = 201,
    CUDA_ERROR_INVALID_HANDLE = 400,
    CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_NOT_READY = 600,
    CUDA_ERROR_ILLEGAL_ADDRESS = 700,
    CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701,
    CUDA_ERROR_INVALID_PTX = 218,
    CUDA_ERROR_NOT_SUPPORTED = 801,
    CUDA_ERROR_UNKNOWN = 999,
};

// ---- options and messages ---------------------------------------------------

static bool env_flag(const char *name, bool dflt) {
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    return !(strcmp(v, "0") == 0 || strcmp(v, "false") == 0 || strcmp(v, "no") == 0);
}

static bool opt_guard() {
    static bool v = env_flag("FAKE_CUDA_GUARD", true);
    return v;
}
static bool opt_reverse() {
    static bool v = env_flag("FAKE_CUDA_REVERSE", false);
    return v;
}
static bool opt_trace() {
    static bool v = env_flag("FAKE_CUDA_TRACE", false);
    return v;
}
static bool opt_abort() {
    static bool v = env_flag("FAKE_CUDA_ABORT", false);
    return v;
}

static void msg(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("[fake-cuda] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void trace(const char *fmt, ...) {
    if (!opt_trace()) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("[fake-cuda trace] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

// An API misuse the real driver would report with `code`: printed, and
// returned (or abort() with FAKE_CUDA_ABORT=1, for a backtrace).
static CUresult fail(CUresult code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("[fake-cuda] error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (CUresult %d)\n", code);
    va_end(ap);
    if (opt_abort()) abort();
    return code;
}

// A kernel bug the GPU would show as undefined behaviour or a hang: no
// CUresult can carry it out of a running kernel, so stop here.
[[noreturn]] static void kernel_fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("[fake-cuda] fatal: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

// ---- device, context --------------------------------------------------------

struct FkContext {
    int magic = 0x6378;
    int device = 0;
};
static FkContext g_primary;
static std::atomic<int> g_primary_refs{0};
static std::atomic<bool> g_inited{false};
static thread_local CUcontext t_current = nullptr;

#define NEED_INIT()                                                                  \
    do {                                                                             \
        if (!g_inited.load()) return fail(CUDA_ERROR_NOT_INITIALIZED, "%s before cuInit", __func__); \
    } while (0)
#define NEED_CTX()                                                                   \
    do {                                                                             \
        NEED_INIT();                                                                 \
        if (t_current == nullptr)                                                    \
            return fail(CUDA_ERROR_INVALID_CONTEXT, "%s with no current context on this thread", __func__); \
    } while (0)

FK_EXPORT CUresult cuInit(unsigned flags) {
    trace("cuInit(%u)", flags);
    if (flags != 0) return fail(CUDA_ERROR_INVALID_VALUE, "cuInit flags %u != 0", flags);
    g_inited = true;
    return CUDA_SUCCESS;
}

// NVRTC itself dlopens libcuda.so.1 and asks for the driver's private
// export tables (cuGetExportTable): the fake has none, which NVRTC accepts
// (without this symbol it calls a null pointer and crashes).
FK_EXPORT CUresult cuGetExportTable(const void **table, const void *uuid) {
    (void)uuid;
    if (table) *table = nullptr;
    return CUDA_ERROR_NOT_SUPPORTED;
}

FK_EXPORT CUresult cuDriverGetVersion(int *v) {
    if (!v) return CUDA_ERROR_INVALID_VALUE;
    *v = 12090;
    return CUDA_SUCCESS;
}

FK_EXPORT CUresult cuDeviceGetCount(int *count) {
    NEED_INIT();
    if (!count) return CUDA_ERROR_INVALID_VALUE;
    *count = 1;
    return CUDA_SUCCESS;
}

FK_EXPORT CUresult cuDeviceGet(CUdevice *dev, int ordinal) {
    NEED_INIT();
    if (!dev) return CUDA_ERROR_INVALID_VALUE;
    if (ordinal != 0) return fail(CUDA_ERROR_INVALID_DEVICE, "cuDeviceGet(%d): the fake has one device", ordinal);
    *dev = 0;
    return CUDA_SUCCESS;
}

static const size_t FK_TOTAL_MEM = 16ull << 30;

FK_EXPORT CUresult cuDeviceGetAttribute(int *pi, int attrib, CUdevice dev) {
    NEED_INIT();
    if (!pi) return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0) return fail(CUDA_ERROR_INVALID_DEVICE, "cuDeviceGetAttribute on device %d", dev);
    int v = 0;
    switch (attrib) {
    case 1: v = 1024; break;        // MAX_THREADS_PER_BLOCK
    case 2: v = 1024; break;        // MAX_BLOCK_DIM_X
    case 3: v = 1024; break;        // MAX_BLOCK_DIM_Y
    case 4: v = 64; break;          // MAX_BLOCK_DIM_Z
    case 5: v = 2147483647; break;  // MAX_GRID_DIM_X
    case 6: v = 65535; break;       // MAX_GRID_DIM_Y
    case 7: v = 65535; break;       // MAX_GRID_DIM_Z
    case 8: v = 49152; break;       // MAX_SHARED_MEMORY_PER_BLOCK
    case 9: v = 65536; break;       // TOTAL_CONSTANT_MEMORY
    case 10: v = 32; break;         // WARP_SIZE
    case 12: v = 65536; break;      // MAX_REGISTERS_PER_BLOCK
    case 13: v = 1500000; break;    // CLOCK_RATE
    case 16: v = 1; break;          // MULTIPROCESSOR_COUNT (one block at a time)
    case 39: v = 2048; break;       // MAX_THREADS_PER_MULTIPROCESSOR
    case 41: v = 1; break;          // UNIFIED_ADDRESSING
    case 75: v = 9; break;          // COMPUTE_CAPABILITY_MAJOR
    case 76: v = 0; break;          // COMPUTE_CAPABILITY_MINOR
    case 97: v = 49152; break;      // MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
    case 115: v = 1; break;         // MEMORY_POOLS_SUPPORTED
    default: v = 0; break;
    }
    *pi = v;
    return CUDA_SUCCESS;
}

FK_EXPORT CUresult cuDeviceGetName(char *name, int len, CUdevice dev) {
    NEED_INIT();
    if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    snprintf(name, (size_t)len, "hebb fake CUDA device (CPU)");
    return CUDA_SUCCESS;
}

FK_EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev) {
    NEED_INIT();
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    *bytes = FK_TOTAL_MEM;
    return CUDA_SUCCESS;
}

FK_EXPORT CUresult cuDeviceGetUuid(unsigned char *uuid, CUdevice dev) {
    NEED_INIT();
    if (!uuid) return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    memset(uuid, 0x42, 16);
    return CUDA_SUCCESS;
}
FK_EXPORT CUresult cuDeviceGetUuid_v2(unsigned char *uuid, CUdevice dev) { return cuDeviceGetUuid(uuid, dev); }

FK_EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev) {
    NEED_INIT();
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    g_primary_refs++;
    *pctx = &g_primary;
    trace("cuDevicePrimaryCtxRetain -> refs %d", g_primary_refs.load());
    return CUDA_SUCCESS;
}

FK_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
    NEED_INIT();
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (g_primary_refs.load() <= 0) return fail(CUDA_ERROR_INVALID_CONTEXT, "cuDevicePrimaryCtxRelease without a retain");
    g_primary_refs--;
    return CUDA_SUCCESS;
}

static bool valid_ctx(CUcontext c) { return c == &g_primary; }

FK_EXPORT CUresult cuCtxSetCurrent(CUcontext ctx) {
    NEED_INIT();
    if (ctx != nullptr && !valid_ctx(ctx)) return fail(CUDA_ERROR_INVALID_CONTEXT, "cuCtxSetCurrent(%p): not a context", (void *)ctx);
    t_current = ctx;
    return CUDA_SUCCESS;
}

FK_EXPORT CUresult cuCtxGetCurrent(CUcontext *pctx) {
    NEED_INIT();
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    *pctx = t_current;
    return CUDA_SUCCESS;
}

FK_EXPORT CUresult cuCtxPushCurrent_v2(CUcontext ctx) { return cuCtxSetCurrent(ctx); }
FK_EXPORT CUresult cuCtxPopCurrent_v2(CUcontext *pctx) {
    NEED_INIT();
    if (pctx) *pctx = t_current;
    t_current = nullptr;
    return CUDA_SUCCESS;
}

FK_EXPORT CUresult cuCtxGetDevice(CUdevice *dev) {
    NEED_CTX();
    if (!dev) return CUDA_ERROR_INVALID_VALUE;
    *dev = 0;
    return CUDA_SUCCESS;
}

FK_EXPORT CUresult cuCtxSynchronize(void) {
    NEED_CTX();
    return CUDA_SUCCESS;
}

FK_EXPORT CUresult cuCtxSetFlags(unsigned) { NEED_CTX(); return CUDA_SUCCESS; }
FK_EXPORT CUresult cuCtxGetLimit(size_t *v, int) { NEED_CTX(); if (v) *v = 0; return CUDA_SUCCESS; }
FK_EXPORT CUresult cuCtxSetLimit(int, size_t) { NEED_CTX(); return CUDA_SUCCESS; }
FK_EXPORT CUresult cuCtxGetCacheConfig(int *c) { NEED_CTX(); if (c) *c = 0; return CUDA_SUCCESS; }
FK_EXPORT CUresult cuCtxSetCacheConfig(int) { NEED_CTX(); return CUDA_SUCCESS; }
FK_EXPORT CUresult cuCtxGetStreamPriorityRange(int *least, int *greatest) {
    NEED_CTX();
    if (least) *least = 0;
    if (greatest) *greatest = 0;
    return CUDA_SUCCESS;
}

// ---- streams and events: everything runs synchronously at the call ----------

static std::mutex g_handles_mu;
static std::set<void *> g_streams;
static std::set<void *> g_events;

static CUresult check_stream(CUstream s, const char *fn) {
    if (s == nullptr || s == (CUstream)0x1 || s == (CUstream)0x2) return CUDA_SUCCESS;  // legacy / per-thread default
    std::lock_guard<std::mutex> g(g_handles_mu);
    if (!g_streams.count(s)) return fail(CUDA_ERROR_INVALID_HANDLE, "%s: stream %p was not created (or was destroyed)", fn, s);
    return CUDA_SUCCESS;
}

FK_EXPORT CUresult cuStreamCreate(CUstream *s, unsigned) {
    NEED_CTX();
    if (!s) return CUDA_ERROR_INVALID_VALUE;
    void *h = malloc(1);
    std::lock_guard<std::mutex> g(g_handles_mu);
    g_streams.insert(h);
    *s = h;
    return CUDA_SUCCESS;
}
FK_EXPORT CUresult cuStreamCreateWithPriority(CUstream *s, unsigned f, int) { return cuStreamCreate(s, f); }
FK_EXPORT CUresult cuStreamDestroy_v2(CUstream s) {
    NEED_INIT();
    std::lock_guard<std::mutex> g(g_handles_mu);
    if (!g_streams.erase(s)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuStreamDestroy(%p): not a stream", s);
    free(s);
    return CUDA_SUCCESS;
}
FK_EXPORT CUresult cuStreamSynchronize(CUstream s) {
    NEED_CTX();
    return check_stream(s, "cuStreamSynchronize");
}
FK_EXPORT CUresult cuStreamQuery(CUstream s) {
    NEED_CTX();
    return check_stream(s, "cuStreamQuery");
}
FK_EXPORT CUresult cuStreamWaitEvent(CUstream s, CUevent e, unsigned) {
    NEED_CTX();
    if (CUresult r = check_stream(s, "cuStreamWaitEvent")) return r;
    std::lock_guard<std::mutex> g(g_handles_mu);
    if (!g_events.count(e)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuStreamWaitEvent: %p is not an event", e);
    return CUDA_SUCCESS;
}
FK_EXPORT CUresult cuLaunchHostFunc(CUstream s, CUhostFn fn, void *data) {
    NEED_CTX();
    if (CUresult r = check_stream(s, "cuLaunchHostFunc")) return r;
    fn(data);
    return CUDA_SUCCESS;
}

FK_EXPORT CUresult cuEventCreate(CUevent *e, unsigned) {
    NEED_CTX();
    if (!e) return CUDA_ERROR_INVALID_VALUE;
    void *h = malloc(1);
    std::lock_guard<std::mutex> g(g_handles_mu);
    g_events.insert(h);
    *e = h;
    return CUDA_SUCCESS;
}
static CUresult check_event(CUevent e, const char *fn) {
    std::lock_guard<std::mutex> g(g_handles_mu);
    if (!g_events.count(e)) return fail(CUDA_ERROR_INVALID_HANDLE, "%s: %p is not an event", fn, e);
    return CUDA_SUCCESS;
}
FK_EXPORT CUresult cuEventDestroy_v2(CUevent e) {
    NEED_INIT();
    std::lock_guard<std::mutex> g(g_handles_mu);
    if (!g_events.erase(e)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventDestroy: %p is not an event", e);
    free(e);
    return CUDA_SUCCESS;
}
FK_EXPORT CUresult cuEventRecord(CUevent e, CUstream s) {
    NEED_CTX();
    if (CUresult r = check_stream(s, "cuEventRecord")) return r;
    return check_event(e, "cuEventRecord");
}
FK_EXPORT CUresult cuEventSynchronize(CUevent e) { NEED_CTX(); return check_event(e, "cuEventSynchronize"); }
FK_EXPORT CUresult cuEventQuery(CUevent e) { NEED_CTX(); return check_event(e, "cuEventQuery"); }
FK_EXPORT CUresult cuEventElapsedTime(float *ms, CUevent a, CUevent b) {
    NEED_CTX();
    if (CUresult r = check_event(a, "cuEventElapsedTime")) return r;
    if (CUresult r = check_event(b, "cuEventElapsedTime")) return r;
    if (ms) *ms = 0.0f;
    return CUDA_SUCCESS;
}
FK_EXPORT CUresult cuEventElapsedTime_v2(float *ms, CUevent a, CUevent b) { return cuEventElapsedTime(ms, a, b); }

// ---- memory -----------------------------------------------------------------
// Each allocation is an mmap whose last byte is followed by a PROT_NONE page
// (the buffer starts `size` bytes, rounded up to 8, before it), so a kernel
// or copy running off the end of a buffer faults at once; new memory is
// filled with 0xff bytes (NaN as f32), as a GPU's is not zeroed either.

struct Alloc {
    size_t size;
    void *map;
    size_t map_len;
};
static std::mutex g_mem_mu;
static std::map<uintptr_t, Alloc> g_allocs;  // by start address
static size_t g_live_bytes = 0;

static size_t page_size() {
    static size_t p = (size_t)sysconf(_SC_PAGESIZE);
    return p;
}

static CUresult do_alloc(CUdeviceptr *dptr, size_t bytes, const char *fn) {
    if (!dptr) return fail(CUDA_ERROR_INVALID_VALUE, "%s: null dptr", fn);
    if (bytes == 0) return fail(CUDA_ERROR_INVALID_VALUE, "%s of 0 bytes", fn);
    Alloc a{bytes, nullptr, 0};
    uintptr_t start;
    if (opt_guard()) {
        size_t ps = page_size();
        size_t rounded = (bytes + 7) & ~(size_t)7;
        size_t data_pages = (rounded + ps - 1) / ps;
        a.map_len = (data_pages + 1) * ps;
        void *m = mmap(nullptr, a.map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) return fail(CUDA_ERROR_OUT_OF_MEMORY, "%s(%zu): mmap failed", fn, bytes);
        uintptr_t guard = (uintptr_t)m + data_pages * ps;
        if (mprotect((void *)guard, ps, PROT_NONE) != 0) {
            munmap(m, a.map_len);
            return fail(CUDA_ERROR_OUT_OF_MEMORY, "%s: mprotect failed", fn);
        }
        a.map = m;
        start = guard - rounded;
    } else {
        void *m = nullptr;
        if (posix_memalign(&m, 256, bytes) != 0) return fail(CUDA_ERROR_OUT_OF_MEMORY, "%s(%zu)", fn, bytes);
        a.map = m;
        start = (uintptr_t)m;
    }
    memset((void *)start, 0xff, bytes);
    {
        std::lock_guard<std::mutex> g(g_mem_mu);
        g_allocs[start] = a;
        g_live_bytes += bytes;
    }
    *dptr = (CUdeviceptr)start;
    trace("%s(%zu) -> %#llx", fn, bytes, *dptr);
    return CUDA_SUCCESS;
}

static CUresult do_free(CUdeviceptr p, const char *fn) {
    Alloc a;
    {
        std::lock_guard<std::mutex> g(g_mem_mu);
        auto it = g_allocs.find((uintptr_t)p);
        if (it == g_allocs.end()) return fail(CUDA_ERROR_INVALID_VALUE, "%s(%#llx): not the start of a live allocation (double free?)", fn, p);
        a = it->second;
        g_live_bytes -= a.size;
        g_allocs.erase(it);
    }
    trace("%s(%#llx)", fn, p);
    if (opt_guard()) {
        // Unmapped: a use after free faults (until a later mmap reuses the range).
        munmap(a.map, a.map_len);
    } else {
        free(a.map);
    }
    return CUDA_SUCCESS;
}

// Whether [p, p + bytes) lies in one live allocation; if not, prints why.
static bool in_allocation(uintptr_t p, size_t bytes, const char *what, bool quiet = false) {
    std::lock_guard<std::mutex> g(g_mem_mu);
    auto it = g_allocs.upper_bound(p);
    if (it == g_allocs.begin()) {
        if (!quiet) msg("error: %s: %#lx is not in any device allocation", what, (unsigned long)p);
        return false;
    }
    --it;
    uintptr_t start = it->first;
    size_t size = it->second.size;
    if (p >= start + size) {
        if (!quiet) msg("error: %s: %#lx is not in any device allocation (the nearest below, %#lx, has %zu bytes)", what, (unsigned long)p, (unsigned long)start, size);
        return false;
    }
    if (bytes > start + size - p) {
        if (!quiet) msg("error: %s: %zu bytes at offset %zu overrun the allocation of %zu bytes", what, bytes, (size_t)(p - start), size);
        return false;
    }
    return true;
}

// For the fake cuBLAS and the fake NCCL.
FK_EXPORT int fakecuda_check_range(const void *p, size_t bytes, const char *what) {
    return in_allocation((uintptr_t)p, bytes, what) ? 1 : 0;
}
FK_EXPORT int fakecuda_has_context(void) { return t_current != nullptr; }
// For the fake NCCL: whether `s` is a live stream or a default stream (else prints why).
FK_EXPORT int fakecuda_check_stream(void *s, const char *what) { return check_stream(s, what) == CUDA_SUCCESS ? 1 : 0; }

FK_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytes) {
    NEED_CTX();
    return do_alloc(dptr, bytes, "cuMemAlloc");
}
FK_EXPORT CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytes, CUstream s) {
    NEED_CTX();
    if (CUresult r = check_stream(s, "cuMemAllocAsync")) return r;
    return do_alloc(dptr, bytes, "cuMemAllocAsync");
}
FK_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytes, CUmemoryPool, CUstream s) {
    return cuMemAllocAsync(dptr, bytes, s);
}
FK_EXPORT CUresult cuMemFree_v2(CUdeviceptr p) {
    NEED_CTX();
    return do_free(p, "cuMemFree");
}
FK_EXPORT CUresult cuMemFreeAsync(CUdeviceptr p, CUstream s) {
    NEED_CTX();
    if (CUresult r = check_stream(s, "cuMemFreeAsync")) return r;
    return do_free(p, "cuMemFreeAsync");
}
FK_EXPORT CUresult cuMemGetInfo_v2(size_t *freeb, size_t *total) {
    NEED_CTX();
    std::lock_guard<std::mutex> g(g_mem_mu);
    if (total) *total = FK_TOTAL_MEM;
    if (freeb) *freeb = FK_TOTAL_MEM > g_live_bytes ? FK_TOTAL_MEM - g_live_bytes : 0;
    return CUDA_SUCCESS;
}
FK_EXPORT CUresult cuMemHostAlloc(void **pp, size_t bytes, unsigned) {
    NEED_CTX();
    if (!pp) return CUDA_ERROR_INVALID_VALUE;
    *pp = malloc(bytes ? bytes : 1);
    return *pp ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}
FK_EXPORT CUresult cuMemFreeHost(void *p) {
    NEED_CTX();
    free(p);
    return CUDA_SUCCESS;
}

static CUresult memset_bytes(CUdeviceptr dst, const void *pattern, size_t elem, size_t n, const char *fn) {
    if (n == 0) return CUDA_SUCCESS;
    if (dst % elem != 0) return fail(CUDA_ERROR_INVALID_VALUE, "%s: %#llx is not %zu-byte aligned", fn, dst, elem);
    if (!in_allocation((uintptr_t)dst, n * elem, fn)) return fail(CUDA_ERROR_INVALID_VALUE, "%s(%#llx, %zu elements)", fn, dst, n);
    char *d = (char *)(uintptr_t)dst;
    for (size_t i = 0; i < n; ++i) memcpy(d + i * elem, pattern, elem);
    return CUDA_SUCCESS;
}
FK_EXPORT CUresult cuMemsetD8_v2(CUdeviceptr d, unsigned char v, size_t n) { NEED_CTX(); return memset_bytes(d, &v, 1, n, "cuMemsetD8"); }
FK_EXPORT CUresult cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, CUstream s) {
    NEED_CTX();
    if (CUresult r = check_stream(s, "cuMemsetD8Async")) return r;
    return memset_bytes(d, &v, 1, n, "cuMemsetD8Async");
}
FK_EXPORT CUresult cuMemsetD16Async(CUdeviceptr d, unsigned short v, size_t n, CUstream s) {
    NEED_CTX();
    if (CUresult r = check_stream(s, "cuMemsetD16Async")) return r;
    return memset_bytes(d, &v, 2, n, "cuMemsetD16Async");
}
FK_EXPORT CUresult cuMemsetD32Async(CUdeviceptr d, unsigned v, size_t n, CUstream s) {
    NEED_CTX();
    if (CUresult r = check_stream(s, "cuMemsetD32Async")) return r;
    return memset_bytes(d, &v, 4, n, "cuMemsetD32Async");
}
FK_EXPORT CUresult cuMemsetD32_v2(CUdeviceptr d, unsigned v, size_t n) { NEED_CTX(); return memset_bytes(d, &v, 4, n, "cuMemsetD32"); }

static CUresult copy(void *dst, const void *src, size_t bytes, bool dst_dev, bool src_dev, const char *fn) {
    if (bytes == 0) return CUDA_SUCCESS;
    if (dst_dev && !in_allocation((uintptr_t)dst, bytes, fn)) return fail(CUDA_ERROR_INVALID_VALUE, "%s: destination %p, %zu bytes", fn, dst, bytes);
    if (src_dev && !in_allocation((uintptr_t)src, bytes, fn)) return fail(CUDA_ERROR_INVALID_VALUE, "%s: source %p, %zu bytes", fn, src, bytes);
    if (!dst_dev && in_allocation((uintptr_t)dst, 1, fn, true)) return fail(CUDA_ERROR_INVALID_VALUE, "%s: host destination %p is device memory", fn, dst);
    if (!src_dev && in_allocation((uintptr_t)src, 1, fn, true)) return fail(CUDA_ERROR_INVALID_VALUE, "%s: host source %p is device memory", fn, src);
    trace("%s(%p <- %p, %zu bytes)", fn, dst, src, bytes);
    memmove(dst, src, bytes);
    return CUDA_SUCCESS;
}
#define DEV(p) ((void *)(uintptr_t)(p))
FK_EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void *h, size_t n) { NEED_CTX(); return copy(DEV(d), h, n, true, false, "cuMemcpyHtoD"); }
FK_EXPORT CUresult cuMemcpyDtoH_v2(void *h, CUdeviceptr d, size_t n) { NEED_CTX(); return copy(h, DEV(d), n, false, true, "cuMemcpyDtoH"); }
FK_EXPORT CUresult cuMemcpyDtoD_v2(CUdeviceptr d, CUdeviceptr s, size_t n) { NEED_CTX(); return copy(DEV(d), DEV(s), n, true, true, "cuMemcpyDtoD"); }
FK_EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void *h, size_t n, CUstream s) {
    NEED_CTX();
    if (CUresult r = check_stream(s, "cuMemcpyHtoDAsync")) return r;
    return copy(DEV(d), h, n, true, false, "cuMemcpyHtoDAsync");
}
FK_EXPORT CUresult cuMemcpyDtoHAsync_v2(void *h, CUdeviceptr d, size_t n, CUstream s) {
    NEED_CTX();
    if (CUresult r = check_stream(s, "cuMemcpyDtoHAsync")) return r;
    return copy(h, DEV(d), n, false, true, "cuMemcpyDtoHAsync");
}
FK_EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr d, CUdeviceptr src, size_t n, CUstream s) {
    NEED_CTX();
    if (CUresult r = check_stream(s, "cuMemcpyDtoDAsync")) return r;
    return copy(DEV(d), DEV(src), n, true, true, "cuMemcpyDtoDAsync");
}

// ---- kernels and modules ----------------------------------------------------

struct Kernel {
    std::string module, source, name;
    fk_wrapper run;
    std::vector<fk_param> params;
    bool uses_sync;
};

static std::vector<Kernel> &kernels() {
    static std::vector<Kernel> k;
    return k;
}

FK_EXPORT void fk_register_kernel(const char *module, const char *source, const char *name, fk_wrapper run,
                                  int nparams, const fk_param *params, int uses_sync) {
    Kernel k{module, source, name, run, std::vector<fk_param>(params, params + nparams), uses_sync != 0};
    kernels().push_back(k);
}

struct FkModule {
    int magic = 0x6d6f64;
    std::string module;  // crate/stem of the matching .cu
    std::map<std::string, const Kernel *> entries;
};
struct FkFunction {
    int magic = 0x66756e;
    FkModule *mod;
    const Kernel *k;
};

static std::mutex g_mod_mu;
static std::set<FkModule *> g_modules;

struct PtxEntry {
    std::string name;
    std::vector<size_t> param_sizes;
};

static size_t ptx_type_size(const std::string &t) {
    if (t.size() < 3) return 0;
    int bits = atoi(t.c_str() + 2);
    return bits > 0 ? (size_t)bits / 8 : 0;
}

// The `.entry` declarations of a PTX text, with the byte size of each parameter.
static bool parse_ptx(const char *ptx, std::vector<PtxEntry> &out, std::string &err) {
    const char *p = ptx;
    while ((p = strstr(p, ".entry"))) {
        p += 6;
        if (!isspace((unsigned char)*p)) continue;
        while (isspace((unsigned char)*p)) ++p;
        PtxEntry e;
        while (*p && (isalnum((unsigned char)*p) || *p == '_' || *p == '$')) e.name += *p++;
        while (isspace((unsigned char)*p)) ++p;
        if (*p != '(') {
            err = "no parameter list after .entry " + e.name;
            return false;
        }
        const char *close = strchr(p, ')');
        if (!close) {
            err = "unterminated parameter list of " + e.name;
            return false;
        }
        std::string list(p + 1, close);
        std::stringstream ss(list);
        std::string decl;
        while (std::getline(ss, decl, ',')) {
            std::stringstream ds(decl);
            std::string tok;
            size_t elem = 0, count = 1;
            bool any = false;
            while (ds >> tok) {
                any = true;
                static const char *types[] = {".u8", ".s8", ".b8", ".u16", ".s16", ".b16", ".f16", ".u32", ".s32", ".b32", ".f32", ".u64", ".s64", ".b64", ".f64"};
                for (const char *t : types)
                    if (tok == t) elem = ptx_type_size(tok);
                size_t lb = tok.find('[');
                if (lb != std::string::npos) count = (size_t)atoll(tok.c_str() + lb + 1);
            }
            if (!any) continue;
            if (elem == 0) {
                err = "cannot size parameter '" + decl + "' of " + e.name;
                return false;
            }
            e.param_sizes.push_back(elem * count);
        }
        out.push_back(e);
        p = close;
    }
    return true;
}

static CUresult load_ptx(CUmodule *mod, const char *ptx, const char *fn) {
    if (!mod || !ptx) return fail(CUDA_ERROR_INVALID_VALUE, "%s: null argument", fn);
    if (memcmp(ptx, "\x7f" "ELF", 4) == 0)
        return fail(CUDA_ERROR_INVALID_IMAGE, "%s: a cubin/ELF image; the fake only understands PTX text", fn);
    if (!strstr(ptx, ".version") || !strstr(ptx, ".target"))
        return fail(CUDA_ERROR_INVALID_PTX, "%s: the image does not look like PTX text", fn);
    std::vector<PtxEntry> entries;
    std::string err;
    if (!parse_ptx(ptx, entries, err)) return fail(CUDA_ERROR_INVALID_PTX, "%s: %s", fn, err.c_str());
    std::set<std::string> names;
    for (auto &e : entries) names.insert(e.name);
    // The .cu file that declares exactly these kernels.
    std::map<std::string, std::set<std::string>> by_module;
    for (auto &k : kernels()) by_module[k.module].insert(k.name);
    std::vector<std::string> matches;
    for (auto &[m, ks] : by_module)
        if (ks == names) matches.push_back(m);
    std::string list;
    for (auto &n : names) list += (list.empty() ? "" : ", ") + n;
    if (matches.size() != 1) {
        return fail(CUDA_ERROR_INVALID_IMAGE,
                    "%s: %s native build for a module with the entries {%s} (rebuild scripts/fake-cuda after editing a .cu file)",
                    fn, matches.empty() ? "no" : "more than one", list.c_str());
    }
    auto *m = new FkModule;
    m->module = matches[0];
    for (auto &k : kernels())
        if (k.module == m->module) m->entries[k.name] = &k;
    // The PTX's parameter sizes must be the native build's: catches a stale
    // fake build or a type the generator misread.
    for (auto &e : entries) {
        const Kernel *k = m->entries[e.name];
        bool same = e.param_sizes.size() == k->params.size();
        for (size_t i = 0; same && i < e.param_sizes.size(); ++i) same = e.param_sizes[i] == k->params[i].size;
        if (!same) {
            std::string a, b;
            for (auto s : e.param_sizes) a += std::to_string(s) + " ";
            for (auto &p : k->params) b += std::to_string(p.size) + " ";
            delete m;
            return fail(CUDA_ERROR_INVALID_IMAGE, "%s: %s::%s takes parameters of sizes [ %s] in the PTX but [ %s] in the native build (stale fake build?)",
                        fn, matches[0].c_str(), e.name.c_str(), a.c_str(), b.c_str());
        }
    }
    {
        std::lock_guard<std::mutex> g(g_mod_mu);
        g_modules.insert(m);
    }
    trace("%s -> module %s {%s}", fn, m->module.c_str(), list.c_str());
    *mod = m;
    return CUDA_SUCCESS;
}

FK_EXPORT CUresult cuModuleLoadData(CUmodule *mod, const void *image) {
    NEED_CTX();
    return load_ptx(mod, (const char *)image, "cuModuleLoadData");
}
FK_EXPORT CUresult cuModuleLoadDataEx(CUmodule *mod, const void *image, unsigned, void *, void **) {
    NEED_CTX();
    return load_ptx(mod, (const char *)image, "cuModuleLoadDataEx");
}
FK_EXPORT CUresult cuModuleLoad(CUmodule *mod, const char *path) {
    NEED_CTX();
    std::ifstream f(path ? path : "");
    if (!f) return fail(CUDA_ERROR_NOT_FOUND, "cuModuleLoad(%s): cannot read", path ? path : "(null)");
    std::stringstream ss;
    ss << f.rdbuf();
    return load_ptx(mod, ss.str().c_str(), "cuModuleLoad");
}
static bool valid_module(CUmodule m) {
    std::lock_guard<std::mutex> g(g_mod_mu);
    return g_modules.count(m) != 0;
}
FK_EXPORT CUresult cuModuleUnload(CUmodule m) {
    NEED_INIT();
    std::lock_guard<std::mutex> g(g_mod_mu);
    if (!g_modules.erase(m)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuModuleUnload(%p): not a loaded module", (void *)m);
    // Functions of the module stay allocated (their handles must not be
    // used any more, which the fake does not track).
    return CUDA_SUCCESS;
}
FK_EXPORT CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name) {
    NEED_CTX();
    if (!f || !name) return CUDA_ERROR_INVALID_VALUE;
    if (!valid_module(m)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuModuleGetFunction: %p is not a loaded module", (void *)m);
    auto it = m->entries.find(name);
    if (it == m->entries.end()) return fail(CUDA_ERROR_NOT_FOUND, "cuModuleGetFunction: module %s has no kernel '%s'", m->module.c_str(), name);
    *f = new FkFunction{0x66756e, m, it->second};
    return CUDA_SUCCESS;
}
FK_EXPORT CUresult cuModuleGetGlobal_v2(CUdeviceptr *, size_t *, CUmodule, const char *name) {
    return fail(CUDA_ERROR_NOT_SUPPORTED, "cuModuleGetGlobal(%s): module globals are not supported by the fake", name ? name : "");
}
FK_EXPORT CUresult cuFuncGetAttribute(int *v, int attrib, CUfunction f) {
    NEED_CTX();
    if (!v || !f || f->magic != 0x66756e) return CUDA_ERROR_INVALID_VALUE;
    *v = attrib == 0 ? 1024 : 0;  // MAX_THREADS_PER_BLOCK
    return CUDA_SUCCESS;
}
FK_EXPORT CUresult cuFuncSetAttribute(CUfunction, int, int) { NEED_CTX(); return CUDA_SUCCESS; }
FK_EXPORT CUresult cuFuncSetCacheConfig(CUfunction, int) { NEED_CTX(); return CUDA_SUCCESS; }

// ---- running a grid ---------------------------------------------------------

extern "C" {
fk_uint3 fk_threadIdx, fk_blockIdx, fk_blockDim, fk_gridDim;
}

// Context switch between fibers (x86-64 System V): saves the callee-saved
// registers, MXCSR and the x87 control word on the current stack, stores the
// stack pointer in *save and continues on the stack `next`.
extern "C" void fk_switch(void **save, void *next);
asm(R"(
    .text
    .globl fk_switch
    .hidden fk_switch
    .type fk_switch, @function
fk_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size fk_switch, .-fk_switch
)");

enum FiberState { F_RUNNABLE, F_AT_BARRIER, F_AT_SHFL, F_AT_SYNCWARP, F_DONE };

struct Fiber {
    void *sp;
    char *stack;
    FiberState state;
    fk_uint3 tid;
    unsigned linear;
    // pending shuffle
    unsigned mask;
    int kind, arg, width;
    unsigned long long value, result;
};

static const size_t FIBER_STACK = 256 * 1024;

struct Scheduler {
    std::vector<Fiber> fibers;
    void *sched_sp = nullptr;
    Fiber *current = nullptr;
    const Kernel *kernel = nullptr;
    void **params = nullptr;
    bool active = false;  // running fibers (else: sequential threads)
    bool warned_exit = false;
};
static Scheduler g_sched;

static void fiber_main() {
    Fiber *f = g_sched.current;
    g_sched.kernel->run(g_sched.params);
    f->state = F_DONE;
    fk_switch(&f->sp, g_sched.sched_sp);
    kernel_fatal("a finished fiber was resumed");
}

static void fiber_init(Fiber &f) {
    if (!f.stack) {
        f.stack = (char *)mmap(nullptr, FIBER_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (f.stack == MAP_FAILED) kernel_fatal("cannot allocate a fiber stack");
        mprotect(f.stack, page_size(), PROT_NONE);  // stack overflow guard
    }
    uintptr_t top = ((uintptr_t)f.stack + FIBER_STACK) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)top;
    *--sp = 0;                          // fake return address of fiber_main
    *--sp = (uint64_t)(uintptr_t)&fiber_main;  // fk_switch's `ret` target
    for (int i = 0; i < 6; ++i) *--sp = 0;     // rbp rbx r12 r13 r14 r15
    --sp;
    uint32_t csr;
    uint16_t cw;
    asm volatile("stmxcsr %0" : "=m"(csr));
    asm volatile("fnstcw %0" : "=m"(cw));
    memcpy((char *)sp, &csr, 4);
    memcpy((char *)sp + 4, &cw, 2);
    f.sp = sp;
    f.state = F_RUNNABLE;
}

static void yield_from_fiber(FiberState st) {
    Fiber *f = g_sched.current;
    f->state = st;
    fk_switch(&f->sp, g_sched.sched_sp);
}

static const char *kname() { return g_sched.kernel ? g_sched.kernel->name.c_str() : "?"; }

extern "C" void fk_syncthreads(void) {
    if (!g_sched.active)
        kernel_fatal("kernel %s called __syncthreads but was classified as sync-free (a sync hidden in a macro?); "
                     "fix scripts/fake-cuda/gen_kernels.py's classification", kname());
    yield_from_fiber(F_AT_BARRIER);
}

extern "C" void fk_syncwarp(unsigned mask) {
    if (!g_sched.active) kernel_fatal("kernel %s called __syncwarp but was classified as sync-free", kname());
    g_sched.current->mask = mask;
    yield_from_fiber(F_AT_SYNCWARP);
}

extern "C" unsigned long long fk_shfl(unsigned mask, unsigned long long bits, int kind, int arg, int width) {
    if (!g_sched.active) kernel_fatal("kernel %s called a warp shuffle but was classified as sync-free", kname());
    Fiber *f = g_sched.current;
    f->mask = mask;
    f->value = bits;
    f->kind = kind;
    f->arg = arg;
    f->width = width;
    yield_from_fiber(F_AT_SHFL);
    return f->result;
}

static const char *state_name(FiberState s) {
    switch (s) {
    case F_RUNNABLE: return "running";
    case F_AT_BARRIER: return "at __syncthreads";
    case F_AT_SHFL: return "at a warp shuffle";
    case F_AT_SYNCWARP: return "at __syncwarp";
    case F_DONE: return "exited";
    }
    return "?";
}

// Resolves the warp-level operations of warp w (lanes [base, base + n)) once
// no fiber of the block can run: every lane named in a mask must be at the
// same kind of operation with the same mask. Returns whether lanes were released.
static bool resolve_warp(std::vector<Fiber> &fs, size_t base, size_t n) {
    bool any = false;
    for (size_t l = 0; l < n; ++l) {
        FiberState s = fs[base + l].state;
        if (s == F_AT_SHFL || s == F_AT_SYNCWARP) any = true;
    }
    if (!any) return false;
    Fiber *first = nullptr;
    for (size_t l = 0; l < n; ++l) {
        Fiber &f = fs[base + l];
        if (f.state != F_AT_SHFL && f.state != F_AT_SYNCWARP) continue;
        if (!first) first = &f;
        if (!(f.mask >> l & 1u))
            kernel_fatal("kernel %s, block (%u,%u,%u): lane %zu of warp %zu calls a warp operation with mask %#x that does not include itself",
                         kname(), fk_blockIdx.x, fk_blockIdx.y, fk_blockIdx.z, l, base / 32, f.mask);
        if (f.mask != first->mask || f.state != first->state || (f.state == F_AT_SHFL && (f.kind != first->kind || f.width != first->width)))
            kernel_fatal("kernel %s, block (%u,%u,%u), warp %zu: lanes disagree on the warp operation (mask %#x vs %#x)",
                         kname(), fk_blockIdx.x, fk_blockIdx.y, fk_blockIdx.z, base / 32, f.mask, first->mask);
    }
    unsigned mask = first->mask;
    for (unsigned l = 0; l < 32; ++l) {
        if (!(mask >> l & 1u)) continue;
        if (l >= n)
            kernel_fatal("kernel %s: warp %zu has %zu lanes (block of %zu threads) but the mask %#x names lane %u",
                         kname(), base / 32, n, fs.size(), mask, l);
        Fiber &f = fs[base + l];
        if (f.state != first->state)
            kernel_fatal("kernel %s, block (%u,%u,%u), warp %zu: lane %u is %s while the lanes of mask %#x are %s (divergent warp operation: the GPU would hang or return garbage)",
                         kname(), fk_blockIdx.x, fk_blockIdx.y, fk_blockIdx.z, base / 32, l, state_name(f.state), mask, state_name(first->state));
    }
    if (first->state == F_AT_SHFL) {
        for (unsigned l = 0; l < n; ++l) {
            Fiber &f = fs[base + l];
            if (!(mask >> l & 1u)) continue;
            int w = f.width;
            if (w <= 0 || w > 32 || (w & (w - 1)))
                kernel_fatal("kernel %s: shuffle width %d is not a power of two <= 32", kname(), w);
            // The CUDA C Programming Guide's source lanes; out of range: own value.
            int seg = (int)l & ~(w - 1), in = (int)l & (w - 1);
            int src;
            switch (f.kind) {
            case FK_SHFL_IDX: src = seg + (f.arg & (w - 1)); break;
            case FK_SHFL_UP: src = in - f.arg >= 0 ? (int)l - f.arg : (int)l; break;
            case FK_SHFL_DOWN: src = in + f.arg < w ? (int)l + f.arg : (int)l; break;
            default:  // XOR: earlier groups may be read, later ones give the own value
                src = (int)l ^ f.arg;
                if (src < 0 || src >= seg + w) src = (int)l;
                break;
            }
            if (!(mask >> src & 1u))
                kernel_fatal("kernel %s: lane %u shuffles from lane %d, which is not in the mask %#x (undefined on a GPU)",
                             kname(), l, src, mask);
            f.result = fs[base + src].value;
        }
    }
    for (unsigned l = 0; l < n; ++l)
        if (mask >> l & 1u) fs[base + l].state = F_RUNNABLE;
    return true;
}

static void run_block_fibers(unsigned nthreads) {
    std::vector<Fiber> &fs = g_sched.fibers;
    if (fs.size() < nthreads) fs.resize(nthreads, Fiber{});
    for (unsigned t = 0; t < nthreads; ++t) {
        fiber_init(fs[t]);
        fs[t].linear = t;
        fs[t].tid = fk_uint3{t % fk_blockDim.x, (t / fk_blockDim.x) % fk_blockDim.y, t / (fk_blockDim.x * fk_blockDim.y)};
    }
    for (;;) {
        // Run every runnable fiber to its next synchronisation point.
        for (unsigned i = 0; i < nthreads; ++i) {
            unsigned t = opt_reverse() ? nthreads - 1 - i : i;
            Fiber &f = fs[t];
            if (f.state != F_RUNNABLE) continue;
            g_sched.current = &f;
            fk_threadIdx = f.tid;
            fk_switch(&g_sched.sched_sp, f.sp);
        }
        g_sched.current = nullptr;
        // Warp operations first: a warp at a shuffle only waits for its lanes.
        bool released = false;
        for (unsigned base = 0; base < nthreads; base += 32)
            released |= resolve_warp(fs, base, std::min<unsigned>(32, nthreads - base));
        if (released) continue;
        unsigned done = 0, at_barrier = 0;
        for (unsigned t = 0; t < nthreads; ++t) {
            if (fs[t].state == F_DONE) ++done;
            else if (fs[t].state == F_AT_BARRIER) ++at_barrier;
        }
        if (done == nthreads) return;
        if (at_barrier + done != nthreads)
            kernel_fatal("kernel %s: block stuck (neither a barrier nor a warp operation can complete)", kname());
        if (done > 0 && !g_sched.warned_exit) {
            g_sched.warned_exit = true;
            msg("warning: kernel %s, block (%u,%u,%u): __syncthreads reached by %u threads while %u have exited "
                "(undefined behaviour in CUDA; the fake releases the barrier)",
                kname(), fk_blockIdx.x, fk_blockIdx.y, fk_blockIdx.z, at_barrier, done);
        }
        for (unsigned t = 0; t < nthreads; ++t)
            if (fs[t].state == F_AT_BARRIER) fs[t].state = F_RUNNABLE;
    }
}

static std::mutex g_launch_mu;

FK_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                  unsigned bz, unsigned shared, CUstream s, void **params, void **extra) {
    NEED_CTX();
    if (!f || f->magic != 0x66756e) return fail(CUDA_ERROR_INVALID_HANDLE, "cuLaunchKernel: %p is not a function", (void *)f);
    if (!valid_module(f->mod)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuLaunchKernel(%s): its module was unloaded", f->k->name.c_str());
    if (CUresult r = check_stream(s, "cuLaunchKernel")) return r;
    const Kernel *k = f->k;
    const char *kn = k->name.c_str();
    if (extra) return fail(CUDA_ERROR_NOT_SUPPORTED, "cuLaunchKernel(%s): `extra` parameters are not supported", kn);
    if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0)
        return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel(%s): a zero dimension, grid (%u,%u,%u) block (%u,%u,%u)", kn, gx, gy, gz, bx, by, bz);
    if (bx > 1024 || by > 1024 || bz > 64 || (unsigned long long)bx * by * bz > 1024)
        return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel(%s): block (%u,%u,%u) exceeds 1024 threads", kn, bx, by, bz);
    if (gx > 2147483647u || gy > 65535 || gz > 65535)
        return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel(%s): grid (%u,%u,%u) too large", kn, gx, gy, gz);
    if (shared > 49152)
        return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel(%s): %u bytes of dynamic shared memory", kn, shared);
    if (shared > 0) msg("warning: cuLaunchKernel(%s): dynamic shared memory (extern __shared__) is not emulated", kn);
    if (!params && !k->params.empty()) return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel(%s): null kernelParams", kn);
    // Pointer parameters must point into live device memory (not host memory,
    // not a freed buffer). Where they point is what the kernel reads.
    for (size_t i = 0; i < k->params.size(); ++i) {
        if (!params[i]) return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel(%s): kernelParams[%zu] is null", kn, i);
        if (!k->params[i].is_pointer) continue;
        uintptr_t p;
        memcpy(&p, params[i], sizeof p);
        char what[256];
        snprintf(what, sizeof what, "kernel %s, parameter %zu (%s)", kn, i, k->params[i].type);
        if (!in_allocation(p, 1, what))
            return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel(%s): parameter %zu (%s) = %#lx is not device memory", kn, i, k->params[i].type, (unsigned long)p);
    }
    trace("cuLaunchKernel %s/%s grid (%u,%u,%u) block (%u,%u,%u)", k->module.c_str(), kn, gx, gy, gz, bx, by, bz);

    std::lock_guard<std::mutex> g(g_launch_mu);
    g_sched.kernel = k;
    g_sched.params = params;
    g_sched.warned_exit = false;
    fk_gridDim = fk_uint3{gx, gy, gz};
    fk_blockDim = fk_uint3{bx, by, bz};
    unsigned long long nblocks = (unsigned long long)gx * gy * gz;
    unsigned nthreads = bx * by * bz;
    bool rev = opt_reverse();
    for (unsigned long long bi = 0; bi < nblocks; ++bi) {
        unsigned long long b = rev ? nblocks - 1 - bi : bi;
        fk_blockIdx = fk_uint3{(unsigned)(b % gx), (unsigned)((b / gx) % gy), (unsigned)(b / ((unsigned long long)gx * gy))};
        if (k->uses_sync) {
            g_sched.active = true;
            run_block_fibers(nthreads);
            g_sched.active = false;
        } else {
            for (unsigned ti = 0; ti < nthreads; ++ti) {
                unsigned t = rev ? nthreads - 1 - ti : ti;
                fk_threadIdx = fk_uint3{t % bx, (t / bx) % by, t / (bx * by)};
                k->run(params);
            }
        }
    }
    g_sched.kernel = nullptr;
    return CUDA_SUCCESS;
}

FK_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                             unsigned bz, unsigned shared, CUstream s, void **params) {
    return cuLaunchKernel(f, gx, gy, gz, bx, by, bz, shared, s, params, nullptr);
}

FK_EXPORT CUresult cuOccupancyMaxPotentialBlockSize(int *min_grid, int *block, CUfunction, void *, size_t, int) {
    NEED_CTX();
    if (min_grid) *min_grid = 1;
    if (block) *block = 1024;
    return CUDA_SUCCESS;
}

// ---- errors -----------------------------------------------------------------

static const char *err_name(int e) {
    switch (e) {
    case 0: return "CUDA_SUCCESS";
    case 1: return "CUDA_ERROR_INVALID_VALUE";
    case 2: return "CUDA_ERROR_OUT_OF_MEMORY";
    case 3: return "CUDA_ERROR_NOT_INITIALIZED";
    case 4: return "CUDA_ERROR_DEINITIALIZED";
    case 100: return "CUDA_ERROR_NO_DEVICE";
    case 101: return "CUDA_ERROR_INVALID_DEVICE";
    case 200: return "CUDA_ERROR_INVALID_IMAGE";
    case 201: return "CUDA_ERROR_INVALID_CONTEXT";
    case 218: return "CUDA_ERROR_INVALID_PTX";
    case 400: return "CUDA_ERROR_INVALID_HANDLE";
    case 500: return "CUDA_ERROR_NOT_FOUND";
    case 600: return "CUDA_ERROR_NOT_READY";
    case 700: return "CUDA_ERROR_ILLEGAL_ADDRESS";
    case 701: return "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES";
    case 801: return "CUDA_ERROR_NOT_SUPPORTED";
    case 999: return "CUDA_ERROR_UNKNOWN";
    }
    return nullptr;
}

FK_EXPORT CUresult cuGetErrorName(CUresult e, const char **s) {
    if (!s) return CUDA_ERROR_INVALID_VALUE;
    *s = err_name(e);
    return *s ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
FK_EXPORT CUresult cuGetErrorString(CUresult e, const char **s) {
    if (!s) return CUDA_ERROR_INVALID_VALUE;
    const char *n = err_name(e);
    if (!n) {
        *s = nullptr;
        return CUDA_ERROR_INVALID_VALUE;
    }
    *s = n;  // the name doubles as the description
    return CUDA_SUCCESS;
}
