// Workgroup-wide reductions shared by rows.wgsl and attention.wgsl (prepend this file and
// elementwise_ops.wgsl). Call from uniform control flow: every invocation must take part.
// Override constants: WG threads per workgroup (a power of two). No bindings.
// Flag SUBGROUPS (the device has subgroup operations): each subgroup reduces its lanes with
// subgroupAdd/Max/Min and the per-subgroup partials meet in workgroup memory; without it, a
// shared-memory tree. Both assume nothing about the subgroup size or which invocations share one.
//#if SUBGROUPS
// browsers require it; the native host drops it (naga takes the device feature alone)
enable subgroups;
//#endif
override WG: u32 = 64u;

var<workgroup> red_v: array<f32, WG>;
var<workgroup> red_i: array<u32, WG>;

// 0 sum, 1 max, 2 min (max and min propagate NaN, as numpy)
fn combine(op: u32, a: f32, b: f32) -> f32 {
    if (op == 0u) { return a + b; }
    if (op == 1u) { return f_maximum(a, b); }
    return f_minimum(a, b);
}

// whether (b, ib) beats (a, ia) for argmax: larger, or equal and earlier; a NaN beats everything
fn beats(a: f32, ia: u32, b: f32, ib: u32) -> bool {
    if (is_nan(a)) { return is_nan(b) && ib < ia; }
    if (is_nan(b)) { return true; }
    return b > a || (b == a && ib < ia);
}

//#if SUBGROUPS
const NO_INDEX: u32 = 0xffffffffu;

struct Best {
    v: f32,
    i: u32,
}

// what `combine` leaves unchanged: -0 for sum, -inf for max, +inf for min
fn identity(op: u32) -> f32 {
    if (op == 0u) { return bitcast<f32>(0x80000000u); }
    return select(inf(), -inf(), op == 1u);
}

// the bits of x as a u32 that orders like the floats (-inf lowest, +inf highest), NaN set to `nan_key`
fn order_key(x: f32, nan_key: u32) -> u32 {
    let bits = bitcast<u32>(x);
    return select(select(bits ^ 0x80000000u, ~bits, bits >= 0x80000000u), nan_key, is_nan(x));
}

fn from_key(key: u32) -> f32 {
    return bitcast<f32>(select(~key, key ^ 0x80000000u, key >= 0x80000000u));
}

// `combine` over this invocation's subgroup: max and min on order keys, where a NaN is the largest
// (max) or the smallest (min) key, as the subgroup max and min leave NaN unspecified
fn sg_reduce(op: u32, v: f32) -> f32 {
    if (op == 0u) { return subgroupAdd(v); }
    if (op == 1u) { return from_key(subgroupMax(order_key(v, 0xffffffffu))); }
    return from_key(subgroupMin(order_key(v, 0u)));
}

// the (value, index) that beats every other in this invocation's subgroup
fn sg_argmax(v: f32, i: u32) -> Best {
    let key = order_key(v, 0xffffffffu);
    let top = subgroupMax(key);
    return Best(from_key(top), subgroupMin(select(NO_INDEX, i, key == top)));
}

// this invocation's rank among its subgroup's invocations, and their count
fn sg_lanes() -> vec2<u32> {
    return vec2<u32>(subgroupExclusiveAdd(1u), subgroupAdd(1u));
}

// Each subgroup's first invocation stores its partial at its own index (the others store the
// identity); then every subgroup combines all WG slots itself, so no second barrier round broadcasts.
fn wg_reduce(op: u32, lid: u32, v: f32) -> f32 {
    let lanes = sg_lanes();
    let none = identity(op);
    red_v[lid] = select(none, sg_reduce(op, v), lanes.x == 0u);
    workgroupBarrier();
    var acc = none;
    for (var s = lanes.x; s < WG; s += lanes.y) {
        acc = combine(op, acc, red_v[s]);
    }
    let out = sg_reduce(op, acc);
    workgroupBarrier();
    return out;
}

fn wg_argmax(lid: u32, v: f32, i: u32) -> u32 {
    let lanes = sg_lanes();
    let part = sg_argmax(v, i);
    red_v[lid] = select(-inf(), part.v, lanes.x == 0u);
    red_i[lid] = select(NO_INDEX, part.i, lanes.x == 0u);
    workgroupBarrier();
    var best = Best(-inf(), NO_INDEX);
    for (var s = lanes.x; s < WG; s += lanes.y) {
        if (beats(best.v, best.i, red_v[s], red_i[s])) {
            best = Best(red_v[s], red_i[s]);
        }
    }
    let out = sg_argmax(best.v, best.i).i;
    workgroupBarrier();
    return out;
}
//#else
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
//#endif
