// Graphs of the `browser:webnn` device: the kernel (accelerate_lab/hal/browser_webnn_lower.py) sends
// a graph as the list of MLGraphBuilder calls to make; this module replays them and keeps every
// built MLGraph by the kernel's key (the op sequence, shapes and constants), so a sequence seen
// before is dispatched without building again.
//
// Operands are numbered: the graph's inputs first (flat tensors of `count` elements), then one per
// node. A node is `{op, args}` (a builder method and its arguments, where `{"$": k}` stands for
// operand k, also inside option dictionaries) or a constant `{op: "constant", dataType, shape, values}`.
import { BrowserError } from "./gpu";
import { MLContext, MLGraph, MLOperand, graphBuilder } from "./webnn";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface GraphInput {
  id: number;
  dataType: string;
  count: number;
}

export interface GraphOutput extends GraphInput {
  operand: number;
}

interface ConstantNode {
  op: "constant";
  dataType: string;
  shape: number[];
  values: (number | string)[];
}

interface CallNode {
  op: string;
  args: Json[];
}

export type GraphNode = ConstantNode | CallNode;

export interface GraphCommand {
  op: "graph";
  key: string;
  inputs: GraphInput[];
  outputs: GraphOutput[];
  nodes: GraphNode[];
}

// the builder methods the kernel may call (anything else is refused, never looked up blindly)
const METHODS = new Set(
  (
    "abs add argMax cast concat conv2d div equal erf exp expand gelu greater greaterOrEqual identity " +
    "layerNormalization lesser lesserOrEqual log matmul max min mul neg notEqual pow reduceMax reduceMean " +
    "reduceMin reduceSum relu reshape reverse sigmoid sign slice softmax sqrt sub tanh transpose triangular where"
  ).split(" "),
);

const NON_FINITE: Readonly<Record<string, number>> = { inf: Infinity, "-inf": -Infinity, nan: NaN };

function constantData(node: ConstantNode): ArrayBufferView<ArrayBuffer> {
  const values = node.values.map((v) => (typeof v === "string" ? NON_FINITE[v] : v));
  switch (node.dataType) {
    case "float32":
      return new Float32Array(values);
    case "int32":
      return new Int32Array(values);
    case "int64":
      return new BigInt64Array(values.map((v) => BigInt(v)));
    case "uint8":
      return new Uint8Array(values);
    default:
      throw new BrowserError("unsupported", `no WebNN constants of ${node.dataType} here`);
  }
}

function resolve(arg: Json, operands: readonly MLOperand[]): unknown {
  if (Array.isArray(arg)) return arg.map((a) => resolve(a, operands));
  if (arg === null || typeof arg !== "object") return arg;
  const ref = arg["$"];
  if (typeof ref === "number") {
    const found = operands[ref];
    if (!found) throw new BrowserError("js", `WebNN graph: operand ${ref} is not defined yet`);
    return found;
  }
  return Object.fromEntries(Object.entries(arg).map(([k, v]) => [k, resolve(v, operands)]));
}

async function build(context: MLContext, command: GraphCommand): Promise<MLGraph> {
  const builder = graphBuilder(context);
  const methods = builder as unknown as Record<string, unknown>;
  const operands: MLOperand[] = command.inputs.map((input, i) =>
    builder.input(`in${i}`, { dataType: input.dataType, shape: [input.count] }),
  );
  for (const node of command.nodes) {
    if (node.op === "constant") {
      const constant = node as ConstantNode;
      operands.push(builder.constant({ dataType: constant.dataType, shape: constant.shape }, constantData(constant)));
      continue;
    }
    const method = methods[node.op];
    if (!METHODS.has(node.op) || typeof method !== "function") {
      throw new BrowserError("unsupported", `this browser's WebNN has no MLGraphBuilder.${node.op}()`);
    }
    const args = (node as CallNode).args.map((a) => resolve(a, operands));
    operands.push((method as (...a: unknown[]) => MLOperand).apply(builder, args));
  }
  const outputs: Record<string, MLOperand> = {};
  command.outputs.forEach((output, i) => (outputs[`out${i}`] = operands[output.operand]));
  return builder.build(outputs);
}

/** Built graphs by key; counts what was built and what was found. */
export class GraphCache {
  private readonly graphs = new Map<string, MLGraph>();
  built = 0;
  hits = 0;

  constructor(private readonly context: MLContext) {}

  get size(): number {
    return this.graphs.size;
  }

  async get(command: GraphCommand): Promise<MLGraph> {
    const found = this.graphs.get(command.key);
    if (found) {
      this.hits += 1;
      return found;
    }
    const graph = await build(this.context, command);
    this.graphs.set(command.key, graph);
    this.built += 1;
    return graph;
  }

  dispose(): void {
    this.graphs.forEach((graph) => graph.destroy());
    this.graphs.clear();
  }
}
