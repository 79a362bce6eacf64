// The WebGPU side of the browser device: adapter and device, buffers by id, pipeline cache, and the
// command encoder of one batch (mirrors accelerate_lab/hal/wgpu_runtime.py: one submission per batch,
// explicit bind group layouts, (x, y) workgroup grids that kernels flatten).

export type LayoutKind = "uniform" | "read" | "write";

/** A dtype name as numpy spells it, and the bytes one element takes in GPU storage. */
export const STORAGE_BYTES: Readonly<Record<string, number>> = {
  float32: 4,
  float16: 2,
  int32: 4,
  uint8: 4,
  bool: 4,
  int64: 8,
  float64: 8,
};

/** Bytes that arrive in pieces (./transfer's `Incoming`): `take` gets each piece and where it goes. */
export interface Pieces {
  pieces(take: (piece: Uint8Array<ArrayBuffer>, offset: number) => void): Promise<void>;
}

/** Bytes of each part `readBlob` maps at a time. */
export const PART_BYTES = 8 << 20;

export interface Storage {
  buffer: GPUBuffer;
  nbytes: number;
}

/** A strided view of a storage buffer; offsets and strides count elements. */
export interface View {
  id: number;
  shape: number[];
  strides: number[];
  offset: number;
  dtype: string;
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  features: string[];
  limits: Record<string, number>;
}

/** An error with the kind the kernel maps to a Python exception class. */
export class BrowserError extends Error {
  constructor(
    readonly kind:
      | "js"
      | "validation"
      | "out-of-memory"
      | "device-lost"
      | "no-webgpu"
      | "index"
      | "unsupported"
      | "cancelled"
      | "transfer",
    message: string,
  ) {
    super(message);
  }
}

export function rowMajor(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let step = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = step;
    step *= Math.max(shape[d], 1);
  }
  return strides;
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function isDense(view: View): boolean {
  const dense = rowMajor(view.shape);
  return view.shape.every((d, i) => d === 1 || view.strides[i] === dense[i]);
}

function limitsOf(adapter: GPUAdapter): Record<string, number> {
  const out: Record<string, number> = {};
  const limits = adapter.limits as unknown as Record<string, unknown>;
  for (const key in limits) {
    const value = limits[key];
    if (typeof value === "number") out[key] = value;
  }
  return out;
}

/** Why WebGPU is missing here, in words a notebook user can act on. */
export function webgpuMissingReason(): string {
  if (!globalThis.isSecureContext) {
    return `this page (${location.origin}) is not a secure context, and browsers expose WebGPU only on https or localhost; open JupyterLab through https or an SSH tunnel to localhost`;
  }
  return "this browser has no WebGPU (navigator.gpu is missing); use a recent Chrome/Edge, or Chromium with --enable-unsafe-webgpu";
}

export class GpuRuntime {
  readonly storages = new Map<number, Storage>();
  allocatedBytes = 0;
  peakBytes = 0;
  dispatches = 0;
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, [GPUComputePipeline, GPUBindGroupLayout]>();
  private encoder: GPUCommandEncoder | null = null;
  private transient: GPUBuffer[] = [];
  lost: string | null = null;

  private constructor(
    readonly device: GPUDevice,
    readonly summary: AdapterSummary,
  ) {
    void device.lost.then((info) => {
      this.lost = info.message || info.reason || "device lost";
    });
  }

  static async create(): Promise<GpuRuntime> {
    if (!("gpu" in navigator) || !navigator.gpu) throw new BrowserError("no-webgpu", webgpuMissingReason());
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) throw new BrowserError("no-webgpu", "navigator.gpu.requestAdapter() found no adapter in this browser");
    const limits = limitsOf(adapter);
    const wanted: GPUFeatureName[] = (["shader-f16", "subgroups", "timestamp-query"] as GPUFeatureName[]).filter((f) =>
      adapter.features.has(f),
    );
    const device = await adapter.requestDevice({
      requiredFeatures: wanted,
      requiredLimits: {
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
        maxBufferSize: limits.maxBufferSize,
        maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
        maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      },
    });
    const info = adapter.info;
    return new GpuRuntime(device, {
      vendor: info.vendor,
      architecture: info.architecture,
      device: info.device,
      description: info.description,
      isFallbackAdapter: Boolean((info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter),
      features: [...device.features].sort(),
      limits,
    });
  }

