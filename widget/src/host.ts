// The page's side of a BrowserDevice model: starts its dedicated worker (./worker.ts, bundled by
// build.mjs into the string WORKER_SOURCE, WGSL included) and relays the model both ways: custom
// messages from the kernel and the keys the kernel or a view sets go in; what the worker's Session sets,
// saves and sends comes out. The page itself only draws views.
import type { AnyModel } from "@anywidget/types";
import type { DeviceState } from "./session";
import { pageHttpConfig } from "./transfer";
import type { FromWorker, ToWorker } from "./worker";

declare const WORKER_SOURCE: string;

/** The keys the worker follows (the kernel's cap, the view's buttons). */
const RELAYED: readonly (keyof DeviceState)[] = ["cache_limit", "cache_clear", "cancel"];

/** Start `model`'s worker; resolves when its Session has started, to the function that stops it. */
export async function startWorker(model: AnyModel<DeviceState>): Promise<() => void> {
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
  const worker = new Worker(url, { name: "accelerate_lab BrowserDevice" });
  const post = (message: ToWorker, transfer: Transferable[] = []): void => worker.postMessage(message, transfer);
  const started = new Promise<void>((resolve) => {
    worker.onmessage = (event: MessageEvent<FromWorker>) => {
      const message = event.data;
      if (message.type === "started") resolve();
      else if (message.type === "set") model.set(message.key, message.value as never);
      else if (message.type === "save") model.save_changes();
      else model.send(message.content, undefined, message.buffers);
    };
    worker.onerror = (event: ErrorEvent) => {
      model.set("status", "error");
      model.set("message", `the BrowserDevice worker failed: ${event.message}`);
      model.save_changes();
      resolve();
    };
  });
  for (const key of RELAYED) model.on(`change:${key}`, () => post({ type: "set", key, value: model.get(key) }));
  model.on("msg:custom", (content: unknown, buffers: DataView[]) => post({ type: "msg", content, buffers }));
  const state = Object.fromEntries(RELAYED.map((key) => [key, model.get(key)]));
  post({ type: "init", state, http: pageHttpConfig() });
  await started;
  URL.revokeObjectURL(url);
  return () => post({ type: "dispose" }); // the worker destroys its GPU device and WebNN context, and ends
}
