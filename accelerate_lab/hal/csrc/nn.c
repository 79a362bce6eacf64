/* Fused float32 kernels of the cpu device's neural-network ops (accelerate_lab/hal/cpu.py calls them).
 *
 * Loops over contiguous rows, vectorized by the compiler (-O3 -march=native) or written with vector
 * types. IEEE rules are kept (no -ffast-math), so reductions keep partial results in lanes side by
 * side; a NaN in a row gives NaN wherever numpy's formulas give NaN. Outputs overlap no input, except
 * that the softmax and the add may run in place.
 *
 * Each kernel takes ``threads``, the most threads it may use (numpy's BLAS thread count, read by
 * cpu_nn.py): the work is split into contiguous ranges of rows (or elements, or attention heads) of a
 * minimum size, which the caller and kept worker threads share out (parallel_for).
 * Every row is computed the same way whatever the split, so the results of the nn kernels do not
 * depend on the thread count (the matrix product's: see al_matmul_f32).
 */
#define _GNU_SOURCE /* clock_gettime, pthreads, syscall; sched_getcpu and thread affinity on Linux */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#if defined(__GNUC__) && !defined(__clang__)
/* the vector helpers are static inline: no 64-byte vector crosses a call on targets without AVX-512 */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

/* Vectors of 16 floats (GCC's and clang's vector extensions): one AVX-512 register, two AVX2 ones,
 * four SSE or NEON ones; the compiler splits them as the target needs. */
typedef float f32x16 __attribute__((vector_size(64)));
typedef int32_t i32x16 __attribute__((vector_size(64)));
typedef uint32_t u32x16 __attribute__((vector_size(64)));
#define WIDTH 16 /* floats per vector, and partial sums per reduction */

