// Embedding gather and its gradient. Ids are u32 words: one per id (int32, uint8 widened), or two
// (int64: low, high). An id outside [0, rows) writes zeros and sets the error flag, which the host
// checks before handing data back (it raises IndexError then).
//   entry `gather`:  out[i, d] = table[ids[i], d]                           (count = n_ids * dim)
//   entry `scatter`: out[r, d] = sum of grad[i, d] over the i with ids[i] == r  (count = rows * dim)
// Bindings (group 0): 0: uniform P   1: ids (u32)   2: table or grad (T)   3: out (T)   4: error flag (atomic u32)
// Override constants: WG threads per workgroup. All tensors dense.
//#if F16
enable f16;
//#endif
alias T = f32;

struct Params {
    count: u32,
    dim: u32,
    rows: u32,
    n_ids: u32,
    id_words: u32,
    id_signed: u32,
    ids_off: u32,
    src_off: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<T>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;
@group(0) @binding(4) var<storage, read_write> error_flag: array<atomic<u32>>;

override WG: u32 = 64u;

// the row of id number i, or P.rows when it is out of range
fn row_of(i: u32) -> u32 {
    let low = ids[P.ids_off + i * P.id_words];
    var bad = low >= P.rows;
    if (P.id_words == 2u) {
        bad = bad || ids[P.ids_off + 2u * i + 1u] != 0u;
    } else if (P.id_signed != 0u) {
        bad = bad || bitcast<i32>(low) < 0;
    }
    return select(low, P.rows, bad);
}

@compute @workgroup_size(WG)
fn gather(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * groups.x + wid.x) * WG + lid;
    if (i >= P.count) { return; }
    let row = row_of(i / P.dim);
    if (row == P.rows) {
        atomicOr(&error_flag[0], 1u);
        out[i] = T(0.0);
        return;
    }
    out[i] = src[P.src_off + row * P.dim + i % P.dim];
}

@compute @workgroup_size(WG)
fn scatter(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * groups.x + wid.x) * WG + lid;
    if (i >= P.count) { return; }
    let row = i / P.dim;
    let d = i % P.dim;
    var acc = 0.0;
    for (var k = 0u; k < P.n_ids; k++) {
        if (row_of(k) == row) {
            acc += f32(src[P.src_off + k * P.dim + d]);
        }
    }
    out[i] = T(acc);
}
