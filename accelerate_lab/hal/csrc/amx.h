/* float32 matrix products on AMX (Intel's tile units, Sapphire Rapids and later), included by nn.c.
 *
 * AMX multiplies bfloat16 matrices (8-bit significands) into float32 sums, 16 times the float32 FMA
 * throughput of AVX-512. Each float32 x is split exactly into three bfloat16 parts by truncation,
 * x = hi + mid + lo (8 significand bits each, the 24 of a float32), and a b is summed as the six
 * products of parts hi hi, hi mid, mid hi, mid mid, hi lo, lo hi (the three left out are below 2^-23
 * of |a b| together), each pair of products rounded once into the float32 sums. The result is as
 * accurate as a float32 product (BERT's shapes, random data: 3-7e-7 of the largest entry against
 * float64; float32 FMA tiles 7e-7 to 1.3e-6), though not the same bits; cuBLAS emulates float32 the
 * same way with more parts. Products that stay on the other kernels: with NaN or inf in an operand
 * (an inf's zero parts would give inf * 0 = NaN), n not a multiple of 32, transposed operands, fewer
 * than AMX_MIN_ROWS rows. AMX treats bfloat16 subnormals as zero: values below ~2^-110 in magnitude
 * lose low bits (float32's own subnormals start at 2^-126).
 *
 * The work: B split and laid out as AMX wants it (pairs of k interleaved), column blocks of 32 on all
 * threads; then each thread takes chunks of rows (from AMX_ROW_SPLIT rows) or column blocks, splits
 * its rows of A into three planes that stay in L2, and computes C 32 x 32 at a time (four 16 x 16
 * tiles; the last rows through a whole block) over k in steps of 32, two tiles of A's parts and two of
 * B's loaded at a time, six tile products per C tile, the bias and residual first in C and gelu
 * after, while the chunk is in cache. */
#if defined(__x86_64__) && (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 11))
#define AMX_BUILD 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#define AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw")))
#define AMX_COLS 32          /* columns of C per block: two tiles */
#define AMX_K 32             /* k per tile product (16 pairs) */
#define AMX_TILE 512         /* bfloat16 per tile: 16 rows of 64 bytes */
#define AMX_MIN_ROWS 256      /* fewer rows: the other kernels (B split per product costs as much as AMX saves) */
#define AMX_ROW_SPLIT 512    /* rows from which threads take chunks of rows, not columns */
#define AMX_STEPS 16          /* steps of k per block of k (512): A's and B's parts in L2 at once */
#define AMX_A_BYTES (768 << 10) /* of A's parts per chunk of rows and block of k */
#define AMX_B_BYTES (512 << 10) /* of B's parts per group of column blocks and block of k */

static int amx_present;            /* the CPU has AMX-BF16 and Linux let this process use it */
static _Atomic int amx_wanted = 1; /* al_amx(0) turns it off */
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