static inline f32x16 load16(const float *p) {
    f32x16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store16(float *p, f32x16 v) { memcpy(p, &v, sizeof v); }

/* where mask (all ones or zeros per lane) is set, a; elsewhere b */
static inline f32x16 select16(i32x16 mask, f32x16 a, f32x16 b) {
    return (f32x16)((mask & (i32x16)a) | (~mask & (i32x16)b));
}

typedef float f32x8 __attribute__((vector_size(32)));
typedef double f64x8 __attribute__((vector_size(64)));
typedef int64_t i64x8 __attribute__((vector_size(64)));

static inline f64x8 select8(i64x8 mask, f64x8 a, f64x8 b) {
    return (f64x8)((mask & (i64x8)a) | (~mask & (i64x8)b));
}

/* A range [begin, end) of a kernel's work, run by one thread: ``slot`` numbers the threads taking part
 * (0: the caller), so that a kernel can keep scratch per thread. */
typedef void (*range_fn)(const void *job, int64_t slot, int64_t begin, int64_t end);

static int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

#define MAX_THREADS 64

/* How many threads ``parallel_for`` runs n items on: at most ``threads``, each with ``grain`` or more. */
static int64_t count_parts(int64_t threads, int64_t n, int64_t grain) {
    int64_t parts = n / (grain > 0 ? grain : 1);
    if (parts > threads) parts = threads;
    if (parts > MAX_THREADS) parts = MAX_THREADS;
    return parts > 1 ? parts : 1;
}

/* The worker threads, started as needed and kept: a BLAS keeps per-thread buffers, which a new thread
 * per call would allocate and fault in again every time. Between kernels a worker first spins for
 * SPIN_NS (a model's next kernel mostly comes within microseconds, and a spinning thread keeps its core
 * where other processes compete for it), then sleeps. 1 ms rather than 0.3: a forward has stretches of
 * Python and single-threaded ops longer than 0.3 ms, and waking a sleeping worker costs tens to
 * hundreds of microseconds on a virtual machine (BERT after an idle pause, against onnxruntime, three
 * pairs of runs: 1x128 1.68 -> 1.41, 8x128 1.11 -> 1.01 times its time; 3 ms no better). ``busy`` is
 * held by the one caller using them; a second caller meanwhile (another Python thread) runs its work
 * itself.
 *
 * The work is shared out in RANGES_PER_THREAD contiguous ranges per thread taking part: each thread
 * runs its own in order, then takes the last ones left of the others'. A worker that wakes late or runs
 * slow then holds nobody up (BERT 1 x 128 after 0.3 s idle: its first kernels, too small to wait ~0.3
 * ms for a waking worker, 0.38 -> 0.2 ms), and a range is taken (an atomic step on pool.own) before
 * anything of it is read: a worker that lags a whole kernel behind (its virtual CPU descheduled) can
 * only take ranges of the current one, once each. (With one fixed range per thread and a worker reading
 * the count of threads of the next kernel as its own, a range could run twice, and the caller return
 * while a worker still wrote.) Which thread runs a range changes no result: each range is computed the
 * same way wherever it runs. */
#define SPIN_NS 1000000
#define RANGES_PER_THREAD 4

static struct {
    pthread_mutex_t busy, state;
    pthread_cond_t wake, done;
    int64_t workers, sleepers; /* sleepers: guarded by state */
    pthread_t ids[MAX_THREADS]; /* workers' (ids[i]: worker i; 0 unused) */
    int caller_sleeping;       /* guarded by state */
    _Atomic uint64_t generation;
    _Atomic int64_t pending; /* ranges not yet finished */
    /* this generation's work, written before its ranges are handed out */
    range_fn fn;
    const void *job;
    int64_t items, ranges;
    _Atomic int64_t threads; /* taking part (read by workers of an earlier generation too) */
    /* thread i's ranges left: the generation's low 32 bits << 32 | next << 16 | end */
    _Atomic uint64_t own[MAX_THREADS];
} pool = {.busy = PTHREAD_MUTEX_INITIALIZER,
          .state = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Spins until *value differs from ``old`` (returns 1) or SPIN_NS pass (returns 0). */
static int spin_while_equal(const _Atomic uint64_t *value, uint64_t old) {
    const int64_t until = now_ns() + SPIN_NS;
    for (;;) {
        for (int i = 0; i < 64; i++) {
            if (atomic_load_explicit(value, memory_order_acquire) != old) return 1;
            relax();
        }
        if (now_ns() > until) return 0;
    }
}

/* A range of thread i's left in generation ``generation``, its first (``first``) or its last; -1
 * where none is left (or thread i's ranges are another generation's). */
static int64_t take_range(int64_t i, int first, uint64_t generation) {
    uint64_t left = atomic_load(&pool.own[i]);
    for (;;) {
        const uint64_t next = left >> 16 & 0xffff, end = left & 0xffff;
        if (left >> 32 != (generation & 0xffffffffu) || next >= end) return -1;
        const uint64_t taken = first ? next : end - 1, rest = first ? left + (1u << 16) : left - 1;
        if (atomic_compare_exchange_weak(&pool.own[i], &left, rest)) return (int64_t)taken;
    }
}

/* Runs range r on thread ``slot`` and counts it done, waking a sleeping caller after the last. */
static void run_range(int64_t slot, int64_t r) {
    pool.fn(pool.job, slot, pool.items * r / pool.ranges, pool.items * (r + 1) / pool.ranges);
    if (atomic_fetch_sub(&pool.pending, 1) == 1) {
        pthread_mutex_lock(&pool.state);
        if (pool.caller_sleeping) pthread_cond_signal(&pool.done);
        pthread_mutex_unlock(&pool.state);
    }
}

/* Thread ``slot``'s share of generation ``generation``: its own ranges first to last, then the others'
 * from their ends. A range is taken (pool.own, which holds the generation) before anything of it is
 * read, so a worker still busy with an earlier generation takes none of a later one, where its slot
 * may be beyond the threads taking part (and their scratch). */
static void take_part(int64_t slot, uint64_t generation) {
    const int64_t threads = atomic_load(&pool.threads);
    if (slot >= threads) return;
    for (int64_t r; (r = take_range(slot, 1, generation)) >= 0;) run_range(slot, r);
    for (int64_t i = 1; i < threads; i++)
        for (int64_t r; (r = take_range((slot + i) % threads, 0, generation)) >= 0;) run_range(slot, r);
}

static void *worker(void *arg) {
    const int64_t slot = (int64_t)(intptr_t)arg;
#if defined(__linux__)
    pthread_setname_np(pthread_self(), "accelerate-lab"); /* as top, py-spy and /proc show it */
#endif
    uint64_t seen = atomic_load(&pool.generation);
    for (;;) {
        if (!spin_while_equal(&pool.generation, seen)) {
            pthread_mutex_lock(&pool.state);
            pool.sleepers++;
            while (atomic_load(&pool.generation) == seen) pthread_cond_wait(&pool.wake, &pool.state);
            pool.sleepers--;
            pthread_mutex_unlock(&pool.state);
        }
        seen = atomic_load(&pool.generation);
        take_part(slot, seen);
    }
    return NULL;
}

/* A forked child has none of the parent's threads: it starts its own when it needs them. */
static void forget_workers(void) {
    pthread_mutex_init(&pool.busy, NULL);
    pthread_mutex_init(&pool.state, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.workers = pool.sleepers = pool.caller_sleeping = 0;
    atomic_store(&pool.threads, 0);
    atomic_store(&pool.pending, 0);
}

static pthread_once_t fork_handler = PTHREAD_ONCE_INIT;

static void install_fork_handler(void) { pthread_atfork(NULL, NULL, forget_workers); }

#if defined(__linux__)
/* Whether this runs on a virtual machine: CPUID's hypervisor bit (x86; elsewhere taken as no). */
static int on_hypervisor(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c >> 31 & 1);
#else
    return 0;
#endif
}

/* The CPUs of a Linux CPU list ("0-3,8", as sysfs writes them) in the file at ``path``; 0, or -1
 * where it cannot be read. */
static int read_cpu_list(const char *path, cpu_set_t *set) {
    char line[1024];
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    const int read = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    CPU_ZERO(set);
    for (char *p = line, *end; read; p = end + 1) {
        long first = strtol(p, &end, 10), last = first;
        if (end == p) break;
        if (*end == '-') last = strtol(end + 1, &end, 10);
        for (long c = first; c <= last && c < CPU_SETSIZE; c++) CPU_SET((int)c, set);
        if (*end != ',') break;
    }
    return CPU_COUNT(set) ? 0 : -1;
}
#endif

/* On a virtual machine (Linux), workers 1 .. count - 1, about to be woken, each bound to a CPU of
 * this thread's other than its own, a different one each while there are enough, other cores before
 * this core's other hardware threads. A virtual machine's Linux cannot tell an idle virtual CPU from
 * one the host has lent out, takes it for busy, and wakes a sleeping worker on the caller's own CPU,
 * where the two take turns until the load balancer moves one, milliseconds later: BERT 1 x 128 after
 * 0.3 s idle, its first layer took 4.1-5.1 ms against 1.9 back to back, as long as on one thread;
 * with the worker bound elsewhere 2.5-2.6. On real hardware Linux wakes it on an idle core itself,
 * and nothing is done. Called with pool.state held. */
static void place_workers(int64_t count) {
#if defined(__linux__)
    static int hypervisor = -1, core_of = -1; /* core: the CPUs of core_of's core */
    static cpu_set_t core;
    if (hypervisor < 0) hypervisor = on_hypervisor();
    cpu_set_t allowed, one;
    const int caller = sched_getcpu();
    if (!hypervisor || caller < 0 || caller >= CPU_SETSIZE || sched_getaffinity(0, sizeof allowed, &allowed)) return;
    if (caller != core_of) {
        char path[96];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list", caller);
        if (read_cpu_list(path, &core)) {
            CPU_ZERO(&core);
            CPU_SET(caller, &core);
        }
        core_of = caller;
    }
    int cpus[CPU_SETSIZE], others = 0;
    for (int same_core = 0; same_core < 2; same_core++)
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (c != caller && CPU_ISSET(c, &allowed) && !!CPU_ISSET(c, &core) == same_core) cpus[others++] = c;
    for (int64_t i = 1; i < count && others > 0; i++) {
        CPU_ZERO(&one);
        CPU_SET(cpus[(i - 1) % others], &one);
        pthread_setaffinity_np(pool.ids[i], sizeof one, &one);
    }
#else
    (void)count;
#endif
}

/* Workers 1 .. wanted - 1 started where they can be; how many threads can take part. */
static int64_t start_workers(int64_t wanted) {
    while (pool.workers + 1 < wanted) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_t id;
        const int failed = pthread_create(&id, &attr, worker, (void *)(intptr_t)(pool.workers + 1));
        pthread_attr_destroy(&attr);
        if (failed) break;
        pool.ids[++pool.workers] = id;
    }
    return pool.workers + 1 < wanted ? pool.workers + 1 : wanted;
}

/* fn over [0, n) on count_parts(threads, n, grain) threads (slots 0 .. parts - 1; the caller is 0), in
 * up to RANGES_PER_THREAD contiguous ranges of ``grain`` items or more per thread. */
static void parallel_for(int64_t threads, int64_t n, int64_t grain, range_fn fn, const void *job) {
    const int64_t parts = count_parts(threads, n, grain);
    pthread_once(&fork_handler, install_fork_handler);
    if (parts == 1 || pthread_mutex_trylock(&pool.busy) != 0) {
        if (n > 0) fn(job, 0, 0, n);
        return;
    }
    const int64_t shared = start_workers(parts), most = n / (grain > 0 ? grain : 1); /* most >= parts */
    const int64_t ranges = most < shared * RANGES_PER_THREAD ? most : shared * RANGES_PER_THREAD;
    pool.fn = fn;
    pool.job = job;
    pool.items = n;
    pool.ranges = ranges;
    atomic_store(&pool.threads, shared);
    atomic_store(&pool.pending, ranges);
    const uint64_t generation = atomic_load(&pool.generation) + 1; /* only a caller holding busy adds */
    for (int64_t i = 0; i < shared; i++)
        atomic_store(&pool.own[i], (generation & 0xffffffffu) << 32 | (uint64_t)(ranges * i / shared) << 16 |
                                       (uint64_t)(ranges * (i + 1) / shared));
    pthread_mutex_lock(&pool.state);
    atomic_store(&pool.generation, generation);
    if (pool.sleepers) {
        place_workers(shared);
        pthread_cond_broadcast(&pool.wake);
    }
    pthread_mutex_unlock(&pool.state);
    take_part(0, generation);
    const int64_t until = now_ns() + SPIN_NS;
    while (atomic_load(&pool.pending) > 0 && now_ns() < until) relax();
    pthread_mutex_lock(&pool.state);
    pool.caller_sleeping = 1;
    while (atomic_load(&pool.pending) > 0) pthread_cond_wait(&pool.done, &pool.state);
    pool.caller_sleeping = 0;
    pthread_mutex_unlock(&pool.state);
    pthread_mutex_unlock(&pool.busy);
}

/* Work per range: about 8 Ki elements (microseconds: a spinning worker starts in one; BERT 1 x 128 layer
 * norms, 128 rows of 384, then run on two threads: 72 -> 59 us each) */
#define GRAIN (1 << 13)

static int64_t rows_grain(int64_t cols) { return cols >= GRAIN ? 1 : (GRAIN + cols - 1) / cols; }

/* Steps of gelu8 in double: widening 8 floats, t clamped to [-hi, hi] (NaN stays), 1 / d (d within
 * [-2.4, -0.014]: no overflow or underflow), max(0, c) (NaN stays) and narrowing back. With AVX-512 each is
 * one instruction, the reciprocal the 14-bit estimate of the double and two Newton steps (2^-56); through
 * vector extensions GCC splits conversions into halves and the reciprocal is the float one and one Newton
 * step (2^-46). gelu 1.7 -> 2.4 G/s on two threads with AVX-512. */
#if defined(__AVX512F__)
static inline f64x8 as_f64x8(__m512d v) {
    f64x8 out;
    memcpy(&out, &v, sizeof out);
    return out;
}

static inline __m512d as_m512d(f64x8 v) {
    __m512d out;
    memcpy(&out, &v, sizeof out);
    return out;
}

static inline f64x8 widen8(f32x8 x) {
    __m256 v;
    memcpy(&v, &x, sizeof v);
    return as_f64x8(_mm512_cvtps_pd(v));
}

static inline f32x8 narrow8(f64x8 x) {
    const __m256 v = _mm512_cvtpd_ps(as_m512d(x));
    f32x8 out;
    memcpy(&out, &v, sizeof out);
    return out;
}

/* max and min return their second operand where either is NaN: a NaN passes through */
static inline f64x8 clamp8(f64x8 v, double hi) {
    const __m512d top = _mm512_set1_pd(hi);
    return as_f64x8(_mm512_min_pd(top, _mm512_max_pd(_mm512_sub_pd(_mm512_setzero_pd(), top), as_m512d(v))));
}

static inline f64x8 positive8(f64x8 c) { return as_f64x8(_mm512_max_pd(_mm512_setzero_pd(), as_m512d(c))); }

static inline f64x8 reciprocal8(f64x8 d) {
    f64x8 r = as_f64x8(_mm512_rcp14_pd(as_m512d(d)));
    for (int step = 0; step < 2; step++) r = r * (2.0 - d * r); /* 14 -> 28 -> 56 bits */
    return r;
}
#else
static inline f64x8 widen8(f32x8 x) { return __builtin_convertvector(x, f64x8); }

static inline f32x8 narrow8(f64x8 x) { return __builtin_convertvector(x, f32x8); }

static inline f64x8 clamp8(f64x8 v, double hi) {
    const f64x8 top = (f64x8){0} + hi, bottom = -top;
    return select8(v < bottom, bottom, select8(v > top, top, v));
}

static inline f64x8 positive8(f64x8 c) { return select8(c < 0.0, (f64x8){0}, c); }

static inline f64x8 reciprocal8(f64x8 d) {
    const f64x8 r = __builtin_convertvector(1.0f / __builtin_convertvector(d, f32x8), f64x8);
    return r * (2.0 - d * r);
}
#endif

/* gelu(x) = x * max(0, 1/2 + t * P(t^2) / Q(t^2)), t = x clamped to [-limit, limit]: the rational
 * fit of erf (cpu.py's _GELU_P, 7 coefficients, and _GELU_Q, 5, highest power first), evaluated in
 * double as numpy's float32 path does, then rounded once to float; num / den without a double division
 * (the slowest instruction here). NaN stays NaN. */
static inline f32x8 gelu8(f32x8 x, const double *restrict p, const double *restrict q, double limit) {
    const f64x8 v = widen8(x), t = clamp8(v, limit), t2 = t * t;
    f64x8 num = t2 * p[0] + p[1];
    for (int k = 2; k < 7; k++) num = num * t2 + p[k];
    f64x8 den = t2 * q[0] + q[1];
    for (int k = 2; k < 5; k++) den = den * t2 + q[k];
    const f64x8 c = positive8(num * t * reciprocal8(den) + 0.5); /* the fit overshoots erf(-4) by 6e-8 */
    return narrow8(c * v);
}

struct gelu_job {
    const float *x;
    float *out;
    const double *p, *q;
    double limit;
};

/* gelu of n floats, x to out (out may be x: each vector is loaded before its result is stored):
 * 32 at a time while they last (four independent chains: each is one long dependent sequence; two
 * chains ran at 2.4 G/s on two threads, four at 3.0), then 8 at a time */
static void gelu_span(const float *x, float *out, int64_t n, const double *pp, const double *qq, double limit) {
    double p[7], q[5]; /* local copies: the compiler keeps them in registers */
    memcpy(p, pp, sizeof p);
    memcpy(q, qq, sizeof q);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        f32x8 v[4];
        memcpy(v, x + i, sizeof v);
        for (int h = 0; h < 4; h++) v[h] = gelu8(v[h], p, q, limit);
        memcpy(out + i, v, sizeof v);
    }
    float tail[8] = {0};
    for (; i < n; i += 8) {
        const int64_t count = n - i < 8 ? n - i : 8;
        memcpy(tail, x + i, (size_t)count * sizeof *x);
        f32x8 v;
        memcpy(&v, tail, sizeof v);
        const f32x8 r = gelu8(v, p, q, limit);
        memcpy(out + i, &r, (size_t)count * sizeof *out);
    }
}

