// The wire format between the kernel (accelerate_lab/hal/browser_protocol.py) and this page.
// Kernel -> page: {kind: "batch", seq, commands} with the upload payloads as binary buffers.
// Page -> kernel: {kind: "reply", seq, downloads: [{request, buffer}], error, memory} with the
// downloaded bytes as binary buffers. Commands run in order; the first failure stops the batch.
// A `cached` command is an upload by content hash: its bytes come from the weight cache (or from the
// kernel on request, see session.ts), looked up before the batch runs.
import { BrowserError, GpuRuntime, STORAGE_BYTES, View, isDense, rowMajor, sizeOf } from "./gpu";
import { RunCommand, runKernel } from "./kernels";
import { copyInto } from "./elementwise";
import { Downloaded, HTTP_BYTES, Incoming } from "./transfer";

export interface Upload {
  op: "upload";
  id: number;
  nbytes: number;
  buffer: number;
}

export interface Cached {
  op: "cached";
  id: number;
  nbytes: number;
  hash: string;
}

export interface Alloc {
  op: "alloc";
  id: number;
  nbytes: number;
}

export interface Free {
  op: "free";
  id: number;
}

export interface Download {
  op: "download";
  request: number;
  view: View;
}

export type Command = Upload | Cached | Alloc | Free | Download | RunCommand;

export interface Batch {
  kind: "batch";
  seq: number;
  commands: Command[];
}

export interface ErrorReport {
  kind: BrowserError["kind"];
  message: string;
  command: number;
}

export interface MemoryReport {
  allocated_bytes: number;
  peak_bytes: number;
  buffers: number;
  dispatches: number;
  pipelines: number;
  js_heap_bytes: number | null;
}

export interface Reply {
  kind: "reply";
  seq: number;
  downloads: { request: number; buffer: number }[];
  error: ErrorReport | null;
  memory: MemoryReport;
}

export function memoryReport(gpu: GpuRuntime): MemoryReport {
  const heap = (performance as Performance & { memory?: { usedJSHeapSize: number } }).memory;
  return {
    allocated_bytes: gpu.allocatedBytes,
    peak_bytes: gpu.peakBytes,
    buffers: gpu.storages.size,
    dispatches: gpu.dispatches,
    pipelines: gpu.pipelinesCompiled,
    js_heap_bytes: heap ? heap.usedJSHeapSize : null,
  };
}

function asBytes(buffer: DataView | ArrayBuffer): Uint8Array<ArrayBuffer> {
  // ipywidgets hands DataViews over plain ArrayBuffers (never shared memory)
  return buffer instanceof DataView
    ? new Uint8Array(buffer.buffer as ArrayBuffer, buffer.byteOffset, buffer.byteLength)
    : new Uint8Array(buffer);
}

let nextStaging = -1_000_000_000;

/** The bytes of a view, row-major (a strided view is copied into a dense buffer first); as a Blob if
 * `blobs` and they are at least HTTP_BYTES. */
async function download(gpu: GpuRuntime, view: View, blobs: boolean): Promise<Downloaded> {
  const nbytes = sizeOf(view.shape) * STORAGE_BYTES[view.dtype];
  const read = (buffer: GPUBuffer): Promise<Downloaded> =>
    blobs && nbytes >= HTTP_BYTES ? gpu.readBlob(buffer, nbytes) : gpu.read(buffer, nbytes);
  if (isDense(view) && view.offset === 0) return read(gpu.storage(view.id).buffer);
  const id = nextStaging--;
  gpu.create(id, nbytes);
  const dense = { id, shape: view.shape, strides: rowMajor(view.shape), offset: 0, dtype: view.dtype };
  copyInto(gpu, view, dense);
  const data = await read(gpu.storage(id).buffer);
  gpu.free(id);
  return data;
}

function errorOf(error: unknown): Omit<ErrorReport, "command"> {
  if (error instanceof BrowserError) return { kind: error.kind, message: error.message };
  if (error instanceof Error) {
    const oom = error.name === "RangeError" || /out of memory/i.test(error.message);
    return { kind: oom ? "out-of-memory" : "js", message: `${error.name}: ${error.message}` };
  }
  return { kind: "js", message: String(error) };
}

