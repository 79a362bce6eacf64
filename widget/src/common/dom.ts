// Small DOM helpers shared by the views: elements with a class and text, buttons, and redrawing on
// model changes (with the clean-up anywidget calls when a view goes away).
import type { AnyModel } from "@anywidget/types";

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = "",
  text = "",
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

export function button(label: string, title: string, onClick: () => void, className = "al-button"): HTMLButtonElement {
  const node = h("button", className, label);
  node.type = "button";
  node.title = title;
  node.addEventListener("click", onClick);
  return node;
}

/** Call `redraw` now and whenever one of `keys` changes; returns the function that stops it. */
export function redrawOn<T extends Record<string, unknown>>(
  model: AnyModel<T>,
  keys: readonly (keyof T & string)[],
  redraw: () => void,
): () => void {
  const events = keys.map((key) => `change:${key}`);
  events.forEach((event) => model.on(event, redraw));
  redraw();
  return () => events.forEach((event) => model.off(event, redraw));
}

/** A banner for a notice from the kernel: info (green), warning (amber) or error (red). */
export function banner(kind: string, text: string): HTMLDivElement {
  const node = h("div", `al-banner al-banner-${kind}`, text);
  node.setAttribute("role", kind === "error" ? "alert" : "status");
  return node;
}