/* elements [begin, end) */
static void gelu_range(const void *job, int64_t slot, int64_t begin, int64_t end) {
    (void)slot;
    const struct gelu_job *g = job;
    gelu_span(g->x + begin, g->out + begin, end - begin, g->p, g->q, g->limit);
}

struct split_job {
    range_fn fn;
    const void *job;
    int64_t n, unit;
};

/* ranges of whole ``unit``s of elements: the last one ends at n */
static void split_range(const void *job, int64_t slot, int64_t begin, int64_t end) {
    const struct split_job *s = job;
    const int64_t stop = end * s->unit < s->n ? end * s->unit : s->n;
    s->fn(s->job, slot, begin * s->unit, stop);
}

void al_gelu_f32(const float *restrict x, float *restrict out, int64_t n, const double *restrict p,
                 const double *restrict q, double limit, int64_t threads) {
    const struct gelu_job job = {x, out, p, q, limit};
    const struct split_job split = {gelu_range, &job, n, 16};
    parallel_for(threads, (n + 15) / 16, GRAIN / 16, split_range, &split);
}

/* out = a + b over (rows, cols): b holds b_rows rows of cols that repeat down a (1: a bias; rows: a
 * tensor of a's shape; between: a broadcast over a's leading axes, as positions over a batch); out
 * may be a or b. */
struct add_job {
    const float *a, *b;
    float *out;
    int64_t cols, b_rows;
};

static void add_range(const void *job, int64_t slot, int64_t begin, int64_t end) {
    (void)slot;
    const struct add_job *j = job;
    for (int64_t r = begin; r < end; r++) {
        const float *a = j->a + r * j->cols, *b = j->b + (r % j->b_rows) * j->cols;
        float *o = j->out + r * j->cols;
        for (int64_t c = 0; c < j->cols; c++) o[c] = a[c] + b[c];
    }
}

void al_add_f32(const float *a, const float *b, float *out, int64_t rows, int64_t cols, int64_t b_rows,
                int64_t threads) {
    const struct add_job job = {a, b, out, cols, b_rows};
    parallel_for(threads, rows, rows_grain(cols), add_range, &job);
}

