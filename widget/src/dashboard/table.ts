// The tensor table: sortable by any column (click a header; again to reverse), unpin buttons on
// pinned rows. The sort survives redraws because it lives in the view, not in the kernel.
import { button, h } from "../common/dom";
import { bytes } from "../common/format";
import type { Action, TensorRow } from "./state";

type Key = "name" | "shape" | "dtype" | "device" | "bytes" | "references" | "consumers" | "pinned";

interface Column {
  key: Key;
  title: string;
  value: (row: TensorRow) => string | number;
  show: (row: TensorRow) => string;
}

const COLUMNS: Column[] = [
  { key: "name", title: "name", value: (r) => r.name, show: (r) => r.name },
  { key: "shape", title: "shape", value: (r) => r.shape.reduce((a, b) => a * b, 1), show: (r) => `(${r.shape.join(", ")})` },
  { key: "dtype", title: "dtype", value: (r) => r.dtype, show: (r) => r.dtype },
  { key: "device", title: "device", value: (r) => r.device, show: (r) => r.device },
  { key: "bytes", title: "memory", value: (r) => r.bytes, show: (r) => bytes(r.bytes) },
  { key: "references", title: "refs", value: (r) => r.references, show: (r) => String(r.references) },
  { key: "consumers", title: "consumers", value: (r) => r.consumers.join(","), show: (r) => r.consumers.join(", ") || "–" },
  { key: "pinned", title: "pinned", value: (r) => (r.pinned ? 1 : 0), show: (r) => (r.pinned ? "yes" : "") },
];

export class TensorTable {
  private key: Key = "bytes";
  private descending = true;

  constructor(private readonly act: (action: Action) => void) {}

  render(rows: TensorRow[], total: number, showManager: boolean): HTMLElement {
    const box = h("div", "al-dash-table-box");
    const table = h("table", "al-dash-table");
    const head = table.createTHead().insertRow();
    COLUMNS.forEach((column) => {
      const th = h("th", "", column.title);
      th.dataset.key = column.key;
      if (column.key === this.key) th.textContent += this.descending ? " ▼" : " ▲";
      th.addEventListener("click", () => {
        this.descending = column.key === this.key ? !this.descending : column.key === "bytes";
        this.key = column.key;
        box.replaceWith(this.render(rows, total, showManager));
      });
      head.appendChild(th);
    });
    head.appendChild(h("th"));
    const column = COLUMNS.find((c) => c.key === this.key) ?? COLUMNS[0];
    const sign = this.descending ? -1 : 1;
    const sorted = [...rows].sort((a, b) => {
      const va = column.value(a);
      const vb = column.value(b);
      return sign * (va < vb ? -1 : va > vb ? 1 : 0) || a.name.localeCompare(b.name);
    });
    const body = table.createTBody();
    sorted.forEach((row) => {
      const tr = body.insertRow();
      tr.dataset.tensor = row.name;
      COLUMNS.forEach((c) => {
        const text = c.key === "name" && showManager ? `${row.name} (#${row.manager})` : c.show(row);
        tr.appendChild(h("td", c.key === "name" || c.key === "shape" ? "al-mono" : "", text));
      });
      const actions = h("td");
      if (row.pinned) {
        actions.appendChild(
          button("unpin", `unpin ${row.name} so that it can be freed`, () => this.act({ action: "unpin", tensor: row.name, manager: row.manager }), "al-button al-small"),
        );
      }
      tr.appendChild(actions);
    });
    box.appendChild(table);
    if (total > rows.length) box.appendChild(h("div", "al-muted", `showing the ${rows.length} largest of ${total} tensors`));
    if (rows.length === 0) box.appendChild(h("div", "al-muted", "No shared tensors."));
    return box;
  }
}
