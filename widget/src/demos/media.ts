// Choosing a file in a demo: a button that opens the file dialog, and dropping a file on a target.
import { button, h } from "../common/dom";

export function filePicker(label: string, accept: string, onFile: (file: File) => void): HTMLElement {
  const input = h("input", "al-demo-file");
  input.type = "file";
  input.accept = accept;
  input.hidden = true;
  input.addEventListener("change", () => {
    const file = input.files?.[0];
    if (file) onFile(file);
    input.value = "";
  });
  const open = button(label, `choose a file (${accept})`, () => input.click(), "al-button al-demo-choose");
  const box = h("span", "al-demo-picker");
  box.append(input, open);
  return box;
}

export function dropTarget(node: HTMLElement, onFile: (file: File) => void): void {
  node.addEventListener("dragover", (event) => {
    event.preventDefault();
    node.classList.add("al-demo-dragging");
  });
  node.addEventListener("dragleave", () => node.classList.remove("al-demo-dragging"));
  node.addEventListener("drop", (event) => {
    event.preventDefault();
    node.classList.remove("al-demo-dragging");
    const file = event.dataTransfer?.files?.[0];
    if (file) onFile(file);
  });
}

/** An object URL for bytes the kernel sent (a Bytes trait arrives as a DataView); revoke it when replaced. */
export function blobUrl(view: DataView, type: string): string {
  const copy = new Uint8Array(view.byteLength);
  copy.set(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
  return URL.createObjectURL(new Blob([copy], { type }));
}