/* C = act(A B + bias) + residual through a BLAS's cblas_sgemm (row-major; A or B transposed: stored
 * column-major), split over threads by blocks of 16 rows of C, or of PANEL_COLS (48) columns where C has
 * fewer than 512 rows (then each thread reads only its share of B, the bigger operand of a 128-token
 * layer: ~10% off BERT at 1 x 128 on two threads); each part is one sgemm call (or the tiles of
 * panel_product, below), or one sgemv call where A is a single row (the caller keeps the BLAS itself
 * single-threaded meanwhile). The blocks keep each part's tiles where the whole product has them; a
 * BLAS may still pick another kernel for a smaller part (a few last bits apart: the tests check row
 * splits of row-major operands bit for bit). Where the CPU has AMX, products of 256 rows and more run
 * on its tiles instead (amx.h: as accurate, other bits, the same whatever the thread count).
 * The epilogue costs no pass of its own: the compiled tiles start their sums from bias + residual (or
 * the bias alone before an activation); where the BLAS computes, C is first filled with them and the
 * BLAS adds the product (beta = 1: it zeroes C otherwise, a pass just as long); gelu and a residual
 * after it run on the part while it is in this core's cache. */
typedef void (*sgemm64_fn)(int, int, int, int64_t, int64_t, int64_t, float, const float *, int64_t, const float *,
                           int64_t, float, float *, int64_t);
typedef void (*sgemm32_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float,
                           float *, int);
typedef void (*sgemv64_fn)(int, int, int64_t, int64_t, float, const float *, int64_t, const float *, int64_t, float,
                           float *, int64_t);
