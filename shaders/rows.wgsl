// Row kernels over a dense (rows, n) input, one workgroup per row (flattened (x, y) workgroup id):
//   entry `reduce`:    OP 0 sum, 1 mean, 2 max, 3 min, 4 var (two-pass; divides by n - correction),
//                      5 argmax (first index of the maximum; written as int64: two u32 words)
//   entry `normalize`: OP 0 softmax, 1 log_softmax, 2 layer_norm (then * weight + bias when present)
// Prepend elementwise_ops.wgsl and workgroup_reduce.wgsl. Bindings (group 0):
//   0: uniform P   1: X (IN)   2: Y (OUT; u32 for argmax)   3: weight (IN)   4: bias (IN)  (3, 4: normalize only)
// Overrides: WG (threads, from workgroup_reduce.wgsl), OP.
//#if F16
enable f16;
//#endif
alias IN = f32;
alias OUT = f32;

struct Params {
    rows: u32,
    n: u32,
    x_off: u32,
    w_off: u32,
    b_off: u32,
    has_weight: u32,
    has_bias: u32,
    extra: f32,  // var: correction; layer_norm: eps
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<IN>;
@group(0) @binding(2) var<storage, read_write> Y: array<OUT>;
@group(0) @binding(3) var<storage, read> Wt: array<IN>;
@group(0) @binding(4) var<storage, read> Bs: array<IN>;

override OP: u32 = 0u;

fn x_at(row: u32, j: u32) -> f32 {
    return f32(X[P.x_off + row * P.n + j]);
}

fn row_sum_sq(lid: u32, row: u32, mean: f32) -> f32 {
    var acc = 0.0;
    for (var j = lid; j < P.n; j += WG) {
        let d = x_at(row, j) - mean;
        acc += d * d;
    }
    return wg_reduce(0u, lid, acc);
}

@compute @workgroup_size(WG)
fn reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * groups.x + wid.x;
    if (row >= P.rows) {
        return;
    }
    if (OP == 5u) {
        var best = x_at(row, min(lid, P.n - 1u));
        var best_i = min(lid, P.n - 1u);
        for (var j = lid + WG; j < P.n; j += WG) {
            let v = x_at(row, j);
            if (beats(best, best_i, v, j)) {
                best = v;
                best_i = j;
            }
        }
        let index = wg_argmax(lid, best, best_i);
        if (lid == 0u) {
            Y[2u * row] = OUT(index);
            Y[2u * row + 1u] = OUT(0u);
        }
        return;
    }
    let kind = select(select(0u, 1u, OP == 2u), 2u, OP == 3u);
    var acc = select(x_at(row, 0u), 0.0, kind == 0u);
    for (var j = lid; j < P.n; j += WG) {
        acc = combine(kind, acc, x_at(row, j));
    }
    var total = wg_reduce(kind, lid, acc);
    if (OP == 1u) {
        total = total / f32(P.n);
    }
    if (OP == 4u) {
        total = row_sum_sq(lid, row, total / f32(P.n)) / (f32(P.n) - P.extra);
    }
    if (lid == 0u) {
        Y[row] = OUT(total);
    }
}

@compute @workgroup_size(WG)
fn normalize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * groups.x + wid.x;
    if (row >= P.rows) {
        return;
    }
    if (OP == 2u) {
        var acc = 0.0;
        for (var j = lid; j < P.n; j += WG) {
            acc += x_at(row, j);
        }
        let mean = wg_reduce(0u, lid, acc) / f32(P.n);
        let inv = 1.0 / sqrt(row_sum_sq(lid, row, mean) / f32(P.n) + P.extra);
        for (var j = lid; j < P.n; j += WG) {
            var y = (x_at(row, j) - mean) * inv;
            if (P.has_weight != 0u) {
                y = y * f32(Wt[P.w_off + j]);
            }
            if (P.has_bias != 0u) {
                y = y + f32(Bs[P.b_off + j]);
            }
            Y[row * P.n + j] = OUT(y);
        }
        return;
    }
    var top = x_at(row, 0u);
    for (var j = lid; j < P.n; j += WG) {
        top = f_maximum(top, x_at(row, j));
    }
    top = wg_reduce(1u, lid, top);
    var acc = 0.0;
    for (var j = lid; j < P.n; j += WG) {
        acc += exp(x_at(row, j) - top);
    }
    let total = wg_reduce(0u, lid, acc);
    let log_total = log(total);
    for (var j = lid; j < P.n; j += WG) {
        let shifted = x_at(row, j) - top;
        Y[row * P.n + j] = OUT(select(exp(shifted) / total, shifted - log_total, OP == 1u));
    }
}
