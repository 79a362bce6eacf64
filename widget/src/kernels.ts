// The kernel catalogue of the browser device (names and inputs as accelerate_lab/hal/kernels.py),
// each bound and dispatched as the native wgpu device does it: the WGSL header comments of shaders/
// are the contract (bindings, uniform layout, override constants, entry points). The kernel side
// sends views already broadcast/permuted and the output's shape and dtype; here every input that a
// shader reads as a dense array is made dense first (an elementwise copy into a scratch buffer).
// Float tensors are float32, or float16 where the adapter has shader-f16: then the shaders are prepared
// with their F16 flag and f16 type aliases, as wgpu_kernels.py does (`floatType`).
import { Program, classOf, copyInto, runProgram } from "./elementwise";
import { BrowserError, GpuRuntime, LayoutKind, STORAGE_BYTES, View, isDense, rowMajor, sizeOf } from "./gpu";
import { compose, prepare } from "./shaders";

export interface Scalar {
  scalar: number;
  dtype: string;
}

export type Input = View | Scalar | null;

export interface RunCommand {
  op: "run";
  kernel: string;
  out: View;
  inputs: Input[];
  params: Record<string, unknown>;
  compute: string | null;
}

const isScalar = (x: Input): x is Scalar => x !== null && "scalar" in x;

function view(x: Input, what: string): View {
  if (x === null || isScalar(x)) throw new BrowserError("js", `${what} must be a tensor`);
  return x;
}

function param<T>(cmd: RunCommand, name: string): T {
  if (!(name in cmd.params)) throw new BrowserError("js", `kernel ${cmd.kernel} needs the parameter ${name}`);
  return cmd.params[name] as T;
}

/** Scratch storages live for one command: a negative id, freed (after submission) when it ends. */
class Scratch {
  private static next = -1;
  private readonly ids: number[] = [];

  constructor(private readonly gpu: GpuRuntime) {}

  /** A new dense buffer of `shape` and `dtype`. */
  alloc(shape: number[], dtype: string): View {
    const id = Scratch.next--;
    this.gpu.create(id, sizeOf(shape) * STORAGE_BYTES[dtype]);
    this.ids.push(id);
    return { id, shape, strides: rowMajor(shape), offset: 0, dtype };
  }

  /** A dense, offset-free copy of `v` (or `v` itself when it already is one), as `dtype`. */
  dense(v: View, dtype = v.dtype, allowOffset = false): View {
    if (v.dtype === dtype && isDense(v) && (allowOffset || v.offset === 0)) return v;
    const out = this.alloc(v.shape, dtype);
    copyInto(this.gpu, v, out);
    return out;
  }

  release(): void {
    this.ids.forEach((id) => this.gpu.free(id));
  }
}

function uniformWords(values: readonly number[], floats: ReadonlySet<number> = new Set()): ArrayBuffer {
  const bytes = new ArrayBuffer(Math.ceil((values.length * 4) / 16) * 16);
  const dv = new DataView(bytes);
  values.forEach((v, i) => (floats.has(i) ? dv.setFloat32(4 * i, v, true) : dv.setUint32(4 * i, v >>> 0, true)));
  return bytes;
}

function f32Only(cmd: RunCommand, views: readonly View[]): void {
  for (const v of views) {
    if (v.dtype !== "float32") throw new BrowserError("unsupported", `${cmd.kernel} runs on float32 here, not ${v.dtype}`);
  }
}

/** The WGSL storage type of a kernel's float tensors and the shader flags it needs: float32, or float16
 * (flag F16) where the adapter has shader-f16, all of one dtype (as wgpu_kernels.py's float_type). */
interface FloatType {
  wgsl: "f32" | "f16";
  flags: string[];
}

const FLOAT_TYPES: Readonly<Record<string, "f32" | "f16">> = { float32: "f32", float16: "f16" };

function floatType(gpu: GpuRuntime, cmd: RunCommand, views: readonly View[]): FloatType {
  const dtypes = [...new Set(views.map((v) => v.dtype))];
  const wgsl = FLOAT_TYPES[dtypes[0]];
  if (dtypes.length !== 1 || wgsl === undefined) {
    throw new BrowserError("unsupported", `${cmd.kernel} runs on float32 or float16 tensors of one dtype, not ${dtypes.join(" and ")}`);
  }
  if (wgsl === "f16" && !gpu.f16) throw new BrowserError("unsupported", `${cmd.kernel} on float16 needs the adapter feature shader-f16`);
  return { wgsl, flags: wgsl === "f16" ? ["F16"] : [] };
}

