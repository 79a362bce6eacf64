// Elementwise op library: the scalar functions every generated elementwise kernel (elementwise.wgsl)
// and matmul epilogue (matmul.wgsl) call. No bindings, no uniforms: pure functions only.
//
// Naming: `<class>_<op>` where the class is the register type of a dtype:
//   f: float32 and float16 (computed in f32; the caller rounds float16 results with round_h)
//   i: int32 (i32, two's-complement wrap-around as numpy)
//   u: uint8 (held in u32, results masked to 8 bits as numpy's wrap-around)
//   b: bool (u32 0 or 1)
//   l: int64 (vec2<u32>: low word, high word)
// Comparisons return a bool register (u32 0/1); `<class>_where(c, a, b)` selects.
// Conversions are `<to>_from_<from>` with numpy's astype semantics.
// round_h rounds an f32 register to float16 precision (round to nearest even, as numpy), in integer
// arithmetic: a plain f32 -> f16 conversion may round differently on some drivers.
// The host (and the browser front end) lists the available (class, op) pairs by reading the
// `fn <class>_<op>(` names in this file.

//#if F16
enable f16;
//#endif

const F_NAN: u32 = 0x7fc00000u;
const F_INF: u32 = 0x7f800000u;

fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > F_INF;
}

// NaN and infinity through a `var`: a constant expression that evaluates to either is a shader
// creation error in Chromium's WGSL compiler (Tint), though naga accepts it.
fn nan() -> f32 {
    var bits = F_NAN;
    return bitcast<f32>(bits);
}

fn inf() -> f32 {
    var bits = F_INF;
    return bitcast<f32>(bits);
}

fn round_h(x: f32) -> f32 {
    let a = abs(x);
    if (is_nan(x) || a < 6.103515625e-05) {
        return round(x * 16777216.0) / 16777216.0;  // NaN, or float16 subnormals: steps of 2^-24
    }
    if (a >= 65520.0) {
        return select(-inf(), inf(), x > 0.0);
    }
    let bits = bitcast<u32>(x);
    return bitcast<f32>((bits + 0xfffu + ((bits >> 13u) & 1u)) & 0xffffe000u);
}

// ---- float -------------------------------------------------------------------------------------
fn f_neg(x: f32) -> f32 { return -x; }
fn f_abs(x: f32) -> f32 { return abs(x); }
fn f_exp(x: f32) -> f32 { return exp(x); }

fn f_log(x: f32) -> f32 {
    if (x < 0.0) { return nan(); }
    if (x == 0.0) { return -inf(); }
    return log(x);
}

fn f_sqrt(x: f32) -> f32 {
    if (x < 0.0) { return nan(); }
    return sqrt(x);
}

fn f_sign(x: f32) -> f32 { return select(sign(x), x, is_nan(x)); }

fn f_maximum(a: f32, b: f32) -> f32 {
    if (is_nan(a) || is_nan(b)) { return a + b; }
    return max(a, b);
}

fn f_minimum(a: f32, b: f32) -> f32 {
    if (is_nan(a) || is_nan(b)) { return a + b; }
    return min(a, b);
}

fn f_relu(x: f32) -> f32 { return f_maximum(x, 0.0); }

