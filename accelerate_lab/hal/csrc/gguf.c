/* GGUF's Q4_1 and Q8_0 blocks times float32 activations, read straight from the packed rows.
 *
 * Block layouts (accelerate_lab/hal/gguf_quant.py): Q4_1 is 20 bytes, float16 scale d and minimum m
 * then 16 bytes of codes (byte j: value j in its low nibble, value j + 16 in its high one),
 * x = q * d + m; Q8_0 is 34 bytes, float16 d then 32 signed bytes, x = q * d.
 *
 * Each weight is decoded to float32 as numpy decodes it (q * d is exact in float32, so q * d + m
 * rounds once either way: the decoded weights are bit for bit numpy's) and multiplied with the
 * float32 activation; only the order of the sums differs from numpy's, and NaN and infinity
 * propagate as in numpy's product. Activations are not quantized: a decode step is mostly bound by
 * reading the weights (one byte or less a weight), not by arithmetic. Rows of the weight are
 * `row_bytes` apart (the int32 words of pack_rows, padded). Paths: AVX-512F, AVX2 + FMA, and
 * portable C the compiler vectorizes (each row's partial sums kept in 32 independent lanes, so no
 * reassociation is needed). Single-threaded: decode steps run on the calling thread alone.
 */
#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exponent = (h >> 10) & 0x1Fu, mantissa = h & 0x3FFu;
    uint32_t bits;
    float value;
    if (exponent == 0x1F) {
        bits = sign | 0x7F800000u | (mantissa << 13); /* inf, NaN (payload kept, as numpy does) */
    } else if (exponent == 0) {
        value = (float)mantissa * 0x1p-24f; /* zero, subnormal: exact */
        memcpy(&bits, &value, 4);
        bits |= sign;
    } else {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    }
    memcpy(&value, &bits, 4);
    return value;
}

/* Every float16 as float32, filled when the library loads: a scale is then one load (which AVX-512
 * broadcasts for free), where converting it takes three shuffle-port instructions per block. */
static float halves[1 << 16];

__attribute__((constructor)) static void fill_halves(void) {
    for (uint32_t h = 0; h < (1u << 16); h++) halves[h] = half_to_float((uint16_t)h);
}

static inline float scale(const uint8_t *p) { return halves[p[0] | (p[1] << 8)]; }

#if defined(__AVX512F__)
/* One Q4_1 block's 32 weights as two vectors. Its 16 possible weights q * d + m make a table that
 * vpermps indexes by the codes (it reads the low 4 bits of each lane, so the low nibbles need no
 * mask): three shuffles a block, no integer-to-float conversion. */
static inline void q4_1_decode(const uint8_t *block, __m512 *lo, __m512 *hi) {
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512 d = _mm512_set1_ps(scale(block)), m = _mm512_set1_ps(scale(block + 2));
    const __m512 table = _mm512_fmadd_ps(iota, d, m);
    const __m512i codes = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(block + 4)));
    *lo = _mm512_permutexvar_ps(codes, table);
    *hi = _mm512_permutexvar_ps(_mm512_srli_epi32(codes, 4), table);
}

static inline void q8_0_decode(const uint8_t *block, __m512 *lo, __m512 *hi) {
    const __m512 d = _mm512_set1_ps(scale(block));
    const __m128i first = _mm_loadu_si128((const __m128i *)(block + 2));
    const __m128i second = _mm_loadu_si128((const __m128i *)(block + 18));
    *lo = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(first)), d);
    *hi = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(second)), d);
}

static inline float sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), _mm512_add_ps(c, d)));
}

/* dot(name): one weight row times one activation row, two blocks in flight (four independent sums
 * hide the multiply-adds' latency). dot4(name): the row times four activation rows `k` apart into
 * out[0], out[n], out[2n], out[3n], each block decoded once for all four. */