// ---- elementwise ---------------------------------------------------------------------------------
function elementwise(gpu: GpuRuntime, cmd: RunCommand): void {
  const program = new Program(cmd.out.shape, gpu.f16);
  const compute = cmd.compute ?? cmd.out.dtype;
  const regs = cmd.inputs.map((x) => (isScalar(x) ? program.scalar(x.scalar, x.dtype) : program.load(view(x, "input"))));
  if (cmd.kernel === "copy" || cmd.kernel === "cast") {
    program.store(cmd.out, regs[0]);
  } else {
    const op = cmd.kernel === "gelu" && cmd.params.approximate === "tanh" ? "gelu_tanh" : cmd.kernel;
    program.store(cmd.out, program.apply(op, classOf(compute, gpu.f16), regs));
  }
  runProgram(gpu, program);
}

// ---- matmul (matmul.wgsl) ------------------------------------------------------------------------
function matmul(gpu: GpuRuntime, cmd: RunCommand): void {
  const a = view(cmd.inputs[0], "a");
  const b = view(cmd.inputs[1], "b");
  const type = floatType(gpu, cmd, [a, b, cmd.out]);
  // a: (outer, inner, M, K), b: (outer, inner, K, N): the kernel side pads batch axes to two
  const bWords = [b.offset, b.strides[2], b.strides[3], b.strides[0], b.strides[1]];
  dispatchMatmul(gpu, cmd, type, a, bWords, b.shape[3], [gpu.storage(b.id).buffer], null);
}

// ---- matmul_q8 (matmul.wgsl with its Q8 flag): int8 weights, dequantized inside the product --------
// x and the output float32 or float16; the scales and the bias float32
function matmulQ8(gpu: GpuRuntime, cmd: RunCommand, scratch: Scratch): void {
  const x = view(cmd.inputs[0], "x");
  const weight = scratch.dense(view(cmd.inputs[1], "weight"), "int32", true);
  const [scale, xScale] = [2, 3].map((i) => scratch.dense(view(cmd.inputs[i], "scales")));
  const bias = cmd.inputs[4] ? scratch.dense(view(cmd.inputs[4], "bias")) : null;
  const type = floatType(gpu, cmd, [x, cmd.out]);
  f32Only(cmd, [scale, xScale, ...(bias ? [bias] : [])]);
  // x (M, K) as a (1, 1, M, K) batch; the packed (N, ceil(K / 4)) bytes are B (K, N) with byte strides
  const a = { ...x, shape: [1, 1, ...x.shape], strides: [0, 0, ...x.strides] };
  const bWords = [4 * weight.offset, 1, 4 * weight.shape[1], 0, 0];
  const vectors = [weight, xScale, scale, bias ?? scale].map((v) => gpu.storage(v.id).buffer);
  dispatchMatmul(gpu, cmd, type, a, bWords, weight.shape[0], vectors, bias !== null);
}

// ---- matmul_q4_1 / matmul_q8_0 (quant_gguf.wgsl): GGUF's blocks, read packed ------------------------
function matmulGguf(gpu: GpuRuntime, cmd: RunCommand, scratch: Scratch): void {
  f32Only(cmd, [view(cmd.inputs[0], "x")]);
  const x = scratch.dense(view(cmd.inputs[0], "x"), "float32", true);
  const weight = scratch.dense(view(cmd.inputs[1], "weight"), "int32");
  const [m, k] = x.shape;
  const groups = Math.ceil(m / 4);
  const words = [m, weight.shape[0], k, weight.shape[1], x.offset, groups, 0, weight.shape[0]];
  const source = prepare("quant_gguf", { flags: cmd.kernel === "matmul_q8_0" ? ["Q8_0"] : [] });
  const lanes = gpu.isSoftware ? 1 : 32; // threads per column, as wgpu_kernels.py's matmul_gguf
  const pipeline = gpu.pipeline(source, ["uniform", "read", "read", "write"], { WG: gpu.workgroup, LANES: lanes });
  const buffers = [x, weight, cmd.out].map((v) => gpu.storage(v.id).buffer);
  gpu.dispatch(pipeline, uniformWords(words), buffers, Math.ceil(weight.shape[0] / (gpu.workgroup / lanes)) * groups);
}

