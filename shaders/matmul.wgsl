// Tiled, batched matrix product C = epilogue(A @ B) with strided operands (transposed A or B cost
// nothing: only their strides change). Each workgroup computes a (TS*R) x (TS*R) tile of C; each
// thread R x R outputs in registers, accumulated in f32 from K-slices of BK staged in workgroup
// memory. The slices are double-buffered: the next one's global loads are issued before the
// current one is multiplied, and stored to the other buffer after, so one barrier per slice.
// Register values are named variables (4x4 blocks as mat4x4), never arrays indexed in loops: a
// driver that does not unroll such a loop keeps the array in slow local memory.
//
// Prepend elementwise_ops.wgsl (the epilogue calls its functions). Bindings (group 0):
//   0: uniform P   1: A (IN)   2: B (IN)   3: C (OUT, (batch, M, N): rows [33] apart, matrices M rows
//   apart, from [11])   4..: epilogue operands
// Uniform words (i32, elements):
//   [0] M  [1] N  [2] K  [3] tiles along N  [4] tiles along M  [5] size of the inner batch axis
//   [6] A offset [7] A row stride [8] A column stride [9] A outer-batch stride [10] A inner-batch stride
//   [11] C offset
//   [12..28) epilogue scalars (raw bits)
//   [28] B offset [29] B row stride [30] B column stride [31] B outer-batch stride [32] B inner-batch stride
//   [33] C row stride  [34] batches  [35] (flag Q8) 1 when there is a bias
//   [36 + 2k] offset of epilogue operand k, [37 + 2k] its stride along N (bias vectors)
// Override constants: TS threads per side, R outputs per thread per side (4 or 8), BK K-step; R
// divides TS, 4 * BK divides TS * TS, and BK * R / TS (values a thread loads per slice) is at most 8.
// Workgroup memory: 16 * BK * (TS * R + 4) bytes (16,896 for TS 16, R 8, BK 8).
// The slots EPILOGUE (the body of `epilogue`, ending in a return) and BINDINGS are generated.
//
// Flag Q8 (the catalogue's matmul_q8: 8-bit weight-only quantized linear layers): B is the int8
// matrix q of the (N, K) weights, packed four signed bytes to a u32 word, row after row (rows padded
// to whole words); its offset and strides count bytes (row stride 1, column stride the padded K).
// Each byte is widened to f32 as it is loaded, each value of A times its input channel's factor
// XSCALE[k], and each output column n is scaled by its channel's step SCALE[n] and shifted by its
// bias before the epilogue. Bindings 4: XSCALE (f32, K), 5: SCALE (f32, N), 6: BIAS (f32, N; read
// only when word [35] is 1). The generated epilogue is then `return x;` with no operands.
//#if F16
enable f16;
//#endif
alias IN = f32;
alias OUT = f32;

// P, A, B, C and (flag Q8) XSCALE, SCALE, BIAS: matmul_bindings.wgsl, composed with this file.
//{{BINDINGS}}

override TS: u32 = 16u;
override R: u32 = 8u;
override BK: u32 = 8u;

// Two K-slices of each operand, vec4 along M (A) or N (B): value (k, i) of slice s of operand o
// (0: A, 1: B) is tiles[(2 * o + s) * SLICE + k * ROW + i / 4][i % 4], ROW = TS * R / 4 + 1 vec4s.
// The padding vec4 puts stores that walk K (operands whose unit stride is along K) in distinct banks.
var<workgroup> tiles: array<vec4<f32>, 4u * BK * (TS * R / 4u + 1u)>;

fn word(i: u32) -> i32 {
    return P.w[i >> 2u][i & 3u];
}

fn ep_addr(col: u32, k: u32) -> u32 {
    return u32(word(36u + 2u * k) + i32(col) * word(37u + 2u * k));
}

fn epilogue(x: f32, col: u32) -> f32 {
//{{EPILOGUE}}
}

//#if Q8
fn dequantize(x: f32, col: u32) -> f32 {
    if (word(35u) == 1) {
        return fma(x, SCALE[col], BIAS[col]);
    }
    return x * SCALE[col];
}
//#else
fn dequantize(x: f32, col: u32) -> f32 {
    return x;
}
//#endif

