// C = A @ W^T with the (N, K) weight W in one of GGUF's block formats, read packed (the catalogue's
// matmul_q4_1 and matmul_q8_0; accelerate_lab/hal/gguf_quant.py describes the layouts). Each row of
// W is its K / 32 blocks byte after byte in u32 words (little-endian), padded to [3] words.
//   Q4_1 (default, 20 bytes a block): f16 scale d and minimum m, then 16 bytes of 4-bit codes; byte j
//     holds value j in its low nibble and value j + 16 in its high one; w = q * d + m.
//   Flag Q8_0 (34 bytes a block): f16 scale d, then 32 signed bytes; w = q * d.
// A workgroup computes C[r, n] for WG / LANES columns n and four rows r of A (row group g). The LANES
// threads of a column take the units u of its blocks in turn (a unit is 8 values: Q4_1 codes word u % 4
// of block u / 4, Q8_0 code bytes 8 * (u % 4) ..), each accumulating a vec4 (one lane per row), and sum
// them across the lanes; with LANES 1 (software adapters, where barriers are costly) a thread does a
// whole column.
// Bindings (group 0): 0: uniform P   1: A (f32, dense (M, K) from element [4])   2: W (u32)
//   3: C (f32, (M, N): rows [7] apart from element [6])
// Uniform words (u32): [0] M  [1] N  [2] K  [3] words per row of W  [4] A offset  [5] row groups
//   [6] C offset  [7] C row stride
// Uniform word [5] is the number of row groups; workgroups: ceil(N / (WG / LANES)) * row groups.
// Override constants: WG threads per workgroup, LANES threads per column (powers of two, LANES <= WG).
override WG: u32 = 64u;
override LANES: u32 = 32u;

struct Params { w: array<vec4<u32>, 2> }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> W: array<u32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

var<workgroup> partial: array<vec4<f32>, WG>;

fn word(i: u32) -> u32 {
    return P.w[i >> 2u][i & 3u];
}

// A[r, k] for the four rows of the group (rows past M repeat the last one; their sums are dropped)
fn column(rows: vec4<u32>, k: u32) -> vec4<f32> {
    let K = word(2u);
    let at = word(4u) + k;
    return vec4<f32>(A[at + rows.x * K], A[at + rows.y * K], A[at + rows.z * K], A[at + rows.w * K]);
}

// q . A[rows, k0 .. k0 + 3] for the four bytes of `codes` (signed or, as 4-bit codes, masked)
fn dot4(q: vec4<f32>, rows: vec4<u32>, k0: u32) -> vec4<f32> {
    return q.x * column(rows, k0) + q.y * column(rows, k0 + 1u) + q.z * column(rows, k0 + 2u)
        + q.w * column(rows, k0 + 3u);
}

//#if Q8_0
fn bytes4(w: u32) -> vec4<f32> {
    let v = bitcast<i32>(w);
    return vec4<f32>(f32(extractBits(v, 0u, 8u)), f32(extractBits(v, 8u, 8u)), f32(extractBits(v, 16u, 8u)),
                     f32(extractBits(v, 24u, 8u)));
}

// bytes 8 * part .. + 7 of the block's codes: two words, realigned when the block starts mid-word
// (blocks are 34 bytes, so every other one does); d * sum(q * a), q * d being exact in f32
fn unit(base: u32, rows: vec4<u32>, block: u32, part: u32) -> vec4<f32> {
    let at = block * 34u;
    let d = unpack2x16float(W[base + at / 4u])[(at / 2u) % 2u];
    let start = at + 2u + 8u * part;
    let i = base + start / 4u;
    var lo = W[i];
    var hi = W[i + 1u];
    if (start % 4u != 0u) {
        let next = W[min(i + 2u, arrayLength(&W) - 1u)];
        lo = (lo >> 16u) | (hi << 16u);
        hi = (hi >> 16u) | (next << 16u);
    }
    let k0 = block * 32u + 8u * part;
    return d * (dot4(bytes4(lo), rows, k0) + dot4(bytes4(hi), rows, k0 + 4u));
}
//#else
fn nibbles(w: u32, shift: u32) -> vec4<f32> {
    return vec4<f32>(f32(extractBits(w, shift, 4u)), f32(extractBits(w, shift + 8u, 4u)),
                     f32(extractBits(w, shift + 16u, 4u)), f32(extractBits(w, shift + 24u, 4u)));
}

// codes word `part` of the block: values 4 * part .. + 3 (low nibbles) and 16 + 4 * part .. (high);
// sum((q * d + m) * a) as d * sum(q * a) + m * sum(a)
fn unit(base: u32, rows: vec4<u32>, block: u32, part: u32) -> vec4<f32> {
    let at = base + block * 5u;
    let dm = unpack2x16float(W[at]);
    let codes = W[at + 1u + part];
    let k0 = block * 32u + 4u * part;
    let ones = vec4<f32>(1.0);
    let q = dot4(nibbles(codes, 0u), rows, k0) + dot4(nibbles(codes, 4u), rows, k0 + 16u);
    let a = dot4(ones, rows, k0) + dot4(ones, rows, k0 + 16u);
    return fma(vec4<f32>(dm.x), q, dm.y * a);
}
//#endif

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let M = word(0u);
    let N = word(1u);
    let columns = (N + WG / LANES - 1u) / (WG / LANES);
    let flat = wid.y * groups.x + wid.x;
    if (flat >= columns * word(5u)) {
        return;
    }
    let n = (flat % columns) * (WG / LANES) + lid / LANES;
    let lane = lid % LANES;
    let row0 = 4u * (flat / columns);
    let rows = min(vec4<u32>(row0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(M - 1u));
    var sum = vec4<f32>();
    if (n < N) {
        let base = n * word(3u);
        for (var u = lane; u < word(2u) / 8u; u += LANES) {
            sum += unit(base, rows, u / 4u, u % 4u);
        }
    }
    if (LANES > 1u) {
        partial[lid] = sum;
        workgroupBarrier();
        for (var half = LANES / 2u; half > 0u; half /= 2u) {
            if (lane < half) {
                partial[lid] += partial[lid + half];
            }
            workgroupBarrier();
        }
        sum = partial[lid];
    }
    if (lane == 0u && n < N) {
        for (var r = 0u; r < 4u; r++) {
            if (row0 + r < M) {
                C[word(6u) + (row0 + r) * word(7u) + n] = sum[r];
            }
        }
    }
}