  get isSoftware(): boolean {
    return this.summary.isFallbackAdapter;
  }

  /** Threads per workgroup for 1-D kernels: 64 on software adapters (each thread is a loop), else 256. */
  get workgroup(): number {
    return this.isSoftware ? 64 : 256;
  }

  get f16(): boolean {
    return this.device.features.has("shader-f16");
  }

  /** Flags of workgroup_reduce.wgsl: SUBGROUPS (its subgroup variant and `enable subgroups;`) where the native
   * profile picks it too (AdapterProfile.subgroup_reductions): software adapters that have subgroups. */
  get reduceFlags(): string[] {
    return this.isSoftware && this.device.features.has("subgroups") ? ["SUBGROUPS"] : [];
  }

  // ---- buffers ----------------------------------------------------------------------------------
  create(id: number, nbytes: number): Storage {
    if (this.storages.has(id)) throw new BrowserError("js", `buffer ${id} exists already`);
    const size = Math.max(4, Math.ceil(nbytes / 4) * 4);
    const buffer = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    const storage = { buffer, nbytes: size };
    this.storages.set(id, storage);
    this.allocatedBytes += size;
    this.peakBytes = Math.max(this.peakBytes, this.allocatedBytes);
    return storage;
  }

  storage(id: number): Storage {
    const found = this.storages.get(id);
    if (!found) throw new BrowserError("js", `buffer ${id} does not exist in this page (freed, or the page was reloaded)`);
    return found;
  }

  free(id: number): void {
    const storage = this.storages.get(id);
    if (!storage) return;
    this.storages.delete(id);
    this.allocatedBytes -= storage.nbytes;
    this.transient.push(storage.buffer); // destroyed after the batch's work is submitted
  }

  write(id: number, data: Uint8Array<ArrayBuffer>, offset = 0): void {
    const padded = data.byteLength % 4 ? new Uint8Array(Math.ceil(data.byteLength / 4) * 4) : data;
    if (padded !== data) padded.set(data);
    this.device.queue.writeBuffer(this.storage(id).buffer, offset, padded);
  }

  /** Write the bytes of `incoming` as they arrive, a piece at a time (the GPU takes each piece while the
   * next one is read). */
  async writePieces(id: number, incoming: Pieces): Promise<void> {
    await incoming.pieces((piece, offset) => this.write(id, piece, offset));
  }

  /** A scratch buffer that lives until the end of the batch. */
  scratch(nbytes: number, usage: number = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST): GPUBuffer {
    const buffer = this.device.createBuffer({ size: Math.max(16, Math.ceil(nbytes / 16) * 16), usage });
    this.transient.push(buffer);
    return buffer;
  }

