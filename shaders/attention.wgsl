// Fused scaled-dot-product attention, one workgroup per (batch, query row): scores for WG keys at a
// time, an online softmax (running maximum and sum, rescaling the accumulator), and the weighted
// sum of values, without materialising the (L, S) score matrix.
//   O[b, l] = softmax(Q[b, l] . K[b]^T * scale + mask[b, l] (+ causal: keys j > l excluded)) @ V[b]
// Prepend elementwise_ops.wgsl and workgroup_reduce.wgsl. Bindings (group 0):
//   0: uniform P   1: Q (T, dense (B, L, E))   2: K (T, (B, S, E))   3: V (T, (B, S, Ev))
//   4: mask (f32, additive, dense (B, L, S); bound but unread without has_mask)   5: O (T, (B, L, Ev))
// Override constants: WG threads (workgroup_reduce.wgsl). E and Ev are at most MAX_DIM.
//#if F16
enable f16;
//#endif
alias T = f32;

struct Params {
    rows: u32,  // B * L
    l: u32,
    s: u32,
    e: u32,
    ev: u32,
    causal: u32,
    has_mask: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Q: array<T>;
@group(0) @binding(2) var<storage, read> K: array<T>;
@group(0) @binding(3) var<storage, read> V: array<T>;
@group(0) @binding(4) var<storage, read> mask: array<f32>;
@group(0) @binding(5) var<storage, read_write> O: array<T>;

const MAX_DIM: u32 = 512u;

var<workgroup> q_row: array<f32, MAX_DIM>;
var<workgroup> acc: array<f32, MAX_DIM>;
var<workgroup> weights: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * groups.x + wid.x;
    if (row >= P.rows) {
        return;
    }
    let b = row / P.l;
    let l = row % P.l;
    for (var d = lid; d < P.e; d += WG) {
        q_row[d] = f32(Q[row * P.e + d]);
    }
    for (var d = lid; d < P.ev; d += WG) {
        acc[d] = 0.0;
    }
    workgroupBarrier();
    var run_max = -inf();
    var run_sum = 0.0;
    for (var j0 = 0u; j0 < P.s; j0 += WG) {
        let j = j0 + lid;
        var score = -inf();
        if (j < P.s && !(P.causal != 0u && j > l)) {
            var dot = 0.0;
            let k_base = (b * P.s + j) * P.e;
            for (var d = 0u; d < P.e; d++) {
                dot += q_row[d] * f32(K[k_base + d]);
            }
            score = dot * P.scale;
            if (P.has_mask != 0u) {
                score += mask[row * P.s + j];
            }
        }
        let new_max = max(run_max, wg_reduce(1u, lid, score));
        let weight = select(exp(score - new_max), 0.0, score == -inf());
        let rescale = select(exp(run_max - new_max), 0.0, run_max == -inf());
        run_sum = run_sum * rescale + wg_reduce(0u, lid, weight);
        run_max = new_max;
        weights[lid] = weight;
        workgroupBarrier();
        let keys = min(WG, P.s - j0);
        for (var d = lid; d < P.ev; d += WG) {
            var a = acc[d] * rescale;
            for (var jj = 0u; jj < keys; jj++) {
                a += weights[jj] * f32(V[(b * P.s + j0 + jj) * P.ev + d]);
            }
            acc[d] = a;
        }
        workgroupBarrier();
    }
    for (var d = lid; d < P.ev; d += WG) {
        O[row * P.ev + d] = T(acc[d] / run_sum);
    }
}
