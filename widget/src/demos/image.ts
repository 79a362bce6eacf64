// VitDemo's and ClipDemo's views: the picture (chosen or dropped here, or set from Python) beside the
// predictions; CLIP adds its labels and the prompt template.
import { button, h, redrawOn } from "../common/dom";
import { bars } from "./bars";
import { blobUrl, dropTarget, filePicker } from "./media";
import type { ClipState, ImageState, Model } from "./state";

interface ImageView {
  stop: () => void;
  controls: HTMLElement;
}

function sendImage(model: Model<ImageState>, file: File, extra: Record<string, unknown>): void {
  void file.arrayBuffer().then((data) => model.send({ kind: "image", name: file.name, ...extra }, undefined, [data]));
}

function imageView(model: Model<ImageState>, body: HTMLElement, extra: () => Record<string, unknown>, empty: string): ImageView {
  const layout = h("div", "al-demo-image-layout");
  const frame = h("div", "al-demo-image-frame");
  const picture = h("img", "al-demo-image");
  picture.alt = "the image the model sees";
  const caption = h("div", "al-muted al-demo-image-name");
  const hint = h("div", "al-muted al-demo-drop-hint", "Drop an image here or choose one");
  frame.append(picture, hint);
  const onFile = (file: File): void => sendImage(model, file, extra());
  dropTarget(frame, onFile);
  const controls = h("div", "al-demo-controls");
  controls.appendChild(filePicker("Choose image…", "image/*", onFile));
  const left = h("div", "al-demo-image-side");
  left.append(frame, caption);
  const right = h("div", "al-demo-predictions");
  layout.append(left, right);
  body.append(controls, layout);
  let url = "";
  const stops = [
    redrawOn(model, ["image", "image_name"], () => {
      const bytes = model.get("image");
      if (url) URL.revokeObjectURL(url);
      url = bytes && bytes.byteLength ? blobUrl(bytes, "image/png") : "";
      picture.src = url;
      picture.hidden = !url;
      hint.hidden = Boolean(url);
      caption.textContent = model.get("image_name") ?? "";
    }),
    redrawOn(model, ["predictions"], () => {
      const predictions = model.get("predictions") ?? [];
      right.replaceChildren(predictions.length ? bars(predictions) : h("div", "al-muted al-demo-empty", empty));
    }),
  ];
  return {
    controls,
    stop: () => {
      stops.forEach((s) => s());
      if (url) URL.revokeObjectURL(url);
    },
  };
}

export function renderVit(model: Model<ImageState>, body: HTMLElement): () => void {
  const view = imageView(model, body, () => ({}), "Choose an image: its five most likely labels show here.");
  const again = button("Classify again", "classify the same image on the selected device", () => model.send({ kind: "classify" }), "al-button al-demo-run");
  view.controls.appendChild(again);
  const stop = redrawOn(model, ["busy", "image"], () => {
    again.disabled = model.get("busy") !== "" || !model.get("image")?.byteLength;
  });
  return () => {
    stop();
    view.stop();
  };
}

export function renderClip(model: Model<ClipState>, body: HTMLElement): () => void {
  const labels = h("input", "al-input al-demo-labels");
  labels.placeholder = "labels, separated by commas";
  labels.title = "the labels to score (two or more)";
  const template = h("input", "al-input al-demo-template");
  template.title = "the prompt each label goes into ({} marks the place)";
  const current = (): Record<string, unknown> => ({
    labels: labels.value.split(",").map((s) => s.trim()).filter((s) => s),
    template: template.value,
  });
  const fields = h("div", "al-demo-clip-fields");
  const labelsField = h("label", "al-demo-field");
  labelsField.append(h("span", "al-muted", "labels"), labels);
  const templateField = h("label", "al-demo-field");
  templateField.append(h("span", "al-muted", "template"), template);
  fields.append(labelsField, templateField);
  body.appendChild(fields);
  const view = imageView(model, body, current, "Choose an image: each label's probability shows here.");
  const classify = button("Classify", "score the labels against the image", () => model.send({ kind: "classify", ...current() }), "al-button al-primary al-demo-run");
  view.controls.appendChild(classify);
  const stops = [
    redrawOn(model, ["labels", "template"], () => {
      labels.value = (model.get("labels") ?? []).join(", ");
      template.value = model.get("template") ?? "";
    }),
    redrawOn(model, ["busy", "image"], () => {
      classify.disabled = model.get("busy") !== "" || !model.get("image")?.byteLength;
    }),
  ];
  return () => {
    stops.forEach((s) => s());
    view.stop();
  };
}
