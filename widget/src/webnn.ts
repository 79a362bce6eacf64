// WebNN in this browser: the few interfaces of the API the runtime uses (no typings ship with
// TypeScript), and the context the device runs on. navigator.ml exists only with the
// WebMachineLearningNeuralNetwork feature, and a context can still fail where the browser has no
// backend (Debian's Chromium: no WebNN backend).

export interface MLOperandDescriptor {
  dataType: string;
  shape: number[];
}

export interface MLOperand {
  readonly dataType: string;
  readonly shape: readonly number[];
}

export interface MLTensor {
  readonly dataType: string;
  readonly shape: readonly number[];
  destroy(): void;
}

export interface MLGraph {
  destroy(): void;
}

export interface MLContext {
  readonly lost: Promise<{ message: string }>;
  opSupportLimits(): Record<string, unknown>;
  createTensor(descriptor: MLOperandDescriptor & { readable: boolean; writable: boolean }): Promise<MLTensor>;
  writeTensor(tensor: MLTensor, data: ArrayBufferView<ArrayBuffer>): void;
  readTensor(tensor: MLTensor): Promise<ArrayBuffer>;
  dispatch(graph: MLGraph, inputs: Record<string, MLTensor>, outputs: Record<string, MLTensor>): void;
  destroy(): void;
}

export interface MLGraphBuilder {
  input(name: string, descriptor: MLOperandDescriptor): MLOperand;
  constant(descriptor: MLOperandDescriptor, data: ArrayBufferView<ArrayBuffer>): MLOperand;
  build(outputs: Record<string, MLOperand>): Promise<MLGraph>;
}

interface ML {
  createContext(options?: Record<string, string>): Promise<MLContext>;
}

type GraphBuilderClass = new (context: MLContext) => MLGraphBuilder;

/** A new graph builder of `context` (the constructor is a global of browsers with WebNN). */
export function graphBuilder(context: MLContext): MLGraphBuilder {
  const cls = (globalThis as unknown as { MLGraphBuilder: GraphBuilderClass }).MLGraphBuilder;
  return new cls(context);
}

/** What the kernel learns of WebNN here: whether a context exists, why not, and what it supports. */
export interface WebnnReport {
  available: boolean;
  reason: string;
  ops: number;
  limits: Record<string, unknown>;
}

/** This browser's WebNN context (null when there is none) and the report the model state carries. */
export async function openWebnn(): Promise<[MLContext | null, WebnnReport]> {
  const ml = (navigator as Navigator & { ml?: ML }).ml;
  const missing = { available: false, ops: 0, limits: {} };
  if (!ml) {
    const reason =
      "navigator.ml is missing: WebNN is off in this browser (Chromium: --enable-features=WebMachineLearningNeuralNetwork)";
    return [null, { ...missing, reason }];
  }
  try {
    const context = await ml.createContext();
    // a JSON copy: the state travels to the kernel, which picks the ops a graph may use from it
    const limits = JSON.parse(JSON.stringify(context.opSupportLimits())) as Record<string, unknown>;
    const ops = Object.values(limits).filter((v) => typeof v === "object" && v !== null).length;
    return [context, { available: true, reason: "", ops, limits }];
  } catch (error) {
    const reason = `navigator.ml.createContext() failed: ${error instanceof Error ? error.message : String(error)}`;
    return [null, { ...missing, reason }];
  }
}