// How a thread moves its share of each K-slice of one operand tile: value i (i < LOADS) sits at
// (x + i * dx) along M or N and (y + i * dy) along K of the slice, at element at + i * step + k0 *
// k_stride of the operand (k0: the slice's first K index), and is zero past `extent` (rows or
// columns left from the tile's corner) or K. The threads walk the operand's unit-stride axis
// fastest, so their global reads are coalesced; dx is a multiple of 4 (one vec4 lane: x % 4).
struct Walk { x: u32, y: u32, dx: u32, dy: u32, extent: u32, at: i32, step: i32, k_stride: i32 }

var<private> wa: Walk;
var<private> wb: Walk;
var<private> k_len: u32;

fn walk(id: u32, k_fast: bool, extent: u32, at: i32, stride: i32, k_stride: i32) -> Walk {
    let T = TS * TS;
    if (k_fast) {
        let x = id / BK;
        let y = id % BK;
        return Walk(x, y, T / BK, 0u, extent, at + i32(x) * stride + i32(y) * k_stride, i32(T / BK) * stride, k_stride);
    }
    let x = id % (TS * R);
    let y = id / (TS * R);
    let dy = T / (TS * R);
    return Walk(x, y, 0u, dy, extent, at + i32(x) * stride + i32(y) * k_stride, i32(dy) * k_stride, k_stride);
}

fn loads() -> u32 {
    return BK * R / TS;
}

fn inside(w: Walk, i: u32, k0: u32) -> bool {
    return i < loads() && w.x + i * w.dx < w.extent && k0 + w.y + i * w.dy < k_len;
}

fn address(w: Walk, i: u32, k0: u32) -> u32 {
    return u32(w.at + i32(i) * w.step + i32(k0) * w.k_stride);
}

fn load_a(i: u32, k0: u32) -> f32 {
    if (inside(wa, i, k0)) {
//#if Q8
        return f32(A[address(wa, i, k0)]) * XSCALE[k0 + wa.y + i * wa.dy];
//#else
        return f32(A[address(wa, i, k0)]);
//#endif
    }
    return 0.0;
}

fn load_b(i: u32, k0: u32) -> f32 {
    if (inside(wb, i, k0)) {
//#if Q8
        let at = address(wb, i, k0);
        return f32(extractBits(bitcast<i32>(B[at / 4u]), 8u * (at % 4u), 8u));
//#else
        return f32(B[address(wb, i, k0)]);
//#endif
    }
    return 0.0;
}

// values i .. i + 3 of a slice
fn fetch_a(i: u32, k0: u32) -> vec4<f32> {
    return vec4<f32>(load_a(i, k0), load_a(i + 1u, k0), load_a(i + 2u, k0), load_a(i + 3u, k0));
}

fn fetch_b(i: u32, k0: u32) -> vec4<f32> {
    return vec4<f32>(load_b(i, k0), load_b(i + 1u, k0), load_b(i + 2u, k0), load_b(i + 3u, k0));
}

fn put(w: Walk, slice: u32, i: u32, x: f32) {
    if (i < loads()) {
        tiles[slice + (w.y + i * w.dy) * (TS * R / 4u + 1u) + (w.x + i * w.dx) / 4u][w.x % 4u] = x;
    }
}

fn stash(w: Walk, slice: u32, i: u32, v: vec4<f32>) {
    put(w, slice, i, v.x);
    put(w, slice, i + 1u, v.y);
    put(w, slice, i + 2u, v.z);
    put(w, slice, i + 3u, v.w);
}

// c + a (x) b: row r of the 4x4 block gains a[r] * b
fn outer(c: mat4x4<f32>, a: vec4<f32>, b: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(fma(vec4<f32>(a.x), b, c[0]), fma(vec4<f32>(a.y), b, c[1]),
                       fma(vec4<f32>(a.z), b, c[2]), fma(vec4<f32>(a.w), b, c[3]));
}

// the 4x4 block of C whose first element is (row, col) of matrix `batch`
fn store(c: mat4x4<f32>, batch: u32, row: u32, col: u32) {
    let M = u32(word(0u));
    let N = u32(word(1u));
    for (var r = 0u; r < 4u; r++) {
        for (var j = 0u; j < 4u; j++) {
            if (row + r < M && col + j < N) {
                let at = u32(word(11u)) + (batch * M + row + r) * u32(word(33u)) + col + j;
                C[at] = OUT(epilogue(dequantize(c[r][j], col + j), col + j));
            }
        }
    }
}