static void amx_probe(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    const int avx512 = (b >> 16 & 1) && (b >> 30 & 1), tiles = (d >> 24 & 1) && (d >> 22 & 1);
    /* tile data is an XSAVE state Linux enables per process on request (ARCH_REQ_XCOMP_PERM, XTILEDATA) */
    amx_present = avx512 && tiles && syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

/* Whether products run on AMX; ``want`` 0 or 1 sets it first (-1 only asks). 0 where AMX is absent. */
int al_amx(int64_t want) {
    pthread_once(&amx_once, amx_probe);
    if (want >= 0) atomic_store(&amx_wanted, (int)(want != 0));
    return amx_present && atomic_load(&amx_wanted);
}

/* Eight tiles of 16 rows of 64 bytes; the tiles stay configured until _tile_release */
AMX_TARGET static void amx_configure(void) {
    struct {
        uint8_t palette, start, reserved[14];
        uint16_t bytes[16];
        uint8_t rows[16];
    } config = {.palette = 1};
    for (int i = 0; i < 8; i++) {
        config.bytes[i] = 64;
        config.rows[i] = 16;
    }
    _tile_loadconfig(&config);
}

/* The three bfloat16 parts of 16 floats, in the low halves of 32-bit lanes; ``bad`` gets the lanes
 * holding NaN or inf */
AMX_TARGET static inline void amx_split(__m512 x, __m512i *hi, __m512i *mid, __m512i *lo, __mmask16 *bad) {
    const __m512i top = _mm512_set1_epi32((int)0xFFFF0000u), exponent = _mm512_set1_epi32(0x7F800000);
    const __m512i bits = _mm512_castps_si512(x), h = _mm512_and_si512(bits, top);
    const __m512 rest = _mm512_sub_ps(x, _mm512_castsi512_ps(h)); /* exact: x's low 16 significand bits */
    const __m512i m = _mm512_and_si512(_mm512_castps_si512(rest), top);
    const __m512 last = _mm512_sub_ps(rest, _mm512_castsi512_ps(m));
    *bad |= _mm512_cmpeq_epi32_mask(_mm512_and_si512(bits, exponent), exponent);
    *hi = _mm512_srli_epi32(h, 16);
    *mid = _mm512_srli_epi32(m, 16);
    *lo = _mm512_srli_epi32(_mm512_castps_si512(last), 16);
}

struct amx_job {
    const struct matmul_job *mm;
    uint16_t *packed; /* B's parts, every column block, block_size apart */
    int64_t k32, chunk, block_size, blocks, by_rows;
    _Atomic int bad; /* NaN or inf in B */
};

/* rows [r0, r0 + rows) of A into three planes of rows32 x k32 at out; rows past them and columns past
 * k are zeros. Returns 0, or 1 where those rows hold NaN or inf. */
AMX_TARGET static int amx_split_rows(const struct matmul_job *j, int64_t r0, int64_t rows, int64_t rows32, int64_t k32,
                                     uint16_t *out) {
    const int64_t plane = rows32 * k32;
    __mmask16 bad = 0;
    for (int64_t r = 0; r < rows32; r++) {
        const float *row = j->a + (r0 + (r < rows ? r : 0)) * j->lda;
        for (int64_t p = 0; p < k32; p += 16) {
            const int64_t left = r < rows ? (j->k - p < 16 ? j->k - p : 16) : 0;
            const __mmask16 valid = left > 0 ? (__mmask16)((1u << left) - 1) : 0;
            __m512i h, m, l;
            amx_split(_mm512_maskz_loadu_ps(valid, row + p), &h, &m, &l, &bad);
            uint16_t *o = out + r * k32 + p;
            _mm256_storeu_si256((__m256i *)o, _mm512_cvtepi32_epi16(h));
            _mm256_storeu_si256((__m256i *)(o + plane), _mm512_cvtepi32_epi16(m));
            _mm256_storeu_si256((__m256i *)(o + 2 * plane), _mm512_cvtepi32_epi16(l));
        }
    }
    return bad != 0;
}

/* Columns [c0, c0 + 32 blocks) of B, laid out per block, per 16-column half, per step of 32 k, per
 * part: a tile of 16 rows, row r holding (B[2r][c], B[2r + 1][c]) for its 16 columns c. B is read a
 * pair of rows at a time, in order (rows apart in memory would each wait on memory). Returns 0, or 1
 * where B holds NaN or inf. */
AMX_TARGET static int amx_pack_columns(const struct matmul_job *j, int64_t c0, int64_t blocks, int64_t k32,
                                       uint16_t *out) {
    __mmask16 bad = 0;
    const int64_t steps = k32 / AMX_K;
    for (int64_t p = 0; p < k32; p += 2) {
        const float *even = j->b + p * j->ldb + c0, *odd = even + j->ldb;
        const int64_t s = p / AMX_K, r = p % AMX_K / 2;
        for (int64_t g = 0; g < 2 * blocks; g++) { /* 16 columns: half g % 2 of block g / 2 */
            const __m512 x0 = p < j->k ? _mm512_loadu_ps(even + 16 * g) : _mm512_setzero_ps();
            const __m512 x1 = p + 1 < j->k ? _mm512_loadu_ps(odd + 16 * g) : _mm512_setzero_ps();
            __m512i h0, m0, l0, h1, m1, l1;
            amx_split(x0, &h0, &m0, &l0, &bad);
            amx_split(x1, &h1, &m1, &l1, &bad);
            uint16_t *tile = out + (g * steps + s) * 3 * AMX_TILE + r * 32;
            _mm512_storeu_si512(tile, _mm512_or_si512(h0, _mm512_slli_epi32(h1, 16)));
            _mm512_storeu_si512(tile + AMX_TILE, _mm512_or_si512(m0, _mm512_slli_epi32(m1, 16)));
            _mm512_storeu_si512(tile + 2 * AMX_TILE, _mm512_or_si512(l0, _mm512_slli_epi32(l1, 16)));
        }
    }
    return bad != 0;
}

/* the four tile products of A's row tiles (4, 5) by B's column tiles (6, 7) into C's tiles 0-3 */
#define AMX_FOUR()                                                                                         \
    do {                                                                                                   \
        _tile_dpbf16ps(0, 4, 6);                                                                           \
        _tile_dpbf16ps(1, 4, 7);                                                                           \
        _tile_dpbf16ps(2, 5, 6);                                                                           \
        _tile_dpbf16ps(3, 5, 7);                                                                           \
    } while (0)

/* C (32 x 32 at c, row stride ldc) += A's 32 rows (two row tiles) B's block over the steps [s0, s1),
 * the smaller products first: four C tiles, so that each tile product has three others to overlap
 * with (16 rows at a time, the two tiles of C accumulate one after another: 283-291 -> 338-347
 * GFLOPS on one thread, BERT's 384 x 1152). Every row goes through this one kernel, in the same
 * order of sums, so a row's bits do not depend on which rows share its tiles (the thread count). */
AMX_TARGET static void amx_block2(const uint16_t *a, int64_t plane, int64_t k32, const uint16_t *b, int64_t s0,
                                  int64_t s1, float *c, int64_t ldc) {
    const int64_t steps = k32 / AMX_K, stride = k32 * (int64_t)sizeof *a, cs = ldc * (int64_t)sizeof *c;
    const uint16_t *a1 = a + 16 * k32;
    _tile_loadd(0, c, cs);
    _tile_loadd(1, c + 16, cs);
    _tile_loadd(2, c + 16 * ldc, cs);
    _tile_loadd(3, c + 16 * ldc + 16, cs);
    for (int64_t s = s0; s < s1; s++) {
        const uint16_t *b0 = b + s * 3 * AMX_TILE, *b1 = b + (steps + s) * 3 * AMX_TILE;
        const int64_t o = s * AMX_K;
        _tile_loadd(4, a + 2 * plane + o, stride); /* lo hi */
        _tile_loadd(5, a1 + 2 * plane + o, stride);
        _tile_loadd(6, b0, 64);
        _tile_loadd(7, b1, 64);
        AMX_FOUR();
        _tile_loadd(4, a + plane + o, stride); /* mid hi */
        _tile_loadd(5, a1 + plane + o, stride);
        AMX_FOUR();
        _tile_loadd(6, b0 + AMX_TILE, 64); /* mid mid */
        _tile_loadd(7, b1 + AMX_TILE, 64);
        AMX_FOUR();
        _tile_loadd(4, a + o, stride); /* hi mid */
        _tile_loadd(5, a1 + o, stride);
        AMX_FOUR();
        _tile_loadd(6, b0 + 2 * AMX_TILE, 64); /* hi lo */
        _tile_loadd(7, b1 + 2 * AMX_TILE, 64);
        AMX_FOUR();
        _tile_loadd(6, b0, 64); /* hi hi */
        _tile_loadd(7, b1, 64);
        AMX_FOUR();
    }
    _tile_stored(0, c, cs);
    _tile_stored(1, c + 16, cs);
    _tile_stored(2, c + 16 * ldc, cs);
    _tile_stored(3, c + 16 * ldc + 16, cs);
}

/* rows [i0, i1) of C (at c, row stride ldc) += A B, A's parts in ``planes`` (plane apart, row stride
 * k32, rows up to a multiple of 32), for the column blocks [0, count) packed at b (block_size apart)
 * over steps [s0, s1); 32 rows' parts are read once for all the blocks. The last rows, short of 32,
 * go through a whole block of C. */
AMX_TARGET static void amx_rows(const uint16_t *planes, int64_t plane, int64_t k32, int64_t i0, int64_t i1,
                                const uint16_t *b, int64_t count, int64_t block_size, int64_t s0, int64_t s1, float *c,
                                int64_t ldc) {
    for (int64_t i = i0; i < i1; i += 32) {
        const uint16_t *a = planes + i * k32;
        float *out = c + (i - i0) * ldc;
        for (int64_t block = 0; block < count; block++) {
            const uint16_t *bb = b + block * block_size;
            float *o = out + block * AMX_COLS;
            if (i1 - i >= 32) {
                amx_block2(a, plane, k32, bb, s0, s1, o, ldc);
                continue;
            }
            float stage[32 * AMX_COLS] = {0};
            for (int64_t r = 0; r < i1 - i; r++) memcpy(stage + r * AMX_COLS, o + r * ldc, sizeof stage / 32);
            amx_block2(a, plane, k32, bb, s0, s1, stage, AMX_COLS);
            for (int64_t r = 0; r < i1 - i; r++) memcpy(o + r * ldc, stage + r * AMX_COLS, sizeof stage / 32);
        }
    }
}

/* ``count`` bfloat16 of this thread's scratch ``slot`` (kept for its next product), 64-byte aligned (a
 * tile row across two cache lines loads at half the speed); NULL where it cannot be had. Slot 0: the
 * caller's packed B, read by all threads; slot 1: a thread's rows of A. */
static uint16_t *amx_scratch(int slot, int64_t count) {
    static _Thread_local uint16_t *scratch[2];
    static _Thread_local int64_t capacity[2];
    if (count > capacity[slot]) {
        free(scratch[slot]);
        scratch[slot] = aligned_alloc(64, (size_t)round_up(count * (int64_t)sizeof(uint16_t), 64));
        capacity[slot] = scratch[slot] ? count : 0;
    }
    return scratch[slot];
}

/* B's column blocks [begin, end) into the packed buffer */
AMX_TARGET static void amx_pack_range(const void *job, int64_t slot, int64_t begin, int64_t end) {
    (void)slot;
    struct amx_job *x = (struct amx_job *)job;
    if (amx_pack_columns(x->mm, begin * AMX_COLS, end - begin, x->k32, x->packed + begin * x->block_size))
        atomic_store(&x->bad, 1);
}

/* C's rows [r0, r0 + rows) by column blocks [b0, b1): those rows of A split (a NaN or inf in them: the
 * other kernels compute the part), then chunks of rows prefilled, computed and gelu'd while in L2 */
AMX_TARGET static void amx_part(const struct amx_job *x, int64_t slot, int64_t r0, int64_t rows, int64_t b0,
                                int64_t b1) {
    const struct matmul_job *j = x->mm;
    const int64_t rows32 = round_up(rows, 32), plane = rows32 * x->k32;
    uint16_t *planes = amx_scratch(1, 3 * plane);
    if (!planes || amx_split_rows(j, r0, rows, rows32, x->k32, planes)) {
        struct matmul_job rest = *j; /* whole rows (a chunk), or whole columns (blocks) */
        rest.by_rows = (int)x->by_rows;
        rest.block = x->by_rows ? x->chunk : AMX_COLS;
        matmul_range(&rest, slot, x->by_rows ? r0 / x->chunk : b0, x->by_rows ? r0 / x->chunk + 1 : b1);
        return;
    }
    const int64_t c0 = b0 * AMX_COLS, cols = (b1 - b0) * AMX_COLS, steps = x->k32 / AMX_K;
    const int64_t group = 1 + AMX_B_BYTES / (6 * AMX_K * AMX_STEPS * AMX_COLS);
    const float *early = j->gelu ? NULL : j->residual; /* added before the product, or after gelu */
    const float *bias = j->bias ? j->bias + c0 : NULL;
    amx_configure();
    for (int64_t i0 = 0; i0 < rows; i0 += x->chunk) {
        const int64_t count = rows - i0 < x->chunk ? rows - i0 : x->chunk;
        float *c = j->c + (r0 + i0) * j->n + c0;
        if (bias || early)
            prefill(c, count, cols, j->n, bias, early ? early + (r0 + i0) * j->ldr + c0 : NULL, j->ldr);
        else
            for (int64_t r = 0; r < count; r++) memset(c + r * j->n, 0, (size_t)cols * sizeof *c);
        for (int64_t s0 = 0; s0 < steps; s0 += AMX_STEPS) {
            const int64_t s1 = s0 + AMX_STEPS < steps ? s0 + AMX_STEPS : steps;
            for (int64_t g = b0; g < b1; g += group)
                amx_rows(planes, plane, x->k32, i0, i0 + count, x->packed + g * x->block_size,
                         b1 - g < group ? b1 - g : group, x->block_size, s0, s1, c + (g - b0) * AMX_COLS, j->n);
        }
        if (j->gelu)
            for (int64_t r = 0; r < count; r++) {
                float *o = c + r * j->n;
                gelu_span(o, o, cols, j->p, j->q, j->limit);
                if (j->residual) {
                    const float *res = j->residual + (r0 + i0 + r) * j->ldr + c0;
                    for (int64_t i = 0; i < cols; i++) o[i] += res[i];
                }
            }
    }
    _tile_release();
}

/* chunks of rows [begin, end), every column */
AMX_TARGET static void amx_chunks(const void *job, int64_t slot, int64_t begin, int64_t end) {
    const struct amx_job *x = job;
    for (int64_t i = begin; i < end; i++) {
        const int64_t r0 = i * x->chunk, rows = x->mm->m - r0 < x->chunk ? x->mm->m - r0 : x->chunk;
        amx_part(x, slot, r0, rows, 0, x->blocks);
    }
}

/* column blocks [begin, end), every row */
AMX_TARGET static void amx_columns(const void *job, int64_t slot, int64_t begin, int64_t end) {
    const struct amx_job *x = job;
    amx_part(x, slot, 0, x->mm->m, begin, end);
}

/* The product of ``mm`` on AMX where it applies (returns 1), else nothing done (0): B packed (column
 * blocks on all threads), then chunks of rows per thread (from AMX_ROW_SPLIT rows: each thread's A
 * and C stay its own) or column blocks per thread (fewer rows) */
static int amx_product(const struct matmul_job *mm, int64_t threads) {
    if (mm->trans_a || mm->trans_b || mm->n % AMX_COLS || mm->m < AMX_MIN_ROWS || mm->k < 1 || !al_amx(-1)) return 0;
    struct amx_job job = {.mm = mm, .k32 = round_up(mm->k, AMX_K), .blocks = mm->n / AMX_COLS};
    const int64_t k_block = job.k32 < AMX_K * AMX_STEPS ? job.k32 : AMX_K * AMX_STEPS;
    const int64_t most = AMX_A_BYTES / (6 * k_block) / 32 * 32; /* rows of a chunk at most */
    job.by_rows = mm->m >= AMX_ROW_SPLIT;
    int64_t chunks = (mm->m + most - 1) / most;
    if (job.by_rows) chunks = round_up(chunks, threads < MAX_THREADS ? threads : MAX_THREADS); /* equal shares */
    job.chunk = round_up((mm->m + chunks - 1) / chunks, 32);
    job.block_size = 2 * (job.k32 / AMX_K) * 3 * AMX_TILE;
    job.packed = amx_scratch(0, job.blocks * job.block_size);
    if (!job.packed) return 0;
    const int64_t pack_grain = 1 + (1 << 16) / (AMX_COLS * job.k32); /* ~64 Ki floats a part */
    parallel_for(threads, job.blocks, pack_grain, amx_pack_range, &job);
    if (atomic_load(&job.bad)) return 0; /* NaN or inf in B: the other kernels keep IEEE's rules */
    if (job.by_rows) {
        parallel_for(threads, (mm->m + job.chunk - 1) / job.chunk, 1, amx_chunks, &job);
        return 1;
    }
    const int64_t block_flops = 2 * AMX_COLS * mm->k * mm->m;
    parallel_for(threads, job.blocks, block_flops >= (1 << 22) ? 1 : (1 << 22) / block_flops, amx_columns, &job);
    return 1;
}
#endif
