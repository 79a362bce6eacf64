// One BrowserDevice model's connection: creates the WebGPU runtime and the WebNN context, publishes
// what the browser has (adapter, features, limits, WebNN) in the model's state, runs the kernel's
// batches one at a time (a batch marked `device: "webnn"` on the WebNN runtime) and sends replies
// with binary buffers, chunked both ways where they exceed Jupyter's message limit (./chunks).
// Weights come by content hash (`cached` commands): before a batch runs, those missing from the weight
// cache (./weight_cache) are asked for with one `need` message; the kernel answers with `fill` messages
// (the last one without `more`), each upload waits for the fill that brings its bytes, and they go into
// the cache. It runs in a Web Worker (./worker.ts) with a
// stand-in for the model; a long batch reports its progress in the state and can be cancelled.
import { Assembler, split } from "./chunks";
import { HttpConfig, HttpTransfer, arrayBuffers } from "./transfer";
import { BrowserError, GpuRuntime } from "./gpu";
import { Batch, Cached, memoryReport, runBatch } from "./protocol";
import { CacheReport, WeightCache } from "./weight_cache";
import { WebnnReport, openWebnn } from "./webnn";
import { WebnnBatch, WebnnRuntime } from "./webnn_runtime";

export interface DeviceState {
  status: string;
  message: string;
  adapter: Record<string, string | boolean>;
  features: string[];
  limits: Record<string, number>;
  webnn: WebnnReport;
  memory: Record<string, number | null>;
  cache: CacheReport;
  cache_limit: number;
  /** Set by the view's button: any new value empties the weight cache. */
  cache_clear: number;
  /** The WebGPU batch running, where it has taken a while (not synced to the kernel). */
  progress: Progress | null;
  /** Set by the view's button: any new value cancels the running and the waiting WebGPU batches. */
  cancel: number;
  /** How large tensors travel, set by the kernel: "http" (the Jupyter server's transfer path) or "comm". */
  transfer: string;
  transfer_message: string;
}

export interface Progress {
  seq: number;
  done: number;
  total: number;
}

/** What a Session uses of its widget model (in the worker, a stand-in that relays to the page's). */
export interface ModelPort {
  get<K extends keyof DeviceState>(key: K): DeviceState[K];
  set<K extends keyof DeviceState>(key: K, value: DeviceState[K]): void;
  save_changes(): void;
  send(content: unknown, callbacks?: undefined, buffers?: ArrayBuffer[]): void;
  on(event: string, callback: () => void): void;
}

/** A long batch is submitted in chunks of CHUNK_COMMANDS commands or CHUNK_MS of recording, whichever
 * comes first; its progress shows after PROGRESS_MS. */
const CHUNK_COMMANDS = 64;
const CHUNK_MS = 50;
const PROGRESS_MS = 100;

interface Fill {
  kind: "fill";
  seq: number;
  hashes: string[];
  /** More fills follow for this batch (the last one has none: what it lacks never comes). */
  more?: boolean;
}

export class Session {
  private gpu: GpuRuntime | null = null;
  private webnn: WebnnRuntime | null = null;
  private queue: Promise<void> = Promise.resolve();
  private timer: ReturnType<typeof setInterval> | undefined;
  private incoming = new Assembler();
  private transfers = 0;
  private cache: WeightCache | null = null;
  private readonly fills = new Map<number, (fill: Fill, buffers: readonly DataView[]) => void>();
  private received = 0; // the last WebGPU batch received
  private cancelled = 0; // WebGPU batches up to this one stop (or do not start)
  private running: Promise<void> | null = null; // the GPU work of the last chunk submitted
  private shown = 0; // when the running batch's progress was last shown
  private chunk = [0, 0]; // where and when the running batch's current chunk began
  private current = 0; // the WebGPU batch running (0: none)

  private inbox: Promise<void> = Promise.resolve(); // messages whose spooled buffers are being fetched
  private readonly http: HttpTransfer | null;

  constructor(
    private readonly model: ModelPort,
    http: HttpConfig | null = null,
  ) {
    this.http = http ? new HttpTransfer(http) : null;
  }