fn f_sigmoid(x: f32) -> f32 {
    // exp of a non-positive number only: no overflow for large |x|
    let e = exp(-abs(x));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

fn f_tanh(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    return select(-1.0, 1.0, x >= 0.0) * (1.0 - e) / (1.0 + e);
}

fn f_silu(x: f32) -> f32 { return x * f_sigmoid(x); }

fn f_erf(x: f32) -> f32 {
    let t = abs(x);
    if (t < 1.5) {
        // Taylor series: accurate relative to erf near 0, 16 terms reach f32 precision at 1.5
        let s = x * x;
        var term = x;
        var sum = x;
        for (var n = 1u; n < 17u; n++) {
            term = -term * s / f32(n);
            sum += term / f32(2u * n + 1u);
        }
        return sum * 1.1283791670955126;
    }
    // Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7, erf > 0.96 here)
    let k = 1.0 / (1.0 + 0.3275911 * t);
    let poly = k * (0.254829592 + k * (-0.284496736 + k * (1.421413741 + k * (-1.453152027 + k * 1.061405429))));
    return select(-1.0, 1.0, x >= 0.0) * (1.0 - poly * exp(-t * t));
}

fn f_gelu(x: f32) -> f32 { return 0.5 * x * (1.0 + f_erf(x * 0.7071067811865476)); }

fn f_gelu_tanh(x: f32) -> f32 {
    return 0.5 * x * (1.0 + f_tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

fn f_add(a: f32, b: f32) -> f32 { return a + b; }
fn f_sub(a: f32, b: f32) -> f32 { return a - b; }
fn f_mul(a: f32, b: f32) -> f32 { return a * b; }
fn f_div(a: f32, b: f32) -> f32 { return a / b; }

fn f_pow(a: f32, b: f32) -> f32 {
    if (b == 0.0 || a == 1.0) { return 1.0; }
    if (is_nan(a) || is_nan(b)) { return nan(); }
    if (b == 1.0) { return a; }
    if (b == 2.0) { return a * a; }
    if (a == 0.0) { return select(0.0, inf(), b < 0.0); }
    let integral = trunc(b) == b;
    if (a < 0.0) {
        if (!integral) { return nan(); }
        let odd = abs(b) < 16777216.0 && (i32(b) & 1) == 1;
        return select(1.0, -1.0, odd) * exp2(b * log2(-a));
    }
    return exp2(b * log2(a));
}

fn f_eq(a: f32, b: f32) -> u32 { return select(0u, 1u, a == b); }
fn f_ne(a: f32, b: f32) -> u32 { return select(0u, 1u, a != b); }
fn f_lt(a: f32, b: f32) -> u32 { return select(0u, 1u, a < b); }
fn f_le(a: f32, b: f32) -> u32 { return select(0u, 1u, a <= b); }
fn f_gt(a: f32, b: f32) -> u32 { return select(0u, 1u, a > b); }
fn f_ge(a: f32, b: f32) -> u32 { return select(0u, 1u, a >= b); }
fn f_where(c: u32, a: f32, b: f32) -> f32 { return select(b, a, c != 0u); }

// ---- int32 -------------------------------------------------------------------------------------
fn i_neg(x: i32) -> i32 { return -x; }
fn i_abs(x: i32) -> i32 { return abs(x); }
fn i_sign(x: i32) -> i32 { return sign(x); }
fn i_relu(x: i32) -> i32 { return max(x, 0); }
fn i_add(a: i32, b: i32) -> i32 { return a + b; }
fn i_sub(a: i32, b: i32) -> i32 { return a - b; }
fn i_mul(a: i32, b: i32) -> i32 { return a * b; }
fn i_maximum(a: i32, b: i32) -> i32 { return max(a, b); }
fn i_minimum(a: i32, b: i32) -> i32 { return min(a, b); }
fn i_eq(a: i32, b: i32) -> u32 { return select(0u, 1u, a == b); }
fn i_ne(a: i32, b: i32) -> u32 { return select(0u, 1u, a != b); }
fn i_lt(a: i32, b: i32) -> u32 { return select(0u, 1u, a < b); }
fn i_le(a: i32, b: i32) -> u32 { return select(0u, 1u, a <= b); }
fn i_gt(a: i32, b: i32) -> u32 { return select(0u, 1u, a > b); }
fn i_ge(a: i32, b: i32) -> u32 { return select(0u, 1u, a >= b); }
fn i_where(c: u32, a: i32, b: i32) -> i32 { return select(b, a, c != 0u); }

// ---- uint8 -------------------------------------------------------------------------------------
fn u_neg(x: u32) -> u32 { return (0u - x) & 255u; }
fn u_abs(x: u32) -> u32 { return x; }
fn u_sign(x: u32) -> u32 { return select(0u, 1u, x > 0u); }
fn u_relu(x: u32) -> u32 { return x; }
fn u_add(a: u32, b: u32) -> u32 { return (a + b) & 255u; }
fn u_sub(a: u32, b: u32) -> u32 { return (a - b) & 255u; }
fn u_mul(a: u32, b: u32) -> u32 { return (a * b) & 255u; }
fn u_maximum(a: u32, b: u32) -> u32 { return max(a, b); }
fn u_minimum(a: u32, b: u32) -> u32 { return min(a, b); }
fn u_eq(a: u32, b: u32) -> u32 { return select(0u, 1u, a == b); }
fn u_ne(a: u32, b: u32) -> u32 { return select(0u, 1u, a != b); }
fn u_lt(a: u32, b: u32) -> u32 { return select(0u, 1u, a < b); }
fn u_le(a: u32, b: u32) -> u32 { return select(0u, 1u, a <= b); }
fn u_gt(a: u32, b: u32) -> u32 { return select(0u, 1u, a > b); }
fn u_ge(a: u32, b: u32) -> u32 { return select(0u, 1u, a >= b); }
fn u_where(c: u32, a: u32, b: u32) -> u32 { return select(b, a, c != 0u); }

// ---- bool (numpy: + is or, * is and) -----------------------------------------------------------
fn b_abs(x: u32) -> u32 { return x; }
fn b_relu(x: u32) -> u32 { return x; }
fn b_add(a: u32, b: u32) -> u32 { return a | b; }
fn b_mul(a: u32, b: u32) -> u32 { return a & b; }
fn b_maximum(a: u32, b: u32) -> u32 { return a | b; }
fn b_minimum(a: u32, b: u32) -> u32 { return a & b; }
fn b_eq(a: u32, b: u32) -> u32 { return select(0u, 1u, a == b); }
fn b_ne(a: u32, b: u32) -> u32 { return select(0u, 1u, a != b); }
fn b_lt(a: u32, b: u32) -> u32 { return select(0u, 1u, a < b); }
fn b_le(a: u32, b: u32) -> u32 { return select(0u, 1u, a <= b); }
fn b_gt(a: u32, b: u32) -> u32 { return select(0u, 1u, a > b); }
fn b_ge(a: u32, b: u32) -> u32 { return select(0u, 1u, a >= b); }
fn b_where(c: u32, a: u32, b: u32) -> u32 { return select(b, a, c != 0u); }

// ---- int64 (low word, high word) ---------------------------------------------------------------
fn l_lt_raw(a: vec2<u32>, b: vec2<u32>) -> bool {
    let ha = bitcast<i32>(a.y);
    let hb = bitcast<i32>(b.y);
    return ha < hb || (ha == hb && a.x < b.x);
}

fn l_eq(a: vec2<u32>, b: vec2<u32>) -> u32 { return select(0u, 1u, all(a == b)); }
fn l_ne(a: vec2<u32>, b: vec2<u32>) -> u32 { return select(0u, 1u, any(a != b)); }
fn l_lt(a: vec2<u32>, b: vec2<u32>) -> u32 { return select(0u, 1u, l_lt_raw(a, b)); }
fn l_le(a: vec2<u32>, b: vec2<u32>) -> u32 { return select(0u, 1u, !l_lt_raw(b, a)); }
fn l_gt(a: vec2<u32>, b: vec2<u32>) -> u32 { return select(0u, 1u, l_lt_raw(b, a)); }
fn l_ge(a: vec2<u32>, b: vec2<u32>) -> u32 { return select(0u, 1u, !l_lt_raw(a, b)); }
fn l_maximum(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> { return select(a, b, l_lt_raw(a, b)); }
fn l_minimum(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> { return select(a, b, l_lt_raw(b, a)); }
fn l_where(c: u32, a: vec2<u32>, b: vec2<u32>) -> vec2<u32> { return select(b, a, c != 0u); }

fn l_add(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

fn l_neg(x: vec2<u32>) -> vec2<u32> { return l_add(~x, vec2<u32>(1u, 0u)); }
fn l_sub(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> { return l_add(a, l_neg(b)); }
fn l_abs(x: vec2<u32>) -> vec2<u32> { return select(x, l_neg(x), bitcast<i32>(x.y) < 0); }

fn l_sign(x: vec2<u32>) -> vec2<u32> {
    if (bitcast<i32>(x.y) < 0) { return vec2<u32>(0xffffffffu, 0xffffffffu); }
    return vec2<u32>(select(0u, 1u, any(x != vec2<u32>(0u))), 0u);
}

fn l_relu(x: vec2<u32>) -> vec2<u32> { return select(x, vec2<u32>(0u), bitcast<i32>(x.y) < 0); }

// ---- conversions (numpy astype) ----------------------------------------------------------------
fn f_from_i(x: i32) -> f32 { return f32(x); }
fn f_from_u(x: u32) -> f32 { return f32(x); }
fn f_from_b(x: u32) -> f32 { return f32(x); }

fn f_from_l(x: vec2<u32>) -> f32 {
    let lo = bitcast<i32>(x.x);
    if (bitcast<i32>(x.y) == (lo >> 31u)) { return f32(lo); }
    return f32(bitcast<i32>(x.y)) * 4294967296.0 + f32(x.x);
}

fn i_from_f(x: f32) -> i32 { return i32(x); }
fn i_from_u(x: u32) -> i32 { return i32(x); }
fn i_from_b(x: u32) -> i32 { return i32(x); }
fn i_from_l(x: vec2<u32>) -> i32 { return bitcast<i32>(x.x); }
fn u_from_f(x: f32) -> u32 { return bitcast<u32>(i32(x)) & 255u; }
fn u_from_i(x: i32) -> u32 { return bitcast<u32>(x) & 255u; }
fn u_from_b(x: u32) -> u32 { return x; }
fn u_from_l(x: vec2<u32>) -> u32 { return x.x & 255u; }
fn b_from_f(x: f32) -> u32 { return select(0u, 1u, x != 0.0); }
fn b_from_i(x: i32) -> u32 { return select(0u, 1u, x != 0); }
fn b_from_u(x: u32) -> u32 { return select(0u, 1u, x != 0u); }
fn b_from_l(x: vec2<u32>) -> u32 { return select(0u, 1u, any(x != vec2<u32>(0u))); }
fn l_from_i(x: i32) -> vec2<u32> { return vec2<u32>(bitcast<u32>(x), bitcast<u32>(x >> 31u)); }
fn l_from_u(x: u32) -> vec2<u32> { return vec2<u32>(x, 0u); }
fn l_from_b(x: u32) -> vec2<u32> { return vec2<u32>(x, 0u); }