typedef void (*sgemv32_fn)(int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

typedef void (*any_fn)(void);

struct matmul_job {
    any_fn sgemm, sgemv;
    int ilp64, trans_a, trans_b, by_rows, gelu;
    const float *a, *b, *bias, *residual;
    float *c;
    int64_t m, n, k, lda, ldb, ldr, block;
    const double *p, *q; /* gelu's fit, as al_gelu_f32 */
    double limit;
};

/* where a product's sums start: bias (a row) plus residual (row stride ldr); either may be NULL */
struct start {
    const float *bias, *residual;
    int64_t ldr;
};

/* rows x cols of C at c (row stride n) <- bias + residual, either may be NULL (not both) */
static void prefill(float *c, int64_t rows, int64_t cols, int64_t n, const float *bias, const float *residual,
                    int64_t ldr) {
    for (int64_t r = 0; r < rows; r++) {
        float *o = c + r * n;
        const float *res = residual ? residual + r * ldr : NULL;
        if (bias && res)
            for (int64_t i = 0; i < cols; i++) o[i] = res[i] + bias[i];
        else
            memcpy(o, bias ? bias : res, (size_t)cols * sizeof *o);
    }
}

/* C (m x n, row stride j->n) = A B + beta C through the BLAS: sgemv where A is a single row */
static void blas_product(const struct matmul_job *j, const float *a, const float *b, float *c, int64_t m, int64_t n,
                         float beta) {
    if (m <= 0 || n <= 0) return;
    if (m == 1) { /* c = b^T a: the rows of b's storage are its columns where it is transposed */
        const int trans = j->trans_b ? NO_TRANS : TRANS;
        const int64_t rows = j->trans_b ? n : j->k, cols = j->trans_b ? j->k : n;
        if (j->ilp64)
            ((sgemv64_fn)j->sgemv)(ROW_MAJOR, trans, rows, cols, 1.0f, b, j->ldb, a, 1, beta, c, 1);
        else
            ((sgemv32_fn)j->sgemv)(ROW_MAJOR, trans, (int)rows, (int)cols, 1.0f, b, (int)j->ldb, a, 1, beta, c, 1);
        return;
    }
    const int ta = j->trans_a ? TRANS : NO_TRANS, tb = j->trans_b ? TRANS : NO_TRANS;
    if (j->ilp64)
        ((sgemm64_fn)j->sgemm)(ROW_MAJOR, ta, tb, m, n, j->k, 1.0f, a, j->lda, b, j->ldb, beta, c, j->n);
    else
        ((sgemm32_fn)j->sgemm)(ROW_MAJOR, ta, tb, (int)m, (int)n, (int)j->k, 1.0f, a, (int)j->lda, b, (int)j->ldb, beta,
                               c, (int)j->n);
}

/* Products of fewer rows than the BLAS packs well (a 128-token layer), row-major A and B, with AVX-512:
 * C in tiles of PANEL_ROWS x PANEL_COLS, each a sum over k of a column of A times a row of a panel of B
 * (PANEL_COLS columns). The first tile of a panel reads it from B and copies it to contiguous scratch
 * on the way; the panel's other tiles read the copy, in this core's cache. OpenBLAS copies ("packs")
 * B's blocks in a pass of its own before its kernel: 15-25% of its time at 128 rows, one thread (the
 * tiles here: 1.1-1.25x its speed on BERT's shapes). The sums run over k in order, as OpenBLAS's do. */
#define PANEL_ROWS 8
#define PANEL_COLS 48
#define PANEL_AHEAD 16 /* rows of B read ahead by the first tile of a panel */

/* lines of the next panel (3 per row of B from b, row stride ldb) to fetch, one every `every` steps */
struct ahead {
    const float *b;
    int64_t ldb, lines, every;
};

static inline __attribute__((always_inline)) void panel_tile(const float *restrict a, int64_t lda,
                                                             const float *restrict b, int64_t ldb, int64_t k,
                                                             float *restrict c, int64_t ldc, float *restrict copy,
                                                             const struct start *s, const struct ahead *next) {
    f32x16 acc[PANEL_ROWS][3];
    int64_t line = 0, wait = 0;
    for (int r = 0; r < PANEL_ROWS; r++)
        for (int v = 0; v < 3; v++) {
            const f32x16 bias = s->bias ? load16(s->bias + 16 * v) : (f32x16){0};
            acc[r][v] = s->residual ? load16(s->residual + r * s->ldr + 16 * v) + bias : bias;
        }
    for (int64_t p = 0; p < k; p++) {
        const f32x16 b0 = load16(b + p * ldb), b1 = load16(b + p * ldb + 16), b2 = load16(b + p * ldb + 32);
        if (copy) { /* B's rows lie pages apart: the hardware prefetches nothing across pages */
            const float *ahead = b + (p + PANEL_AHEAD) * ldb;
            if (p + PANEL_AHEAD < k) {
                __builtin_prefetch(ahead);
                __builtin_prefetch(ahead + 16);
                __builtin_prefetch(ahead + 32);
            }
            store16(copy + p * PANEL_COLS, b0);
            store16(copy + p * PANEL_COLS + 16, b1);
            store16(copy + p * PANEL_COLS + 32, b2);
        }
        if (next && line < next->lines && --wait <= 0) { /* a line of the next panel into L2 */
            __builtin_prefetch(next->b + (line / 3) * next->ldb + 16 * (line % 3), 0, 2);
            line++;
            wait = next->every;
        }
        for (int r = 0; r < PANEL_ROWS; r++) {
            const float s = a[r * lda + p];
            acc[r][0] += s * b0;
            acc[r][1] += s * b1;
            acc[r][2] += s * b2;
        }
    }
    for (int r = 0; r < PANEL_ROWS; r++)
        for (int v = 0; v < 3; v++) store16(c + r * ldc + 16 * v, acc[r][v]);
}

/* The whole tiles of C (m x n): rows and columns multiples of PANEL_ROWS and PANEL_COLS; each tile's
 * sums start from s (bias, residual: NULL, or at C's first column and row). While the tiles after the
 * first compute on a panel's copy, they fetch the next panel's rows into L2 between them, a line
 * every few steps (`ahead`): its first tile then reads them from L2, not L3 or memory (a BERT
 * forward's 24 products at 128 rows on two threads: 10.1-10.9 -> 9.3-9.5 ms, as fast as panels
 * copied once at load, without the memory). ``width``: B's columns from b (n or more): the last panel
 * fetches the first of the columns after n (mostly this thread's next range). */
static void panel_product(const float *a, int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc, int64_t m,
                          int64_t n, int64_t width, int64_t k, struct start s, float *panel) {
    const int64_t tiles = m / PANEL_ROWS - 1, rows_each = tiles > 0 ? (k + tiles - 1) / tiles : 0;
    const int64_t every = rows_each && k / (3 * rows_each) > 1 ? k / (3 * rows_each) : 1;
    for (int64_t j = 0; j < n; j += PANEL_COLS) {
        const struct start at = {s.bias ? s.bias + j : NULL, s.residual ? s.residual + j : NULL, s.ldr};
        panel_tile(a, lda, b + j, ldb, k, c + j, ldc, panel, &at, NULL);
        for (int64_t i = PANEL_ROWS, t = 0; i < m; i += PANEL_ROWS, t++) {
            const struct start row = {at.bias, at.residual ? at.residual + i * s.ldr : NULL, s.ldr};
            const int64_t first = t * rows_each, rows = first < k ? (k - first < rows_each ? k - first : rows_each) : 0;
            const struct ahead next = {b + j + PANEL_COLS + first * ldb, ldb, 3 * rows, every};
            const int more = j + 2 * PANEL_COLS <= width && rows > 0;
            panel_tile(a + i * lda, lda, panel, PANEL_COLS, k, c + i * ldc + j, ldc, NULL, &row, more ? &next : NULL);
        }
    }
}

/* This thread's panel scratch of k x PANEL_COLS floats (kept for the thread's next product); NULL where
 * it cannot be had */
static float *panel_scratch(int64_t k) {
    static _Thread_local float *scratch;
    static _Thread_local int64_t capacity;
    if (k > capacity) {
        float *grown = realloc(scratch, (size_t)(k * PANEL_COLS) * sizeof *grown);
        if (!grown) return NULL;
        scratch = grown;
        capacity = k;
    }
    return scratch;
}

/* C = A B + bias + residual (either may be NULL) for one part: whole tiles by panel_product where it
 * applies (their sums start from bias and residual; B has ``width`` columns from b), the rest by the
 * BLAS adding to C prefilled */
static void part_product(const struct matmul_job *j, const float *a, const float *b, float *c, int64_t m, int64_t n,
                         int64_t width, struct start s) {
    const float beta = s.bias || s.residual ? 1.0f : 0.0f;
#if defined(__AVX512F__)
    float *panel;
    if (!j->by_rows && m >= PANEL_ROWS && !j->trans_a && !j->trans_b && (panel = panel_scratch(j->k))) {
        const int64_t rows = m / PANEL_ROWS * PANEL_ROWS, cols = n / PANEL_COLS * PANEL_COLS;
        panel_product(a, j->lda, b, j->ldb, c, j->n, rows, cols, width, j->k, s, panel);
        if (beta != 0.0f) { /* the last columns, then the last rows */
            prefill(c + cols, rows, n - cols, j->n, s.bias ? s.bias + cols : NULL,
                    s.residual ? s.residual + cols : NULL, s.ldr);
            prefill(c + rows * j->n, m - rows, n, j->n, s.bias, s.residual ? s.residual + rows * s.ldr : NULL,
                    s.ldr);
        }
        blas_product(j, a, b + cols, c + cols, rows, n - cols, beta);
        blas_product(j, a + rows * j->lda, b, c + rows * j->n, m - rows, n, beta);
        return;
    }
#endif
    if (beta != 0.0f) prefill(c, m, n, j->n, s.bias, s.residual, s.ldr);
    blas_product(j, a, b, c, m, n, beta);
}

static void matmul_range(const void *job, int64_t slot, int64_t begin, int64_t end) {
    (void)slot;
    const struct matmul_job *j = job;
    const int64_t limit = j->by_rows ? j->m : j->n, first = begin * j->block;
    const int64_t count = (end * j->block < limit ? end * j->block : limit) - first;
    const float *a = j->a, *b = j->b, *bias = j->bias, *residual = j->residual;
    float *c = j->c;
    int64_t m = j->m, n = j->n;
    if (j->by_rows) {
        a += j->trans_a ? first : first * j->lda;
        c += first * j->n;
        residual = residual ? residual + first * j->ldr : NULL;
        m = count;
    } else {
        b += j->trans_b ? first * j->ldb : first;
        c += first;
        bias = bias ? bias + first : NULL;
        residual = residual ? residual + first : NULL;
        n = count;
    }
    const float *early = j->gelu ? NULL : residual; /* added before the product, or after gelu */
    part_product(j, a, b, c, m, n, j->by_rows ? n : j->n - first, (struct start){bias, early, j->ldr});
    if (!j->gelu) return;
    for (int64_t r = 0; r < m; r++) {
        float *o = c + r * j->n;
        gelu_span(o, o, n, j->p, j->q, j->limit);
        if (residual) {
            const float *res = residual + r * j->ldr;
            for (int64_t i = 0; i < n; i++) o[i] += res[i];
        }
    }
}

#include "amx.h"

void al_matmul_f32(any_fn sgemm, any_fn sgemv, int64_t ilp64, const float *a, int64_t trans_a, int64_t lda, const float *b,
                   int64_t trans_b, int64_t ldb, float *c, int64_t m, int64_t n, int64_t k, const float *bias,
                   const float *residual, int64_t ldr, const double *gelu_p, const double *gelu_q, double gelu_limit,
                   int64_t threads) {
    const int by_rows = m >= 512;
    const int64_t block = by_rows ? 16 : PANEL_COLS, blocks = ((by_rows ? m : n) + block - 1) / block;
    /* a part of at least ~4 MFLOP: some hundred times a thread's start */
    const int64_t block_flops = 2 * block * k * (by_rows ? n : m);
    const int64_t grain = block_flops >= (1 << 22) ? 1 : (1 << 22) / (block_flops > 0 ? block_flops : 1);
    const struct matmul_job job = {sgemm, sgemv,    (int)ilp64, (int)trans_a, (int)trans_b, by_rows, gelu_p != NULL,
                                   a,     b,        bias,       residual,     c,            m,       n,
                                   k,     lda,      ldb,        ldr,          block,        gelu_p,  gelu_q,
                                   gelu_limit};
#if defined(AMX_BUILD)
    if (amx_product(&job, threads)) return;
#endif
    parallel_for(threads, blocks, grain, matmul_range, &job);
}

/* sum of x[0..n) in double */
static double sum_f64(const float *restrict x, int64_t n) {
    double lane[WIDTH] = {0};
    int64_t j = 0;
    for (; j + WIDTH <= n; j += WIDTH)
        for (int k = 0; k < WIDTH; k++) lane[k] += x[j + k];
    double total = 0.0;
    for (; j < n; j++) total += x[j];
    for (int k = 0; k < WIDTH; k++) total += lane[k];
    return total;
}

/* sum of (x - center)^2 over x[0..n) in double */
static double squares_f64(const float *restrict x, int64_t n, double center) {
    double lane[WIDTH] = {0};
    int64_t j = 0;
    for (; j + WIDTH <= n; j += WIDTH)
        for (int k = 0; k < WIDTH; k++) {
            double d = x[j + k] - center;
            lane[k] += d * d;
        }
    double total = 0.0;
    for (; j < n; j++) total += (x[j] - center) * (x[j] - center);
    for (int k = 0; k < WIDTH; k++) total += lane[k];
    return total;
}

/* Layer norm over the last axis of a (rows, cols) array: mean, then the variance of x - mean (two
 * passes over a row that sits in L1), in double; then (x - mean) / sqrt(var + eps) * w + b in float.
 * w and b may be NULL. */
struct layer_norm_job {
    const float *x, *w, *b;
    float *out;
    int64_t cols;
    double eps;
};

static void layer_norm_range(const void *job, int64_t slot, int64_t begin, int64_t end) {
    (void)slot;
    const struct layer_norm_job *n = job;
    const int64_t cols = n->cols;
    const float *restrict w = n->w, *restrict b = n->b;
    for (int64_t r = begin; r < end; r++) {
        const float *restrict row = n->x + r * cols;
        float *restrict o = n->out + r * cols;
        const double mean = sum_f64(row, cols) / (double)cols;
        const float rstd = (float)(1.0 / sqrt(squares_f64(row, cols, mean) / (double)cols + n->eps));
        const float m = (float)mean;
        for (int64_t j = 0; j < cols; j++) o[j] = (row[j] - m) * rstd;
        if (w)
            for (int64_t j = 0; j < cols; j++) o[j] *= w[j];
        if (b)
            for (int64_t j = 0; j < cols; j++) o[j] += b[j];
    }
}

void al_layer_norm_f32(const float *restrict x, const float *restrict w, const float *restrict b,
                       float *restrict out, int64_t rows, int64_t cols, double eps, int64_t threads) {
    const struct layer_norm_job job = {x, w, b, out, cols, eps};
    parallel_for(threads, rows, rows_grain(cols), layer_norm_range, &job);
}

/* The largest lane (NaN lanes ignored unless all are NaN) and the sum of the lanes, by halving:
 * four dependent steps rather than fifteen; with AVX-512 in registers (the same halving order: the
 * same bits), elsewhere through memory. */
#if defined(__AVX512F__)
static inline float max16(f32x16 v) {
    __m512 m;
    memcpy(&m, &v, sizeof m);
    return _mm512_reduce_max_ps(m);
}

static inline float sum16(f32x16 v) {
    __m512 m;
    memcpy(&m, &v, sizeof m);
    return _mm512_reduce_add_ps(m);
}
#else
static inline float max16(f32x16 v) {
    float lane[WIDTH];
    memcpy(lane, &v, sizeof lane);
    for (int width = WIDTH / 2; width; width /= 2)
        for (int k = 0; k < width; k++) lane[k] = lane[k + width] > lane[k] ? lane[k + width] : lane[k];
    return lane[0];
}

static inline float sum16(f32x16 v) {
    float lane[WIDTH];
    memcpy(lane, &v, sizeof lane);
    for (int width = WIDTH / 2; width; width /= 2)
        for (int k = 0; k < width; k++) lane[k] += lane[k + width];
    return lane[0];
}
#endif

/* e^x for x <= 0, -inf or NaN: 2^n e^r with n = round(x / ln 2) (the 1.5 * 2^23 shifter rounds to
 * nearest and leaves n in the low bits), |r| <= ln 2 / 2 exact to float from ln 2 in two parts, and
 * e^r by its degree-7 Taylor polynomial (truncation below 3e-9 relative): within 2 ulp of e^x.
 * Below -87.33 (where e^x is subnormal) and at -inf it gives 0; NaN stays NaN. */
static inline f32x16 exp16(f32x16 x) {
    const f32x16 lo = (f32x16){0} - 87.33654f;
    const i32x16 under = x < lo;
    const f32x16 clamped = select16(under, lo, x);
    const f32x16 shifted = clamped * 1.44269504088896341f + 12582912.0f;
    const f32x16 n = shifted - 12582912.0f;
    f32x16 r = clamped - n * 0.693145751953125f;
    r = r - n * 1.428606765330187e-06f;
    f32x16 e = r * (1.0f / 5040.0f) + 1.0f / 720.0f;
    e = e * r + 1.0f / 120.0f;
    e = e * r + 1.0f / 24.0f;
    e = e * r + 1.0f / 6.0f;
    e = e * r + 0.5f;
    e = e * r + 1.0f;
    e = e * r + 1.0f;
    const u32x16 scale = ((u32x16)shifted - (0x4B400000u - 127u)) << 23; /* 2^n, n in [-126, 0] */
    return select16(under, (f32x16){0}, e * (f32x16)scale);
}

/* Softmax of one row of ``cols`` scores ``row * factor``, plus the float mask row ``add`` or with the
 * positions where the bool mask row ``hide`` is set at -inf (either may be NULL), into ``o``. The shift
 * is the row's maximum. A row holding NaN, or +inf, or only -inf gives NaN throughout, as numpy's
 * formula does. ``o`` may be ``row`` (in place): each element is read before it is written. */
static void softmax_row(const float *row, float *o, int64_t cols, float factor, const float *restrict add,
                        const uint8_t *restrict hide) {
    const int64_t body = cols - cols % WIDTH;
    /* scores into out and their maximum in one pass; the maximum ignores NaN, whose exponential
     * then makes the sum NaN */
    f32x16 top16 = (f32x16){0} - INFINITY;
    for (int64_t j = 0; j < body; j += WIDTH) {
        f32x16 v = load16(row + j) * factor;
        if (add) v += load16(add + j);
        if (hide) {
            i32x16 h;
            for (int k = 0; k < WIDTH; k++) h[k] = hide[j + k] ? -1 : 0;
            v = select16(h, (f32x16){0} - INFINITY, v);
        }
        store16(o + j, v);
        top16 = select16(v > top16, v, top16);
    }
    float top = -INFINITY;
    for (int64_t j = body; j < cols; j++) {
        float v = row[j] * factor + (add ? add[j] : 0.0f);
        o[j] = hide && hide[j] ? -INFINITY : v;
        top = o[j] > top ? o[j] : top;
    }
    const float top_body = max16(top16);
    top = top_body > top ? top_body : top;
    f32x16 sums = {0};
    for (int64_t j = 0; j < body; j += WIDTH) {
        f32x16 e = exp16(load16(o + j) - top);
        store16(o + j, e);
        sums += e;
    }
    if (body < cols) { /* the tail, padded with -inf: e^-inf adds 0 */
        float tail[WIDTH];
        for (int k = 0; k < WIDTH; k++) tail[k] = body + k < cols ? o[body + k] : -INFINITY;
        f32x16 e = exp16(load16(tail) - top);
        sums += e;
        for (int64_t j = body; j < cols; j++) o[j] = e[j - body];
    }
    const float sum = sum16(sums);
    if (!isfinite(top) || sum != sum) { /* a NaN, a +inf maximum (inf - inf), or only -inf */
        for (int64_t j = 0; j < cols; j++) o[j] = NAN;
        return;
    }
    const float inverse = 1.0f / sum;
    for (int64_t j = 0; j < cols; j++) o[j] *= inverse;
}

struct softmax_job {
    const float *x;
    float *out;
    int64_t cols;
    float factor;
    const float *added;
    const uint8_t *hidden;
    int64_t inner, outer_stride, inner_stride;
};

static void softmax_range(const void *job, int64_t slot, int64_t begin, int64_t end) {
    (void)slot;
    const struct softmax_job *s = job;
    for (int64_t r = begin; r < end; r++) {
        const int64_t m = (r / s->inner) * s->outer_stride + (r % s->inner) * s->inner_stride;
        softmax_row(s->x + r * s->cols, s->out + r * s->cols, s->cols, s->factor, s->added ? s->added + m : NULL,
                    s->hidden ? s->hidden + m : NULL);
    }
}

/* Softmax along each row of x (rows, cols) into out (softmax_row). Rows are grouped ``inner`` at a
 * time (a query's rows of one head, say): the mask row of row r starts at element
 * (r / inner) * outer_stride + (r % inner) * inner_stride (strides 0: a broadcast mask). */
void al_softmax_f32(const float *x, float *out, int64_t rows, int64_t cols, float factor,
                    const float *restrict added, const uint8_t *restrict hidden, int64_t inner,
                    int64_t outer_stride, int64_t inner_stride, int64_t threads) {
    const struct softmax_job job = {x, out, cols, factor, added, hidden, inner, outer_stride, inner_stride};
    parallel_for(threads, rows, rows_grain(cols), softmax_range, &job);
}

/* Attention: out = softmax(q k^T * factor + mask) v for each of ``units`` heads, on queries ``rows`` at
 * a time. Per head, k^T and v are first copied into zero-padded scratch (keys and value columns rounded
 * up to 32; k transposed 16 x 16 floats at a time in registers with AVX-512: a BERT head, 128 queries
 * and keys of 32, 30 -> 27 us on one thread), so that both products run on one register-blocked
 * kernel: an 8 x 32 tile of C = A B (A's rows strided by lda, B's by ldb) in sixteen 16-float
 * accumulators, over k steps. */
#define ROWS 8
#define COLS 32

static inline void tile_8x32(const float *restrict a, int64_t lda, const float *restrict b, int64_t ldb,
                             int64_t k, float *restrict c, int64_t ldc) {
    f32x16 acc[ROWS][2] = {{{0}}};
    for (int64_t p = 0; p < k; p++) {
        const f32x16 b0 = load16(b + p * ldb), b1 = load16(b + p * ldb + 16);
        for (int r = 0; r < ROWS; r++) {
            const float s = a[r * lda + p];
            acc[r][0] += s * b0;
            acc[r][1] += s * b1;
        }
    }
    for (int r = 0; r < ROWS; r++) {
        store16(c + r * ldc, acc[r][0]);
        store16(c + r * ldc + 16, acc[r][1]);
    }
}

#if defined(__AVX512F__)
/* 16 rows of 16 floats (x, row stride ldx) to 16 columns (out, row stride ldo): interleaved pairs,
 * quads, then 128-bit lanes (the usual AVX-512 transpose: 64 shuffles instead of 256 scalar stores) */
static inline void transpose16(const float *restrict x, int64_t ldx, float *restrict out, int64_t ldo) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(x + i * ldx);
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 8] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 4], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 4], 0xDD);
        r[i + 4] = _mm512_shuffle_f32x4(t[i + 8], t[i + 12], 0x88);
        r[i + 12] = _mm512_shuffle_f32x4(t[i + 8], t[i + 12], 0xDD);
    }
    for (int i = 0; i < 16; i++) _mm512_storeu_ps(out + i * ldo, r[i]);
}
#endif

