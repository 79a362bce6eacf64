// The `browser:webnn` device in the page: its buffers, its batches, and the WebGPU fallback.
//
// A buffer lives either as bytes in the kernel's wire format (what an upload or a WebGPU run left;
// uint8 and bool widened to 32 bits, as accelerate_lab/hal/browser_protocol.py encodes them) or as
// a flat MLTensor (what a graph wrote); each form is made from the other only when a command needs
// it. Commands are those of the WebGPU device (protocol.ts) plus `graph` (webnn_graph.ts). A `run`
// command is an op this WebNN context cannot do: it runs with the WebGPU kernels on mirrors of the
// buffers it touches, through the WebGPU device's own batch runner, and is counted.
import { BrowserError, GpuRuntime, STORAGE_BYTES, View } from "./gpu";
import type { RunCommand } from "./kernels";
import { Command, ErrorReport, MemoryReport, Reply, runBatch } from "./protocol";
import { MLContext, MLTensor } from "./webnn";
import { GraphCache, GraphCommand, GraphInput } from "./webnn_graph";

export interface WebnnBatch {
  kind: "batch";
  device: "webnn";
  seq: number;
  commands: (Command | GraphCommand)[];
}

export interface WebnnMemory extends MemoryReport {
  graphs_built: number;
  graph_cache_hits: number;
  fallback_runs: number;
}

export interface WebnnReply extends Reply {
  device: "webnn";
  memory: WebnnMemory;
}

interface Resident {
  bytes: ArrayBuffer | null;
  tensor: MLTensor | null;
  nbytes: number; // in the wire format
}

const ML_BYTES: Readonly<Record<string, number>> = { float32: 4, float16: 2, int32: 4, int64: 8, uint8: 1 };
// GPU buffer ids of the fallback's mirrors: far above the ids the WebGPU device gives out
const MIRROR = 2 ** 40;

function wireBytes(dataType: string, count: number): number {
  const size = ML_BYTES[dataType];
  if (size === undefined) throw new BrowserError("unsupported", `WebNN tensors of ${dataType} are not used here`);
  return (dataType === "uint8" ? 4 : size) * count;
}

function toTensorData(bytes: ArrayBuffer, dataType: string, count: number): ArrayBufferView<ArrayBuffer> {
  if (bytes.byteLength !== wireBytes(dataType, count)) {
    throw new BrowserError("js", `a buffer of ${bytes.byteLength} bytes does not hold ${count} ${dataType} values`);
  }
  return dataType === "uint8" ? Uint8Array.from(new Uint32Array(bytes)) : new Uint8Array(bytes);
}

function toWire(data: ArrayBuffer, dataType: string): ArrayBuffer {
  return dataType === "uint8" ? Uint32Array.from(new Uint8Array(data)).buffer : data;
}

function ownBytes(buffer: DataView | ArrayBuffer): ArrayBuffer {
  if (buffer instanceof ArrayBuffer) return buffer;
  const whole = buffer.byteOffset === 0 && buffer.byteLength === buffer.buffer.byteLength;
  const source = buffer.buffer as ArrayBuffer;
  return whole ? source : source.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength);
}

function errorOf(error: unknown): Omit<ErrorReport, "command"> {
  if (error instanceof BrowserError) return { kind: error.kind, message: error.message };
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { kind: "js", message: `WebNN: ${text}` };
}

export class WebnnRuntime {
  private readonly store = new Map<number, Resident>();
  private readonly graphs: GraphCache;
  private allocated = 0;
  private peak = 0;
  private dispatches = 0;
  private fallbacks = 0;
  private lost: string | null = null;
  /** The WebGPU runtime that runs the ops WebNN cannot (null: this browser has no WebGPU). */
  gpu: GpuRuntime | null = null;

  constructor(private readonly context: MLContext) {
    this.graphs = new GraphCache(context);
    void context.lost.then((info) => (this.lost = info.message || "context lost"));
  }

  memory(): WebnnMemory {
    const heap = (performance as Performance & { memory?: { usedJSHeapSize: number } }).memory;
    return {
      allocated_bytes: this.allocated,
      peak_bytes: this.peak,
      buffers: this.store.size,
      dispatches: this.dispatches,
      pipelines: this.graphs.size,
      js_heap_bytes: heap ? heap.usedJSHeapSize : null,
      graphs_built: this.graphs.built,
      graph_cache_hits: this.graphs.hits,
      fallback_runs: this.fallbacks,
    };
  }

  // ---- buffers ----------------------------------------------------------------------------------
  private resident(id: number): Resident {
    const found = this.store.get(id);
    if (!found) throw new BrowserError("js", `WebNN buffer ${id} does not exist in this page (freed, or the page was reloaded)`);
    return found;
  }

  private put(id: number, resident: Resident): void {
    this.drop(id);
    this.store.set(id, resident);
    this.allocated += resident.nbytes;
    this.peak = Math.max(this.peak, this.allocated);
  }

  private drop(id: number): void {
    const found = this.store.get(id);
    if (!found) return;
    found.tensor?.destroy();
    this.store.delete(id);
    this.allocated -= found.nbytes;
  }

  /** The buffer in the wire format (read back from its MLTensor when a graph wrote it). */
  private async wire(id: number): Promise<ArrayBuffer> {
    const found = this.resident(id);
    if (found.bytes) return found.bytes;
    const tensor = found.tensor as MLTensor;
    return toWire(await this.context.readTensor(tensor), tensor.dataType);
  }

