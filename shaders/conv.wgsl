// Direct N-d convolution (cross-correlation, as PyTorch) for 1-D and 2-D (1-D runs as H = 1), with
// stride, padding, dilation and groups; and its two gradients. One thread per output element.
//   entry `forward`:         in0 = x (N, C, H, W), in1 = weight (O, C/groups, KH, KW) -> out (N, O, OH, OW) (+ bias)
//   entry `backward_input`:  in0 = grad (N, O, OH, OW), in1 = weight -> out = grad of x (N, C, H, W)
//   entry `backward_weight`: in0 = x, in1 = grad (N, O, OH, OW) -> out = grad of weight (O, C/groups, KH, KW)
// Bindings (group 0): 0: uniform P   1: in0 (T)   2: in1 (T)   3: out (T)   4: bias (T, forward only)
// Override constants: WG threads per workgroup. All tensors dense.
//#if F16
enable f16;
//#endif
alias T = f32;

struct Params {
    count: u32, n: u32, c: u32, h: u32,
    w: u32, o: u32, oh: u32, ow: u32,
    kh: u32, kw: u32, groups: u32, has_bias: u32,
    sh: u32, sw: u32, ph: u32, pw: u32,
    dh: u32, dw: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> in0: array<T>;
@group(0) @binding(2) var<storage, read> in1: array<T>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;
@group(0) @binding(4) var<storage, read> bias: array<T>;

override WG: u32 = 64u;

fn element(wid: vec3<u32>, groups: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * groups.x + wid.x) * WG + lid;
}

// input coordinate that output coordinate `o` and kernel tap `k` read (may be out of range: < 0 or >= size)
fn source(o: u32, k: u32, stride: u32, pad: u32, dil: u32) -> i32 {
    return i32(o * stride + k * dil) - i32(pad);
}

fn x_index(n: u32, c: u32, y: u32, x: u32) -> u32 {
    return ((n * P.c + c) * P.h + y) * P.w + x;
}

fn y_index(n: u32, o: u32, y: u32, x: u32) -> u32 {
    return ((n * P.o + o) * P.oh + y) * P.ow + x;
}

fn w_index(o: u32, cl: u32, ky: u32, kx: u32) -> u32 {
    return ((o * (P.c / P.groups) + cl) * P.kh + ky) * P.kw + kx;
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, groups, lid);
    if (i >= P.count) { return; }
    let ox = i % P.ow;
    let oy = (i / P.ow) % P.oh;
    let o = (i / (P.ow * P.oh)) % P.o;
    let n = i / (P.ow * P.oh * P.o);
    let per_group = P.c / P.groups;
    let c0 = (o / (P.o / P.groups)) * per_group;
    var acc = 0.0;
    for (var cl = 0u; cl < per_group; cl++) {
        for (var ky = 0u; ky < P.kh; ky++) {
            let y = source(oy, ky, P.sh, P.ph, P.dh);
            if (y < 0 || y >= i32(P.h)) { continue; }
            for (var kx = 0u; kx < P.kw; kx++) {
                let x = source(ox, kx, P.sw, P.pw, P.dw);
                if (x < 0 || x >= i32(P.w)) { continue; }
                acc += f32(in0[x_index(n, c0 + cl, u32(y), u32(x))]) * f32(in1[w_index(o, cl, ky, kx)]);
            }
        }
    }
    if (P.has_bias != 0u) {
        acc += f32(bias[o]);
    }
    out[i] = T(acc);
}

@compute @workgroup_size(WG)
fn backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, groups, lid);
    if (i >= P.count) { return; }
    let ix = i % P.w;
    let iy = (i / P.w) % P.h;
    let c = (i / (P.w * P.h)) % P.c;
    let n = i / (P.w * P.h * P.c);
    let per_group = P.c / P.groups;
    let outs = P.o / P.groups;
    let g = c / per_group;
    var acc = 0.0;
    for (var ol = 0u; ol < outs; ol++) {
        let o = g * outs + ol;
        for (var ky = 0u; ky < P.kh; ky++) {
            let ty = i32(iy + P.ph) - i32(ky * P.dh);
            if (ty < 0 || ty % i32(P.sh) != 0 || ty / i32(P.sh) >= i32(P.oh)) { continue; }
            for (var kx = 0u; kx < P.kw; kx++) {
                let tx = i32(ix + P.pw) - i32(kx * P.dw);
                if (tx < 0 || tx % i32(P.sw) != 0 || tx / i32(P.sw) >= i32(P.ow)) { continue; }
                let g_at = y_index(n, o, u32(ty) / P.sh, u32(tx) / P.sw);
                acc += f32(in0[g_at]) * f32(in1[w_index(o, c - g * per_group, ky, kx)]);
            }
        }
    }
    out[i] = T(acc);
}

@compute @workgroup_size(WG)
fn backward_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, groups, lid);
    if (i >= P.count) { return; }
    let per_group = P.c / P.groups;
    let kx = i % P.kw;
    let ky = (i / P.kw) % P.kh;
    let cl = (i / (P.kw * P.kh)) % per_group;
    let o = i / (P.kw * P.kh * per_group);
    let c = (o / (P.o / P.groups)) * per_group + cl;
    var acc = 0.0;
    for (var n = 0u; n < P.n; n++) {
        for (var oy = 0u; oy < P.oh; oy++) {
            let y = source(oy, ky, P.sh, P.ph, P.dh);
            if (y < 0 || y >= i32(P.h)) { continue; }
            for (var ox = 0u; ox < P.ow; ox++) {
                let x = source(ox, kx, P.sw, P.pw, P.dw);
                if (x < 0 || x >= i32(P.w)) { continue; }
                acc += f32(in0[x_index(n, c, u32(y), u32(x))]) * f32(in1[y_index(n, o, oy, ox)]);
            }
        }
    }
    out[i] = T(acc);
}