/** One matmul.wgsl dispatch (as wgpu_kernels.py's _dispatch_matmul): `a` (outer, inner, M, K), B's
 * buffers (B, or with Q8 the packed bytes, input and output scales, bias) and its five uniform words;
 * A, B (unless packed) and C are of `type` (flag F16 for float16, as native's).
 * A software adapter runs matmul_blocks.wgsl instead (same words and bindings, no workgroup memory or
 * barriers: 2-3x faster there). */
function dispatchMatmul(
  gpu: GpuRuntime,
  cmd: RunCommand,
  type: FloatType,
  a: View,
  bWords: readonly number[],
  n: number,
  bBuffers: readonly GPUBuffer[],
  q8Bias: boolean | null,
): void {
  const [outer, inner, m, k] = a.shape;
  const [ts, r, bk] = [16, 8, 8];
  const tile = gpu.isSoftware ? 8 : ts * r;
  const tilesN = Math.ceil(n / tile);
  const tilesM = Math.ceil(m / tile);
  const words = new Array<number>(64).fill(0);
  words.splice(0, 11, m, n, k, tilesN, tilesM, inner, a.offset, a.strides[2], a.strides[3], a.strides[0], a.strides[1]);
  words.splice(28, 5, ...bWords);
  words[33] = n; // C's row stride (dense from element 0: word [11] stays 0)
  words[34] = outer * inner;
  words[35] = q8Bias ? 1 : 0;
  const layout: LayoutKind[] = ["uniform", "read", "read", "write", ...bBuffers.slice(1).map((): LayoutKind => "read")];
  const buffers = [gpu.storage(a.id).buffer, bBuffers[0], gpu.storage(cmd.out.id).buffer, ...bBuffers.slice(1)];
  const count = outer * inner * tilesN * tilesM;
  const flags = [...type.flags, ...(q8Bias === null ? [] : ["Q8"])];
  const aliases = { IN: type.wgsl, OUT: type.wgsl };
  const bindings = prepare("matmul_bindings", { flags }); // the declarations both kernels share
  if (gpu.isSoftware) {
    const pipeline = gpu.pipeline(compose(prepare("matmul_blocks", { flags, aliases }), bindings), layout, { WG: gpu.workgroup });
    gpu.dispatch(pipeline, uniformWords(words), buffers, Math.ceil(count / gpu.workgroup));
    return;
  }
  const source = compose(
    prepare("matmul", { flags, aliases, slots: { BINDINGS: "", EPILOGUE: "    return x;" } }),
    bindings,
    prepare("elementwise_ops", { flags }),
  );
  gpu.dispatch(gpu.pipeline(source, layout, { TS: ts, R: r, BK: bk }), uniformWords(words), buffers, count);
}

// ---- rows.wgsl: reductions over trailing axes, softmax / log_softmax / layer_norm over the last ----
const REDUCE_OP: Readonly<Record<string, number>> = { sum: 0, mean: 1, max: 2, min: 3, var: 4, argmax: 5 };
const NORMALIZE_OP: Readonly<Record<string, number>> = { softmax: 0, log_softmax: 1, layer_norm: 2 };

// Threads per row on software adapters: they run a workgroup four lanes at a time and switch between
// those groups at every barrier, so a 64-thread reduction costs ~20x a 16-thread one there.
const SOFTWARE_ROW_WG = 16;