  async start(): Promise<void> {
    this.model.set("status", "connecting");
    this.model.save_changes();
    if (this.http) this.model.send({ kind: "hello" }); // the kernel probes the HTTP path (before "ready")
    const [context, webnn] = await openWebnn();
    if (context) this.webnn = new WebnnRuntime(context);
    this.model.set("webnn", webnn);
    this.cache = await WeightCache.open(this.model.get("cache_limit") ?? 2 ** 30);
    this.model.on("change:cache_limit", () => this.enqueue(() => this.resizeCache()));
    this.model.on("change:cache_clear", () => this.enqueue(() => this.clearCache()));
    this.model.on("change:cancel", () => this.cancel());
    await this.publishCache();
    try {
      this.gpu = await GpuRuntime.create();
    } catch (error) {
      const kind = error instanceof BrowserError ? error.kind : "js";
      this.model.set("status", kind === "no-webgpu" ? "no-webgpu" : "error");
      this.model.set("message", error instanceof Error ? error.message : String(error));
      this.model.save_changes();
      return;
    }
    if (this.webnn) this.webnn.gpu = this.gpu;
    const { summary } = this.gpu;
    this.model.set("adapter", {
      vendor: summary.vendor,
      architecture: summary.architecture,
      device: summary.device,
      description: summary.description,
      is_fallback: summary.isFallbackAdapter,
    });
    this.model.set("features", summary.features);
    this.model.set("limits", summary.limits);
    this.model.set("memory", { ...memoryReport(this.gpu) });
    this.model.set("status", "ready");
    this.model.set("message", "");
    this.model.save_changes();
    this.timer = setInterval(() => this.publishMemory(), 1000);
    void this.gpu.device.lost.then((info) => {
      this.model.set("status", "lost");
      this.model.set("message", `the GPU device was lost: ${info.message || info.reason}`);
      this.model.save_changes();
    });
  }

  private publishMemory(): void {
    if (!this.gpu) return;
    const now = memoryReport(this.gpu);
    const before = this.model.get("memory");
    if (JSON.stringify(before) !== JSON.stringify(now)) {
      this.model.set("memory", { ...now });
      this.model.save_changes();
    }
  }

  private async publishCache(): Promise<void> {
    if (!this.cache) return;
    this.model.set("cache", await this.cache.report());
    this.model.save_changes();
  }

  private async resizeCache(): Promise<void> {
    if (!this.cache) return;
    this.cache.limit = this.model.get("cache_limit");
    await this.cache.evict();
    await this.publishCache();
  }

  async clearCache(): Promise<void> {
    await this.cache?.clear();
    await this.publishCache();
  }

  /** Run `work` after the batches received so far. */
  private enqueue(work: () => Promise<void>): void {
    this.queue = this.queue.then(work);
  }

  /** Send a message to the kernel, in chunks if it is large (its messages go back to back). */
  private send(content: object, buffers: ArrayBuffer[] = []): void {
    for (const [part, pieces] of split(content, buffers, ++this.transfers)) {
      this.model.send(part, undefined, pieces);
    }
  }

  /** A message from the kernel: batches run in arrival order, each answered with one reply. */
  receive(content: unknown, buffers: readonly DataView[]): void {
    const [message, lost] = this.incoming.feed(content, buffers);
    if (lost) this.model.send({ kind: "lost", message: lost });
    if (!message) return;
    // spooled buffers are fetched at once; messages are dispatched in arrival order
    const spooled = this.http && "spooled" in (message[0] as object);
    const ready = spooled && this.http ? this.http.fetchSpooled(...message) : Promise.resolve(message);
    this.inbox = this.inbox
      .then(() => ready)
      .then((m) => this.dispatch(...m))
      .catch((error: unknown) => this.model.send({ kind: "lost", message: `in the browser: ${String(error)}` }));
  }

  /** Probe the HTTP transfer path for the kernel: fetch its file, PUT it back, say whether that worked. */
  private async probe(get: string, put: string): Promise<void> {
    try {
      if (!this.http) throw new Error("the page gave the worker no transfer URL");
      await this.http.probe(get, put);
      this.model.send({ kind: "probe", ok: true, message: "" });
    } catch (error) {
      this.model.send({ kind: "probe", ok: false, message: String(error) });
    }
  }

  private dispatch(...message: [unknown, DataView[]]): void {
    const kind = (message[0] as { kind?: string }).kind;
    if (kind === "fill") {
      const [fill, buffers] = message as [Fill, readonly DataView[]];
      const waiter = this.fills.get(fill.seq);
      if (!fill.more) this.fills.delete(fill.seq);
      waiter?.(fill, buffers);
    } else if (kind === "clear-cache") {
      this.enqueue(() => this.clearCache());
    } else if (kind === "cancel") {
      this.cancel();
    } else if (kind === "probe") {
      const probe = message[0] as { get: string; put: string };
      void this.probe(probe.get, probe.put);
    } else {
      this.run(...message);
    }
  }