/** Run one batch; always resolves to a reply (errors are reported, not thrown). An upload's buffer may be
 * an `Incoming` (streamed to the GPU as it arrives). `cached` holds the bytes of its `cached` uploads by
 * hash (as promises: each upload waits for its own bytes only); `checkpoint(done, total)` runs before
 * each command (it may wait, and stops the batch by throwing); `blobs`: large downloads come as Blobs
 * (to be PUT). */
export async function runBatch(
  gpu: GpuRuntime,
  batch: Batch,
  buffers: readonly (DataView | ArrayBuffer)[],
  cached?: ReadonlyMap<string, Promise<Uint8Array<ArrayBuffer> | undefined>>,
  checkpoint?: (done: number, total: number) => Promise<void>,
): Promise<[Reply, ArrayBuffer[]]>;
export async function runBatch(
  gpu: GpuRuntime,
  batch: Batch,
  buffers: readonly (DataView | ArrayBuffer)[],
  cached: ReadonlyMap<string, Promise<Uint8Array<ArrayBuffer> | undefined>>,
  checkpoint: (done: number, total: number) => Promise<void>,
  blobs: boolean,
): Promise<[Reply, Downloaded[]]>;
export async function runBatch(
  gpu: GpuRuntime,
  batch: Batch,
  buffers: readonly (DataView | ArrayBuffer)[],
  cached: ReadonlyMap<string, Promise<Uint8Array<ArrayBuffer> | undefined>> = new Map(),
  checkpoint: (done: number, total: number) => Promise<void> = async () => {},
  blobs = false,
): Promise<[Reply, Downloaded[]]> {
  const out: Downloaded[] = [];
  const reply: Reply = { kind: "reply", seq: batch.seq, downloads: [], error: null, memory: memoryReport(gpu) };
  const flags: GPUBuffer[] = [];
  let at = 0;
  gpu.device.pushErrorScope("out-of-memory");
  gpu.device.pushErrorScope("validation");
  try {
    if (gpu.lost) throw new BrowserError("device-lost", `the browser's GPU device was lost: ${gpu.lost}`);
    for (; at < batch.commands.length; at++) {
      await checkpoint(at, batch.commands.length);
      const cmd = batch.commands[at];
      switch (cmd.op) {
        case "upload": {
          const payload = buffers[cmd.buffer];
          gpu.create(cmd.id, cmd.nbytes);
          if (payload instanceof Incoming) await gpu.writePieces(cmd.id, payload);
          else gpu.write(cmd.id, asBytes(payload));
          break;
        }
        case "cached": {
          const bytes = await cached.get(cmd.hash);
          if (!bytes) throw new BrowserError("js", `the bytes of cached weight ${cmd.hash.slice(0, 12)}… never came`);
          gpu.create(cmd.id, cmd.nbytes);
          gpu.write(cmd.id, bytes);
          break;
        }
        case "alloc":
          gpu.create(cmd.id, cmd.nbytes); // WebGPU zero-fills new buffers
          break;
        case "free":
          gpu.free(cmd.id);
          break;
        case "run":
          runKernel(gpu, cmd, flags);
          break;
        case "download":
          reply.downloads.push({ request: cmd.request, buffer: out.length });
          out.push(await download(gpu, cmd.view, blobs));
          break;
      }
    }
    gpu.submit();
    for (const flag of flags) {
      if (new Uint32Array(await gpu.read(flag, 4))[0]) {
        throw new BrowserError("index", "embedding ids out of range [0, rows of the table)");
      }
    }
  } catch (error) {
    gpu.submit();
    reply.error = { ...errorOf(error), command: at };
  } finally {
    flags.forEach((flag) => flag.destroy());
    buffers.forEach((buffer) => buffer instanceof Incoming && buffer.discard());
  }
  const validation = await gpu.device.popErrorScope();
  const memory = await gpu.device.popErrorScope();
  if (!reply.error && memory) reply.error = { kind: "out-of-memory", message: memory.message, command: -1 };
  if (!reply.error && validation) reply.error = { kind: "validation", message: validation.message, command: -1 };
  if (!reply.error && gpu.lost) reply.error = { kind: "device-lost", message: gpu.lost, command: -1 };
  reply.memory = memoryReport(gpu);
  return [reply, out];
}
