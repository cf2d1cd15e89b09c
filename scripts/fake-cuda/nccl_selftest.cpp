// Self-test of the fake NCCL (libnccl.so.2), needing no GPU and no MPI: each
// check forks its ranks (the unique id, made by the parent, passes through
// the fork, as MPI would broadcast it), allocates buffers with the fake
// driver, runs collectives and compares every element with the result the
// fake promises: the reduction in rank order 0, 1, ..., n-1.
//
// Prints one line per check and exits non-zero if any fails. The children's
// stderr (the fake's own error messages, which several checks provoke on
// purpose) is shown for failed checks only, or for all with -v.
//
// Usage: nccl_selftest [-v]   (built by build.sh next to libnccl.so.2)

#include "fake_nccl.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

// The fake driver's API, as cudarc calls it.
extern "C" {
typedef int CUresult;
typedef unsigned long long CUdeviceptr;
CUresult cuInit(unsigned flags);
CUresult cuDeviceGet(int *dev, int ordinal);
CUresult cuDevicePrimaryCtxRetain(void **ctx, int dev);
CUresult cuCtxSetCurrent(void *ctx);
CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t bytes);
CUresult cuMemFree_v2(CUdeviceptr p);
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t bytes);
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t bytes);
CUresult cuStreamCreate(void **stream, unsigned flags);
CUresult cuStreamDestroy_v2(void *stream);
}

namespace {

// ---- in a rank (a forked child) ---------------------------------------------

struct Rank {
    int rank, n;
    ncclComm_t comm;
};

int g_rank = -1;

// Prints why a check failed on this rank; returns false.
bool bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool bad(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "  rank %d: ", g_rank);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return false;
}

bool expect_result(ncclResult_t got, ncclResult_t want, const char *what) {
    if (got == want) return true;
    return bad("%s returned %d (%s), expected %d; last error: %s", what, (int)got, ncclGetErrorString(got), (int)want,
               ncclGetLastError(nullptr));
}

bool last_error_mentions(const char *text) {
    if (strstr(ncclGetLastError(nullptr), text)) return true;
    return bad("ncclGetLastError() = \"%s\" does not mention \"%s\"", ncclGetLastError(nullptr), text);
}