#define DOTS(name, decode, bytes)                                                                     \
    static float dot_##name(const uint8_t *row, const float *x, long blocks) {                       \
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, lo, hi;                          \
        long b = 0;                                                                                   \
        for (; b + 1 < blocks; b += 2, row += 2 * (bytes), x += 64) {                                 \
            decode(row, &lo, &hi);                                                                    \
            a0 = _mm512_fmadd_ps(lo, _mm512_loadu_ps(x), a0);                                         \
            a1 = _mm512_fmadd_ps(hi, _mm512_loadu_ps(x + 16), a1);                                    \
            decode(row + (bytes), &lo, &hi);                                                          \
            a2 = _mm512_fmadd_ps(lo, _mm512_loadu_ps(x + 32), a2);                                    \
            a3 = _mm512_fmadd_ps(hi, _mm512_loadu_ps(x + 48), a3);                                    \
        }                                                                                             \
        if (b < blocks) {                                                                             \
            decode(row, &lo, &hi);                                                                    \
            a0 = _mm512_fmadd_ps(lo, _mm512_loadu_ps(x), a0);                                         \
            a1 = _mm512_fmadd_ps(hi, _mm512_loadu_ps(x + 16), a1);                                    \
        }                                                                                             \
        return sum4(a0, a1, a2, a3);                                                                  \
    }                                                                                                 \
    static void dot4_##name(const uint8_t *row, const float *x, long k, float *out, long n) {        \
        __m512 a[8], lo, hi;                                                                          \
        for (int r = 0; r < 8; r++) a[r] = _mm512_setzero_ps();                                       \
        for (long c = 0; c < k; c += 32, row += (bytes)) {                                            \
            decode(row, &lo, &hi);                                                                    \
            for (int r = 0; r < 4; r++) {                                                             \
                a[2 * r] = _mm512_fmadd_ps(lo, _mm512_loadu_ps(x + r * k + c), a[2 * r]);             \
                a[2 * r + 1] = _mm512_fmadd_ps(hi, _mm512_loadu_ps(x + r * k + c + 16), a[2 * r + 1]); \
            }                                                                                         \
        }                                                                                             \
        for (int r = 0; r < 4; r++)                                                                   \
            out[r * n] = _mm512_reduce_add_ps(_mm512_add_ps(a[2 * r], a[2 * r + 1]));                 \
    }
DOTS(q4_1, q4_1_decode, 20)
DOTS(q8_0, q8_0_decode, 34)

#elif defined(__AVX2__) && defined(__FMA__)
static inline float hsum(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 s = _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

/* 8 codes (the low 8 bytes of `codes`) decoded: q * d + m */
static inline __m256 q4_1_eighth(__m128i codes, __m256 d, __m256 m) {
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(codes)), d, m);
}

static float dot_q4_1(const uint8_t *row, const float *x, long blocks) {
    const __m128i low = _mm_set1_epi8(0x0F);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (long b = 0; b < blocks; b++, row += 20, x += 32) {
        const __m256 d = _mm256_set1_ps(scale(row)), m = _mm256_set1_ps(scale(row + 2));
        const __m128i codes = _mm_loadu_si128((const __m128i *)(row + 4));
        const __m128i lo = _mm_and_si128(codes, low), hi = _mm_and_si128(_mm_srli_epi16(codes, 4), low);
        a0 = _mm256_fmadd_ps(q4_1_eighth(lo, d, m), _mm256_loadu_ps(x), a0);
        a1 = _mm256_fmadd_ps(q4_1_eighth(_mm_srli_si128(lo, 8), d, m), _mm256_loadu_ps(x + 8), a1);
        a2 = _mm256_fmadd_ps(q4_1_eighth(hi, d, m), _mm256_loadu_ps(x + 16), a2);
        a3 = _mm256_fmadd_ps(q4_1_eighth(_mm_srli_si128(hi, 8), d, m), _mm256_loadu_ps(x + 24), a3);
    }
    return hsum(a0, a1, a2, a3);
}

static inline __m256 q8_0_eighth(const uint8_t *codes, __m256 d) {
    const __m128i eight = _mm_loadl_epi64((const __m128i *)codes);
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(eight)), d);
}

static float dot_q8_0(const uint8_t *row, const float *x, long blocks) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (long b = 0; b < blocks; b++, row += 34, x += 32) {
        const __m256 d = _mm256_set1_ps(scale(row));
        a0 = _mm256_fmadd_ps(q8_0_eighth(row + 2, d), _mm256_loadu_ps(x), a0);
        a1 = _mm256_fmadd_ps(q8_0_eighth(row + 10, d), _mm256_loadu_ps(x + 8), a1);
        a2 = _mm256_fmadd_ps(q8_0_eighth(row + 18, d), _mm256_loadu_ps(x + 16), a2);
        a3 = _mm256_fmadd_ps(q8_0_eighth(row + 26, d), _mm256_loadu_ps(x + 24), a3);
    }
    return hsum(a0, a1, a2, a3);
}

#else
static float lanes_sum(const float *acc) {
    float s = 0.0f;
    for (int j = 0; j < 32; j++) s += acc[j];
    return s;
}

