// The fast path of matmul.wgsl for aligned operands: C = epilogue(A @ B), float32, where every
// operand row is contiguous and 16-byte aligned, so each global load is one vec4 and no load needs
// a bounds check. The caller guarantees: M a multiple of BM = 8 * TY, N of BN = 8 * TX, K of BK;
// A's column stride 1; B's column stride 1 (or, with BT, its row stride 1: B = W^T of a linear
// layer); every offset, row stride and batch stride (C's too: words [11], [33]) a multiple of 4 elements.
// Each workgroup (TX x TY threads) computes a BM x BN tile of C; each thread 8 x 8 outputs in four
// named mat4x4 registers, accumulated with fma from K-slices of BK staged in workgroup memory
// with A (and B when it is walked along K) transposed there, so the inner loop reads one vec4 of
// A and one of B per 4 x 4 block. Slices are double-buffered: one barrier per slice.
//
// Prepend elementwise_ops.wgsl (the epilogue calls its functions). Bindings and uniform words are
// those of matmul.wgsl (words [3], [4]: tiles along N and M; [8] and [30], or with BT [29], are 1).
// Override constants: TX threads along N, TY along M, BK K-step, BT (bool) B walked along K,
// UNROLL (1, 4 or 8, dividing BK) K-steps written out per turn of the inner loop, GROUP (>= 1) rows
// of tiles walked together column by column (so neighbouring workgroups share B's tiles in L2);
// BK a multiple of 4, and 8 * TY * BK and 8 * TX * BK each 4 * TX * TY * L with L (vec4 loads per
// thread and operand per slice) 1, 2 or 4. Workgroup memory: 32 * BK * (2 * TX + 2 * TY + 2) bytes.
// The slots EPILOGUE (the body of `epilogue`, ending in a return) and BINDINGS are generated; an
// epilogue with float16 operands runs matmul.wgsl.

struct Params { w: array<vec4<i32>, 16> }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> B: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> C: array<vec4<f32>>;
//{{BINDINGS}}

override TX: u32 = 16u;
override TY: u32 = 16u;
override BK: u32 = 8u;
override BT: bool = false;
override UNROLL: u32 = 1u;
override GROUP: u32 = 1u;

// Two K-slices of A then two of B, vec4 along M (A) or N (B): value (k, i) of slice s of A is
// tiles[s * BK * ROW_A + k * ROW_A + i / 4][i % 4], ROW_A = 2 * TY + 1 vec4s (BM / 4 plus one of
// padding, so transposed stores spread over banks); B's start at 2 * BK * ROW_A, ROW_B = 2 * TX + 1.
var<workgroup> tiles: array<vec4<f32>, 2u * BK * (2u * TY + 2u * TX + 2u)>;

fn word(i: u32) -> i32 {
    return P.w[i >> 2u][i & 3u];
}

fn ep_addr(col: u32, k: u32) -> u32 {
    return u32(word(36u + 2u * k) + i32(col) * word(37u + 2u * k));
}

fn epilogue(x: f32, col: u32) -> f32 {
//{{EPILOGUE}}
}

// c + a (x) b: row r of the 4x4 block gains a[r] * b
fn outer(c: mat4x4<f32>, a: vec4<f32>, b: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(fma(vec4<f32>(a.x), b, c[0]), fma(vec4<f32>(a.y), b, c[1]),
                       fma(vec4<f32>(a.z), b, c[2]), fma(vec4<f32>(a.w), b, c[3]));
}

// a thread's 8 x 8 outputs as four 4 x 4 blocks (where each goes: the end of main)
struct Acc { c00: mat4x4<f32>, c01: mat4x4<f32>, c10: mat4x4<f32>, c11: mat4x4<f32> }

// one K-step: the slice rows of A and B at vec4s `a` and `b` (thread (tx, ty))
fn mac(c: Acc, a: u32, b: u32, tx: u32, ty: u32) -> Acc {
    let xa0 = tiles[a + ty];
    let xa1 = tiles[a + TY + ty];
    let xb0 = tiles[b + tx];
    let xb1 = tiles[b + TX + tx];
    return Acc(outer(c.c00, xa0, xb0), outer(c.c01, xa0, xb1), outer(c.c10, xa1, xb0),
               outer(c.c11, xa1, xb1));
}