double now_s() {
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

bool cuda_init() {
    int dev = -1;
    void *ctx = nullptr;
    return cuInit(0) == 0 && cuDeviceGet(&dev, 0) == 0 && cuDevicePrimaryCtxRetain(&ctx, dev) == 0 && cuCtxSetCurrent(ctx) == 0;
}

// Device buffers of the fake driver, filled and read through its copies.
void *dev_alloc(size_t bytes) {
    CUdeviceptr p = 0;
    if (cuMemAlloc_v2(&p, bytes) != 0) {
        bad("cuMemAlloc(%zu) failed", bytes);
        _exit(1);
    }
    return (void *)(uintptr_t)p;
}
void dev_free(void *p) { cuMemFree_v2((CUdeviceptr)(uintptr_t)p); }
template <class T> void *dev_upload(const std::vector<T> &h) {
    void *d = dev_alloc(h.size() * sizeof(T));
    cuMemcpyHtoD_v2((CUdeviceptr)(uintptr_t)d, h.data(), h.size() * sizeof(T));
    return d;
}
template <class T> std::vector<T> dev_download(const void *d, size_t count) {
    std::vector<T> h(count);
    cuMemcpyDtoH_v2(h.data(), (CUdeviceptr)(uintptr_t)d, count * sizeof(T));
    return h;
}

// Rank r's element i: not exactly representable, so that the order of the
// sum shows in the last bits.
template <class T> T value(int r, size_t i) {
    long k = (long)((i * 37 + (size_t)r * 101) % 1009);
    if constexpr (std::is_integral_v<T>) return (T)(k - 500);
    else return (T)((double)k * 0.013 + 0.5 * r - 3.0);
}
template <class T> std::vector<T> values(int r, size_t count) {
    std::vector<T> v(count);
    for (size_t i = 0; i < count; ++i) v[i] = value<T>(r, i);
    return v;
}

// What the fake promises: the reduction in rank order; ncclAvg as NCCL
// (floats: each input times 1/n, then the sum; integers: the sum over n).
template <class T> T expected(ncclRedOp_t op, int n, size_t i) {
    const T scale = (T)(1.0 / n);
    T acc = value<T>(0, i);
    if (op == ncclAvg && !std::is_integral_v<T>) acc = acc * scale;
    for (int p = 1; p < n; ++p) {
        T x = value<T>(p, i);
        switch (op) {
        case ncclProd: acc = acc * x; break;
        case ncclMax: acc = std::is_integral_v<T> ? (x > acc ? x : acc) : (T)std::fmax(acc, x); break;
        case ncclMin: acc = std::is_integral_v<T> ? (x < acc ? x : acc) : (T)std::fmin(acc, x); break;
        case ncclAvg: acc = acc + (std::is_integral_v<T> ? x : x * scale); break;
        default: acc = acc + x; break;
        }
    }
    if (op == ncclAvg && std::is_integral_v<T>) acc = (T)(acc / n);
    return acc;
}

// Compares bit for bit.
template <class T> bool same(const std::vector<T> &got, const std::function<T(size_t)> &want, const char *what) {
    for (size_t i = 0; i < got.size(); ++i) {
        T w = want(i);
        if (memcmp(&got[i], &w, sizeof(T)) != 0)
            return bad("%s: element %zu of %zu is %.9g, expected %.9g", what, i, got.size(), (double)got[i], (double)w);
    }
    return true;
}

template <class T>
bool all_reduce(const Rank &R, ncclDataType_t dt, ncclRedOp_t op, size_t count, bool in_place, void *stream = nullptr) {
    void *send = dev_upload(values<T>(R.rank, count));
    void *recv = in_place ? send : dev_alloc(count * sizeof(T));
    bool ok = expect_result(ncclAllReduce(send, recv, count, dt, op, R.comm, stream), ncclSuccess, "ncclAllReduce") &&
              same<T>(dev_download<T>(recv, count), [&](size_t i) { return expected<T>(op, R.n, i); }, "ncclAllReduce");
    if (!in_place) dev_free(recv);
    dev_free(send);
    return ok;
}

// ---- the checks' bodies -------------------------------------------------------

const size_t BIG = 300001;  // odd, and 1.2 MB of float32: more than one slot of the fake (1 MiB)

bool world_of_one(const Rank &R, const std::string &segment) {
    struct stat st;
    int count = 0, rank = -1, dev = -1;
    bool ok = expect_result(ncclCommCount(R.comm, &count), ncclSuccess, "ncclCommCount") && count == 1 &&
              expect_result(ncclCommUserRank(R.comm, &rank), ncclSuccess, "ncclCommUserRank") && rank == 0 &&
              expect_result(ncclCommCuDevice(R.comm, &dev), ncclSuccess, "ncclCommCuDevice") && dev == 0;
    if (!ok) return bad("count %d, rank %d, device %d", count, rank, dev);
    if (stat(segment.c_str(), &st) == 0) return bad("%s exists: a world of one needs no shared memory", segment.c_str());
    if (!all_reduce<float>(R, ncclFloat32, ncclSum, BIG, false) || !all_reduce<float>(R, ncclFloat32, ncclAvg, 5, true)) return false;
    std::vector<double> h = values<double>(0, 9);
    void *src = dev_upload(h), *dst = dev_alloc(9 * sizeof(double));
    ok = expect_result(ncclBroadcast(src, dst, 9, ncclFloat64, 0, R.comm, nullptr), ncclSuccess, "ncclBroadcast") &&
         same<double>(dev_download<double>(dst, 9), [&](size_t i) { return h[i]; }, "ncclBroadcast");
    dev_free(src);
    dev_free(dst);
    return ok;
}

bool broadcast_from_1(const Rank &R) {
    const size_t count = 200001;  // 800 KB: two rounds
    std::vector<float> from_root = values<float>(1, count);
    auto want = [&](size_t i) { return from_root[i]; };
    // Out of place; non-roots pass no send buffer (as cudarc does).
    void *send = R.rank == 1 ? dev_upload(from_root) : nullptr;
    void *recv = dev_alloc(count * sizeof(float));
    bool ok = expect_result(ncclBroadcast(send, recv, count, ncclFloat32, 1, R.comm, nullptr), ncclSuccess, "ncclBroadcast") &&
              same<float>(dev_download<float>(recv, count), want, "ncclBroadcast out of place");
    if (send) dev_free(send);
    dev_free(recv);
    // In place: every rank's buffer, the root's holding the data.
    void *buf = dev_upload(R.rank == 1 ? from_root : values<float>(R.rank, count));
    ok = ok && expect_result(ncclBroadcast(buf, buf, count, ncclFloat32, 1, R.comm, nullptr), ncclSuccess, "ncclBroadcast") &&
         same<float>(dev_download<float>(buf, count), want, "ncclBroadcast in place");
    dev_free(buf);
    return ok;
}

bool other_collectives(const Rank &R) {
    const int n = R.n;
    // ncclReduce to rank 2 (the others pass no receive buffer).
    const size_t rc = 150001;
    void *send = dev_upload(values<float>(R.rank, rc));
    void *recv = R.rank == 2 ? dev_alloc(rc * sizeof(float)) : nullptr;
    bool ok = expect_result(ncclReduce(send, recv, rc, ncclFloat32, ncclSum, 2, R.comm, nullptr), ncclSuccess, "ncclReduce");
    if (ok && recv) ok = same<float>(dev_download<float>(recv, rc), [&](size_t i) { return expected<float>(ncclSum, n, i); }, "ncclReduce");
    dev_free(send);
    if (recv) dev_free(recv);
    // ncclAllGather in place: this rank's block of the result holds its input.
    const size_t gc = 150001;  // 600 KB per rank: two rounds
    std::vector<float> all((size_t)n * gc);
    for (int p = 0; p < n; ++p)
        for (size_t i = 0; i < gc; ++i) all[(size_t)p * gc + i] = p == R.rank ? value<float>(p, i) : NAN;
    void *buf = dev_upload(all);
    ok = ok && expect_result(ncclAllGather((char *)buf + (size_t)R.rank * gc * sizeof(float), buf, gc, ncclFloat32, R.comm, nullptr),
                             ncclSuccess, "ncclAllGather") &&
         same<float>(dev_download<float>(buf, (size_t)n * gc), [&](size_t j) { return value<float>((int)(j / gc), j % gc); }, "ncclAllGather");
    dev_free(buf);
    // ncclReduceScatter out of place: rank r gets block r of the sum.
    const size_t sc = 50001;  // > one round of 3 ranks' blocks
    send = dev_upload(values<float>(R.rank, (size_t)n * sc));
    recv = dev_alloc(sc * sizeof(float));
    ok = ok && expect_result(ncclReduceScatter(send, recv, sc, ncclFloat32, ncclSum, R.comm, nullptr), ncclSuccess, "ncclReduceScatter") &&
         same<float>(dev_download<float>(recv, sc), [&](size_t i) { return expected<float>(ncclSum, n, (size_t)R.rank * sc + i); }, "ncclReduceScatter");
    dev_free(send);
    dev_free(recv);
    return ok;
}

// float16 and bfloat16 round after every addition, as the GPU: 2048 + 1 + 1
// stays 2048 in float16 (the spacing there is 2), 256 + 1 + 1 stays 256 in bfloat16.
bool sixteen_bits(const Rank &R) {
    static const uint16_t half_in[3][2] = {{0x3800, 0x6800}, {0x3c00, 0x3c00}, {0x3e00, 0x3c00}};  // 0.5 1 1.5 | 2048 1 1
    static const uint16_t bf16_in[3][2] = {{0x3f00, 0x4380}, {0x3f80, 0x3f80}, {0x3fc0, 0x3f80}};  // 0.5 1 1.5 | 256 1 1
    bool ok = true;
    for (int t = 0; t < 2; ++t) {
        const uint16_t(*in)[2] = t == 0 ? half_in : bf16_in;
        const uint16_t want[2] = {(uint16_t)(t == 0 ? 0x4200 : 0x4040), in[0][1]};  // 3.0, unchanged
        void *buf = dev_upload(std::vector<uint16_t>{in[R.rank][0], in[R.rank][1]});
        ok = ok && expect_result(ncclAllReduce(buf, buf, 2, t == 0 ? ncclFloat16 : ncclBfloat16, ncclSum, R.comm, nullptr), ncclSuccess, "ncclAllReduce");
        std::vector<uint16_t> got = dev_download<uint16_t>(buf, 2);
        if (ok && (got[0] != want[0] || got[1] != want[1]))
            ok = bad("%s sum: got %#x %#x, expected %#x %#x", t == 0 ? "float16" : "bfloat16", got[0], got[1], want[0], want[1]);
        dev_free(buf);
    }
    return ok;
}

bool ops_and_integers(const Rank &R) {
    bool ok = true;
    for (ncclRedOp_t op : {ncclProd, ncclMax, ncclMin, ncclAvg}) ok = ok && all_reduce<float>(R, ncclFloat32, op, 1001, false);
    for (ncclRedOp_t op : {ncclSum, ncclAvg, ncclMin}) ok = ok && all_reduce<int32_t>(R, ncclInt32, op, 1001, true);
    ok = ok && all_reduce<int64_t>(R, ncclInt64, ncclSum, 77, false) && all_reduce<uint8_t>(R, ncclUint8, ncclMax, 33, false);
    // A stream made with cuStreamCreate (the fake driver checks it is live).
    void *stream = nullptr;
    ok = ok && cuStreamCreate(&stream, 0) == 0 && all_reduce<double>(R, ncclFloat64, ncclSum, 3, false, stream);
    cuStreamDestroy_v2(stream);
    return ok;
}

bool host_pointer(const Rank &R) {
    const size_t count = 64;
    std::vector<float> host = values<float>(R.rank, count);
    void *dev = dev_upload(host);
    if (R.rank == 0) {  // passes host memory: refused here; the peer learns it at once
        if (!expect_result(ncclAllReduce(host.data(), dev, count, ncclFloat32, ncclSum, R.comm, nullptr), ncclInvalidArgument,
                           "ncclAllReduce(host send buffer)") ||
            !last_error_mentions("device memory"))
            return false;
    } else {
        double t0 = now_s();
        if (!expect_result(ncclAllReduce(dev, dev, count, ncclFloat32, ncclSum, R.comm, nullptr), ncclInvalidUsage,
                           "ncclAllReduce(peer's call refused)") ||
            !last_error_mentions("rank 0's call was refused"))
            return false;
        if (now_s() - t0 > 2.0) return bad("the peer's refusal took %.1f s", now_s() - t0);
    }
    dev_free(dev);
    // The communicator still works.
    return all_reduce<float>(R, ncclFloat32, ncclSum, 5, false);
}

bool bad_arguments(const Rank &R, const ncclUniqueId &id) {
    ncclComm_t c = nullptr;
    void *buf = dev_upload(values<float>(0, 8));
    ncclUniqueId zero;
    memset(&zero, 0, sizeof zero);
    void *stream = nullptr;
    cuStreamCreate(&stream, 0);
    cuStreamDestroy_v2(stream);
    ncclComm_t finalized = nullptr, destroyed = nullptr;
    int group_ok = ncclGroupStart() == ncclSuccess && ncclGroupEnd() == ncclSuccess;
    bool ok = expect_result(ncclCommInitRank(&c, 2, id, 2), ncclInvalidArgument, "ncclCommInitRank(rank 2 of 2)") &&
              expect_result(ncclCommInitRank(&c, 2, id, -1), ncclInvalidArgument, "ncclCommInitRank(rank -1)") &&
              expect_result(ncclCommInitRank(&c, 0, id, 0), ncclInvalidArgument, "ncclCommInitRank(0 ranks)") &&
              expect_result(ncclCommInitRank(&c, 2, zero, 0), ncclInvalidArgument, "ncclCommInitRank(zeroed id)") &&
              last_error_mentions("ncclGetUniqueId") &&
              expect_result(ncclAllReduce(buf, buf, 8, ncclFloat32, ncclSum, nullptr, nullptr), ncclInvalidArgument, "ncclAllReduce(null comm)") &&
              expect_result(ncclAllReduce(buf, buf, 8, (ncclDataType_t)99, ncclSum, R.comm, nullptr), ncclInvalidArgument, "ncclAllReduce(datatype 99)") &&
              expect_result(ncclAllReduce(buf, buf, 8, ncclFloat32, (ncclRedOp_t)17, R.comm, nullptr), ncclInvalidArgument, "ncclAllReduce(op 17)") &&
              expect_result(ncclAllReduce(buf, buf, 9, ncclFloat32, ncclSum, R.comm, nullptr), ncclInvalidArgument, "ncclAllReduce(count past the buffer)") &&
              expect_result(ncclAllReduce(buf, (char *)buf + 4, 4, ncclFloat32, ncclSum, R.comm, nullptr), ncclInvalidArgument, "ncclAllReduce(overlapping buffers)") &&
              expect_result(ncclBroadcast(buf, buf, 8, ncclFloat32, 1, R.comm, nullptr), ncclInvalidArgument, "ncclBroadcast(root 1 of 1)") &&
              expect_result(ncclAllReduce(buf, buf, 8, ncclFloat32, ncclSum, R.comm, stream), ncclUnhandledCudaError, "ncclAllReduce(destroyed stream)") &&
              expect_result(ncclGroupEnd(), ncclInvalidUsage, "ncclGroupEnd without ncclGroupStart") && group_ok &&
              expect_result(ncclCommInitRank(&finalized, 1, id, 0), ncclSuccess, "ncclCommInitRank(1 rank)") &&
              expect_result(ncclCommFinalize(finalized), ncclSuccess, "ncclCommFinalize") &&
              expect_result(ncclAllReduce(buf, buf, 8, ncclFloat32, ncclSum, finalized, nullptr), ncclInvalidUsage, "ncclAllReduce(finalized comm)") &&
              expect_result(ncclCommDestroy(finalized), ncclSuccess, "ncclCommDestroy") &&
              expect_result(ncclCommInitRank(&destroyed, 1, id, 0), ncclSuccess, "ncclCommInitRank(1 rank)") &&
              expect_result(ncclCommDestroy(destroyed), ncclSuccess, "ncclCommDestroy") &&
              expect_result(ncclAllReduce(buf, buf, 8, ncclFloat32, ncclSum, destroyed, nullptr), ncclInvalidArgument, "ncclAllReduce(destroyed comm)") &&
              expect_result(ncclCommDestroy(destroyed), ncclInvalidArgument, "ncclCommDestroy twice") &&
              expect_result(ncclSend(buf, 8, ncclFloat32, 0, R.comm, nullptr), ncclInvalidUsage, "ncclSend");
    int version = 0;
    ok = ok && expect_result(ncclGetVersion(&version), ncclSuccess, "ncclGetVersion") && (version >= 22800 || bad("version %d", version));
    dev_free(buf);
    return ok;
}

bool mismatch(const Rank &R) {
    const size_t count = R.rank == 0 ? 10 : 12;
    void *buf = dev_upload(values<float>(R.rank, count));
    bool ok = expect_result(ncclAllReduce(buf, buf, count, ncclFloat32, ncclSum, R.comm, nullptr), ncclInvalidUsage, "ncclAllReduce(count 10 vs 12)") &&
              last_error_mentions("the ranks disagree");
    dev_free(buf);
    return ok;
}

// Rank 1 exits after joining; rank 0 must fail, not hang, and so must every later call.
bool dead_peer(const Rank &R, double timeout) {
    if (R.rank == 1) _exit(0);
    void *buf = dev_upload(values<float>(0, 16));
    double t0 = now_s();
    bool ok = expect_result(ncclAllReduce(buf, buf, 16, ncclFloat32, ncclSum, R.comm, nullptr), ncclRemoteError, "ncclAllReduce(dead peer)");
    double took = now_s() - t0;
    if (ok && took > timeout) ok = bad("the dead peer was noticed after %.2f s (timeout %.0f s)", took, timeout);
    ncclResult_t async = ncclSuccess;
    ok = ok && expect_result(ncclAllReduce(buf, buf, 16, ncclFloat32, ncclSum, R.comm, nullptr), ncclRemoteError, "the next ncclAllReduce") &&
         last_error_mentions("failed earlier") &&
         expect_result(ncclCommGetAsyncError(R.comm, &async), ncclSuccess, "ncclCommGetAsyncError") &&
         expect_result(async, ncclRemoteError, "its async error");
    dev_free(buf);
    return ok;
}

// Rank 1 lives but does not call for 2 s: rank 0 gives up at its deadline
// (1 s), and rank 1's late call then fails at once.
bool stalled_peer(const Rank &R) {
    void *buf = dev_upload(values<float>(R.rank, 16));
    bool ok;
    if (R.rank == 1) {
        sleep(2);
        double t0 = now_s();
        ok = expect_result(ncclAllReduce(buf, buf, 16, ncclFloat32, ncclSum, R.comm, nullptr), ncclRemoteError, "the late ncclAllReduce") &&
             last_error_mentions("rank 0 gave up");
        if (ok && now_s() - t0 > 0.5) ok = bad("the late call took %.2f s to fail", now_s() - t0);
    } else {
        double t0 = now_s();
        ok = expect_result(ncclAllReduce(buf, buf, 16, ncclFloat32, ncclSum, R.comm, nullptr), ncclRemoteError, "ncclAllReduce(stalled peer)") &&
             last_error_mentions("rank 0 waited 1 s for the other ranks in ncclAllReduce: a peer died or stopped calling");
        double took = now_s() - t0;
        if (ok && (took < 0.9 || took > 1.9)) ok = bad("gave up after %.2f s, expected about 1 s", took);
    }
    dev_free(buf);
    return ok;
}

// Three ranks all-reduce in a loop; rank 2 is SIGKILLed in the third
// iteration; ranks 0 and 1 must both fail in that call.
bool killed_peer(const Rank &R) {
    for (int it = 0; it < 3; ++it) {
        if (it == 2 && R.rank == 2) kill(getpid(), SIGKILL);
        void *buf = dev_upload(values<float>(R.rank, 1000));
        ncclResult_t r = ncclAllReduce(buf, buf, 1000, ncclFloat32, ncclSum, R.comm, nullptr);
        dev_free(buf);
        if (!expect_result(r, it < 2 ? ncclSuccess : ncclRemoteError, it < 2 ? "ncclAllReduce" : "ncclAllReduce(killed peer)")) return false;
    }
    return true;
}

// ---- the parent: forks the ranks of each check ------------------------------

bool g_verbose = false;
int g_checks = 0, g_failed = 0;

std::string segment_path(const ncclUniqueId &id) {  // the fake's naming: 16 random bytes after its 16-byte marker
    std::string s = "/dev/shm/hebb-fake-nccl-";
    for (int i = 16; i < 32; ++i) {
        char hex[3];
        snprintf(hex, sizeof hex, "%02x", (unsigned char)id.internal[i]);
        s += hex;
    }
    return s;
}

struct Opts {
    double timeout = 10;   // HEBB_FAKE_NCCL_TIMEOUT_S of the ranks
    int killed_rank = -1;  // this rank is expected to die by SIGKILL
};

void check(const char *name, int nranks, const std::function<bool(const Rank &, const ncclUniqueId &)> &body, Opts o = Opts{}) {
    ++g_checks;
    ncclUniqueId id;
    if (ncclGetUniqueId(&id) != ncclSuccess) {
        printf("FAIL %s: ncclGetUniqueId failed\n", name);
        ++g_failed;
        return;
    }
    char log_path[] = "/tmp/nccl-selftest-XXXXXX";
    int log = mkstemp(log_path);
    unlink(log_path);
    fflush(stdout);
    double t0 = now_s();
    std::vector<pid_t> pids;
    for (int r = 0; r < nranks; ++r) {
        pid_t pid = fork();
        if (pid == 0) {
            dup2(log, 2);
            alarm(30);  // a hang fails the check instead of the run
            g_rank = r;
            char t[32];
            snprintf(t, sizeof t, "%g", o.timeout);
            setenv("HEBB_FAKE_NCCL_TIMEOUT_S", t, 1);
            Rank R{r, nranks, nullptr};
            if (!cuda_init()) {
                bad("the fake driver's init failed");
                _exit(2);
            }
            if (!expect_result(ncclCommInitRank(&R.comm, nranks, id, r), ncclSuccess, "ncclCommInitRank")) _exit(2);
            bool ok = body(R, id);
            if (ncclCommAbort(R.comm) != ncclSuccess) ok = bad("ncclCommAbort failed");
            fflush(stderr);
            _exit(ok ? 0 : 1);
        }
        pids.push_back(pid);
    }
    std::string why;
    for (int r = 0; r < nranks; ++r) {
        int st = 0;
        waitpid(pids[r], &st, 0);
        bool expected = r == o.killed_rank ? WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL : WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (!expected) {
            char s[96];
            if (WIFSIGNALED(st)) snprintf(s, sizeof s, "rank %d died of signal %d; ", r, WTERMSIG(st));
            else snprintf(s, sizeof s, "rank %d exited with %d; ", r, WEXITSTATUS(st));
            why += s;
        }
    }
    struct stat st;
    if (stat(segment_path(id).c_str(), &st) == 0) {
        why += segment_path(id) + " was left behind; ";
        shm_unlink(segment_path(id).c_str() + 8);
    }
    bool ok = why.empty();
    printf("%s %s (%.2f s)%s%s\n", ok ? "ok  " : "FAIL", name, now_s() - t0, ok ? "" : ": ", why.c_str());
    if (!ok || g_verbose) {
        fflush(stdout);
        lseek(log, 0, SEEK_SET);
        char b[4096];
        ssize_t k;
        while ((k = read(log, b, sizeof b)) > 0) fwrite(b, 1, (size_t)k, stdout);
    }
    close(log);
    g_failed += !ok;
}

}  // namespace

