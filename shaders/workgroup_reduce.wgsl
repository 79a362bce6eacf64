// Workgroup-wide reductions shared by rows.wgsl and attention.wgsl (prepend this file and
// elementwise_ops.wgsl). Call from uniform control flow: every invocation must take part.
// Override constants: WG threads per workgroup (a power of two). No bindings.
override WG: u32 = 64u;

var<workgroup> red_v: array<f32, WG>;
var<workgroup> red_i: array<u32, WG>;

// 0 sum, 1 max, 2 min (max and min propagate NaN, as numpy)
fn combine(op: u32, a: f32, b: f32) -> f32 {
    if (op == 0u) { return a + b; }
    if (op == 1u) { return f_maximum(a, b); }
    return f_minimum(a, b);
}

fn wg_reduce(op: u32, lid: u32, v: f32) -> f32 {
    red_v[lid] = v;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if (lid < half) {
            red_v[lid] = combine(op, red_v[lid], red_v[lid + half]);
        }
        workgroupBarrier();
    }
    let out = red_v[0];
    workgroupBarrier();
    return out;
}

// whether (b, ib) beats (a, ia) for argmax: larger, or equal and earlier; a NaN beats everything
fn beats(a: f32, ia: u32, b: f32, ib: u32) -> bool {
    if (is_nan(a)) { return is_nan(b) && ib < ia; }
    if (is_nan(b)) { return true; }
    return b > a || (b == a && ib < ia);
}

fn wg_argmax(lid: u32, v: f32, i: u32) -> u32 {
    red_v[lid] = v;
    red_i[lid] = i;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if (lid < half && beats(red_v[lid], red_i[lid], red_v[lid + half], red_i[lid + half])) {
            red_v[lid] = red_v[lid + half];
            red_i[lid] = red_i[lid + half];
        }
        workgroupBarrier();
    }
    let out = red_i[0];
    workgroupBarrier();
    return out;
}
