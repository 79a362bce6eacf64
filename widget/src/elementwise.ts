// Generated elementwise kernels, mirroring accelerate_lab/hal/wgpu_codegen.py and wgpu_elementwise.py:
// a straight-line program over registers (each of a dtype *class*) filled into elementwise.wgsl's
// BINDINGS and BODY slots, calling only functions of elementwise_ops.wgsl. Operands are strided views
// over one iteration shape; the uniform carries sizes, strides, offsets and scalar bits.
import { BrowserError, GpuRuntime, View, sizeOf } from "./gpu";
import { LIBRARY_OPS, compose, prepare } from "./shaders";

export const MAX_RANK = 8;
const MAX_SCALAR_WORDS = 16;
const SCALAR_BASE = 12;
const UNIFORM_WORDS = 256;
const CLASS_OF: Readonly<Record<string, string>> = {
  float32: "f",
  float16: "h",
  int32: "i",
  uint8: "u",
  bool: "b",
  int64: "l",
  float64: "d",
};
const STORAGE: Readonly<Record<string, string>> = { f: "f32", h: "f16", i: "i32", u: "u32", b: "u32", l: "vec2<u32>", d: "vec2<u32>" };
const COMPARE = new Set(["eq", "ne", "lt", "le", "gt", "ge"]);

interface Reg {
  name: string;
  cls: string;
}

const lib = (cls: string): string => (cls === "h" ? "f" : cls);

export function classOf(dtype: string, f16: boolean): string {
  const cls = CLASS_OF[dtype];
  if (cls === undefined) throw new BrowserError("unsupported", `no dtype ${dtype}`);
  if (cls === "h" && !f16) throw new BrowserError("unsupported", "float16 needs the adapter feature shader-f16");
  return cls;
}

/** Little-endian 32-bit words of a scalar of `cls` (floats as f32 bits, ints two's complement). */
function scalarWords(value: number, cls: string): number[] {
  const view = new DataView(new ArrayBuffer(8));
  if (cls === "f" || cls === "h") {
    view.setFloat32(0, value, true);
    return [view.getInt32(0, true)];
  }
  if (cls === "l") {
    view.setBigInt64(0, BigInt(Math.trunc(value)), true);
    return [view.getInt32(0, true), view.getInt32(4, true)];
  }
  return [value | 0];
}

export class Program {
  readonly operands: View[] = [];
  readonly writes: boolean[] = [];
  readonly scalars: number[] = [];
  readonly lines: string[] = [];
  private readonly loaded = new Map<string, Reg>();

  constructor(
    readonly shape: number[],
    readonly f16: boolean,
  ) {}

  private emit(expr: string, cls: string): Reg {
    const reg = { name: `v${this.lines.length}`, cls };
    this.lines.push(`    let ${reg.name} = ${expr};`);
    return reg;
  }

  private operand(view: View, write: boolean): number {
    this.operands.push(view);
    this.writes.push(write);
    return this.operands.length - 1;
  }

  /** Read a view already broadcast to the program's shape; the same view is read once. */
  load(view: View): Reg {
    const key = JSON.stringify([view.id, view.offset, view.strides, view.dtype]);
    let reg = this.loaded.get(key);
    if (!reg) {
      const cls = classOf(view.dtype, this.f16);
      const k = this.operand(view, false);
      const expr = `op${k}[offset_of(i, ${k}u)]`;
      reg = this.emit(cls === "h" ? `f32(${expr})` : expr, cls);
      this.loaded.set(key, reg);
    }
    return reg;
  }

  /** A constant of `dtype`, passed as uniform words. */
  scalar(value: number, dtype: string): Reg {
    const cls = classOf(dtype, this.f16);
    const at = SCALAR_BASE + this.scalars.length;
    this.scalars.push(...scalarWords(value, cls));
    if (this.scalars.length > MAX_SCALAR_WORDS) {
      throw new BrowserError("unsupported", `more than ${MAX_SCALAR_WORDS} scalar words in one kernel`);
    }
    if (cls === "f" || cls === "h") return this.emit(`bitcast<f32>(word(${at}u))`, cls);
    if (cls === "l") {
      return this.emit(`vec2<u32>(bitcast<u32>(word(${at}u)), bitcast<u32>(word(${at + 1}u)))`, cls);
    }
    return this.emit(cls === "i" ? `word(${at}u)` : `bitcast<u32>(word(${at}u))`, cls);
  }

