// A fake NCCL (libnccl.so.2) for tests on machines without a GPU: the
// collectives of NCCL 2.x's C API, between processes (one rank each, started
// by mpirun or fork) on one machine. See README.md.
//
// "Device memory" is the fake driver's (libcuda.so.1, linked in): host memory
// of each process. Every call runs synchronously, like the fake driver's: a
// collective has finished, on this rank, when it returns.
//
// Communication goes through one POSIX shared-memory segment per
// communicator, named from the unique id (/dev/shm/hebb-fake-nccl-<hex>):
//
//   Header   barrier counters, the futex word, and per rank: its pid and the
//            descriptor of the collective it is running (compared across ranks)
//   slots    one SLOT_BYTES slot per rank, used as two halves (double buffer)
//
// A collective runs in rounds of at most one half per rank: each rank copies
// its part into its own half, arrives at the barrier, waits for all the
// others, then reads every rank's half and computes its own result. The next
// round uses the other half, so one barrier per round is enough: a rank can
// only overwrite a half after every rank has passed the barrier that follows
// the reads of that half. Every rank reduces the same data in the same order
// (rank 0, 1, ..., n-1 for every element), so results are deterministic and
// identical on every rank.
//
// Nothing waits forever: each wait on the other ranks has a deadline
// (HEBB_FAKE_NCCL_TIMEOUT_S, default 60 s), and a rank whose process died is
// noticed within ~50 ms through a lock it holds (an open-file-description lock
// on byte `rank` of the segment, released by the kernel when the process
// exits). The first rank that gives up marks the segment broken and wakes the
// others, which then fail at once; all return ncclRemoteError.

#include "fake_nccl.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <type_traits>

#define FK_EXPORT extern "C" __attribute__((visibility("default")))

// From the fake driver (fake_cuda.cpp): whether [p, p + bytes) lies in one
// live device allocation / whether a stream handle is live; both print why not.
extern "C" int fakecuda_check_range(const void *p, size_t bytes, const char *what);
extern "C" int fakecuda_check_stream(void *stream, const char *what);

