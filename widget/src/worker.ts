// The dedicated Web Worker of one BrowserDevice model: its Session (WebGPU, WebNN, the weight cache and
// every batch) runs here, off the notebook page's main thread, so a long batch leaves the page
// responsive. The page (./host.ts) relays the model: its state and custom messages come in, and what
// the Session sets, saves and sends goes out.
import { DeviceState, ModelPort, Session } from "./session";
import type { HttpConfig } from "./transfer";

/** Page -> worker. */
export type ToWorker =
  | { type: "init"; state: Partial<DeviceState>; http: HttpConfig | null }
  | { type: "set"; key: keyof DeviceState; value: unknown }
  | { type: "msg"; content: unknown; buffers: DataView[] }
  | { type: "dispose" };

/** Worker -> page. */
export type FromWorker =
  | { type: "started" }
  | { type: "set"; key: keyof DeviceState; value: unknown }
  | { type: "save" }
  | { type: "send"; content: unknown; buffers: ArrayBuffer[] };

interface WorkerScope {
  postMessage(message: FromWorker): void;
  close(): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
}

const scope = self as unknown as WorkerScope;
const post = (message: FromWorker): void => scope.postMessage(message);

class WorkerModel implements ModelPort {
  state: Partial<DeviceState> = {};
  private readonly handlers = new Map<string, (() => void)[]>();

  get<K extends keyof DeviceState>(key: K): DeviceState[K] {
    return this.state[key] as DeviceState[K];
  }

  set<K extends keyof DeviceState>(key: K, value: DeviceState[K]): void {
    this.state[key] = value;
    post({ type: "set", key, value });
  }

  save_changes(): void {
    post({ type: "save" });
  }

  send(content: unknown, _callbacks?: undefined, buffers: ArrayBuffer[] = []): void {
    post({ type: "send", content, buffers });
  }

  on(event: string, callback: () => void): void {
    this.handlers.set(event, [...(this.handlers.get(event) ?? []), callback]);
  }

  /** A change made in the page (the kernel or a view set it). */
  changed(key: keyof DeviceState, value: unknown): void {
    (this.state as Record<string, unknown>)[key] = value;
    this.handlers.get(`change:${key}`)?.forEach((f) => f());
  }
}

const model = new WorkerModel();
let session: Session | null = null;

scope.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  if (message.type === "init") {
    model.state = { ...message.state };
    session = new Session(model, message.http);
    void session.start().then(() => post({ type: "started" }));
  } else if (message.type === "set") {
    model.changed(message.key, message.value);
  } else if (message.type === "dispose") {
    session?.dispose();
    scope.close();
  } else {
    session?.receive(message.content, message.buffers);
  }
};