  /** The buffer as a flat MLTensor of `input.dataType` (written from its bytes on first use). */
  private async tensor(input: GraphInput): Promise<MLTensor> {
    const found = this.resident(input.id);
    const tensor = found.tensor;
    if (tensor && tensor.dataType === input.dataType && tensor.shape[0] === input.count) return tensor;
    const bytes = await this.wire(input.id);
    const made = await this.context.createTensor({
      dataType: input.dataType,
      shape: [input.count],
      readable: true,
      writable: true,
    });
    this.context.writeTensor(made, toTensorData(bytes, input.dataType, input.count));
    tensor?.destroy();
    found.tensor = made;
    found.bytes = null;
    return made;
  }

  // ---- commands ---------------------------------------------------------------------------------
  private async dispatch(command: GraphCommand): Promise<void> {
    const graph = await this.graphs.get(command);
    const inputs: Record<string, MLTensor> = {};
    for (const [i, input] of command.inputs.entries()) inputs[`in${i}`] = await this.tensor(input);
    const outputs: Record<string, MLTensor> = {};
    for (const [i, output] of command.outputs.entries()) {
      const tensor = await this.context.createTensor({
        dataType: output.dataType,
        shape: [output.count],
        readable: true,
        writable: true,
      });
      outputs[`out${i}`] = tensor;
      this.put(output.id, { bytes: null, tensor, nbytes: wireBytes(output.dataType, output.count) });
    }
    this.context.dispatch(graph, inputs, outputs);
    this.dispatches += 1;
  }

  private async fallback(command: RunCommand): Promise<void> {
    const gpu = this.gpu;
    if (!gpu) {
      const why = `WebNN cannot run ${command.kernel} here, and this browser has no WebGPU to run it instead`;
      throw new BrowserError("unsupported", why);
    }
    const views = [command.out, ...command.inputs.filter((x): x is View => x !== null && "id" in x)];
    const ids = [...new Set(views.map((v) => v.id))];
    const mirror = (v: View): View => ({ ...v, id: MIRROR + v.id });
    const commands: Command[] = [];
    const payloads: ArrayBuffer[] = [];
    for (const id of ids) {
      const bytes = await this.wire(id);
      commands.push({ op: "upload", id: MIRROR + id, nbytes: bytes.byteLength, buffer: payloads.length });
      payloads.push(bytes);
    }
    const count = this.resident(command.out.id).nbytes / STORAGE_BYTES[command.out.dtype];
    commands.push({ ...command, out: mirror(command.out), inputs: command.inputs.map((x) => (x && "id" in x ? mirror(x) : x)) });
    const whole = { id: command.out.id, shape: [count], strides: [1], offset: 0, dtype: command.out.dtype };
    commands.push({ op: "download", request: 0, view: mirror(whole) });
    try {
      const [reply, data] = await runBatch(gpu, { kind: "batch", seq: 0, commands }, payloads);
      if (reply.error) {
        throw new BrowserError(reply.error.kind, `${command.kernel} with WebGPU (WebNN cannot run it): ${reply.error.message}`);
      }
      this.put(command.out.id, { bytes: data[0], tensor: null, nbytes: data[0].byteLength });
      this.fallbacks += 1;
    } finally {
      ids.forEach((id) => gpu.free(MIRROR + id));
      gpu.submit();
    }
  }

  private async download(view: View): Promise<ArrayBuffer> {
    const found = this.resident(view.id);
    const whole = view.offset === 0 && view.shape.reduce((a, b) => a * b, 1) * STORAGE_BYTES[view.dtype] === found.nbytes;
    if (!whole) throw new BrowserError("js", `browser:webnn downloads whole buffers, not views (buffer ${view.id})`);
    return this.wire(view.id);
  }

  /** Run one batch; always resolves to a reply (errors are reported, not thrown). */
  async run(batch: WebnnBatch, buffers: readonly (DataView | ArrayBuffer)[]): Promise<[WebnnReply, ArrayBuffer[]]> {
    const out: ArrayBuffer[] = [];
    const reply: WebnnReply = { kind: "reply", device: "webnn", seq: batch.seq, downloads: [], error: null, memory: this.memory() };
    let at = 0;
    try {
      if (this.lost) throw new BrowserError("device-lost", `the WebNN context was lost: ${this.lost}`);
      for (; at < batch.commands.length; at++) {
        const cmd = batch.commands[at];
        switch (cmd.op) {
          case "upload": {
            const bytes = ownBytes(buffers[cmd.buffer]);
            this.put(cmd.id, { bytes, tensor: null, nbytes: bytes.byteLength });
            break;
          }
          case "cached": // the kernel's WebNN device sends weights as plain uploads
            throw new BrowserError("unsupported", "browser:webnn keeps no weight cache");
          case "alloc":
            this.put(cmd.id, { bytes: new ArrayBuffer(cmd.nbytes), tensor: null, nbytes: cmd.nbytes });
            break;
          case "free":
            this.drop(cmd.id);
            break;
          case "graph":
            await this.dispatch(cmd);
            break;
          case "run":
            await this.fallback(cmd);
            break;
          case "download":
            reply.downloads.push({ request: cmd.request, buffer: out.length });
            out.push(await this.download(cmd.view));
            break;
        }
      }
    } catch (error) {
      reply.error = { ...errorOf(error), command: at };
    }
    reply.memory = this.memory();
    return [reply, out];
  }

  dispose(): void {
    this.store.forEach((_, id) => this.drop(id));
    this.graphs.dispose();
    this.context.destroy();
  }
}
