// Tiled, batched matrix product C = epilogue(A @ B) with strided operands (transposed A or B cost
// nothing: only their strides change). Each workgroup computes a (TS*R) x (TS*R) tile of C; each
// thread R x R outputs, accumulated in f32 from K-slices of BK staged in workgroup memory.
//
// Prepend elementwise_ops.wgsl (the epilogue calls its functions). Bindings (group 0):
//   0: uniform P   1: A (IN)   2: B (IN)   3: C (OUT, dense (batch, M, N))   4..: epilogue operands
// Uniform words (i32, elements):
//   [0] M  [1] N  [2] K  [3] tiles along N  [4] tiles along M  [5] size of the inner batch axis
//   [6] A offset [7] A row stride [8] A column stride [9] A outer-batch stride [10] A inner-batch stride
//   [12..28) epilogue scalars (raw bits)
//   [28] B offset [29] B row stride [30] B column stride [31] B outer-batch stride [32] B inner-batch stride
//   [34] batches
//   [36 + 2k] offset of epilogue operand k, [37 + 2k] its stride along N (bias vectors)
// Override constants: TS threads per side, R outputs per thread per side (4 or 8), BK K-step.
// The slots EPILOGUE (the body of `epilogue`, ending in a return) and BINDINGS are generated.
//#if F16
enable f16;
//#endif
alias IN = f32;
alias OUT = f32;

struct Params { w: array<vec4<i32>, 16> }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<IN>;
@group(0) @binding(2) var<storage, read> B: array<IN>;
@group(0) @binding(3) var<storage, read_write> C: array<OUT>;
//{{BINDINGS}}

override TS: u32 = 16u;
override R: u32 = 8u;
override BK: u32 = 8u;

const MAX_Q: u32 = 2u;

// tiles as vec4 along M (As) and N (Bs): As[k * TS * R / 4 + m / 4][m % 4]
var<workgroup> As: array<vec4<f32>, BK * TS * R / 4u>;
var<workgroup> Bs: array<vec4<f32>, BK * TS * R / 4u>;

fn word(i: u32) -> i32 {
    return P.w[i >> 2u][i & 3u];
}

fn ep_addr(col: u32, k: u32) -> u32 {
    return u32(word(36u + 2u * k) + i32(col) * word(37u + 2u * k));
}

fn epilogue(x: f32, col: u32) -> f32 {
//{{EPILOGUE}}
}

@compute @workgroup_size(TS, TS)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) flat_id: u32) {
    let M = u32(word(0u));
    let N = u32(word(1u));
    let K = u32(word(2u));
    let tiles_n = u32(word(3u));
    let tiles_m = u32(word(4u));
    let flat = wid.y * groups.x + wid.x;
    let batch = flat / (tiles_n * tiles_m);
    if (batch >= u32(word(34u))) {
        return;
    }
    let tile = flat % (tiles_n * tiles_m);
    let BM = TS * R;
    let Q = R / 4u;
    let row0 = (tile / tiles_n) * BM;
    let col0 = (tile % tiles_n) * BM;
    let outer = i32(batch / u32(word(5u)));
    let inner = i32(batch % u32(word(5u)));
    let a_base = word(6u) + outer * word(9u) + inner * word(10u);
    let b_base = word(28u) + outer * word(31u) + inner * word(32u);
    let tx = lid.x;
    let ty = lid.y;

    var acc: array<vec4<f32>, 16>;
    for (var k0 = 0u; k0 < K; k0 += BK) {
        for (var e = flat_id; e < BK * BM; e += TS * TS) {
            let ka = e % BK;
            let m = e / BK;
            var a = 0.0;
            if (row0 + m < M && k0 + ka < K) {
                a = f32(A[u32(a_base + i32(row0 + m) * word(7u) + i32(k0 + ka) * word(8u))]);
            }
            As[ka * (BM / 4u) + m / 4u][m % 4u] = a;
            let n = e % BM;
            let kb = e / BM;
            var b = 0.0;
            if (col0 + n < N && k0 + kb < K) {
                b = f32(B[u32(b_base + i32(k0 + kb) * word(29u) + i32(col0 + n) * word(30u))]);
            }
            Bs[kb * (BM / 4u) + n / 4u][n % 4u] = b;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var a4: array<vec4<f32>, MAX_Q>;
            var b4: array<vec4<f32>, MAX_Q>;
            for (var q = 0u; q < Q; q++) {
                a4[q] = As[kk * (BM / 4u) + q * TS + ty];
                b4[q] = Bs[kk * (BM / 4u) + q * TS + tx];
            }
            for (var rq = 0u; rq < Q; rq++) {
                for (var lane = 0u; lane < 4u; lane++) {
                    let a = a4[rq][lane];
                    for (var cq = 0u; cq < Q; cq++) {
                        let at = (rq * 4u + lane) * Q + cq;
                        acc[at] = fma(vec4<f32>(a), b4[cq], acc[at]);
                    }
                }
            }
        }
        workgroupBarrier();
    }

    let c_base = batch * M * N;
    for (var rq = 0u; rq < Q; rq++) {
        for (var lane = 0u; lane < 4u; lane++) {
            let row = row0 + 4u * (rq * TS + ty) + lane;
            if (row >= M) {
                continue;
            }
            for (var cq = 0u; cq < Q; cq++) {
                let v = acc[(rq * 4u + lane) * Q + cq];
                for (var j = 0u; j < 4u; j++) {
                    let col = col0 + 4u * (cq * TS + tx) + j;
                    if (col < N) {
                        C[c_base + row * N + col] = OUT(epilogue(v[j], col));
                    }
                }
            }
        }
    }
}