/* rows x cols of x (row stride ldx) into out transposed (cols x rows, row stride ldo) */
static void transpose(const float *restrict x, int64_t ldx, int64_t rows, int64_t cols, float *restrict out,
                      int64_t ldo) {
    int64_t i0 = 0;
#if defined(__AVX512F__)
    const int64_t whole = cols / 16 * 16;
    for (; i0 + 16 <= rows; i0 += 16)
        for (int64_t j0 = 0; j0 < whole; j0 += 16) transpose16(x + i0 * ldx + j0, ldx, out + j0 * ldo + i0, ldo);
    for (int64_t i = 0; i < i0; i++) /* the last columns of the whole blocks of rows */
        for (int64_t j = whole; j < cols; j++) out[j * ldo + i] = x[i * ldx + j];
#endif
    for (int64_t i = i0; i < rows; i++) /* the last rows */
        for (int64_t j = 0; j < cols; j++) out[j * ldo + i] = x[i * ldx + j];
}

/* Where a head's matrix lies: element (unit u, row i, column j) at
 * (u / inner) * outer + (u % inner) * unit_stride + i * row + j (the last axis is contiguous). */
struct layout {
    int64_t outer, unit, row;
};

static int64_t offset(const struct layout *l, int64_t u, int64_t inner) {
    return (u / inner) * l->outer + (u % inner) * l->unit;
}

