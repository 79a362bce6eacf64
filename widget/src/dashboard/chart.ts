// Memory over time: one step line per device, drawn as SVG from the event history's points.
import { bytes } from "../common/format";
import type { HistoryPoint } from "./state";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 560;
const HEIGHT = 150;
const PAD = { left: 64, right: 12, top: 10, bottom: 22 };
export const SERIES_COLORS = [
  "var(--jp-brand-color1, #1976d2)",
  "var(--jp-warn-color1, #f57c00)",
  "var(--jp-success-color1, #388e3c)",
  "var(--jp-accent-color1, #7b1fa2)",
];

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  Object.entries(attrs).forEach(([key, value]) => node.setAttribute(key, String(value)));
  return node;
}

function ago(t: number, now: number): string {
  const s = Math.max(0, now - t);
  if (s < 10) return `-${s.toFixed(1)} s`;
  return s < 60 ? `-${s.toFixed(0)} s` : `-${(s / 60).toFixed(1)} min`;
}

/** The chart, or a line of text when there is no history yet. */
export function memoryChart(points: HistoryPoint[], now: number): HTMLElement {
  const box = document.createElement("div");
  box.className = "al-dash-chart";
  if (points.length === 0) {
    box.textContent = "No memory events yet: register shared tensors or load a model with sharing=manager.";
    box.classList.add("al-muted");
    return box;
  }
  const devices = [...new Set(points.map((p) => p.device))];
  const t0 = Math.min(...points.map((p) => p.t));
  const t1 = Math.max(now, ...points.map((p) => p.t));
  const top = Math.max(1, ...points.map((p) => p.bytes));
  const x = (t: number): number => PAD.left + ((t - t0) / Math.max(t1 - t0, 1e-3)) * (WIDTH - PAD.left - PAD.right);
  const y = (b: number): number => PAD.top + (1 - b / top) * (HEIGHT - PAD.top - PAD.bottom);
  const root = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, width: "100%", role: "img" });
  root.setAttribute("aria-label", "memory held over time");
  [0, 0.5, 1].forEach((f) => {
    const yy = y(top * f);
    root.appendChild(svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: yy, y2: yy, class: "al-dash-grid" }));
    const label = svg("text", { x: PAD.left - 6, y: yy + 4, "text-anchor": "end", class: "al-dash-axis" });
    label.textContent = bytes(top * f);
    root.appendChild(label);
  });
  [t0, t1].forEach((t, i) => {
    const label = svg("text", { x: x(t), y: HEIGHT - 6, "text-anchor": i ? "end" : "start", class: "al-dash-axis" });
    label.textContent = i ? "now" : ago(t, now);
    root.appendChild(label);
  });
  devices.forEach((device, i) => {
    const series = points.filter((p) => p.device === device);
    let path = `M ${x(series[0].t)} ${y(series[0].bytes)}`;
    series.slice(1).forEach((p) => {
      path += ` H ${x(p.t)} V ${y(p.bytes)}`;
    });
    path += ` H ${x(t1)}`;
    const line = svg("path", { d: path, fill: "none", "stroke-width": 2 });
    line.style.stroke = SERIES_COLORS[i % SERIES_COLORS.length];
    root.appendChild(line);
  });
  box.appendChild(root);
  const legend = document.createElement("div");
  legend.className = "al-dash-legend";
  devices.forEach((device, i) => {
    const item = document.createElement("span");
    const swatch = document.createElement("span");
    swatch.className = "al-dash-swatch";
    swatch.style.background = SERIES_COLORS[i % SERIES_COLORS.length];
    item.append(swatch, document.createTextNode(device));
    legend.appendChild(item);
  });
  box.appendChild(legend);
  return box;
}