  uniform(bytes: ArrayBuffer): GPUBuffer {
    const buffer = this.scratch(bytes.byteLength, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    this.device.queue.writeBuffer(buffer, 0, bytes);
    return buffer;
  }

  // ---- pipelines --------------------------------------------------------------------------------
  pipeline(
    source: string,
    layout: readonly LayoutKind[],
    constants: Record<string, number>,
    entry = "main",
  ): [GPUComputePipeline, GPUBindGroupLayout] {
    const key = JSON.stringify([entry, layout, Object.entries(constants).sort(), source]);
    const found = this.pipelines.get(key);
    if (found) return found;
    let module = this.modules.get(source);
    if (!module) {
      module = this.device.createShaderModule({ code: source });
      this.modules.set(source, module);
    }
    const types: Record<LayoutKind, GPUBufferBindingType> = {
      uniform: "uniform",
      read: "read-only-storage",
      write: "storage",
    };
    const bgl = this.device.createBindGroupLayout({
      entries: layout.map((kind, binding) => ({
        binding,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: types[kind] },
      })),
    });
    const pipeline = this.device.createComputePipeline({
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [bgl] }),
      compute: { module, entryPoint: entry, constants },
    });
    const made: [GPUComputePipeline, GPUBindGroupLayout] = [pipeline, bgl];
    this.pipelines.set(key, made);
    return made;
  }

  get pipelinesCompiled(): number {
    return this.pipelines.size;
  }

  // ---- recording --------------------------------------------------------------------------------
  private get commands(): GPUCommandEncoder {
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }

  /** (x, y) workgroups covering `count` groups within the per-dimension limit. */
  grid(count: number): [number, number] {
    const limit = this.summary.limits.maxComputeWorkgroupsPerDimension ?? 65535;
    const x = Math.max(1, Math.min(count, limit));
    const y = Math.ceil(count / x);
    if (y > limit) throw new BrowserError("js", `${count} workgroups exceed this adapter's dispatch limit`);
    return [x, y];
  }

  dispatch(
    pipeline: [GPUComputePipeline, GPUBindGroupLayout],
    uniform: ArrayBuffer,
    buffers: readonly GPUBuffer[],
    workgroups: number,
  ): void {
    if (workgroups <= 0) return;
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.uniform(uniform) } }];
    buffers.forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
    const pass = this.commands.beginComputePass();
    pass.setPipeline(pipeline[0]);
    pass.setBindGroup(0, this.device.createBindGroup({ layout: pipeline[1], entries }));
    const [x, y] = this.grid(workgroups);
    pass.dispatchWorkgroups(x, y, 1);
    pass.end();
    this.dispatches += 1;
  }

  clear(buffer: GPUBuffer): void {
    this.commands.clearBuffer(buffer);
  }

  copy(source: GPUBuffer, target: GPUBuffer, nbytes: number): void {
    this.commands.copyBufferToBuffer(source, 0, target, 0, Math.ceil(nbytes / 4) * 4);
  }

  /** Submit what was recorded; scratch buffers and freed buffers go once the queue has taken it. */
  submit(): void {
    if (this.encoder) {
      this.device.queue.submit([this.encoder.finish()]);
      this.encoder = null;
    }
    const done = this.transient;
    this.transient = [];
    if (done.length) {
      void this.device.queue.onSubmittedWorkDone().then(() => done.forEach((b) => b.destroy()));
    }
  }

  /** A mappable copy of `size` bytes of `source` from `offset`, recorded (not submitted). */
  private staged(source: GPUBuffer, offset: number, size: number): GPUBuffer {
    const staging = this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.commands.copyBufferToBuffer(source, offset, staging, 0, size);
    return staging;
  }

  /** The first `nbytes` of a buffer, after everything recorded so far has run. */
  async read(source: GPUBuffer, nbytes: number): Promise<ArrayBuffer> {
    const staging = this.staged(source, 0, Math.max(4, Math.ceil(nbytes / 4) * 4));
    this.submit();
    await staging.mapAsync(GPUMapMode.READ);
    const data = staging.getMappedRange().slice(0, nbytes);
    staging.unmap();
    staging.destroy();
    return data;
  }

  /** `read` as a Blob, with no ArrayBuffer in between: the buffer is mapped in parts of PART_BYTES, each
   * copied into a Blob while the GPU maps the next (an empty Blob for no bytes). */
  async readBlob(source: GPUBuffer, nbytes: number): Promise<Blob> {
    const parts: [GPUBuffer, number][] = [];
    for (let offset = 0; offset < nbytes; offset += PART_BYTES) {
      const length = Math.min(PART_BYTES, nbytes - offset);
      parts.push([this.staged(source, offset, Math.ceil(length / 4) * 4), length]);
    }
    this.submit();
    const mapped = parts.map(([staging]) => staging.mapAsync(GPUMapMode.READ));
    void Promise.allSettled(mapped); // those left waiting when one fails reject when destroyed below
    const blobs: Blob[] = [];
    try {
      for (const [i, [staging, length]] of parts.entries()) {
        await mapped[i];
        blobs.push(new Blob([new Uint8Array(staging.getMappedRange(), 0, length)]));
        staging.unmap();
      }
    } finally {
      parts.forEach(([staging]) => staging.destroy());
    }
    return new Blob(blobs);
  }
}
