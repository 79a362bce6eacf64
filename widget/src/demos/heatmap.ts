// BertDemo's view: sentences in a text box (one a line), their pairwise cosine similarities as a heatmap.
import { button, h, redrawOn } from "../common/dom";
import type { BertState, Model } from "./state";

/** The heatmap: row labels are the sentences, columns their numbers; darker is more similar. */
function heatmap(sentences: string[], matrix: number[][]): HTMLElement {
  const n = sentences.length;
  const grid = h("div", "al-demo-heatmap");
  grid.style.gridTemplateColumns = `minmax(120px, 320px) repeat(${n}, minmax(44px, 64px))`;
  grid.appendChild(h("div"));
  sentences.forEach((_, j) => grid.appendChild(h("div", "al-demo-heatmap-col", String(j + 1))));
  matrix.forEach((row, i) => {
    const label = h("div", "al-demo-heatmap-row", `${i + 1}  ${sentences[i]}`);
    label.title = sentences[i] ?? "";
    grid.appendChild(label);
    row.forEach((value, j) => {
      const strength = Math.max(0, Math.min(1, value));
      const cell = h("div", "al-demo-heatmap-cell", value.toFixed(2));
      cell.style.setProperty("--al-strength", `${(strength * 100).toFixed(0)}%`);
      if (strength > 0.55) cell.classList.add("al-demo-heatmap-strong");
      cell.dataset.row = String(i);
      cell.dataset.col = String(j);
      cell.title = `${sentences[i]}\n${sentences[j]}\ncosine similarity ${value.toFixed(4)}`;
      grid.appendChild(cell);
    });
  });
  return grid;
}

export function renderBert(model: Model<BertState>, body: HTMLElement): () => void {
  const form = h("div", "al-demo-inputs");
  const text = h("textarea", "al-textarea al-demo-sentences");
  text.rows = 5;
  text.placeholder = "One sentence a line (two or more)";
  const compare = button("Compare", "embed the sentences and compare every pair", () => {
    const sentences = text.value.split("\n").map((s) => s.trim()).filter((s) => s);
    model.send({ kind: "compare", sentences });
  }, "al-button al-primary al-demo-run");
  form.append(text, compare);
  const result = h("div", "al-demo-result");
  body.append(form, result);
  const stops = [
    redrawOn(model, ["sentences"], () => {
      text.value = (model.get("sentences") ?? []).join("\n");
    }),
    redrawOn(model, ["busy"], () => {
      compare.disabled = model.get("busy") !== "";
    }),
    redrawOn(model, ["compared", "similarity"], () => {
      const sentences = model.get("compared") ?? [];
      const matrix = model.get("similarity") ?? [];
      if (matrix.length === 0) {
        result.replaceChildren(h("div", "al-muted al-demo-empty", "Press Compare to embed the sentences and see how alike they are."));
        return;
      }
      const legend = h("div", "al-demo-legend");
      legend.append(h("span", "al-muted", "cosine similarity"), h("span", "al-muted", "≤ 0"), h("span", "al-demo-legend-ramp"), h("span", "al-muted", "1"));
      result.replaceChildren(heatmap(sentences, matrix), legend);
    }),
  ];
  return () => stops.forEach((s) => s());
}
