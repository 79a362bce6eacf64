// The memory dashboard's view: header with actions, notices, budget gauges, memory per model and
// per device, memory over time, the tensor table and the recommendations. Redrawn on state changes.
import type { AnyModel } from "@anywidget/types";
import { banner, button, h, redrawOn } from "../common/dom";
import { bytes, percent } from "../common/format";
import { memoryChart } from "./chart";
import type { Action, BudgetRow, DashboardState, DeviceRow, ModelRow, RecommendationRow } from "./state";
import { TensorTable } from "./table";

/** A horizontal bar; `alarm` colours it amber above 70% and red above 90% (budgets, not shares). */
function bar(fraction: number, title: string, alarm = false): HTMLElement {
  const track = h("div", "al-bar-track");
  track.title = title;
  const level = !alarm ? "" : fraction > 0.9 ? " al-danger" : fraction > 0.7 ? " al-warn" : "";
  const fill = h("div", `al-bar-fill${level}`);
  fill.style.width = `${Math.min(100, Math.max(fraction > 0 ? 1 : 0, fraction * 100)).toFixed(1)}%`;
  track.appendChild(fill);
  return track;
}

function gauges(rows: BudgetRow[]): HTMLElement {
  const box = h("div", "al-dash-gauges");
  if (rows.length === 0) {
    box.appendChild(h("div", "al-muted", "No managed memory yet."));
    return box;
  }
  rows.forEach((row) => {
    const gauge = h("div", "al-dash-gauge");
    gauge.dataset.device = row.device;
    const name = `${row.device}${row.label ? ` ${row.label}` : ""}`;
    const limit = row.budget ?? Math.max(row.peak, 1);
    const title = row.budget === null ? `${bytes(row.current)} (no budget)` : `${bytes(row.current)} of ${bytes(row.budget)} (${percent(row.current, row.budget)})`;
    gauge.append(h("div", "al-dash-gauge-name", name), bar(row.current / limit, title, row.budget !== null), h("div", "al-dash-gauge-text", title));
    const extra = [`peak ${bytes(row.peak)}`];
    if (row.evictions) extra.push(`${row.evictions} evicted`);
    if (row.refusals) extra.push(`${row.refusals} refused`);
    gauge.appendChild(h("div", "al-muted al-dash-gauge-extra", extra.join(" · ")));
    box.appendChild(gauge);
  });
  const saved = rows.find((r) => r.saved > 0);
  if (saved) box.appendChild(h("div", "al-dash-saved", `sharing saves ${bytes(saved.saved)}`));
  return box;
}

function models(rows: ModelRow[], act: (a: Action) => void): HTMLElement {
  const box = h("div", "al-dash-panel");
  box.appendChild(h("div", "al-section-title", "Memory per model"));
  if (rows.length === 0) box.appendChild(h("div", "al-muted", "No model holds shared tensors."));
  const top = Math.max(1, ...rows.map((r) => r.bytes));
  rows.forEach((row) => {
    const line = h("div", "al-dash-row");
    line.dataset.model = row.model;
    line.append(
      h("span", "al-dash-row-name", row.model),
      bar(row.bytes / top, `${bytes(row.exclusive)} exclusive, ${bytes(row.shared)} shared`),
      h("span", "al-dash-row-value", `${bytes(row.bytes)} · ${row.tensors} tensors`),
      button("release", `release_model_tensors(${JSON.stringify(row.model)})`, () => act({ action: "release", model: row.model, manager: row.manager }), "al-button al-small"),
    );
    box.appendChild(line);
  });
  return box;
}

function devices(rows: DeviceRow[]): HTMLElement {
  const box = h("div", "al-dash-panel");
  box.appendChild(h("div", "al-section-title", "Memory per device"));
  rows.forEach((row) => {
    const line = h("div", "al-dash-device");
    line.dataset.device = row.name;
    const head = h("div", "al-dash-row");
    const limit = row.limit ? ` of ${bytes(row.limit)}` : "";
    head.append(h("span", "al-dash-row-name", row.label), h("span", "al-dash-row-value", `${bytes(row.allocated)}${limit}`));
    line.appendChild(head);
    const detail = `${row.name} · shared tensors ${bytes(row.shared)} · peak ${bytes(row.peak)}`;
    line.appendChild(h("div", "al-muted al-dash-device-detail", detail));
    line.title = row.description;
    box.appendChild(line);
  });
  return box;
}

