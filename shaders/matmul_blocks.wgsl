// Batched matrix product C = A @ B with strided operands and no workgroup memory: each invocation
// computes an 8x8 block of C in registers (four mat4x4), reading its rows of A and columns of B
// straight from storage at every K step. For software adapters (SwiftShader, lavapipe), where memory
// is the CPU's cached RAM and every barrier switches between a workgroup's four-lane groups: there it
// runs 2-3x faster than matmul.wgsl's staged tiles. Reads past M or N are clamped to the last row or
// column (always in range); only the stores are guarded.
//
// Bindings (group 0): 0: uniform P   1: A (IN)   2: B (IN)   3: C (OUT, (batch, M, N): rows [33]
// apart, matrices M rows apart, from [11]). Uniform words (i32, elements), as matmul.wgsl's:
//   [0] M  [1] N  [2] K  [3] blocks along N  [4] blocks along M  [5] size of the inner batch axis
//   [6] A offset [7] A row stride [8] A column stride [9] A outer-batch stride [10] A inner-batch stride
//   [11] C offset
//   [28] B offset [29] B row stride [30] B column stride [31] B outer-batch stride [32] B inner-batch stride
//   [33] C row stride  [34] batches
//   [35] (flag Q8) 1 when there is a bias
// Override constants: WG invocations per workgroup. Blocks along N vary fastest across invocations.
//
// Flag Q8 (matmul_q8), as in matmul.wgsl: B is int8 packed four to a u32 word, its offset and strides
// counting bytes; A's values are times XSCALE[k] and each output column n is scaled by SCALE[n] and
// shifted by BIAS[n] (when word [35] is 1). Bindings 4: XSCALE (K), 5: SCALE (N), 6: BIAS (N).
// Flag F16: IN and OUT may be f16 (values widened to f32 as loaded, accumulated in f32).
//#if F16
enable f16;
//#endif
alias IN = f32;
alias OUT = f32;
// P, A, B, C and (flag Q8) XSCALE, SCALE, BIAS: matmul_bindings.wgsl, composed with this file.

override WG: u32 = 64u;

fn word(i: u32) -> i32 {
    return P.w[i >> 2u][i & 3u];
}

// c + a (x) b: row r of the 4x4 block gains a[r] * b
fn outer(c: mat4x4<f32>, a: vec4<f32>, b: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(fma(vec4<f32>(a.x), b, c[0]), fma(vec4<f32>(a.y), b, c[1]),
                       fma(vec4<f32>(a.z), b, c[2]), fma(vec4<f32>(a.w), b, c[3]));
}

// indices first .. first + 3, each at most last
fn clamped(first: u32, last: u32) -> vec4<i32> {
    return vec4<i32>(min(vec4<u32>(first) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(last)));
}

fn load_a(at: vec4<i32>) -> vec4<f32> {
    return vec4<f32>(f32(A[at.x]), f32(A[at.y]), f32(A[at.z]), f32(A[at.w]));
}

//#if Q8
fn b_value(at: i32) -> f32 {
    return f32(extractBits(bitcast<i32>(B[at / 4]), 8u * u32(at % 4), 8u));
}

fn x_scale(k: i32) -> f32 {
    return XSCALE[k];
}

fn dequantize(x: f32, col: u32) -> f32 {
    if (word(35u) == 1) {
        return fma(x, SCALE[col], BIAS[col]);
    }
    return x * SCALE[col];
}
//#else
fn b_value(at: i32) -> f32 {
    return f32(B[at]);
}

fn x_scale(k: i32) -> f32 {
    return 1.0;
}

fn dequantize(x: f32, col: u32) -> f32 {
    return x;
}
//#endif

fn load_b(at: vec4<i32>) -> vec4<f32> {
    return vec4<f32>(b_value(at.x), b_value(at.y), b_value(at.z), b_value(at.w));
}

// the 4x4 block of C whose first element is (row, col) of matrix `batch`
fn store(c: mat4x4<f32>, batch: u32, row: u32, col: u32) {
    let M = u32(word(0u));
    let N = u32(word(1u));
    for (var r = 0u; r < 4u; r++) {
        for (var j = 0u; j < 4u; j++) {
            if (row + r < M && col + j < N) {
                C[u32(word(11u)) + (batch * M + row + r) * u32(word(33u)) + col + j] = OUT(dequantize(c[r][j], col + j));
            }
        }
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let M = u32(word(0u));
    let N = u32(word(1u));
    let blocks_n = u32(word(3u));
    let blocks = blocks_n * u32(word(4u));
    let id = (wid.y * groups.x + wid.x) * WG + lid;
    let batch = id / blocks;
    if (batch >= u32(word(34u))) {
        return;
    }
    let block = id % blocks;
    let row0 = (block / blocks_n) * 8u;
    let col0 = (block % blocks_n) * 8u;
    let outer_batch = i32(batch / u32(word(5u)));
    let inner_batch = i32(batch % u32(word(5u)));
    let a_at = word(6u) + outer_batch * word(9u) + inner_batch * word(10u);
    let b_at = word(28u) + outer_batch * word(31u) + inner_batch * word(32u);
    let a_lo = a_at + clamped(row0, M - 1u) * word(7u);
    let a_hi = a_at + clamped(row0 + 4u, M - 1u) * word(7u);
    let b_lo = b_at + clamped(col0, N - 1u) * word(30u);
    let b_hi = b_at + clamped(col0 + 4u, N - 1u) * word(30u);
    let a_step = word(8u);
    let b_step = word(29u);
    var c00 = mat4x4<f32>();
    var c01 = mat4x4<f32>();
    var c10 = mat4x4<f32>();
    var c11 = mat4x4<f32>();
    for (var k = 0i; k < word(2u); k++) {
        let a0 = load_a(a_lo + k * a_step) * x_scale(k);
        let a1 = load_a(a_hi + k * a_step) * x_scale(k);
        let b0 = load_b(b_lo + k * b_step);
        let b1 = load_b(b_hi + k * b_step);
        c00 = outer(c00, a0, b0);
        c01 = outer(c01, a0, b1);
        c10 = outer(c10, a1, b0);
        c11 = outer(c11, a1, b1);
    }
    store(c00, batch, row0, col0);
    store(c01, batch, row0, col0 + 4u);
    store(c10, batch, row0 + 4u, col0);
    store(c11, batch, row0 + 4u, col0 + 4u);
}