struct attention_job {
    const float *q, *k, *v;
    float *out;
    const float *added;
    const uint8_t *hidden;
    struct layout lq, lk, lv, lo, lm; /* lm: the mask's (row 0 for a mask of one row) */
    int64_t inner, length, source, dim, dim_v;
    float factor;
    float *scratch; /* scratch_floats(...) floats per range */
};

static int64_t scratch_floats(int64_t source, int64_t dim, int64_t dim_v) {
    const int64_t s = round_up(source, COLS), e = round_up(dim_v, COLS);
    return dim * s + s * e + ROWS * dim + ROWS * s + ROWS * e;
}

static void attention_range(const void *job, int64_t slot, int64_t begin, int64_t end) {
    const struct attention_job *a = job;
    const int64_t s32 = round_up(a->source, COLS), e32 = round_up(a->dim_v, COLS), dim = a->dim;
    float *const kt = a->scratch + slot * scratch_floats(a->source, dim, a->dim_v); /* (dim, s32) */
    float *const vp = kt + dim * s32;                                                /* (s32, e32) */
    float *const qb = vp + s32 * e32;                                                /* (ROWS, dim) */
    float *const sc = qb + ROWS * dim;                                               /* (ROWS, s32) */
    float *const ob = sc + ROWS * s32;                                               /* (ROWS, e32) */
    memset(kt, 0, (size_t)(dim * s32 + s32 * e32) * sizeof *kt);
    for (int64_t u = begin; u < end; u++) {
        const float *q = a->q + offset(&a->lq, u, a->inner), *k = a->k + offset(&a->lk, u, a->inner);
        const float *v = a->v + offset(&a->lv, u, a->inner);
        float *out = a->out + offset(&a->lo, u, a->inner);
        /* values are copied too, even where no row needs padding: read in place, rows a few KB apart
         * (BERT's: 4.5 KB) fall into a few of L1's sets and evict each other (one thread, a head of
         * 128 queries and keys of 32: 28.1 -> 25.0 us) */
        const int in_place = e32 == a->dim_v; /* outputs: no columns to drop */
        transpose(k, a->lk.row, a->source, dim, kt, s32);
        for (int64_t j = 0; j < a->source; j++) memcpy(vp + j * e32, v + j * a->lv.row, (size_t)a->dim_v * sizeof *vp);
        for (int64_t i0 = 0; i0 < a->length; i0 += ROWS) {
            const int64_t rows = a->length - i0 < ROWS ? a->length - i0 : ROWS;
            /* a whole block of queries is read in place, and (without padded columns) written in place */
            const float *queries = rows == ROWS ? q + i0 * a->lq.row : qb;
            const int64_t ldq = rows == ROWS ? a->lq.row : dim;
            for (int64_t r = 0; r < ROWS && rows < ROWS; r++) {
                if (r < rows)
                    memcpy(qb + r * dim, q + (i0 + r) * a->lq.row, (size_t)dim * sizeof *qb);
                else
                    memset(qb + r * dim, 0, (size_t)dim * sizeof *qb);
            }
            for (int64_t c = 0; c < s32; c += COLS) tile_8x32(queries, ldq, kt + c, s32, dim, sc + c, s32);
            for (int64_t r = 0; r < ROWS; r++) {
                float *row = sc + r * s32;
                if (r < rows) {
                    const int64_t m = offset(&a->lm, u, a->inner) + (i0 + r) * a->lm.row;
                    softmax_row(row, row, a->source, a->factor, a->added ? a->added + m : NULL,
                                a->hidden ? a->hidden + m : NULL);
                    memset(row + a->source, 0, (size_t)(s32 - a->source) * sizeof *row);
                } else {
                    memset(row, 0, (size_t)s32 * sizeof *row);
                }
            }
            if (in_place && rows == ROWS) {
                for (int64_t c = 0; c < e32; c += COLS)
                    tile_8x32(sc, s32, vp + c, e32, s32, out + i0 * a->lo.row + c, a->lo.row);
                continue;
            }
            for (int64_t c = 0; c < e32; c += COLS) tile_8x32(sc, s32, vp + c, e32, s32, ob + c, e32);
            for (int64_t r = 0; r < rows; r++)
                memcpy(out + (i0 + r) * a->lo.row, ob + r * e32, (size_t)a->dim_v * sizeof *out);
        }
    }
}

