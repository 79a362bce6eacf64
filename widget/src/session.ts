// One BrowserDevice model's connection: creates the WebGPU runtime and the WebNN context, publishes
// what the browser has (adapter, features, limits, WebNN) in the model's state, runs the kernel's
// batches one at a time (a batch marked `device: "webnn"` on the WebNN runtime) and sends replies
// with binary buffers, chunked both ways where they exceed Jupyter's message limit (./chunks).
import type { AnyModel } from "@anywidget/types";
import { Assembler, split } from "./chunks";
import { BrowserError, GpuRuntime } from "./gpu";
import { Batch, memoryReport, runBatch } from "./protocol";
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
}

export class Session {
  private gpu: GpuRuntime | null = null;
  private webnn: WebnnRuntime | null = null;
  private queue: Promise<void> = Promise.resolve();
  private timer: number | undefined;
  private incoming = new Assembler();
  private transfers = 0;

  constructor(private readonly model: AnyModel<DeviceState>) {}

  async start(): Promise<void> {
    this.model.set("status", "connecting");
    this.model.save_changes();
    const [context, webnn] = await openWebnn();
    if (context) this.webnn = new WebnnRuntime(context);
    this.model.set("webnn", webnn);
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
    this.timer = window.setInterval(() => this.publishMemory(), 1000);
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
    if (message) this.run(...message);
  }

  private run(content: unknown, buffers: readonly DataView[]): void {
    const batch = content as Batch | WebnnBatch;
    if (batch.kind !== "batch") return;
    if ("device" in batch) {
      this.queue = this.queue.then(() => this.runWebnn(batch, buffers));
      return;
    }
    this.queue = this.queue.then(async () => {
      if (!this.gpu) {
        const message = this.model.get("message") || "WebGPU is not ready in this browser";
        const error = { kind: "no-webgpu", message, command: 0 };
        this.send({ kind: "reply", seq: batch.seq, downloads: [], error, memory: null });
        return;
      }
      const [reply, out] = await runBatch(this.gpu, batch, buffers);
      this.send(reply, out);
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
    window.clearInterval(this.timer);
    this.webnn?.dispose();
    this.gpu?.device.destroy();
  }
}