namespace {

// ---- limits and layout ------------------------------------------------------

const int MAX_RANKS = 64;
const size_t SLOT_BYTES = 1u << 20;          // per rank in the shared segment
const size_t HALF_BYTES = SLOT_BYTES / 2;    // what one round moves per rank
const double WAIT_SLICE_S = 0.05;            // how often a waiting rank checks that the others live
const uint64_t SEGMENT_MAGIC = 0x68656262666e6331ull;  // "hebbfnc1": the header is initialised
const char ID_MARKER[16] = {'h', 'e', 'b', 'b', '-', 'f', 'a', 'k', 'e', '-', 'n', 'c', 'c', 'l', ':', '1'};
const size_t ID_RANDOM_BYTES = 16;  // after the marker; they name the segment

// ---- options and messages ---------------------------------------------------

bool env_flag(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0 && strcmp(v, "false") != 0 && strcmp(v, "no") != 0;
}
bool opt_trace() {
    static bool v = env_flag("FAKE_CUDA_TRACE");
    return v;
}

// Seconds a rank waits for the others before giving up (read at each
// communicator's creation).
double timeout_seconds() {
    const char *v = getenv("HEBB_FAKE_NCCL_TIMEOUT_S");
    if (!v || !*v) return 60.0;
    char *end = nullptr;
    double s = strtod(v, &end);
    if (end == v || *end != '\0' || !(s > 0.0) || !std::isfinite(s)) {
        fprintf(stderr, "[fake-nccl] warning: HEBB_FAKE_NCCL_TIMEOUT_S=%s is not a positive number of seconds; using 60\n", v);
        return 60.0;
    }
    return s;
}

const char *result_name(ncclResult_t r) {
    switch (r) {
    case ncclSuccess: return "ncclSuccess";
    case ncclUnhandledCudaError: return "ncclUnhandledCudaError";
    case ncclSystemError: return "ncclSystemError";
    case ncclInternalError: return "ncclInternalError";
    case ncclInvalidArgument: return "ncclInvalidArgument";
    case ncclInvalidUsage: return "ncclInvalidUsage";
    case ncclRemoteError: return "ncclRemoteError";
    case ncclInProgress: return "ncclInProgress";
    case ncclTimeout: return "ncclTimeout";
    default: return "?";
    }
}

// The text ncclGetLastError returns: the last error of the calling thread.
thread_local char t_last_error[1024];

// An error: recorded for ncclGetLastError, printed, and returned (or abort()
// with FAKE_CUDA_ABORT=1, for a backtrace).
ncclResult_t fail(ncclResult_t code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
ncclResult_t fail(ncclResult_t code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_last_error, sizeof t_last_error, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[fake-nccl] error: %s (%s)\n", t_last_error, result_name(code));
    if (env_flag("FAKE_CUDA_ABORT")) abort();
    return code;
}

// Copies a C string, cut to fit.
void copy_text(char *dst, size_t cap, const char *src) {
    size_t n = std::min(strlen(src), cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void trace(const char *fmt, ...) {
    if (!opt_trace()) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("[fake-nccl trace] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

double now_s() {
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void sleep_s(double s) {
    timespec t{(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

// ---- data types and reductions ----------------------------------------------

const char *type_name(int t) {
    static const char *names[] = {"int8", "uint8", "int32", "uint32", "int64", "uint64",
                                  "float16", "float32", "float64", "bfloat16", "float8e4m3", "float8e5m2"};
    return t >= 0 && t < ncclNumTypes ? names[t] : "?";
}
size_t type_size(int t) {
    switch (t) {
    case ncclInt8: case ncclUint8: case ncclFloat8e4m3: case ncclFloat8e5m2: return 1;
    case ncclFloat16: case ncclBfloat16: return 2;
    case ncclInt32: case ncclUint32: case ncclFloat32: return 4;
    case ncclInt64: case ncclUint64: case ncclFloat64: return 8;
    default: return 0;
    }
}
const char *op_name(int op) {
    static const char *names[] = {"sum", "prod", "max", "min", "avg"};
    return op >= 0 && op < ncclNumOps ? names[op] : "?";
}

// IEEE binary16 <-> float, rounding to nearest even.
float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0 && man == 0) {
        bits = sign;
    } else if (exp == 0) {  // subnormal: normalise the mantissa
        int shift = 0;
        while (!(man & 0x400u)) {
            man <<= 1;
            ++shift;
        }
        bits = sign | (uint32_t)(127 - 15 + 1 - shift) << 23 | (man & 0x3ffu) << 13;
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}
uint16_t float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00u | (uint16_t)((ax >> 13) & 0x1ffu);  // NaN, quiet
    if (ax >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds to infinity
    if (ax < 0x38800000u) {                        // below 2^-14: a subnormal half (exact scaling by 2^24)
        float a;
        memcpy(&a, &ax, 4);
        return sign | (uint16_t)nearbyintf(a * 16777216.0f);
    }
    uint32_t r = ax - 0x38000000u;  // rebias the exponent from 127 to 15
    uint32_t h = r >> 13, rest = r & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
    return sign | (uint16_t)h;
}
float bf16_to_float(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}
uint16_t float_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);  // NaN, quiet
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

// How an element is read, written and rounded: native types compute in their
// own type; float16 and bfloat16 in float, rounded back after every
// operation (as the GPU's __hadd, __hmul, ... do).
template <class T> struct Native {
    using Acc = T;
    static Acc load(const void *p, size_t i) {
        T v;
        memcpy(&v, (const char *)p + i * sizeof(T), sizeof(T));
        return v;
    }
    static void store(void *p, size_t i, Acc v) { memcpy((char *)p + i * sizeof(T), &v, sizeof(T)); }
    static Acc round(Acc v) { return v; }
};
template <float (*To)(uint16_t), uint16_t (*From)(float)> struct Packed16 {
    using Acc = float;
    static Acc load(const void *p, size_t i) { return To(Native<uint16_t>::load(p, i)); }
    static void store(void *p, size_t i, Acc v) { Native<uint16_t>::store(p, i, From(v)); }
    static Acc round(Acc v) { return To(From(v)); }
};
using Half = Packed16<half_to_float, float_to_half>;
using BFloat16 = Packed16<bf16_to_float, float_to_bf16>;

template <class Acc> Acc combine(ncclRedOp_t op, Acc a, Acc b) {
    if constexpr (std::is_integral_v<Acc>) {
        using U = std::make_unsigned_t<Acc>;  // wrap around on overflow, as the GPU
        switch (op) {
        case ncclProd: return (Acc)(U)((U)a * (U)b);
        case ncclMax: return a > b ? a : b;
        case ncclMin: return a < b ? a : b;
        default: return (Acc)(U)((U)a + (U)b);  // sum, avg
        }
    } else {
        switch (op) {
        case ncclProd: return a * b;
        case ncclMax: return std::fmax(a, b);  // as CUDA's fmaxf: a NaN loses against a number
        case ncclMin: return std::fmin(a, b);
        default: return a + b;  // sum, avg
        }
    }
}

// dst[i] = src[0][i] op src[1][i] op ... op src[n-1][i], in this order, for
// i < len. ncclAvg as NCCL computes it: floating-point inputs are multiplied
// by 1/n before the sum (its PreMulSum), integer sums are divided by n after.
template <class Tr> void reduce_elems(void *dst, const void *const *src, int n, size_t len, ncclRedOp_t op) {
    using Acc = typename Tr::Acc;
    const bool premul = op == ncclAvg && !std::is_integral_v<Acc>;
    const Acc scale = premul ? Tr::round((Acc)(1.0 / n)) : (Acc)1;
    for (size_t i = 0; i < len; ++i) {
        Acc acc = Tr::load(src[0], i);
        if (premul) acc = Tr::round(acc * scale);
        for (int p = 1; p < n; ++p) {
            Acc x = Tr::load(src[p], i);
            if (premul) x = Tr::round(x * scale);
            acc = Tr::round(combine(op, acc, x));
        }
        if constexpr (std::is_integral_v<Acc>) {
            if (op == ncclAvg) acc = (Acc)(acc / (Acc)n);
        }
        Tr::store(dst, i, acc);
    }
}

void reduce(ncclDataType_t t, void *dst, const void *const *src, int n, size_t len, ncclRedOp_t op) {
    switch (t) {
    case ncclInt8: return reduce_elems<Native<int8_t>>(dst, src, n, len, op);
    case ncclUint8: return reduce_elems<Native<uint8_t>>(dst, src, n, len, op);
    case ncclInt32: return reduce_elems<Native<int32_t>>(dst, src, n, len, op);
    case ncclUint32: return reduce_elems<Native<uint32_t>>(dst, src, n, len, op);
    case ncclInt64: return reduce_elems<Native<int64_t>>(dst, src, n, len, op);
    case ncclUint64: return reduce_elems<Native<uint64_t>>(dst, src, n, len, op);
    case ncclFloat16: return reduce_elems<Half>(dst, src, n, len, op);
    case ncclFloat32: return reduce_elems<Native<float>>(dst, src, n, len, op);
    case ncclFloat64: return reduce_elems<Native<double>>(dst, src, n, len, op);
    case ncclBfloat16: return reduce_elems<BFloat16>(dst, src, n, len, op);
    default: abort();  // refused by check_call
    }
}

// ---- the shared segment -----------------------------------------------------

enum Kind : int32_t { K_NONE = 0, K_ALLREDUCE, K_BROADCAST, K_REDUCE, K_ALLGATHER, K_REDUCESCATTER };

const char *kind_name(int k) {
    static const char *names[] = {"?", "ncclAllReduce", "ncclBroadcast", "ncclReduce", "ncclAllGather", "ncclReduceScatter"};
    return k > 0 && k <= K_REDUCESCATTER ? names[k] : "?";
}

// What a rank does in a round, written before it arrives at the barrier and
// compared with every other rank's after it: the collective, or the error
// its arguments had (then every rank stops after that round).
struct Desc {
    int32_t kind, dtype, op, root;
    uint64_t count;
    int32_t error;     // != ncclSuccess: this rank's call was refused
    char why[300];     // ... and why
};

struct alignas(64) RankState {
    std::atomic<int32_t> pid;       // the process that joined as this rank (0: none yet)
    std::atomic<uint64_t> arrived;  // the last barrier round it arrived at
    Desc desc[2];                   // its descriptor, per half of its slot
};

struct Header {
    std::atomic<uint64_t> ready;       // SEGMENT_MAGIC once the creator has initialised it
    int32_t nranks;
    uint32_t slot_bytes;
    std::atomic<uint32_t> wake;        // futex word: bumped at every arrival and when the comm breaks
    std::atomic<int32_t> breaking;     // taken (0 -> 1) by the first rank that gives up
    std::atomic<int32_t> broken_by;    // then 1 + its rank, once broken_msg is written
    char broken_msg[512];
    RankState ranks[MAX_RANKS];
};
static_assert(sizeof(std::atomic<uint32_t>) == 4 && std::atomic<uint32_t>::is_always_lock_free, "futex word");
static_assert(std::atomic<uint64_t>::is_always_lock_free, "atomics in shared memory must be lock-free");

size_t data_offset() { return (sizeof(Header) + 4095) & ~(size_t)4095; }
size_t segment_bytes(int nranks) { return data_offset() + (size_t)nranks * SLOT_BYTES; }

long futex_wait(std::atomic<uint32_t> *word, uint32_t expected, double seconds) {
    timespec t{(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    return syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAIT, expected, &t, nullptr, 0);
}
void futex_wake_all(std::atomic<uint32_t> *word) {
    syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

std::string segment_name(const ncclUniqueId &id) {
    std::string name = "/hebb-fake-nccl-";
    for (size_t i = 0; i < ID_RANDOM_BYTES; ++i) {
        char hex[3];
        snprintf(hex, sizeof hex, "%02x", (unsigned char)id.internal[sizeof ID_MARKER + i]);
        name += hex;
    }
    return name;
}

}  // namespace

// ---- communicators ----------------------------------------------------------

struct FkNcclComm {
    int nranks = 1, rank = 0;
    double timeout_s = 60.0;
    std::string name;          // of the shared segment (nranks > 1)
    int fd = -1;               // the segment, and our liveness lock on byte `rank`
    Header *hdr = nullptr;
    size_t map_bytes = 0;
    uint64_t round = 0;        // barrier rounds done (the same on every rank)
    bool finalized = false;
    bool failed = false;       // a peer died or timed out: every later call fails
    std::string failure;
    std::mutex mu;             // one call at a time on a communicator

    char *half(int r, uint64_t rnd) const {
        return (char *)hdr + data_offset() + (size_t)r * SLOT_BYTES + (size_t)(rnd % 2) * HALF_BYTES;
    }
};

namespace {

std::mutex g_comms_mu;
std::set<FkNcclComm *> g_comms;
thread_local int t_group_depth = 0;

ncclResult_t check_comm(ncclComm_t c, const char *fn) {
    if (!c) return fail(ncclInvalidArgument, "%s: comm is null", fn);
    std::lock_guard<std::mutex> g(g_comms_mu);
    if (!g_comms.count(c)) return fail(ncclInvalidArgument, "%s: %p is not a communicator (destroyed?)", fn, (void *)c);
    return ncclSuccess;
}

void release_segment(FkNcclComm *c) {
    if (c->hdr) munmap(c->hdr, c->map_bytes);
    if (c->fd >= 0) close(c->fd);  // releases the liveness lock
    c->hdr = nullptr;
    c->fd = -1;
}

// This rank gives up on the communicator (a peer died or is late): marks the
// segment broken, so that the ranks waiting elsewhere fail at once instead of
// at their own deadline, and every later call of this rank fails.
ncclResult_t give_up(FkNcclComm *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
ncclResult_t give_up(FkNcclComm *c, const char *fmt, ...) {
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    Header *h = c->hdr;
    int32_t expected = 0;
    if (h->breaking.compare_exchange_strong(expected, 1)) {
        copy_text(h->broken_msg, sizeof h->broken_msg, why);
        h->broken_by.store(c->rank + 1, std::memory_order_release);
        h->wake.fetch_add(1, std::memory_order_release);
        futex_wake_all(&h->wake);
    }
    c->failed = true;
    c->failure = why;
    return fail(ncclRemoteError, "%s", why);
}

// Whether rank p still holds its liveness lock (its process lives and has
// not destroyed its communicator). In doubt: yes (the deadline still applies).
bool peer_alive(const FkNcclComm *c, int p) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = p;
    fl.l_len = 1;
    if (fcntl(c->fd, F_OFD_GETLK, &fl) != 0) return true;
    return fl.l_type != F_UNLCK;
}

// One barrier round: publishes this rank's arrival (its half and descriptor
// are written), then waits, until the deadline, for every other rank's.
ncclResult_t barrier(FkNcclComm *c, const char *fn) {
    Header *h = c->hdr;
    const uint64_t target = ++c->round;
    h->ranks[c->rank].arrived.store(target, std::memory_order_release);
    h->wake.fetch_add(1, std::memory_order_release);
    futex_wake_all(&h->wake);

    const double start = now_s(), deadline = start + c->timeout_s;
    bool quiet_slice = false;  // the last wait ended without any news
    for (;;) {
        uint32_t w = h->wake.load(std::memory_order_acquire);
        // Broken first: the rank that gave up may have arrived here before
        // it did, but it returned an error for this call, so must every rank.
        if (int b = h->broken_by.load(std::memory_order_acquire)) {
            c->failed = true;
            c->failure = std::string("rank ") + std::to_string(b - 1) + " gave up on the communicator: " + h->broken_msg;
            return fail(ncclRemoteError, "rank %d, %s: %s", c->rank, fn, c->failure.c_str());
        }
        std::string missing;
        for (int p = 0; p < c->nranks; ++p) {
            if (h->ranks[p].arrived.load(std::memory_order_acquire) >= target) continue;
            missing += (missing.empty() ? "" : ", ") + std::to_string(p);
        }
        if (missing.empty()) return ncclSuccess;
        if (quiet_slice) {
            for (int p = 0; p < c->nranks; ++p) {
                if (h->ranks[p].arrived.load(std::memory_order_acquire) >= target) continue;
                int pid = h->ranks[p].pid.load();
                // Arrived after all (then destroyed its comm and left)? Not dead for this round.
                if (pid != 0 && !peer_alive(c, p) && h->ranks[p].arrived.load(std::memory_order_acquire) < target)
                    return give_up(c, "rank %d waited %.1f s for the other ranks in %s: rank %d (pid %d) died or destroyed its communicator",
                                   c->rank, now_s() - start, fn, p, pid);
            }
        }
        double left = deadline - now_s();
        if (left <= 0)
            return give_up(c, "rank %d waited %.0f s for the other ranks in %s: a peer died or stopped calling (rank(s) %s did not arrive; HEBB_FAKE_NCCL_TIMEOUT_S sets the limit)",
                           c->rank, c->timeout_s, fn, missing.c_str());
        long r = futex_wait(&h->wake, w, left < WAIT_SLICE_S ? left : WAIT_SLICE_S);
        quiet_slice = r != 0 && errno == ETIMEDOUT;
    }
}

// Opens (the first rank to arrive: creates) the segment of c->name, waiting
// until its creator has initialised it.
ncclResult_t open_segment(FkNcclComm *c, const char *fn) {
    const size_t bytes = segment_bytes(c->nranks);
    const double deadline = now_s() + c->timeout_s;
    for (;;) {
        int fd = shm_open(c->name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd >= 0) {  // we create it
            c->fd = fd;
            if (ftruncate(fd, (off_t)bytes) != 0)
                return fail(ncclSystemError, "%s: ftruncate(/dev/shm%s, %zu): %s", fn, c->name.c_str(), bytes, strerror(errno));
            // Reserve the pages now: a full /dev/shm is an error here, not a SIGBUS later.
            int e = posix_fallocate(fd, 0, (off_t)bytes);
            if (e != 0 && e != EOPNOTSUPP && e != EINVAL)
                return fail(ncclSystemError, "%s: cannot reserve %zu bytes in /dev/shm: %s", fn, bytes, strerror(e));
            void *m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (m == MAP_FAILED) return fail(ncclSystemError, "%s: mmap of /dev/shm%s: %s", fn, c->name.c_str(), strerror(errno));
            c->hdr = new (m) Header();
            c->map_bytes = bytes;
            c->hdr->nranks = c->nranks;
            c->hdr->slot_bytes = (uint32_t)SLOT_BYTES;
            c->hdr->ready.store(SEGMENT_MAGIC, std::memory_order_release);
            return ncclSuccess;
        }
        if (errno != EEXIST) return fail(ncclSystemError, "%s: shm_open(%s): %s", fn, c->name.c_str(), strerror(errno));
        fd = shm_open(c->name.c_str(), O_RDWR, 0);
        if (fd < 0 && errno != ENOENT) return fail(ncclSystemError, "%s: shm_open(%s): %s", fn, c->name.c_str(), strerror(errno));
        if (fd >= 0) {  // another rank created it: wait for its size, then for its header
            c->fd = fd;
            struct stat st;
            for (;;) {
                if (fstat(fd, &st) != 0) return fail(ncclSystemError, "%s: fstat: %s", fn, strerror(errno));
                if (st.st_size > 0) break;
                if (now_s() > deadline) return fail(ncclRemoteError, "rank %d, %s: the rank that created /dev/shm%s never sized it", c->rank, fn, c->name.c_str());
                sleep_s(0.001);
            }
            void *m = mmap(nullptr, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (m == MAP_FAILED) return fail(ncclSystemError, "%s: mmap of /dev/shm%s: %s", fn, c->name.c_str(), strerror(errno));
            c->hdr = (Header *)m;
            c->map_bytes = (size_t)st.st_size;
            while (c->hdr->ready.load(std::memory_order_acquire) != SEGMENT_MAGIC) {
                if (now_s() > deadline) return fail(ncclRemoteError, "rank %d, %s: the rank that created /dev/shm%s never initialised it", c->rank, fn, c->name.c_str());
                sleep_s(0.001);
            }
            if (c->hdr->nranks != c->nranks || c->hdr->slot_bytes != SLOT_BYTES || c->map_bytes != bytes)
                return give_up(c, "rank %d, %s: nranks %d, but the rank that created the communicator passed nranks %d",
                               c->rank, fn, c->nranks, c->hdr->nranks);
            return ncclSuccess;
        }
        // Unlinked between the two calls (every rank had joined): try again,
        // which creates a new segment, and ends at the duplicate-rank check
        // or the deadline.
    }
}

// Joins the communicator of `id` as `rank` of `nranks`; returns when every
// rank has joined.
ncclResult_t init_rank(ncclComm_t *out, int nranks, const ncclUniqueId *id, int rank, const char *fn) {
    if (!out) return fail(ncclInvalidArgument, "%s: comm is null", fn);
    *out = nullptr;
    if (nranks < 1 || nranks > MAX_RANKS)
        return fail(ncclInvalidArgument, "%s: nranks %d (the fake supports 1 to %d ranks)", fn, nranks, MAX_RANKS);
    if (rank < 0 || rank >= nranks) return fail(ncclInvalidArgument, "%s: rank %d is not in 0..%d", fn, rank, nranks - 1);
    if (id && memcmp(id->internal, ID_MARKER, sizeof ID_MARKER) != 0)
        return fail(ncclInvalidArgument, "%s: rank %d: the unique id was not made by ncclGetUniqueId (not broadcast from rank 0?)", fn, rank);
    auto *c = new FkNcclComm;
    c->nranks = nranks;
    c->rank = rank;
    c->timeout_s = timeout_seconds();
    if (nranks > 1) {
        c->name = segment_name(*id);
        ncclResult_t r = open_segment(c, fn);
        if (r == ncclSuccess) {
            // Lock first, then publish the pid: a rank with a pid always holds its lock.
            struct flock fl;
            memset(&fl, 0, sizeof fl);
            fl.l_type = F_WRLCK;
            fl.l_whence = SEEK_SET;
            fl.l_start = rank;
            fl.l_len = 1;
            int32_t nobody = 0;
            if (fcntl(c->fd, F_OFD_SETLK, &fl) != 0 || !c->hdr->ranks[rank].pid.compare_exchange_strong(nobody, (int32_t)getpid()))
                r = give_up(c, "rank %d, %s: another process already joined as rank %d (the same rank passed twice?)", rank, fn, rank);
        }
        if (r == ncclSuccess) r = barrier(c, fn);
        // Every rank has opened the segment (or it failed): its name can go.
        // The memory stays until the last rank unmaps it.
        if (r != ncclSuccess || rank == 0) shm_unlink(c->name.c_str());
        if (r != ncclSuccess) {
            release_segment(c);
            delete c;
            return r;
        }
    }
    trace("%s: rank %d of %d joined%s%s", fn, rank, nranks, nranks > 1 ? " " : "", c->name.c_str());
    std::lock_guard<std::mutex> g(g_comms_mu);
    g_comms.insert(c);
    *out = c;
    return ncclSuccess;
}

// ---- collectives ------------------------------------------------------------

struct Call {
    Kind kind;
    const char *fn;
    const void *send;
    void *recv;
    size_t count;  // per rank: elements of the result (allgather: of the input)
    ncclDataType_t dtype;
    ncclRedOp_t op;
    int root;
};

bool needs_op(Kind k) { return k == K_ALLREDUCE || k == K_REDUCE || k == K_REDUCESCATTER; }
bool needs_root(Kind k) { return k == K_BROADCAST || k == K_REDUCE; }

std::string describe(const Desc &d) {
    char s[160];
    int n = snprintf(s, sizeof s, "%s(count %llu, %s", kind_name(d.kind), (unsigned long long)d.count, type_name(d.dtype));
    if (needs_op((Kind)d.kind)) n += snprintf(s + n, sizeof s - n, ", %s", op_name(d.op));
    if (needs_root((Kind)d.kind)) n += snprintf(s + n, sizeof s - n, ", root %d", d.root);
    snprintf(s + n, sizeof s - n, ")");
    return s;
}

// [a, a + an) and [b, b + bn) share a byte.
bool overlap(const void *a, size_t an, const void *b, size_t bn) {
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return an > 0 && bn > 0 && x < y + bn && y < x + an;
}

// The checks that need no other rank. Returns the error (after fail()) or
// ncclSuccess; sets the byte counts of the send and receive buffers.
ncclResult_t check_call(const FkNcclComm *c, const Call &k, cudaStream_t stream, size_t *send_bytes, size_t *recv_bytes) {
    const char *fn = k.fn;
    const int n = c->nranks;
    if (!fakecuda_check_stream(stream, fn)) return fail(ncclUnhandledCudaError, "%s: stream %p is not a live stream", fn, stream);
    size_t es = type_size(k.dtype);
    if (es == 0) return fail(ncclInvalidArgument, "%s: unknown datatype %d", fn, (int)k.dtype);
    if (needs_op(k.kind)) {
        if ((int)k.op < 0 || (int)k.op >= ncclNumOps)
            return fail(ncclInvalidArgument, "%s: unknown reduction op %d (custom ops of ncclRedOpCreatePreMulSum are not emulated)", fn, (int)k.op);
        if (k.dtype == ncclFloat8e4m3 || k.dtype == ncclFloat8e5m2)
            return fail(ncclInvalidArgument, "%s: reductions on %s are not emulated by the fake", fn, type_name(k.dtype));
    }
    if (needs_root(k.kind) && (k.root < 0 || k.root >= n)) return fail(ncclInvalidArgument, "%s: root %d is not in 0..%d", fn, k.root, n - 1);
    size_t bytes, total;
    if (__builtin_mul_overflow(k.count, es, &bytes) || __builtin_mul_overflow(bytes, (size_t)n, &total))
        return fail(ncclInvalidArgument, "%s: count %zu of %s overflows", fn, k.count, type_name(k.dtype));
    const bool root = c->rank == k.root;
    size_t sb = bytes, rb = bytes;  // which buffers this rank uses, and their sizes
    bool uses_send = true, uses_recv = true;
    switch (k.kind) {
    case K_BROADCAST: uses_send = root; break;
    case K_REDUCE: uses_recv = root; break;
    case K_ALLGATHER: rb = total; break;
    case K_REDUCESCATTER: sb = total; break;
    default: break;
    }
    *send_bytes = uses_send ? sb : 0;
    *recv_bytes = uses_recv ? rb : 0;
    if (bytes == 0) return ncclSuccess;
    char what[96];
    snprintf(what, sizeof what, "%s send buffer (rank %d)", fn, c->rank);
    if (uses_send && !fakecuda_check_range(k.send, sb, what))
        return fail(ncclInvalidArgument, "%s: rank %d: send buffer %p is not %zu bytes of device memory (count %zu of %s)", fn, c->rank, k.send, sb, k.count, type_name(k.dtype));
    snprintf(what, sizeof what, "%s receive buffer (rank %d)", fn, c->rank);
    if (uses_recv && !fakecuda_check_range(k.recv, rb, what))
        return fail(ncclInvalidArgument, "%s: rank %d: receive buffer %p is not %zu bytes of device memory (count %zu of %s)", fn, c->rank, k.recv, rb, k.count, type_name(k.dtype));
    // In place is the same pointer (allgather, reducescatter: this rank's
    // block of the larger buffer); any other overlap is undefined in NCCL.
    if (uses_send && uses_recv && overlap(k.send, sb, k.recv, rb)) {
        const char *s = (const char *)k.send, *r = (const char *)k.recv;
        bool in_place = k.kind == K_ALLGATHER       ? s == r + (size_t)c->rank * bytes
                        : k.kind == K_REDUCESCATTER ? r == s + (size_t)c->rank * bytes
                                                    : s == r;
        if (!in_place)
            return fail(ncclInvalidArgument, "%s: rank %d: the send (%p, %zu bytes) and receive (%p, %zu bytes) buffers overlap without being in place",
                        fn, c->rank, k.send, sb, k.recv, rb);
    }
    return ncclSuccess;
}

// A collective of one rank: a copy.
void run_alone(const Call &k, size_t send_bytes) {
    if (send_bytes > 0 && k.send != k.recv) memmove(k.recv, k.send, send_bytes);
}

ncclResult_t run_collective(const Call &k, ncclComm_t comm, cudaStream_t stream) {
    if (ncclResult_t r = check_comm(comm, k.fn)) return r;
    FkNcclComm *c = comm;
    std::lock_guard<std::mutex> g(c->mu);
    if (c->finalized) return fail(ncclInvalidUsage, "%s: the communicator was finalized (only ncclCommDestroy may follow)", k.fn);
    if (c->failed) return fail(ncclRemoteError, "rank %d, %s: the communicator failed earlier: %s", c->rank, k.fn, c->failure.c_str());
    size_t send_bytes = 0, recv_bytes = 0;
    ncclResult_t local = check_call(c, k, stream, &send_bytes, &recv_bytes);
    trace("rank %d: %s(send %p, recv %p, count %zu, %s, %s, root %d) on %d ranks%s", c->rank, k.fn, k.send, k.recv, k.count,
          type_name(k.dtype), op_name(k.op), k.root, c->nranks, local ? ": refused" : "");
    if (c->nranks == 1) {
        if (local == ncclSuccess) run_alone(k, send_bytes);
        return local;
    }

    // The others must learn that this call was refused, or they would wait
    // for it until their deadline: a refused call still takes part in one round.
    const size_t es = local ? 1 : type_size(k.dtype);
    const int n = c->nranks, me = c->rank;
    size_t chunk = HALF_BYTES / es;  // elements per round, of each rank's part
    if (k.kind == K_REDUCESCATTER) chunk /= (size_t)n;
    const size_t rounds = local || k.count == 0 ? 1 : (k.count + chunk - 1) / chunk;
    const char *send = (const char *)k.send;
    char *recv = (char *)k.recv;
    const bool root = me == k.root;

    for (size_t i = 0; i < rounds; ++i) {
        const size_t off = i * chunk, len = local ? 0 : std::min(chunk, k.count - off);
        const uint64_t rnd = c->round + 1;  // the barrier round this data belongs to
        char *mine = c->half(me, rnd);
        Desc &d = c->hdr->ranks[me].desc[rnd % 2];
        d.kind = k.kind;
        d.dtype = k.dtype;
        d.op = needs_op(k.kind) ? k.op : 0;
        d.root = needs_root(k.kind) ? k.root : 0;
        d.count = k.count;
        d.error = local;
        copy_text(d.why, sizeof d.why, local ? t_last_error : "");
        if (len > 0) {
            switch (k.kind) {
            case K_BROADCAST:
                if (root) memcpy(mine, send + off * es, len * es);
                break;
            case K_REDUCESCATTER:  // this rank's contribution to every rank's block
                for (int q = 0; q < n; ++q) memcpy(mine + (size_t)q * len * es, send + ((size_t)q * k.count + off) * es, len * es);
                break;
            case K_REDUCE:
            case K_ALLREDUCE:
            case K_ALLGATHER: memcpy(mine, send + off * es, len * es); break;
            default: break;
            }
        }
        if (ncclResult_t r = barrier(c, k.fn)) return r;

        // Every rank must be in the same call, with the same arguments.
        const Desc &d0 = c->hdr->ranks[0].desc[rnd % 2];
        for (int p = 0; p < n; ++p) {
            const Desc &dp = c->hdr->ranks[p].desc[rnd % 2];
            if (dp.error != ncclSuccess) {
                if (local) return local;
                return fail(ncclInvalidUsage, "rank %d, %s: rank %d's call was refused: %s", me, k.fn, p, dp.why);
            }
            if (dp.kind != d0.kind || dp.dtype != d0.dtype || dp.op != d0.op || dp.root != d0.root || dp.count != d0.count)
                return fail(ncclInvalidUsage, "rank %d, %s: the ranks disagree: rank 0 called %s, rank %d called %s",
                            me, k.fn, describe(d0).c_str(), p, describe(dp).c_str());
        }
        if (len == 0) continue;

        const void *halves[MAX_RANKS];
        for (int p = 0; p < n; ++p) halves[p] = c->half(p, rnd);
        switch (k.kind) {
        case K_ALLREDUCE: reduce(k.dtype, recv + off * es, halves, n, len, k.op); break;
        case K_REDUCE:
            if (root) reduce(k.dtype, recv + off * es, halves, n, len, k.op);
            break;
        case K_BROADCAST:
            if (!(root && send == recv)) memcpy(recv + off * es, halves[k.root], len * es);
            break;
        case K_ALLGATHER:
            for (int p = 0; p < n; ++p) memmove(recv + ((size_t)p * k.count + off) * es, halves[p], len * es);
            break;
        case K_REDUCESCATTER: {
            const void *blocks[MAX_RANKS];
            for (int p = 0; p < n; ++p) blocks[p] = (const char *)halves[p] + (size_t)me * len * es;
            reduce(k.dtype, recv + off * es, blocks, n, len, k.op);
            break;
        }
        default: break;
        }
    }
    return ncclSuccess;
}

// Destroy and abort: local in the fake (nothing is in flight).
ncclResult_t destroy(ncclComm_t comm, const char *fn) {
    if (!comm) return ncclSuccess;  // as NCCL
    {
        std::lock_guard<std::mutex> g(g_comms_mu);
        if (!g_comms.erase(comm)) return fail(ncclInvalidArgument, "%s: %p is not a communicator (destroyed twice?)", fn, (void *)comm);
    }
    trace("%s: rank %d of %d", fn, comm->rank, comm->nranks);
    release_segment(comm);
    delete comm;
    return ncclSuccess;
}

}  // namespace

// ---- the exported API -------------------------------------------------------

FK_EXPORT ncclResult_t ncclGetVersion(int *version) {
    if (!version) return fail(ncclInvalidArgument, "ncclGetVersion: version is null");
    *version = 23000;  // 2.30.0, the API of cudarc's `nccl` feature
    return ncclSuccess;
}

FK_EXPORT ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    if (!id) return fail(ncclInvalidArgument, "ncclGetUniqueId: uniqueId is null");
    memset(id, 0, sizeof *id);
    memcpy(id->internal, ID_MARKER, sizeof ID_MARKER);
    char *rnd = id->internal + sizeof ID_MARKER;
    if (getrandom(rnd, ID_RANDOM_BYTES, 0) != (ssize_t)ID_RANDOM_BYTES)
        return fail(ncclSystemError, "ncclGetUniqueId: getrandom: %s", strerror(errno));
    return ncclSuccess;
}

FK_EXPORT ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
    return init_rank(comm, nranks, &id, rank, "ncclCommInitRank");
}

// The config (blocking, CTA counts, ...) changes nothing here: every call completes at once.
FK_EXPORT ncclResult_t ncclCommInitRankConfig(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank, ncclConfig_t *) {
    return init_rank(comm, nranks, &id, rank, "ncclCommInitRankConfig");
}

// One process driving several devices: the fake has one.
FK_EXPORT ncclResult_t ncclCommInitAll(ncclComm_t *comms, int ndev, const int *devlist) {
    if (ndev != 1) return fail(ncclInvalidArgument, "ncclCommInitAll: ndev %d (the fake has one device)", ndev);
    if (devlist && devlist[0] != 0) return fail(ncclInvalidArgument, "ncclCommInitAll: device %d (the fake has device 0 only)", devlist[0]);
    return init_rank(comms, 1, nullptr, 0, "ncclCommInitAll");
}

FK_EXPORT ncclResult_t ncclCommFinalize(ncclComm_t comm) {
    if (ncclResult_t r = check_comm(comm, "ncclCommFinalize")) return r;
    std::lock_guard<std::mutex> g(comm->mu);
    comm->finalized = true;
    return ncclSuccess;
}

FK_EXPORT ncclResult_t ncclCommDestroy(ncclComm_t comm) { return destroy(comm, "ncclCommDestroy"); }
FK_EXPORT ncclResult_t ncclCommAbort(ncclComm_t comm) { return destroy(comm, "ncclCommAbort"); }

FK_EXPORT ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *async_error) {
    if (ncclResult_t r = check_comm(comm, "ncclCommGetAsyncError")) return r;
    if (!async_error) return fail(ncclInvalidArgument, "ncclCommGetAsyncError: asyncError is null");
    std::lock_guard<std::mutex> g(comm->mu);
    *async_error = comm->failed ? ncclRemoteError : ncclSuccess;
    return ncclSuccess;
}

FK_EXPORT ncclResult_t ncclCommCount(const ncclComm_t comm, int *count) {
    if (ncclResult_t r = check_comm(comm, "ncclCommCount")) return r;
    if (!count) return fail(ncclInvalidArgument, "ncclCommCount: count is null");
    *count = comm->nranks;
    return ncclSuccess;
}

FK_EXPORT ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int *device) {
    if (ncclResult_t r = check_comm(comm, "ncclCommCuDevice")) return r;
    if (!device) return fail(ncclInvalidArgument, "ncclCommCuDevice: device is null");
    *device = 0;
    return ncclSuccess;
}

FK_EXPORT ncclResult_t ncclCommUserRank(const ncclComm_t comm, int *rank) {
    if (ncclResult_t r = check_comm(comm, "ncclCommUserRank")) return r;
    if (!rank) return fail(ncclInvalidArgument, "ncclCommUserRank: rank is null");
    *rank = comm->rank;
    return ncclSuccess;
}

FK_EXPORT const char *ncclGetErrorString(ncclResult_t result) {
    switch (result) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (ncclGetLastError has the details)";
    case ncclSystemError: return "unhandled system error (ncclGetLastError has the details)";
    case ncclInternalError: return "internal error";
    case ncclInvalidArgument: return "invalid argument (ncclGetLastError has the details)";
    case ncclInvalidUsage: return "invalid usage (ncclGetLastError has the details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    case ncclTimeout: return "NCCL operation timed out";
    default: return "unknown result code";
    }
}

// The last error of the calling thread, whatever the communicator (as NCCL).
FK_EXPORT const char *ncclGetLastError(ncclComm_t) { return t_last_error; }

FK_EXPORT ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t dtype, ncclRedOp_t op,
                                     ncclComm_t comm, cudaStream_t stream) {
    return run_collective(Call{K_ALLREDUCE, "ncclAllReduce", send, recv, count, dtype, op, 0}, comm, stream);
}

FK_EXPORT ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, ncclDataType_t dtype, int root,
                                     ncclComm_t comm, cudaStream_t stream) {
    return run_collective(Call{K_BROADCAST, "ncclBroadcast", send, recv, count, dtype, ncclSum, root}, comm, stream);
}

FK_EXPORT ncclResult_t ncclReduce(const void *send, void *recv, size_t count, ncclDataType_t dtype, ncclRedOp_t op,
                                  int root, ncclComm_t comm, cudaStream_t stream) {
    return run_collective(Call{K_REDUCE, "ncclReduce", send, recv, count, dtype, op, root}, comm, stream);
}

FK_EXPORT ncclResult_t ncclAllGather(const void *send, void *recv, size_t sendcount, ncclDataType_t dtype,
                                     ncclComm_t comm, cudaStream_t stream) {
    return run_collective(Call{K_ALLGATHER, "ncclAllGather", send, recv, sendcount, dtype, ncclSum, 0}, comm, stream);
}

FK_EXPORT ncclResult_t ncclReduceScatter(const void *send, void *recv, size_t recvcount, ncclDataType_t dtype,
                                         ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
    return run_collective(Call{K_REDUCESCATTER, "ncclReduceScatter", send, recv, recvcount, dtype, op, 0}, comm, stream);
}

// Point-to-point calls need pairing inside groups: not emulated (yet).
FK_EXPORT ncclResult_t ncclSend(const void *, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t) {
    return fail(ncclInvalidUsage, "ncclSend is not emulated by the fake NCCL");
}
FK_EXPORT ncclResult_t ncclRecv(void *, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t) {
    return fail(ncclInvalidUsage, "ncclRecv is not emulated by the fake NCCL");
}

// Collectives run at the call, so a group only has to be well nested (with
// one rank per process, running at the call or at ncclGroupEnd is the same).
FK_EXPORT ncclResult_t ncclGroupStart(void) {
    ++t_group_depth;
    return ncclSuccess;
}
FK_EXPORT ncclResult_t ncclGroupEnd(void) {
    if (t_group_depth == 0) return fail(ncclInvalidUsage, "ncclGroupEnd without ncclGroupStart");
    --t_group_depth;
    return ncclSuccess;
}