  /** numpy's astype between classes (float16 rounds, uint8 wraps). */
  convert(reg: Reg, to: string): Reg {
    if (reg.cls === to || (reg.cls === "h" && to === "f")) return reg;
    const src = lib(reg.cls);
    const dst = lib(to);
    let expr = reg.name;
    if (src !== dst) {
      if (!LIBRARY_OPS.has(`${dst}_from_${src}`)) {
        throw new BrowserError("unsupported", `no conversion from class ${reg.cls} to ${to}`);
      }
      expr = `${dst}_from_${src}(${expr})`;
    }
    return this.emit(to === "h" ? `round_h(${expr})` : expr, to);
  }

  /** `<class>_<op>(args)` with the arguments converted to `cls` (a `where` condition to bool). */
  apply(op: string, cls: string, args: Reg[]): Reg {
    if (!LIBRARY_OPS.has(`${lib(cls)}_${op}`)) throw new BrowserError("unsupported", `no ${op} for class ${cls}`);
    const converted =
      op === "where"
        ? [this.convert(args[0], "b"), ...args.slice(1).map((a) => this.convert(a, cls))]
        : args.map((a) => this.convert(a, cls));
    const expr = `${lib(cls)}_${op}(${converted.map((a) => a.name).join(", ")})`;
    if (COMPARE.has(op)) return this.emit(expr, "b");
    return this.emit(cls === "h" && op !== "where" ? `round_h(${expr})` : expr, cls);
  }

  /** Write `reg`, converted to the view's dtype, through the view's strides. */
  store(view: View, reg: Reg): void {
    const cls = classOf(view.dtype, this.f16);
    const value = this.convert(reg, cls);
    const k = this.operand(view, true);
    this.lines.push(`    op${k}[offset_of(i, ${k}u)] = ${cls === "h" ? `f16(${value.name})` : value.name};`);
  }

  private get usesF16(): boolean {
    return this.operands.some((v) => CLASS_OF[v.dtype] === "h") || this.lines.some((l) => l.includes("round_h("));
  }

  source(): string {
    const flags = this.usesF16 ? ["F16"] : [];
    const bindings = this.operands
      .map(
        (v, k) =>
          `@group(0) @binding(${k + 1}) var<storage, ${this.writes[k] ? "read_write" : "read"}> op${k}: ` +
          `array<${STORAGE[classOf(v.dtype, this.f16)]}>;`,
      )
      .join("\n");
    const template = prepare("elementwise", { flags, slots: { BINDINGS: bindings, BODY: this.lines.join("\n") } });
    return compose(template, prepare("elementwise_ops", { flags }));
  }
}

/** Drop size-1 axes and merge neighbours that are contiguous in every operand. */
export function collapse(shape: readonly number[], strides: readonly (readonly number[])[]): [number[], number[][]] {
  const keep = shape.map((_, d) => d).filter((d) => shape[d] !== 1);
  const dims = keep.map((d) => shape[d]);
  const out = strides.map((s) => keep.map((d) => s[d]));
  for (let d = dims.length - 1; d > 0; d--) {
    if (out.every((s) => s[d - 1] === s[d] * dims[d])) {
      dims[d - 1] *= dims[d];
      dims.splice(d, 1);
      for (const s of out) {
        s[d - 1] = s[d];
        s.splice(d, 1);
      }
    }
  }
  if (!dims.length) return [[1], strides.map(() => [0])];
  return [dims, out];
}

/** Dispatch a program over its shape (whole buffers bound; offsets travel in the uniform). */
export function runProgram(gpu: GpuRuntime, program: Program): void {
  const count = sizeOf(program.shape);
  if (count === 0) return;
  const [dims, strides] = collapse(program.shape, program.operands.map((v) => v.strides));
  if (dims.length > MAX_RANK) throw new BrowserError("unsupported", `more than ${MAX_RANK} non-mergeable axes`);
  const layout = ["uniform" as const, ...program.writes.map((w) => (w ? ("write" as const) : ("read" as const)))];
  const wg = gpu.workgroup;
  const pipeline = gpu.pipeline(program.source(), layout, { WG: wg, LINEAR: dims.length === 1 ? 1 : 0 });
  const words = new Int32Array(UNIFORM_WORDS);
  words.set([count, dims.length, 0, 0]);
  words.set([...dims, ...new Array<number>(MAX_RANK - dims.length).fill(1)], 4);
  words.set(program.scalars, SCALAR_BASE);
  program.operands.forEach((view, k) => words.set([view.offset, ...strides[k]], 28 + 9 * k));
  const buffers = program.operands.map((v) => gpu.storage(v.id).buffer);
  gpu.dispatch(pipeline, words.buffer, buffers, Math.ceil(count / wg));
}

/** Copy (and convert) `source` into `target`, both views of the same shape. */
export function copyInto(gpu: GpuRuntime, source: View, target: View): void {
  const program = new Program(target.shape, gpu.f16);
  program.store(target, program.load(source));
  runProgram(gpu, program);
}