  /** The bytes of the batch's `cached` uploads by hash, each a promise settled as soon as it is read
   * from the cache (the batch uploads it while the others are still read), else once the kernel's fill
   * that brings it arrives; `settled`: once every entry is looked up, the missing ones filled and
   * stored, and the cache state published. */
  private cachedBytes(batch: Batch): [Map<string, Promise<Uint8Array<ArrayBuffer> | undefined>>, Promise<void>] {
    const wanted = new Map(batch.commands.filter((c): c is Cached => c.op === "cached").map((c) => [c.hash, c.nbytes]));
    if (!wanted.size || !this.cache) return [new Map(), Promise.resolve()];
    const cache = this.cache;
    const { entries, settled } = cache.lookup(wanted);
    const found = new Map<string, Uint8Array<ArrayBuffer>>(); // what the fills brought
    const waiting = new Map<string, (bytes: Uint8Array<ArrayBuffer> | undefined) => void>();
    const arrival = new Map([...entries.keys()].map((hash) => [hash, new Promise<Uint8Array<ArrayBuffer> | undefined>((resolve) => waiting.set(hash, resolve))]));
    const filled = Promise.all(entries.values()).then(async (read) => {
      const missing = [...entries.keys()].filter((_, i) => !read[i]);
      if (!missing.length) return;
      await new Promise<void>((resolve) => {
        this.fills.set(batch.seq, (fill, buffers) => {
          fill.hashes.forEach((hash, i) => {
            const view = buffers[i];
            const bytes = new Uint8Array(view.buffer as ArrayBuffer, view.byteOffset, view.byteLength);
            found.set(hash, bytes);
            waiting.get(hash)?.(bytes);
          });
          if (fill.more) return;
          for (const settle of waiting.values()) settle(undefined); // the last fill: what it lacks never comes
          resolve();
        });
        this.send({ kind: "need", seq: batch.seq, hashes: missing });
      });
    });
    const stored = Promise.all([settled, filled]).then(async () => {
      for (const [hash, bytes] of found) await cache.put(hash, bytes); // checked when read back, as every entry is
      await this.publishCache();
    });
    const bytes = new Map([...entries].map(([hash, read]) => [hash, read.then(async (b) => b ?? (await arrival.get(hash)))]));
    return [bytes, stored];
  }

  /** Stop the running WebGPU batch and those received so far (their replies say `cancelled`). */
  private cancel(): void {
    this.cancelled = this.received;
  }

  /** Before each command of a WebGPU batch: stops a cancelled one; at the end of each chunk submits the
   * work so far and waits for the chunk before it (the GPU stays busy, and the page learns what has run
   * and can cancel in between). */
  private async checkpoint(seq: number, done: number, total: number): Promise<void> {
    const stop = (): void => {
      if (seq <= this.cancelled) throw new BrowserError("cancelled", `batch ${seq} was cancelled at command ${done} of ${total}`);
    };
    stop();
    const now = performance.now();
    if (done === 0) {
      this.shown = now;
      this.chunk = [0, now];
    }
    const [start, began] = this.chunk;
    if (!this.gpu || (done - start < CHUNK_COMMANDS && now - began < CHUNK_MS)) return;
    this.gpu.submit();
    const before = this.running;
    this.running = this.gpu.device.queue.onSubmittedWorkDone().then(() => {
      if (this.current !== seq || performance.now() - this.shown < PROGRESS_MS) return;
      this.model.set("progress", { seq, done, total });
      this.shown = performance.now();
    });
    this.chunk = [done, performance.now()];
    if (before) await before;
    stop();
  }

  private run(content: unknown, buffers: readonly DataView[]): void {
    const batch = content as Batch | WebnnBatch;
    if (batch.kind !== "batch") return;
    if ("device" in batch) {
      this.queue = this.queue.then(() => this.runWebnn(batch, buffers));
      return;
    }
    this.received = batch.seq;
    this.queue = this.queue.then(async () => {
      if (!this.gpu) {
        const message = this.model.get("message") || "WebGPU is not ready in this browser";
        const error = { kind: "no-webgpu", message, command: 0 };
        this.send({ kind: "reply", seq: batch.seq, downloads: [], error, memory: null });
        return;
      }
      const checkpoint = (done: number, total: number): Promise<void> => this.checkpoint(batch.seq, done, total);
      const [cached, stored] = batch.seq <= this.cancelled ? [new Map(), Promise.resolve()] : this.cachedBytes(batch);
      this.current = batch.seq;
      const slots = (batch as { slots?: string[] }).slots ?? [];
      const http = slots.length ? this.http : null; // then large downloads come as Blobs, to be PUT
      const [reply, out] = await runBatch(this.gpu, batch, buffers, cached, checkpoint, http !== null);
      await stored; // the cache holds what the batch was sent before its reply goes
      this.current = 0;
      if (http) {
        try {
          this.send(...(await http.putLarge(reply, out, slots)));
        } catch (error) {
          // the kernel fails the batch's downloads and removes what its slots hold
          this.model.send({ kind: "lost", seq: batch.seq, message: `in the browser: ${String(error)}` });
        }
      } else {
        this.send(reply, await arrayBuffers(out));
      }
      if (this.model.get("progress")) this.model.set("progress", null);
    });
  }

  private async runWebnn(batch: WebnnBatch, buffers: readonly DataView[]): Promise<void> {
    if (!this.webnn) {
      const error = { kind: "unsupported", message: this.model.get("webnn").reason, command: 0 };
      this.send({ kind: "reply", device: "webnn", seq: batch.seq, downloads: [], error, memory: null });
      return;
    }
    const [reply, out] = await this.webnn.run(batch, buffers);
    this.send(reply, out);
  }

  dispose(): void {
    clearInterval(this.timer);
    this.webnn?.dispose();
    this.gpu?.device.destroy();
  }
}
