// What every demo shows around its own body: the title, the model, the device picker (with why a
// device is unavailable), the loading progress, the status line, errors and the timings table.
import { banner, h, redrawOn } from "../common/dom";
import { duration } from "./format";
import type { DemoState, DeviceRow, Model, Timing } from "./state";

function picker<T extends DemoState>(model: Model<T>): { node: HTMLElement; redraw: () => void } {
  const node = h("label", "al-demo-device");
  const select = h("select", "al-select al-demo-device-select");
  select.title = "where the model runs (a device loads the model the first time it is picked)";
  node.append(h("span", "al-muted", "device"), select);
  // a BrowserDevice registers after the cell that shows it: ask the kernel again when the picker opens
  select.addEventListener("focus", () => model.send({ kind: "devices" }));
  select.addEventListener("change", () => {
    model.set("device", select.value as T["device"]);
    model.save_changes();
  });
  const redraw = (): void => {
    const rows: DeviceRow[] = model.get("devices") ?? [];
    select.replaceChildren(
      ...rows.map((row) => {
        const option = h("option", "", row.loaded ? `${row.name} ✓` : row.name);
        option.value = row.name;
        option.disabled = !row.available;
        option.title = row.available ? (row.loaded ? "loaded" : "loads when picked") : row.reason;
        return option;
      }),
    );
    select.value = model.get("device");
    select.disabled = model.get("busy") !== "";
  };
  return { node, redraw };
}

function unavailable(rows: DeviceRow[]): HTMLElement {
  const missing = rows.filter((row) => !row.available);
  const box = h("details", "al-demo-unavailable");
  if (missing.length === 0) return box;
  box.appendChild(h("summary", "al-muted", `${missing.length} device${missing.length > 1 ? "s" : ""} unavailable`));
  missing.forEach((row) => {
    const line = h("div", "al-demo-unavailable-row");
    line.dataset.device = row.name;
    line.append(h("span", "al-mono", row.name), h("span", "al-muted", row.reason));
    box.appendChild(line);
  });
  return box;
}

function progress(busy: string, counts: DemoState["progress"], status: string): HTMLElement {
  const box = h("div", "al-demo-progress");
  if (busy === "") return box;
  const total = counts.total ?? 0;
  const done = counts.done ?? 0;
  const loading = busy === "loading";
  const bar = h("div", loading && total > 0 ? "al-progress" : "al-progress al-indeterminate");
  const fill = h("div");
  if (loading && total > 0) fill.style.width = `${((100 * done) / total).toFixed(1)}%`;
  bar.appendChild(fill);
  bar.setAttribute("role", "progressbar");
  if (loading && total > 0) {
    bar.setAttribute("aria-valuenow", String(done));
    bar.setAttribute("aria-valuemax", String(total));
  }
  const text = loading
    ? total > 0
      ? `loading weights: ${done} of ${total} tensors`
      : "loading weights…"
    : status;
  box.append(bar, h("div", "al-muted al-demo-progress-text", text));
  return box;
}

/** The measured times, grouped by what was done (latest first), so devices compare within a group. */
function timings(rows: Timing[]): HTMLElement {
  const box = h("div", "al-demo-timings");
  if (rows.length === 0) return box;
  box.appendChild(h("div", "al-section-title", "Timings (measured)"));
  const groups = new Map<string, Timing[]>();
  [...rows].reverse().forEach((row) => groups.set(row.what, [...(groups.get(row.what) ?? []), row]));
  const table = h("div", "al-demo-timing-table");
  groups.forEach((group, what) => {
    const slowest = Math.max(...group.map((row) => row.seconds)) || 1;
    group.forEach((row, i) => {
      const line = h("div", i === 0 ? "al-demo-timing al-demo-timing-first" : "al-demo-timing");
      line.dataset.device = row.device;
      line.dataset.what = row.what;
      const track = h("div", "al-bar-track");
      const fill = h("div", "al-bar-fill");
      fill.style.width = `${Math.max(1, (100 * row.seconds) / slowest).toFixed(1)}%`;
      track.appendChild(fill);
      line.append(h("span", "al-demo-timing-what", i === 0 ? what : ""), h("span", "al-mono al-demo-timing-device", row.device), track, h("span", "al-mono al-demo-timing-value", duration(row.seconds)));
      table.appendChild(line);
    });
  });
  box.appendChild(table);
  return box;
}

/** Draws the frame of a demo into `el`; the demo's own view goes into the returned `body`. */
export function shell<T extends DemoState>(model: Model<T>, el: HTMLElement): { body: HTMLElement; stop: () => void } {
  const root = h("div", `al-widget al-demo al-demo-${model.get("kind")}`);
  el.appendChild(root);
  const header = h("div", "al-header");
  const title = h("span", "al-title");
  const name = h("span", "al-subtitle al-demo-model");
  const device = picker(model);
  header.append(title, name, h("span", "al-spacer"), device.node);
  const missing = h("div");
  const notices = h("div", "al-demo-notices");
  const busy = h("div");
  const body = h("div", "al-demo-body");
  const status = h("div", "al-muted al-demo-status");
  const times = h("div");
  root.append(header, missing, notices, busy, body, status, times);

  const stops = [
    redrawOn(model, ["title", "model_name", "model_info", "loaded_on"], () => {
      title.textContent = model.get("title");
      const info = model.get("model_info");
      name.textContent = info ? `${model.get("model_name")} · ${info}` : model.get("model_name");
    }),
    redrawOn(model, ["devices", "device", "busy"], () => {
      device.redraw();
      missing.replaceChildren(unavailable(model.get("devices") ?? []));
    }),
    redrawOn(model, ["busy", "progress", "status"], () => {
      const now = model.get("busy");
      root.dataset.busy = now;
      busy.replaceChildren(progress(now, model.get("progress") ?? {}, model.get("status")));
      status.textContent = now === "" ? model.get("status") : "";
    }),
    redrawOn(model, ["error"], () => {
      const error = model.get("error");
      notices.replaceChildren(...(error ? [banner("error", error)] : []));
    }),
    redrawOn(model, ["timings"], () => times.replaceChildren(timings(model.get("timings") ?? []))),
  ];
  return { body, stop: () => stops.forEach((s) => s()) };
}
