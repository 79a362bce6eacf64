// Fused scaled-dot-product attention, one invocation per query row: an online softmax over the keys
// one at a time (running maximum and sum, rescaling the accumulator) in private memory, with no
// workgroup memory and no barriers. For software adapters (SwiftShader, lavapipe), which run a
// workgroup's invocations four lanes at a time and switch between those groups at every barrier:
// there attention.wgsl's cooperative rows cost several times more. Its private arrays suit no GPU.
//   O[b, l] = softmax(Q[b, l] . K[b]^T * scale + mask[b, l] (+ causal: keys j > l excluded)) @ V[b]
// Operands are strided views over two batch axes (b0, b1) then rows and columns: Q (B0, B1, L, E),
// K (B0, B1, S, E), V (B0, B1, S, Ev), mask (B0, B1, L, S), each with its own offset and four strides
// (elements), so heads sliced out of a fused projection and a broadcast padding mask are read in place.
// The mask is additive f32 (mask_kind 1) or bool, 0/1 words, keeping the keys where it is 1 (kind 2).
// Prepend elementwise_ops.wgsl. Bindings (group 0):
//   0: uniform P   1: Q (T)   2: K (T)   3: V (T)   4: mask (u32 words; bound but unread with kind 0)
//   5: O (T, dense (B0 * B1 * L, Ev))
// Override constants: WG invocations per workgroup. E and Ev are at most MAX_DIM.
//#if F16
enable f16;
//#endif
alias T = f32;

struct Params {
    rows: u32,  // B0 * B1 * L
    b1: u32,
    l: u32,
    s: u32,
    e: u32,
    ev: u32,
    causal: u32,
    mask_kind: u32,  // 0 none, 1 additive f32, 2 bool
    scale: f32,
    q_off: u32,
    k_off: u32,
    v_off: u32,
    m_off: u32,
    // strides (b0, b1, row, column) of each operand
    q_st: vec4<u32>,
    k_st: vec4<u32>,
    v_st: vec4<u32>,
    m_st: vec4<u32>,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Q: array<T>;
@group(0) @binding(2) var<storage, read> K: array<T>;
@group(0) @binding(3) var<storage, read> V: array<T>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;
@group(0) @binding(5) var<storage, read_write> O: array<T>;

override WG: u32 = 64u;
const MAX_DIM: u32 = 512u;

fn batch_at(st: vec4<u32>, b0: u32, b1: u32) -> u32 {
    return b0 * st.x + b1 * st.y;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row = (wid.y * groups.x + wid.x) * WG + lid;
    if (row >= P.rows) {
        return;
    }
    let l = row % P.l;
    let b = row / P.l;
    let b0 = b / P.b1;
    let b1 = b % P.b1;
    let q_at = P.q_off + batch_at(P.q_st, b0, b1) + l * P.q_st.z;
    let k_at = P.k_off + batch_at(P.k_st, b0, b1);
    let v_at = P.v_off + batch_at(P.v_st, b0, b1);
    let m_at = P.m_off + batch_at(P.m_st, b0, b1) + l * P.m_st.z;
    var q: array<f32, MAX_DIM>;
    var acc: array<f32, MAX_DIM>;
    for (var d = 0u; d < P.e; d++) {
        q[d] = f32(Q[q_at + d * P.q_st.w]);
    }
    for (var d = 0u; d < P.ev; d++) {
        acc[d] = 0.0;
    }
    var run_max = -inf();
    var run_sum = 0.0;
    let keys = select(P.s, min(P.s, l + 1u), P.causal != 0u);
    for (var j = 0u; j < keys; j++) {
        var bits = 0u;
        if (P.mask_kind != 0u) {
            bits = mask[m_at + j * P.m_st.w];
        }
        if (P.mask_kind == 2u && bits == 0u) {
            continue;
        }
        var dot = 0.0;
        let k_row = k_at + j * P.k_st.z;
        for (var d = 0u; d < P.e; d++) {
            dot += q[d] * f32(K[k_row + d * P.k_st.w]);
        }
        var score = dot * P.scale;
        if (P.mask_kind == 1u) {
            score += bitcast<f32>(bits);
        }
        if (score == -inf()) {
            continue;
        }
        let new_max = f_maximum(run_max, score);
        let rescale = select(exp(run_max - new_max), 0.0, run_max == -inf());
        let weight = exp(score - new_max);
        run_sum = run_sum * rescale + weight;
        run_max = new_max;
        let v_row = v_at + j * P.v_st.z;
        for (var d = 0u; d < P.ev; d++) {
            acc[d] = acc[d] * rescale + weight * f32(V[v_row + d * P.v_st.w]);
        }
    }
    for (var d = 0u; d < P.ev; d++) {
        O[row * P.ev + d] = T(acc[d] / run_sum);
    }
}
