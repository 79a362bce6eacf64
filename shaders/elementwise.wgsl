// Strided elementwise kernel template: one thread per element of the iteration shape.
// Every elementwise op, fused chain, cast, copy, broadcast and strided write (setitem, concat) is
// this template with a generated body; the generator (accelerate_lab/hal/wgpu_codegen.py, and the
// browser front end) fills the two slots below from a fixed vocabulary (elementwise_ops.wgsl
// function names, operand numbers); sizes, strides and scalar values always come from the uniform.
//
// Prepend elementwise_ops.wgsl. Bindings (group 0):
//   0: uniform P (the words below)      1..: one storage array per operand, outputs first
// Uniform words (i32), all in elements:
//   [0] count: elements in this dispatch   [1] rank (<= 8)
//   [4..12) shape of the iteration space (row-major; padded with 1)
//   [12..28) scalars as raw bits (f32 / i32 / u32; an int64 takes two words)
//   [28 + 9k] offset of operand k, [29 + 9k .. 37 + 9k) its strides (0 on broadcast axes)
// Override constants: WG (threads per workgroup), LINEAR (rank 1: offset + i * stride, no division).
// Dispatch: (x, y) workgroups, flattened.
//#if F16
enable f16;
//#endif

struct Params { w: array<vec4<i32>, 64> }

@group(0) @binding(0) var<uniform> P: Params;
//{{BINDINGS}}

override WG: u32 = 64u;
override LINEAR: bool = false;

fn word(i: u32) -> i32 {
    return P.w[i >> 2u][i & 3u];
}

// Element `linear` of the iteration space in operand k. With LINEAR (the host merged the space into
// one axis: every dense op) that is a multiply-add. Otherwise axes are peeled from the innermost, one
// division each; the outermost needs none (linear < count).
fn offset_of(linear: u32, k: u32) -> u32 {
    let base = 28u + 9u * k;
    if (LINEAR) {
        return u32(word(base) + i32(linear) * word(base + 1u));
    }
    var rem = linear;
    var off = word(base);
    for (var d = u32(word(1u)) - 1u; d > 0u; d--) {
        let n = u32(word(4u + d));
        let q = rem / n;
        off += i32(rem - q * n) * word(base + 1u + d);
        rem = q;
    }
    return u32(off + i32(rem) * word(base + 1u));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * groups.x + wid.x) * WG + lid;
    if (i >= u32(word(0u))) {
        return;
    }
//{{BODY}}
}