int main(int argc, char **argv) {
    g_verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    setvbuf(stdout, nullptr, _IOLBF, 0);
    using R = const Rank &;
    using Id = const ncclUniqueId &;

    check("world size 1: all-reduce and broadcast copy, no shared memory", 1,
          [](R r, Id id) { return world_of_one(r, segment_path(id)); });
    for (int n : {2, 3}) {
        std::string s = std::to_string(n) + " ranks";
        check(("float32 sum out of place, " + s + ", 300001 elements (> one slot)").c_str(), n,
              [](R r, Id) { return all_reduce<float>(r, ncclFloat32, ncclSum, BIG, false); });
        check(("float32 sum in place, " + s + ", 300001 elements, then 7").c_str(), n, [](R r, Id) {
            return all_reduce<float>(r, ncclFloat32, ncclSum, BIG, true) && all_reduce<float>(r, ncclFloat32, ncclSum, 7, true);
        });
    }
    check("float64 sum, 3 ranks, 100003 elements (two rounds)", 3,
          [](R r, Id) { return all_reduce<double>(r, ncclFloat64, ncclSum, 100003, false); });
    check("prod/max/min/avg float32, sum/avg/min int32, int64, uint8, on a created stream, 3 ranks", 3,
          [](R r, Id) { return ops_and_integers(r); });
    check("float16 and bfloat16 sums round at every step, 3 ranks", 3, [](R r, Id) { return sixteen_bits(r); });
    check("broadcast from rank 1, out of place and in place, 3 ranks", 3, [](R r, Id) { return broadcast_from_1(r); });
    check("reduce to rank 2, all-gather in place, reduce-scatter, 3 ranks", 3, [](R r, Id) { return other_collectives(r); });
    check("bad arguments: ranks, ids, comms, datatypes, ops, sizes, streams -> ncclInvalidArgument/...", 1,
          [](R r, Id id) { return bad_arguments(r, id); });
    check("a host pointer is refused with ncclInvalidArgument; the peer gets ncclInvalidUsage at once", 2,
          [](R r, Id) { return host_pointer(r); });
    check("ranks calling with different counts get ncclInvalidUsage", 2, [](R r, Id) { return mismatch(r); });
    Opts dead;
    dead.timeout = 2;
    check("dead peer (exited): ncclRemoteError within HEBB_FAKE_NCCL_TIMEOUT_S=2", 2, [](R r, Id) { return dead_peer(r, 2.0); }, dead);
    Opts killed;
    killed.killed_rank = 2;
    check("peer killed with SIGKILL between all-reduces: the other 2 ranks get ncclRemoteError", 3,
          [](R r, Id) { return killed_peer(r); }, killed);
    Opts stalled;
    stalled.timeout = 1;
    check("stalled peer: ncclRemoteError at HEBB_FAKE_NCCL_TIMEOUT_S=1, the late call fails at once", 2,
          [](R r, Id) { return stalled_peer(r); }, stalled);

    if (g_failed) {
        printf("nccl_selftest: %d of %d checks FAILED\n", g_failed, g_checks);
        return 1;
    }
    printf("nccl_selftest: all %d checks passed\n", g_checks);
    return 0;
}
