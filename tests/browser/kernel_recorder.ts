// The browser device's kernels (widget/src/kernels.ts, with the WGSL of shaders/) in Node, against a
// GPU that records instead of running: for each `run` command read from stdin (one JSON line:
// {f16, software, subgroups, cmd}), one JSON line on stdout with the buffers it created and freed and each
// dispatch (WGSL source, entry, bind group layout, override constants, uniform bytes, buffer ids,
// workgroups), which tests/browser/replay.py runs on the native wgpu adapter. For checks that need
// an adapter with shader-f16 where the headless Chromium has none (SwiftShader lacks it).
// Bundled by tests/browser/replay.py with esbuild (platform node, .wgsl as text).
import * as readline from "node:readline";
import type { GpuRuntime, LayoutKind, Storage } from "../../widget/src/gpu";
import { type RunCommand, runKernel } from "../../widget/src/kernels";

const usage = { MAP_READ: 1, COPY_SRC: 4, COPY_DST: 8, UNIFORM: 64, STORAGE: 128 };
Object.assign(globalThis, { GPUBufferUsage: usage });

interface Recorded {
  op: "create" | "free" | "dispatch";
  [key: string]: unknown;
}

interface Pipeline {
  source: string;
  layout: readonly LayoutKind[];
  constants: Record<string, number>;
  entry: string;
}

/** The part of GpuRuntime that kernels.ts and elementwise.ts use, recording. */
class RecordingGpu {
  readonly ops: Recorded[] = [];
  private nextFlag = -1_000_000_000;

  constructor(
    readonly f16: boolean,
    readonly isSoftware: boolean,
    private readonly subgroups: boolean,
  ) {}

  get workgroup(): number {
    return this.isSoftware ? 64 : 256;
  }

  /** As GpuRuntime's: the subgroup variant of workgroup_reduce.wgsl on software adapters that have it. */
  get reduceFlags(): string[] {
    return this.isSoftware && this.subgroups ? ["SUBGROUPS"] : [];
  }

  readonly device = {
    createBuffer: (descriptor: { size: number }): { id: number; destroy(): void } => {
      const id = this.nextFlag--;
      this.ops.push({ op: "create", id, nbytes: descriptor.size });
      return { id, destroy: () => undefined };
    },
  };

  create(id: number, nbytes: number): Storage {
    this.ops.push({ op: "create", id, nbytes });
    return this.storage(id);
  }

  storage(id: number): Storage {
    return { buffer: { id } as unknown as GPUBuffer, nbytes: 0 };
  }

  free(id: number): void {
    this.ops.push({ op: "free", id });
  }

  pipeline(source: string, layout: readonly LayoutKind[], constants: Record<string, number>, entry = "main"): Pipeline {
    return { source, layout, constants, entry };
  }

  dispatch(pipeline: Pipeline, uniform: ArrayBuffer, buffers: readonly GPUBuffer[], workgroups: number): void {
    if (workgroups <= 0) return;
    const ids = buffers.map((b) => (b as unknown as { id: number }).id);
    const bytes = Buffer.from(uniform).toString("base64");
    this.ops.push({ op: "dispatch", ...pipeline, uniform: bytes, buffers: ids, workgroups });
  }
}

interface Request {
  f16: boolean;
  software: boolean;
  subgroups: boolean;
  cmd: RunCommand;
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const request = JSON.parse(line) as Request;
  const gpu = new RecordingGpu(request.f16, request.software, request.subgroups);
  let error: string | null = null;
  try {
    runKernel(gpu as unknown as GpuRuntime, request.cmd, []);
  } catch (e) {
    error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  }
  process.stdout.write(JSON.stringify({ ops: gpu.ops, error }) + "\n");
});