static float dot_q4_1(const uint8_t *row, const float *x, long blocks) {
    float acc[32] = {0};
    for (long b = 0; b < blocks; b++, row += 20, x += 32) {
        const float d = scale(row), m = scale(row + 2);
        for (int j = 0; j < 16; j++) {
            acc[j] += ((float)(row[4 + j] & 0x0F) * d + m) * x[j];
            acc[j + 16] += ((float)(row[4 + j] >> 4) * d + m) * x[j + 16];
        }
    }
    return lanes_sum(acc);
}

static float dot_q8_0(const uint8_t *row, const float *x, long blocks) {
    float acc[32] = {0};
    for (long b = 0; b < blocks; b++, row += 34, x += 32) {
        const float d = scale(row);
        for (int j = 0; j < 32; j++) acc[j] += (float)(int8_t)row[2 + j] * d * x[j];
    }
    return lanes_sum(acc);
}
#endif

#if !defined(__AVX512F__)
/* four activation rows one after another (only the AVX-512 path decodes a block once for four) */
#define DOT4(name)                                                                                    \
    static void dot4_##name(const uint8_t *row, const float *x, long k, float *out, long n) {        \
        for (int r = 0; r < 4; r++) out[r * n] = dot_##name(row, x + r * k, k / 32);                  \
    }
DOT4(q4_1)
DOT4(q8_0)
#endif

/* Rows are fetched this many bytes ahead of the one being read: the hardware prefetcher alone left a
 * decode step's products about a quarter slower (16.5 against 12.3 ms for SmolLM2's, 2 shared cores) */
#define AHEAD 2048

/* out[i * n + j] = x[i] . W[j]: each weight row is read once for all the activation rows */
#define MATMUL(name)                                                                                  \
    void gguf_matmul_##name(const float *x, long m, long k, const uint8_t *w, long n, long row_bytes, \
                            float *out) {                                                             \
        for (long j = 0; j < n; j++) {                                                                \
            const uint8_t *row = w + j * row_bytes;                                                   \
            const long ahead = j * row_bytes + AHEAD, end = n * row_bytes;                            \
            for (long c = 0; c < row_bytes && ahead + c < end; c += 64) __builtin_prefetch(w + ahead + c); \
            long i = 0;                                                                               \
            for (; i + 4 <= m; i += 4) dot4_##name(row, x + i * k, k, out + i * n + j, n);            \
            for (; i < m; i++) out[i * n + j] = dot_##name(row, x + i * k, k / 32);                   \
        }                                                                                             \
    }
MATMUL(q4_1)
MATMUL(q8_0)

/* One block's 32 weights stored as float32 */
#if defined(__AVX512F__)
#define STORE(name)                                                                                   \
    static inline void store_##name(const uint8_t *block, float *out) {                              \
        __m512 lo, hi;                                                                                \
        name##_decode(block, &lo, &hi);                                                               \
        _mm512_storeu_ps(out, lo);                                                                    \
        _mm512_storeu_ps(out + 16, hi);                                                               \
    }
STORE(q4_1)
STORE(q8_0)
#else
static inline void store_q4_1(const uint8_t *block, float *out) {
    const float d = scale(block), m = scale(block + 2);
    for (int t = 0; t < 16; t++) {
        out[t] = (float)(block[4 + t] & 0x0F) * d + m;
        out[t + 16] = (float)(block[4 + t] >> 4) * d + m;
    }
}

static inline void store_q8_0(const uint8_t *block, float *out) {
    const float d = scale(block);
    for (int t = 0; t < 32; t++) out[t] = (float)(int8_t)block[2 + t] * d;
}
#endif

/* The (n, k) float32 weights, for products of many activation rows (then BLAS) */
#define DEQUANTIZE(name, bytes)                                                                       \
    void gguf_dequantize_##name(const uint8_t *w, long n, long k, long row_bytes, float *out) {      \
        for (long j = 0; j < n; j++, out += k)                                                        \
            for (long c = 0; c < k; c += 32) store_##name(w + j * row_bytes + c / 32 * (bytes), out + c); \
    }
DEQUANTIZE(q4_1, 20)
DEQUANTIZE(q8_0, 34)

/* Which of the paths above this build took (the tests check each one they build) */
const char *gguf_simd(void) {
#if defined(__AVX512F__)
    return "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
    return "avx2";
#else
    return "portable";
#endif
}