function rows(gpu: GpuRuntime, cmd: RunCommand, scratch: Scratch): void {
  const reduce = cmd.kernel in REDUCE_OP;
  const x = scratch.dense(view(cmd.inputs[0], "x"), view(cmd.inputs[0], "x").dtype, true);
  const type = floatType(gpu, cmd, [x]);
  const trailing = reduce ? param<number>(cmd, "reduce_axes") : 1;
  const n = sizeOf(x.shape.slice(x.shape.length - trailing));
  const count = sizeOf(x.shape) / Math.max(n, 1);
  // layer_norm's weight and bias as x's dtype (rows.wgsl reads them as IN)
  const weight = cmd.inputs[1] ? scratch.dense(view(cmd.inputs[1], "weight"), x.dtype, true) : null;
  const bias = cmd.inputs[2] ? scratch.dense(view(cmd.inputs[2], "bias"), x.dtype, true) : null;
  const extra = cmd.kernel === "var" ? param<number>(cmd, "correction") : cmd.kernel === "layer_norm" ? param<number>(cmd, "eps") : 0;
  const uniform = uniformWords(
    [count, n, x.offset, weight?.offset ?? 0, bias?.offset ?? 0, weight ? 1 : 0, bias ? 1 : 0, extra],
    new Set([7]),
  );
  const out = cmd.kernel === "argmax" ? "u32" : type.wgsl;
  const source = compose(
    prepare("rows", { flags: type.flags, aliases: { IN: type.wgsl, OUT: out } }),
    prepare("elementwise_ops", { flags: type.flags }),
    prepare("workgroup_reduce", { flags: [...type.flags, ...gpu.reduceFlags] }),
  );
  const entry = reduce ? "reduce" : "normalize";
  const op = reduce ? REDUCE_OP[cmd.kernel] : NORMALIZE_OP[cmd.kernel];
  const layout: ("uniform" | "read" | "write")[] = ["uniform", "read", "write"];
  const buffers = [gpu.storage(x.id).buffer, gpu.storage(cmd.out.id).buffer];
  if (!reduce) {
    // normalize binds weight and bias always (the layout is the entry's); absent ones read nothing
    layout.push("read", "read");
    buffers.push(weight ? gpu.storage(weight.id).buffer : buffers[0], bias ? gpu.storage(bias.id).buffer : buffers[0]);
  }
  const pipeline = gpu.pipeline(source, layout, { WG: gpu.isSoftware ? SOFTWARE_ROW_WG : gpu.workgroup, OP: op }, entry);
  gpu.dispatch(pipeline, uniform, buffers, count);
}

// ---- gather.wgsl: embedding and its gradient ------------------------------------------------------
function gather(gpu: GpuRuntime, cmd: RunCommand, scratch: Scratch, errorFlags: GPUBuffer[]): void {
  const ids = scratch.dense(view(cmd.inputs[0], "ids"), view(cmd.inputs[0], "ids").dtype, true);
  const src = scratch.dense(view(cmd.inputs[1], "table"), view(cmd.inputs[1], "table").dtype, true);
  const type = floatType(gpu, cmd, [src, cmd.out]);
  if (!["int32", "uint8", "int64"].includes(ids.dtype)) {
    throw new BrowserError("unsupported", `embedding ids must be integers, not ${ids.dtype}`);
  }
  const dim = src.shape[src.shape.length - 1];
  const nIds = sizeOf(ids.shape);
  const backward = cmd.kernel === "embedding_backward";
  const rowsCount = backward ? param<number>(cmd, "num_embeddings") : src.shape[0];
  const idWords = ids.dtype === "int64" ? 2 : 1;
  const count = sizeOf(cmd.out.shape);
  const uniform = uniformWords([count, dim, rowsCount, nIds, idWords, ids.dtype === "int32" ? 1 : 0, ids.offset * idWords, src.offset]);
  const source = compose(prepare("gather", { flags: type.flags, aliases: { T: type.wgsl } }));
  // read after the batch, then destroyed by the batch runner (not a scratch buffer: those go at submit)
  const flag = gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  errorFlags.push(flag);
  const pipeline = gpu.pipeline(source, ["uniform", "read", "read", "write", "write"], { WG: gpu.workgroup }, backward ? "scatter" : "gather");
  const buffers = [gpu.storage(ids.id).buffer, gpu.storage(src.id).buffer, gpu.storage(cmd.out.id).buffer, flag];
  gpu.dispatch(pipeline, uniform, buffers, Math.ceil(count / gpu.workgroup));
}