function recommendations(rows: RecommendationRow[]): HTMLElement {
  const box = h("div", "al-dash-recs");
  box.appendChild(h("div", "al-section-title", "Recommendations"));
  if (rows.length === 0) box.appendChild(h("div", "al-muted", "Nothing to recommend: memory is in good shape."));
  rows.forEach((row) => {
    const item = h("div", "al-dash-rec");
    item.append(h("span", `al-dash-tag al-dash-tag-${row.action}`, row.action), h("strong", "", `saves ${bytes(row.bytes_saved)}`));
    const names = row.tensors.join(", ") + (row.more ? ` and ${row.more} more` : "");
    item.append(h("div", "al-dash-rec-how", row.how), h("div", "al-muted al-mono al-dash-rec-names", names));
    box.appendChild(item);
  });
  return box;
}

type Key = keyof DashboardState & string;

/** Each part redraws only when its own keys change, so the table keeps its scroll while devices poll. */
export function renderDashboard(model: AnyModel<DashboardState>, el: HTMLElement): () => void {
  const root = h("div", "al-widget al-dashboard");
  el.appendChild(root);
  const act = (action: Action): void => model.send(action);
  const table = new TensorTable(act);
  let lastNotice = -1;

  const header = (): HTMLElement => {
    const box = h("div", "al-header");
    box.append(
      h("span", "al-title", "Memory"),
      h("span", "al-subtitle", `${model.get("tensor_count")} shared tensors · ${model.get("managers_count")} managers`),
      h("span", "al-spacer"),
      button("Refresh", "read the managers and devices now", () => act({ action: "refresh" })),
      button("Optimize", "optimize_memory_usage(): free unreferenced tensors, merge duplicates", () => act({ action: "optimize" }), "al-button al-primary"),
    );
    return box;
  };
  const notice = (): HTMLElement => {
    const box = h("div");
    const current = model.get("notice") ?? {};
    if (current.text && current.seq !== undefined && current.seq !== lastNotice) {
      lastNotice = current.seq;
      const shown = banner(current.kind ?? "info", current.text);
      box.appendChild(shown);
      // information steps aside after a while; errors stay until the next notice
      if (current.kind !== "error") window.setTimeout(() => shown.remove(), 15000);
    }
    return box;
  };
  const parts: [readonly Key[], () => HTMLElement][] = [
    [["tensor_count", "managers_count"], header],
    [["notice"], notice],
    [["budgets"], () => {
      const box = h("div");
      box.append(h("div", "al-section-title", "Budget"), gauges(model.get("budgets") ?? []));
      return box;
    }],
    [["models", "devices"], () => {
      const box = h("div", "al-dash-grid2");
      box.append(models(model.get("models") ?? [], act), devices(model.get("devices") ?? []));
      return box;
    }],
    [["history"], () => {
      const box = h("div");
      box.append(h("div", "al-section-title", "Memory over time"), memoryChart(model.get("history") ?? [], Date.now() / 1000));
      return box;
    }],
    [["tensors", "tensor_count", "managers_count"], () => {
      const box = h("div");
      const rows = model.get("tensors") ?? [];
      box.append(h("div", "al-section-title", "Shared tensors"), table.render(rows, model.get("tensor_count") ?? 0, (model.get("managers_count") ?? 0) > 1));
      return box;
    }],
    [["recommendations"], () => recommendations(model.get("recommendations") ?? [])],
    [["last_event"], () => h("div", "al-muted al-dash-last", model.get("last_event") ? `last event: ${model.get("last_event")}` : "")],
  ];
  const stops = parts.map(([keys, build]) => {
    const slot = h("div", "al-dash-part");
    root.appendChild(slot);
    return redrawOn(model, keys, () => {
      const scroll = slot.querySelector(".al-dash-table-box")?.scrollTop ?? 0;
      slot.replaceChildren(build());
      const box = slot.querySelector(".al-dash-table-box");
      if (box) box.scrollTop = scroll;
    });
  });
  return () => stops.forEach((stop) => stop());
}