@compute @workgroup_size(TS, TS)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) flat_id: u32) {
    let M = u32(word(0u));
    let N = u32(word(1u));
    k_len = u32(word(2u));
    let tiles_n = u32(word(3u));
    let tiles_m = u32(word(4u));
    let flat = wid.y * groups.x + wid.x;
    let batch = flat / (tiles_n * tiles_m);
    if (batch >= u32(word(34u))) {
        return;
    }
    let tile = flat % (tiles_n * tiles_m);
    let BM = TS * R;
    let SLICE = BK * (BM / 4u + 1u);
    let row0 = (tile / tiles_n) * BM;
    let col0 = (tile % tiles_n) * BM;
    let outer_batch = i32(batch / u32(word(5u)));
    let inner_batch = i32(batch % u32(word(5u)));
    let a_at = word(6u) + outer_batch * word(9u) + inner_batch * word(10u) + i32(row0) * word(7u);
    let b_at = word(28u) + outer_batch * word(31u) + inner_batch * word(32u) + i32(col0) * word(30u);
    // A is walked along K when its unit stride is there; B along N unless only K has a unit stride
    wa = walk(flat_id, word(8u) == 1, M - row0, a_at, word(7u), word(8u));
    wb = walk(flat_id, word(29u) == 1 && word(30u) != 1, N - col0, b_at, word(30u), word(29u));
    let tx = lid.x;
    let ty = lid.y;

    // thread (tx, ty) owns rows 4 * (q * TS + ty) + 0..3 and columns 4 * (q * TS + tx) + 0..3 for
    // q < R / 4: block c_rc pairs row group r with column group c (only c00 when R is 4)
    var c00 = mat4x4<f32>();
    var c01 = mat4x4<f32>();
    var c10 = mat4x4<f32>();
    var c11 = mat4x4<f32>();
    // from the uniform, not k_len: Chromium's WGSL compiler (Tint) treats a private variable as
    // non-uniform, and the barrier in this loop must be in uniform control flow
    let slices = (u32(word(2u)) + BK - 1u) / BK;
    for (var s = 0u; s <= slices; s++) {
        // global -> registers: slice s (at most 8 values per thread and operand)
        var a_lo = vec4<f32>();
        var a_hi = vec4<f32>();
        var b_lo = vec4<f32>();
        var b_hi = vec4<f32>();
        if (s < slices) {
            a_lo = fetch_a(0u, s * BK);
            a_hi = fetch_a(4u, s * BK);
            b_lo = fetch_b(0u, s * BK);
            b_hi = fetch_b(4u, s * BK);
        }
        // multiply slice s - 1 (stored before the last barrier)
        if (s > 0u) {
            let a_slice = ((s - 1u) & 1u) * SLICE;
            let b_slice = a_slice + 2u * SLICE;
            for (var kk = 0u; kk < BK; kk++) {
                let at = kk * (BM / 4u + 1u);
                let a0 = tiles[a_slice + at + ty];
                let b0 = tiles[b_slice + at + tx];
                c00 = outer(c00, a0, b0);
                if (R == 8u) {
                    let a1 = tiles[a_slice + at + TS + ty];
                    let b1 = tiles[b_slice + at + TS + tx];
                    c01 = outer(c01, a0, b1);
                    c10 = outer(c10, a1, b0);
                    c11 = outer(c11, a1, b1);
                }
            }
        }
        // registers -> the other buffer (last read before the previous barrier)
        if (s < slices) {
            let a_slice = (s & 1u) * SLICE;
            stash(wa, a_slice, 0u, a_lo);
            stash(wa, a_slice, 4u, a_hi);
            stash(wb, a_slice + 2u * SLICE, 0u, b_lo);
            stash(wb, a_slice + 2u * SLICE, 4u, b_hi);
        }
        workgroupBarrier();
    }

    let row = row0 + 4u * ty;
    let col = col0 + 4u * tx;
    store(c00, batch, row, col);
    if (R == 8u) {
        store(c01, batch, row, col + 4u * TS);
        store(c10, batch, row + 4u * TS, col);
        store(c11, batch, row + 4u * TS, col + 4u * TS);
    }
}