// ---- conv.wgsl: 1-D and 2-D convolution and its gradients ------------------------------------------
function conv(gpu: GpuRuntime, cmd: RunCommand, scratch: Scratch): void {
  const in0 = scratch.dense(view(cmd.inputs[0], "input 0"));
  const in1 = scratch.dense(view(cmd.inputs[1], "input 1"));
  const bias = cmd.inputs[2] ? scratch.dense(view(cmd.inputs[2], "bias")) : null;
  const type = floatType(gpu, cmd, [in0, in1, cmd.out, ...(bias ? [bias] : [])]);
  const pad2 = (t: number[]): number[] => (t.length === 1 ? [1, t[0]] : t);
  const pad0 = (t: number[]): number[] => (t.length === 1 ? [0, t[0]] : t);
  const spatial = (s: number[]): number[] => (s.length === 3 ? [s[0], s[1], 1, s[2]] : s);
  const entry = { conv: "forward", conv_backward_input: "backward_input", conv_backward_weight: "backward_weight" }[cmd.kernel];
  if (entry === undefined) throw new BrowserError("js", `not a conv kernel: ${cmd.kernel}`);
  // x: forward and backward_weight read it as in0; backward_input writes it
  const xShape = spatial(cmd.kernel === "conv_backward_input" ? cmd.out.shape : in0.shape);
  const wShape = spatial(cmd.kernel === "conv" ? in1.shape : cmd.kernel === "conv_backward_input" ? in1.shape : cmd.out.shape);
  const yShape = spatial(cmd.kernel === "conv" ? cmd.out.shape : cmd.kernel === "conv_backward_input" ? in0.shape : in1.shape);
  const stride = pad2(param<number[]>(cmd, "stride"));
  const padding = pad0(param<number[]>(cmd, "padding"));
  const dilation = pad2(param<number[]>(cmd, "dilation"));
  const count = sizeOf(cmd.out.shape);
  const uniform = uniformWords([
    count, xShape[0], xShape[1], xShape[2], xShape[3], wShape[0], yShape[2], yShape[3],
    wShape[2], wShape[3], param<number>(cmd, "groups"), bias ? 1 : 0,
    stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1],
  ]);
  const forward = cmd.kernel === "conv";
  const layout: ("uniform" | "read" | "write")[] = forward ? ["uniform", "read", "read", "write", "read"] : ["uniform", "read", "read", "write"];
  const buffers = [gpu.storage(in0.id).buffer, gpu.storage(in1.id).buffer, gpu.storage(cmd.out.id).buffer];
  if (forward) buffers.push(bias ? gpu.storage(bias.id).buffer : buffers[0]);
  const pipeline = gpu.pipeline(compose(prepare("conv", { flags: type.flags, aliases: { T: type.wgsl } })), layout, { WG: gpu.workgroup }, entry);
  gpu.dispatch(pipeline, uniform, buffers, Math.ceil(count / gpu.workgroup));
}

// ---- attention.wgsl / attention_rows.wgsl: fused scaled-dot-product attention -------------------
// q (b0, b1, L, E), k (b0, b1, S, E), v (b0, b1, S, Ev) and the mask (b0, b1, L, S): strided views
// (the kernel side merges the batch axes into two)
function attention(gpu: GpuRuntime, cmd: RunCommand, scratch: Scratch): void {
  const qkv = [0, 1, 2].map((i) => view(cmd.inputs[i], "q, k and v"));
  const type = floatType(gpu, cmd, [...qkv, cmd.out]);
  if (qkv[0].shape[3] > 512 || qkv[2].shape[3] > 512) throw new BrowserError("unsupported", "attention head sizes above 512");
  const mask = cmd.inputs[3] ? view(cmd.inputs[3], "mask") : null;
  if (gpu.isSoftware) attentionRows(gpu, cmd, scratch, type, qkv, mask);
  else attentionCooperative(gpu, cmd, scratch, type, qkv, mask);
}

/** attention_rows.wgsl (software adapters): one invocation per query row, reading the views in place
 * (a bool mask as its 0/1 words, a float32 one as its bits; a float16 mask goes dense as float32). */