/* layouts: the (outer, unit, row) strides in elements of q, k, v, out and the mask, 15 numbers.
 * Returns 0, or -1 where the scratch could not be allocated (nothing done). */
int al_attention_f32(const float *q, const float *k, const float *v, float *out, const float *added,
                     const uint8_t *hidden, const int64_t *layouts, int64_t units, int64_t inner, int64_t length,
                     int64_t source, int64_t dim, int64_t dim_v, float factor, int64_t threads) {
    struct attention_job job = {
        .q = q, .k = k, .v = v, .out = out, .added = added, .hidden = hidden, .inner = inner,
        .length = length, .source = source, .dim = dim, .dim_v = dim_v, .factor = factor,
    };
    struct layout *l[5] = {&job.lq, &job.lk, &job.lv, &job.lo, &job.lm};
    for (int i = 0; i < 5; i++) *l[i] = (struct layout){layouts[3 * i], layouts[3 * i + 1], layouts[3 * i + 2]};
    /* a head of BERT's (128 queries and keys of 32) is ~2 MFLOP: about a thread's start cost times 100 */
    const int64_t flops = 2 * length * source * (dim + dim_v);
    const int64_t grain = flops >= (1 << 21) ? 1 : (1 << 21) / (flops > 0 ? flops : 1);
    const int64_t parts = count_parts(threads, units, grain);
    job.scratch = malloc((size_t)(parts * scratch_floats(source, dim, dim_v)) * sizeof(float));
    if (!job.scratch) return -1;
    parallel_for(threads, units, grain, attention_range, &job);
    free(job.scratch);
    return 0;
}

/* Transformer encoder layers in one call: what EncoderLayer (accelerate_lab/models/layers.py) computes
 * with one op per step, the same kernels in the same order (the same bits), without a return to Python
 * between them or between the layers. Python's steps between kernels cost more than they seem: the
 * products stream the weights through the caches and the interpreter's memory is cold after each (BERT
 * at 1 x 128: ~1.7 ms of Python per forward with the kernels stubbed out, ~4 ms between the real
 * ones; ~1 ms with its six layers in one call). Rows are the batch's tokens (batch x length) of
 * ``width`` features; weights are (in, out), row-major; ``hidden``: per batch item and key, 1 where no
 * query attends (NULL: none); post-norm (BERT): norm(x + attention(x)), then norm(x + mlp(x));
 * pre-norm (ViT, Whisper's encoder): x + attention(norm(x)), then x + mlp(norm(x)); the MLP's
 * activation is gelu. */
struct encoder_layer {
    any_fn sgemm, sgemv; /* numpy's BLAS, as al_matmul_f32 takes it */
    int64_t ilp64;
    const double *gelu_p, *gelu_q; /* gelu's fit, as al_gelu_f32 takes it */
    double gelu_limit, eps;        /* eps: both norms' */
    int64_t batch, length, width, heads, inner, pre_norm;
    const float *x;
    const uint8_t *hidden;
    const float *qkv_weight, *qkv_bias, *out_weight, *out_bias, *attention_norm_weight, *attention_norm_bias;
    const float *up_weight, *up_bias, *down_weight, *down_bias, *mlp_norm_weight, *mlp_norm_bias;
    float *qkv, *attended, *mid, *normed, *up, *out; /* scratch (rows x 3 width, ..., rows x inner), output */
};

/* C (m x n) = act(A (m x k) B (k x n) + bias) + residual, all row-major, on the layer's BLAS */
static void layer_product(const struct encoder_layer *l, const float *a, const float *b, float *c, int64_t n,
                          int64_t k, const float *bias, const float *residual, int gelu, int64_t threads) {
    al_matmul_f32(l->sgemm, l->sgemv, l->ilp64, a, 0, k, b, 0, n, c, l->batch * l->length, n, k, bias, residual, n,
                  gelu ? l->gelu_p : NULL, gelu ? l->gelu_q : NULL, l->gelu_limit, threads);
}

/* One layer; 0, or -1 where the attention's scratch could not be allocated (out not written). */
static int encoder_layer(const struct encoder_layer *l, int64_t threads) {
    const int64_t d = l->width, dim = d / l->heads, rows = l->batch * l->length, stride = l->length * 3 * d;
    /* (batch, head, row) strides of queries, keys and values in qkv, of the output, of the mask */
    const int64_t layouts[15] = {stride,        dim, 3 * d, stride, dim, 3 * d, stride, dim, 3 * d,
                                 l->length * d, dim, d,     l->length, 0, 0};
    const float *input = l->x;
    if (l->pre_norm) {
        al_layer_norm_f32(l->x, l->attention_norm_weight, l->attention_norm_bias, l->normed, rows, d, l->eps,
                          threads);
        input = l->normed;
    }
    layer_product(l, input, l->qkv_weight, l->qkv, 3 * d, d, l->qkv_bias, NULL, 0, threads);
    if (al_attention_f32(l->qkv, l->qkv + d, l->qkv + 2 * d, l->attended, NULL, l->hidden, layouts,
                         l->batch * l->heads, l->heads, l->length, l->length, dim, dim,
                         (float)(1.0 / sqrt((double)dim)), threads))
        return -1;
    layer_product(l, l->attended, l->out_weight, l->mid, d, d, l->out_bias, l->x, 0, threads);
    /* the MLP on the sum normed: by the MLP's norm (pre-norm) or the attention's (post-norm) */
    const int pre = (int)l->pre_norm;
    al_layer_norm_f32(l->mid, pre ? l->mlp_norm_weight : l->attention_norm_weight,
                      pre ? l->mlp_norm_bias : l->attention_norm_bias, l->normed, rows, d, l->eps, threads);
    layer_product(l, l->normed, l->up_weight, l->up, l->inner, d, l->up_bias, NULL, 1, threads);
    layer_product(l, l->up, l->down_weight, pre ? l->out : l->mid, d, l->inner, l->down_bias, pre ? l->mid : l->normed,
                  0, threads);
    if (!pre) al_layer_norm_f32(l->mid, l->mlp_norm_weight, l->mlp_norm_bias, l->out, rows, d, l->eps, threads);
    return 0;
}

/* ``count`` layers in turn (each one's out the next one's x); 0, or -1 as encoder_layer. */
int al_encoder_layers_f32(const struct encoder_layer *layers, int64_t count, int64_t threads) {
    for (int64_t i = 0; i < count; i++)
        if (encoder_layer(layers + i, threads)) return -1;
    return 0;
}
