// The WGSL kernels of shaders/ (imported as text by esbuild: the same files the native wgpu device
// runs) and the fixed text rewrites both hosts apply to them (accelerate_lab/hal/wgpu_shaders.py):
// `//#if FLAG` / `//#else` / `//#endif` blocks, `alias NAME = type;` lines, `//{{SLOT}}` lines,
// and composing several prepared files with `enable` directives hoisted to the top.
import attention from "../../shaders/attention.wgsl";
import attentionRows from "../../shaders/attention_rows.wgsl";
import conv from "../../shaders/conv.wgsl";
import elementwise from "../../shaders/elementwise.wgsl";
import elementwiseOps from "../../shaders/elementwise_ops.wgsl";
import gather from "../../shaders/gather.wgsl";
import matmul from "../../shaders/matmul.wgsl";
import matmulBindings from "../../shaders/matmul_bindings.wgsl";
import matmulBlocks from "../../shaders/matmul_blocks.wgsl";
import quantGguf from "../../shaders/quant_gguf.wgsl";
import rows from "../../shaders/rows.wgsl";
import workgroupReduce from "../../shaders/workgroup_reduce.wgsl";

export const SHADERS = {
  attention,
  attention_rows: attentionRows,
  conv,
  elementwise,
  elementwise_ops: elementwiseOps,
  gather,
  matmul,
  matmul_bindings: matmulBindings,
  matmul_blocks: matmulBlocks,
  quant_gguf: quantGguf,
  rows,
  workgroup_reduce: workgroupReduce,
} as const;

export type ShaderName = keyof typeof SHADERS;

const STORAGE_TYPES = new Set(["f32", "f16", "i32", "u32", "vec2<u32>"]);
const ALIAS = /^alias (\w+) = [\w<>]+;$/;

export interface Preparation {
  flags?: readonly string[];
  aliases?: Readonly<Record<string, string>>;
  slots?: Readonly<Record<string, string>>;
}

function selectBlocks(lines: readonly string[], flags: ReadonlySet<string>): string[] {
  const out: string[] = [];
  const stack: boolean[] = [];
  for (const line of lines) {
    const stripped = line.trim();
    if (stripped.startsWith("//#if ")) {
      stack.push(flags.has(stripped.slice(6).trim()));
    } else if (stripped === "//#else") {
      stack[stack.length - 1] = !stack[stack.length - 1];
    } else if (stripped === "//#endif") {
      stack.pop();
    } else if (stack.every(Boolean)) {
      out.push(line);
    }
  }
  if (stack.length) throw new Error("unbalanced //#if in a shader");
  return out;
}

/** One shader file with the rewrites applied. */
export function prepare(name: ShaderName, prep: Preparation = {}): string {
  const aliases = prep.aliases ?? {};
  const slots = prep.slots ?? {};
  for (const [alias, type] of Object.entries(aliases)) {
    if (!STORAGE_TYPES.has(type)) throw new Error(`alias ${alias} = ${type}: not a storage type`);
  }
  const out: string[] = [];
  for (let line of selectBlocks(SHADERS[name].split("\n"), new Set(prep.flags ?? []))) {
    const stripped = line.trim();
    const match = ALIAS.exec(stripped);
    if (match && match[1] in aliases) line = `alias ${match[1]} = ${aliases[match[1]]};`;
    if (stripped.startsWith("//{{") && stripped.endsWith("}}")) {
      const slot = slots[stripped.slice(4, -2)];
      if (slot === undefined) throw new Error(`shader ${name}: slot ${stripped} not filled`);
      line = slot;
    }
    out.push(line);
  }
  return out.join("\n") + "\n";
}

/** Concatenate prepared sources, hoisting `enable` directives (WGSL wants them first). */
export function compose(...sources: string[]): string {
  const directives: string[] = [];
  const body: string[] = [];
  for (const source of sources) {
    for (const line of source.split("\n")) {
      if (line.startsWith("enable ")) {
        if (!directives.includes(line)) directives.push(line);
      } else {
        body.push(line);
      }
    }
  }
  return [...directives, ...body].join("\n") + "\n";
}

/** The `(class, op)` pairs elementwise_ops.wgsl defines, as "f_exp", "i_from_f", ... */
export const LIBRARY_OPS: ReadonlySet<string> = new Set(
  [...elementwiseOps.matchAll(/^fn ([fiubl]_\w+)\(/gm)].map((m) => m[1]),
);
