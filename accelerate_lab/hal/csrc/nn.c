/* Fused float32 kernels of the cpu device's neural-network ops (accelerate_lab/hal/cpu.py calls them).
 *
 * Loops over contiguous rows, vectorized by the compiler (-O3 -march=native) or written with vector
 * types. IEEE rules are kept (no -ffast-math), so reductions keep partial results in lanes side by
 * side; a NaN in a row gives NaN wherever numpy's formulas give NaN. Outputs overlap no input, except
 * that the softmax may run in place.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

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

/* gelu(x) = x * max(0, 1/2 + t * P(t^2) / Q(t^2)), t = x clamped to [-limit, limit]: the rational
 * fit of erf (cpu.py's _GELU_P, 7 coefficients, and _GELU_Q, 5, highest power first), evaluated in
 * double as numpy's float32 path does, then rounded once to float. NaN stays NaN. The denominator
 * stays within [-2.4, -0.014] for |t| <= limit: its float reciprocal neither overflows nor underflows. */
static inline f64x8 gelu8(f64x8 v, const double *restrict p, const double *restrict q, double limit) {
    const f64x8 hi = (f64x8){0} + limit, lo = -hi;
    f64x8 t = select8(v < lo, lo, select8(v > hi, hi, v));
    f64x8 t2 = t * t;
    f64x8 num = t2 * p[0] + p[1];
    for (int k = 2; k < 7; k++) num = num * t2 + p[k];
    f64x8 den = t2 * q[0] + q[1];
    for (int k = 2; k < 5; k++) den = den * t2 + q[k];
    /* num / den without a double division (the slowest instruction here): the float reciprocal,
     * 2^-23 relative, then one Newton step, 2^-46 */
    f64x8 inverse = __builtin_convertvector(1.0f / __builtin_convertvector(den, f32x8), f64x8);
    inverse = inverse * (2.0 - den * inverse);
    f64x8 c = num * t * inverse + 0.5;
    c = select8(c < 0.0, (f64x8){0}, c); /* the fit overshoots erf(-4) = -1 + 1.5e-8 by 6e-8 */
    return c * v;
}

void al_gelu_f32(const float *restrict x, float *restrict out, int64_t n, const double *restrict p,
                 const double *restrict q, double limit) {
    float tail[8] = {0};
    for (int64_t i = 0; i < n; i += 8) {
        const int64_t count = n - i < 8 ? n - i : 8;
        f32x8 v;
        if (count == 8) {
            memcpy(&v, x + i, sizeof v);
        } else {
            memcpy(tail, x + i, (size_t)count * sizeof *x);
            memcpy(&v, tail, sizeof v);
        }
        f32x8 g = __builtin_convertvector(gelu8(__builtin_convertvector(v, f64x8), p, q, limit), f32x8);
        memcpy(out + i, &g, (size_t)count * sizeof *out);
    }
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
void al_layer_norm_f32(const float *restrict x, const float *restrict w, const float *restrict b,
                       float *restrict out, int64_t rows, int64_t cols, double eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *restrict row = x + r * cols;
        float *restrict o = out + r * cols;
        const double mean = sum_f64(row, cols) / (double)cols;
        const float rstd = (float)(1.0 / sqrt(squares_f64(row, cols, mean) / (double)cols + eps));
        const float m = (float)mean;
        for (int64_t j = 0; j < cols; j++) o[j] = (row[j] - m) * rstd;
        if (w)
            for (int64_t j = 0; j < cols; j++) o[j] *= w[j];
        if (b)
            for (int64_t j = 0; j < cols; j++) o[j] += b[j];
    }
}

/* The largest lane (NaN lanes ignored unless all are NaN) and the sum of the lanes, by halving:
 * four dependent steps rather than fifteen. */
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

/* Softmax along each row of x (rows, cols) into out, of the scores x * factor, plus a float mask
 * ``added`` or with the positions where the bool mask ``hidden`` is set at -inf. Rows are grouped
 * ``inner`` at a time (a query's rows of one head, say): the mask row of row r starts at element
 * (r / inner) * outer_stride + (r % inner) * inner_stride (strides 0: a broadcast mask). The shift is
 * each row's own maximum. A row holding NaN, or +inf, or only -inf gives NaN throughout, as numpy's
 * formula does. ``out`` may be ``x`` (in place): each element is read before it is written. */
void al_softmax_f32(const float *x, float *out, int64_t rows, int64_t cols, float factor,
                    const float *restrict added, const uint8_t *restrict hidden, int64_t inner,
                    int64_t outer_stride, int64_t inner_stride) {
    const int64_t body = cols - cols % WIDTH;
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * cols;
        float *o = out + r * cols;
        const int64_t m = (r / inner) * outer_stride + (r % inner) * inner_stride;
        /* scores into out and their maximum in one pass; the maximum ignores NaN, whose exponential
         * then makes the sum NaN */
        const float *restrict add = added ? added + m : NULL;
        const uint8_t *restrict hide = hidden ? hidden + m : NULL;
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
            continue;
        }
        const float inverse = 1.0f / sum;
        for (int64_t j = 0; j < cols; j++) o[j] *= inverse;
    }
}
