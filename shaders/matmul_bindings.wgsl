// The parameter words and bindings of matmul.wgsl and matmul_blocks.wgsl (see their headers), composed
// with either: WGSL declarations at module scope may come in any order, so IN and OUT are the aliases
// the kernel file declares. Flag Q8: B is int8 packed four to a u32 word, with its scales and bias.
struct Params { w: array<vec4<i32>, 16> }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<IN>;
//#if Q8
@group(0) @binding(2) var<storage, read> B: array<u32>;
//#else
@group(0) @binding(2) var<storage, read> B: array<IN>;
//#endif
@group(0) @binding(3) var<storage, read_write> C: array<OUT>;
//#if Q8
@group(0) @binding(4) var<storage, read> XSCALE: array<f32>;
@group(0) @binding(5) var<storage, read> SCALE: array<f32>;
@group(0) @binding(6) var<storage, read> BIAS: array<f32>;
//#endif