function attentionRows(gpu: GpuRuntime, cmd: RunCommand, scratch: Scratch, type: FloatType, [q, k, v]: View[], mask: View | null): void {
  const [, b1, l, e] = q.shape;
  const rowsCount = sizeOf(q.shape) / e;
  const kind = mask === null ? 0 : mask.dtype === "bool" ? 2 : 1;
  const bits = mask !== null && kind === 1 && mask.dtype !== "float32" ? scratch.dense(mask, "float32") : mask;
  const m = bits ?? { ...q, offset: 0, strides: [0, 0, 0, 0] }; // bound, never read
  const words = [rowsCount, b1, l, k.shape[2], e, v.shape[3], cmd.params.is_causal ? 1 : 0, kind, param<number>(cmd, "scale")];
  words.push(q.offset, k.offset, v.offset, m.offset, 0, 0, 0, ...q.strides, ...k.strides, ...v.strides, ...m.strides);
  const source = compose(
    prepare("attention_rows", { flags: type.flags, aliases: { T: type.wgsl } }),
    prepare("elementwise_ops", { flags: type.flags }),
  );
  const pipeline = gpu.pipeline(source, ["uniform", "read", "read", "read", "read", "write"], { WG: gpu.workgroup });
  const buffers = [q, k, v, m, cmd.out].map((x) => gpu.storage(x.id).buffer);
  gpu.dispatch(pipeline, uniformWords(words, new Set([8])), buffers, Math.ceil(rowsCount / gpu.workgroup));
}

/** attention.wgsl: a workgroup per query row, on dense copies and an additive float32 mask. */
function attentionCooperative(gpu: GpuRuntime, cmd: RunCommand, scratch: Scratch, type: FloatType, qkv: View[], maskView: View | null): void {
  const [q, k, v] = qkv.map((x) => scratch.dense(x));
  const [, , l, e] = q.shape;
  const [s, ev] = [k.shape[2], v.shape[3]];
  const rowsCount = sizeOf(q.shape) / e;
  let mask = q;
  if (maskView) {
    if (maskView.dtype === "bool") {
      // a boolean mask keeps True entries: additive 0 there, -inf elsewhere
      mask = scratch.alloc(maskView.shape, "float32");
      const program = new Program(maskView.shape, gpu.f16);
      const keep = program.scalar(0, "float32");
      const drop = program.scalar(-Infinity, "float32");
      program.store(mask, program.apply("where", "f", [program.load(maskView), keep, drop]));
      runProgram(gpu, program);
    } else {
      mask = scratch.dense(maskView, "float32");
    }
  }
  const scale = param<number>(cmd, "scale");
  const uniform = uniformWords([rowsCount, l, s, e, ev, cmd.params.is_causal ? 1 : 0, maskView ? 1 : 0, scale], new Set([7]));
  const source = compose(
    prepare("attention", { flags: type.flags, aliases: { T: type.wgsl } }),
    prepare("elementwise_ops", { flags: type.flags }),
    prepare("workgroup_reduce", { flags: [...type.flags, ...gpu.reduceFlags] }),
  );
  const pipeline = gpu.pipeline(source, ["uniform", "read", "read", "read", "read", "write"], { WG: gpu.workgroup });
  const buffers = [q, k, v, mask, cmd.out].map((x) => gpu.storage(x.id).buffer);
  gpu.dispatch(pipeline, uniform, buffers, rowsCount);
}

const ELEMENTWISE = new Set(
  "neg exp log sqrt abs sign erf relu sigmoid tanh silu gelu cast add sub mul div pow maximum minimum eq ne lt le gt ge where copy".split(" "),
);

/** Run one kernel command; `errorFlags` collects buffers whose first word says an index was out of range. */
export function runKernel(gpu: GpuRuntime, cmd: RunCommand, errorFlags: GPUBuffer[]): void {
  const scratch = new Scratch(gpu);
  try {
    if (ELEMENTWISE.has(cmd.kernel)) elementwise(gpu, cmd);
    else if (cmd.kernel === "matmul") matmul(gpu, cmd);
    else if (cmd.kernel === "matmul_q8") matmulQ8(gpu, cmd, scratch);
    else if (cmd.kernel === "matmul_q4_1" || cmd.kernel === "matmul_q8_0") matmulGguf(gpu, cmd, scratch);
    else if (cmd.kernel in REDUCE_OP || cmd.kernel in NORMALIZE_OP) rows(gpu, cmd, scratch);
    else if (cmd.kernel === "embedding" || cmd.kernel === "embedding_backward") gather(gpu, cmd, scratch, errorFlags);
    else if (cmd.kernel.startsWith("conv")) conv(gpu, cmd, scratch);
    else if (cmd.kernel === "sdpa") attention(gpu, cmd, scratch);
    else throw new BrowserError("unsupported", `the browser device has no kernel ${cmd.kernel}`);
  } finally {
    scratch.release();
  }
}