// vec4 v of a slice loaded along K (BK / 4 vec4s per row of the operand tile), at (v / (BK / 4))
// along M or N and 4 * (v % (BK / 4)) along K: stored transposed, one value to each of 4 slice rows
fn put_t(at: u32, row: u32, v: u32, x: vec4<f32>) {
    let i = v / (BK / 4u);
    let k = 4u * (v % (BK / 4u));
    let base = at + k * row + i / 4u;
    let lane = i % 4u;
    tiles[base][lane] = x.x;
    tiles[base + row][lane] = x.y;
    tiles[base + 2u * row][lane] = x.z;
    tiles[base + 3u * row][lane] = x.w;
}

// the 4x4 block of C at vec4 `at` (rows n4 vec4s apart), its first column `col`
fn store(c: mat4x4<f32>, at: u32, col: u32, n4: u32) {
    for (var r = 0u; r < 4u; r++) {
        let x = c[r];
        C[at + r * n4] = vec4<f32>(epilogue(x.x, col), epilogue(x.y, col + 1u), epilogue(x.z, col + 2u),
                                   epilogue(x.w, col + 3u));
    }
}

@compute @workgroup_size(TX, TY)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) id: u32) {
    let N = u32(word(1u));
    let tiles_n = u32(word(3u));
    let tiles_m = u32(word(4u));
    let flat = wid.y * groups.x + wid.x;
    let batch = flat / (tiles_n * tiles_m);
    if (batch >= u32(word(34u))) {
        return;
    }
    let BM = 8u * TY;
    let BN = 8u * TX;
    let T = TX * TY;
    let LA = BM * BK / (4u * T);
    let LB = BN * BK / (4u * T);
    let ROW_A = 2u * TY + 1u;
    let ROW_B = 2u * TX + 1u;
    // tiles in groups of GROUP rows (fewer in the last), each walked column by column
    let tile = flat % (tiles_n * tiles_m);
    let first = (tile / (GROUP * tiles_n)) * GROUP;
    let rows = min(tiles_m - first, GROUP);
    let in_group = tile % (GROUP * tiles_n);
    let row0 = (first + in_group % rows) * BM;
    let col0 = (in_group / rows) * BN;
    let outer_batch = i32(batch / u32(word(5u)));
    let inner_batch = i32(batch % u32(word(5u)));
    // element offsets of the tile's corner, in vec4s: A along K; B along K (BT) or N
    let lda = u32(word(7u)) / 4u;
    let a_at = u32(word(6u) + outer_batch * word(9u) + inner_batch * word(10u)) / 4u + row0 * lda;
    let b_base = u32(word(28u) + outer_batch * word(31u) + inner_batch * word(32u)) / 4u;
    var ldb = u32(word(29u)) / 4u;
    var b_at = b_base + col0 / 4u;
    if (BT) {
        ldb = u32(word(30u)) / 4u;
        b_at = b_base + col0 * ldb;
    }
    // vec4 v = id + j * T of a slice: A's at row v / (BK / 4), K vec4 v % (BK / 4); B's likewise
    // with BT, else at K row v / (BN / 4), N vec4 v % (BN / 4): consecutive threads, consecutive vec4s
    let kq = BK / 4u;
    let tx = lid.x;
    let ty = lid.y;

    var acc = Acc();
    let slices = u32(word(2u)) / BK;
    let a_size = BK * ROW_A;
    let b_size = BK * ROW_B;
    for (var s = 0u; s <= slices; s++) {
        // global -> registers: slice s
        var a0 = vec4<f32>();
        var a1 = vec4<f32>();
        var a2 = vec4<f32>();
        var a3 = vec4<f32>();
        var b0 = vec4<f32>();
        var b1 = vec4<f32>();
        var b2 = vec4<f32>();
        var b3 = vec4<f32>();
        let k4 = s * kq;
        if (s < slices) {
            a0 = A[a_at + (id / kq) * lda + k4 + id % kq];
            if (LA > 1u) {
                a1 = A[a_at + ((id + T) / kq) * lda + k4 + (id + T) % kq];
            }
            if (LA > 2u) {
                a2 = A[a_at + ((id + 2u * T) / kq) * lda + k4 + (id + 2u * T) % kq];
                a3 = A[a_at + ((id + 3u * T) / kq) * lda + k4 + (id + 3u * T) % kq];
            }
            if (BT) {
                b0 = B[b_at + (id / kq) * ldb + k4 + id % kq];
                if (LB > 1u) {
                    b1 = B[b_at + ((id + T) / kq) * ldb + k4 + (id + T) % kq];
                }
                if (LB > 2u) {
                    b2 = B[b_at + ((id + 2u * T) / kq) * ldb + k4 + (id + 2u * T) % kq];
                    b3 = B[b_at + ((id + 3u * T) / kq) * ldb + k4 + (id + 3u * T) % kq];
                }
            } else {
                let nq = BN / 4u;
                let at = b_at + s * BK * ldb;
                b0 = B[at + (id / nq) * ldb + id % nq];
                if (LB > 1u) {
                    b1 = B[at + ((id + T) / nq) * ldb + (id + T) % nq];
                }
                if (LB > 2u) {
                    b2 = B[at + ((id + 2u * T) / nq) * ldb + (id + 2u * T) % nq];
                    b3 = B[at + ((id + 3u * T) / nq) * ldb + (id + 3u * T) % nq];
                }
            }
        }
        // multiply slice s - 1 (stored before the last barrier)
        if (s > 0u) {
            let a_slice = ((s - 1u) & 1u) * a_size;
            let b_slice = 2u * a_size + ((s - 1u) & 1u) * b_size;
            for (var kk = 0u; kk < BK; kk += UNROLL) {
                let a = a_slice + kk * ROW_A;
                let b = b_slice + kk * ROW_B;
                acc = mac(acc, a, b, tx, ty);
                if (UNROLL >= 4u) {
                    acc = mac(acc, a + ROW_A, b + ROW_B, tx, ty);
                    acc = mac(acc, a + 2u * ROW_A, b + 2u * ROW_B, tx, ty);
                    acc = mac(acc, a + 3u * ROW_A, b + 3u * ROW_B, tx, ty);
                }
                if (UNROLL >= 8u) {
                    acc = mac(acc, a + 4u * ROW_A, b + 4u * ROW_B, tx, ty);
                    acc = mac(acc, a + 5u * ROW_A, b + 5u * ROW_B, tx, ty);
                    acc = mac(acc, a + 6u * ROW_A, b + 6u * ROW_B, tx, ty);
                    acc = mac(acc, a + 7u * ROW_A, b + 7u * ROW_B, tx, ty);
                }
            }
        }
        // registers -> the other buffer (last read before the previous barrier)
        if (s < slices) {
            let a_slice = (s & 1u) * a_size;
            let b_slice = 2u * a_size + (s & 1u) * b_size;
            put_t(a_slice, ROW_A, id, a0);
            if (LA > 1u) {
                put_t(a_slice, ROW_A, id + T, a1);
            }
            if (LA > 2u) {
                put_t(a_slice, ROW_A, id + 2u * T, a2);
                put_t(a_slice, ROW_A, id + 3u * T, a3);
            }
            if (BT) {
                put_t(b_slice, ROW_B, id, b0);
                if (LB > 1u) {
                    put_t(b_slice, ROW_B, id + T, b1);
                }
                if (LB > 2u) {
                    put_t(b_slice, ROW_B, id + 2u * T, b2);
                    put_t(b_slice, ROW_B, id + 3u * T, b3);
                }
            } else {
                let nq = BN / 4u;
                tiles[b_slice + (id / nq) * ROW_B + id % nq] = b0;
                if (LB > 1u) {
                    tiles[b_slice + ((id + T) / nq) * ROW_B + (id + T) % nq] = b1;
                }
                if (LB > 2u) {
                    tiles[b_slice + ((id + 2u * T) / nq) * ROW_B + (id + 2u * T) % nq] = b2;
                    tiles[b_slice + ((id + 3u * T) / nq) * ROW_B + (id + 3u * T) % nq] = b3;
                }
            }
        }
        workgroupBarrier();
    }

    // thread (tx, ty) owns rows 4 * ty + 0..3 and 4 * (TY + ty) + 0..3, columns 4 * tx + 0..3 and
    // 4 * (TX + tx) + 0..3; C is (batch, M, N) with rows [33] apart from [11]
    let M = u32(word(0u));
    let ldc = u32(word(33u));
    let n4 = ldc / 4u;
    let row = row0 + 4u * ty;
    let col = col0 + 4u * tx;
    let at = (u32(word(11u)) + (batch * M + row) * ldc + col) / 4u;
    store(acc.c00, at, col, n4);
    store(acc.c01, at + TX, col + 4u * TX, n4);
    store(acc.c10, at + 4u * TY * n4, col, n4);
    store(acc.c11, at + 4u * TY * n4 + TX, col + 4u * TX, n4);
}
