// The BrowserDevice view: what the notebook's browser offers (status, adapter, features, limits,
// WebNN), the memory the device holds, the weight cache (with a button that empties it) and the
// progress of a long batch (with a button that cancels it), redrawn whenever the model's state changes
// (the progress line in place: it changes often, and its button must stay the same element to be clicked).
import type { AnyModel } from "@anywidget/types";
import type { DeviceState } from "./session";

const STATUS_TEXT: Readonly<Record<string, string>> = {
  connecting: "connecting to this browser's GPU…",
  ready: "ready: tensors moved to 'browser:webgpu' live in this browser",
  "no-webgpu": "no WebGPU in this browser: tensors stay on the kernel's devices",
  error: "WebGPU failed to start: tensors stay on the kernel's devices",
  lost: "the GPU device was lost: re-run the cell that shows this widget",
};

function megabytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return "n/a";
  return bytes < 2 ** 20 ? `${(bytes / 2 ** 10).toFixed(1)} KiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

function element<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text = ""): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

function row(table: HTMLTableElement, label: string, value: string): void {
  const tr = table.insertRow();
  tr.appendChild(element("th", "al-bd-label", label));
  tr.appendChild(element("td", "al-bd-value", value));
}

function draw(model: AnyModel<DeviceState>, root: HTMLElement, content: HTMLElement): void {
  const status = model.get("status") || "connecting";
  root.dataset.status = status;
  root.dataset.transfer = model.get("transfer") ?? "";
  content.replaceChildren();
  root = content;
  const head = element("div", "al-bd-head");
  head.appendChild(element("span", `al-bd-dot al-bd-${status}`));
  head.appendChild(element("strong", "al-bd-title", "BrowserDevice"));
  head.appendChild(element("span", "al-bd-status", STATUS_TEXT[status] ?? status));
  root.appendChild(head);
  const message = model.get("message");
  if (message) root.appendChild(element("div", "al-bd-message", message));

  const table = element("table", "al-bd-table");
  const adapter = model.get("adapter") ?? {};
  if (status === "ready" || status === "lost") {
    const name = [adapter.vendor, adapter.architecture, adapter.device].filter(Boolean).join(" / ") || "(not disclosed)";
    row(table, "adapter", name);
    row(table, "description", String(adapter.description || "(not disclosed)"));
    row(table, "fallback", adapter.is_fallback ? "yes (software: SwiftShader or similar)" : "no (hardware)");
    const features = model.get("features") ?? [];
    row(table, "features", features.length ? features.join(", ") : "(none)");
    const memory = model.get("memory") ?? {};
    row(table, "GPU memory", `${megabytes(memory.allocated_bytes)} in ${memory.buffers ?? 0} buffers (peak ${megabytes(memory.peak_bytes)})`);
    row(table, "JS heap", megabytes(memory.js_heap_bytes));
    row(table, "work", `${memory.dispatches ?? 0} dispatches, ${memory.pipelines ?? 0} pipelines`);
  }
  const transfer = model.get("transfer");
  if (transfer) {
    const why = model.get("transfer_message");
    const text = transfer === "http" ? "HTTP through the Jupyter server (large tensors), comm for the rest" : `comm only${why ? ` (${why})` : ""}`;
    row(table, "transfer", transfer === "probing" ? "probing the HTTP path…" : text);
  }
  const webnn = model.get("webnn");
  const graphs = webnn?.available ? `available ('browser:webnn', ${webnn.ops} ops in this context)` : "";
  row(table, "WebNN", graphs || webnn?.reason || "probing…");
  const cache = model.get("cache");
  if (cache) {
    const text = cache.available
      ? `${megabytes(cache.bytes)} in ${cache.entries} weights (limit ${megabytes(cache.limit)}); ` +
        `${cache.hits} read here, ${cache.misses} sent by the kernel`
      : cache.reason;
    row(table, "weight cache", text);
    if (cache.available) {
      const clear = element("button", "al-bd-button al-bd-clear", "clear cache");
      clear.title = "delete the model weights this browser keeps across sessions";
      clear.disabled = cache.entries === 0;
      clear.onclick = () => model.set("cache_clear", (model.get("cache_clear") ?? 0) + 1);
      table.rows[table.rows.length - 1].cells[1].append(" ", clear);
    }
  }
  root.appendChild(table);

  const limits = model.get("limits") ?? {};
  const keys = Object.keys(limits).sort();
  if (keys.length) {
    const details = element("details", "al-bd-limits");
    details.appendChild(element("summary", "", `limits (${keys.length})`));
    const limitTable = element("table", "al-bd-table");
    keys.forEach((key) => row(limitTable, key, limits[key].toLocaleString("en-US")));
    details.appendChild(limitTable);
    root.appendChild(details);
  }
}

/** The line showing a running batch's progress, with its cancel button; the function updating it. */
function progressLine(model: AnyModel<DeviceState>): [HTMLElement, () => void] {
  const line = element("div", "al-bd-progress");
  const text = element("span", "al-bd-label");
  const cancel = element("button", "al-bd-button al-bd-cancel", "cancel");
  cancel.title = "stop this batch and the ones waiting (the kernel's awaitable raises BrowserCancelled)";
  cancel.onclick = () => model.set("cancel", (model.get("cancel") ?? 0) + 1);
  line.append(text, " ", cancel);
  const update = (): void => {
    const progress = model.get("progress");
    line.hidden = !progress;
    if (progress) text.textContent = `running batch ${progress.seq}: ${progress.done} of ${progress.total} commands done`;
  };
  return [line, update];
}

/** Render into `el`; returns the clean-up function anywidget calls when the view goes. */
export function renderView(model: AnyModel<DeviceState>, el: HTMLElement): () => void {
  const root = element("div", "al-browser-device");
  const content = element("div", "");
  const [line, update] = progressLine(model);
  root.append(content, line);
  el.appendChild(root);
  const redraw = (): void => draw(model, root, content);
  const events = ["status", "message", "adapter", "features", "limits", "webnn", "memory", "cache", "transfer"].map((k) => `change:${k}`);
  events.forEach((event) => model.on(event, redraw));
  model.on("change:progress", update);
  redraw();
  update();
  return () => {
    events.forEach((event) => model.off(event, redraw));
    model.off("change:progress", update);
  };
}
