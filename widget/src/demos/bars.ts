// Labels with probabilities as horizontal bars (ViT's top five, CLIP's labels), most likely first.
import { h } from "../common/dom";
import { probability } from "./format";
import type { Prediction } from "./state";

export function bars(predictions: Prediction[]): HTMLElement {
  const box = h("div", "al-demo-bars");
  predictions.forEach((prediction, i) => {
    const row = h("div", i === 0 ? "al-demo-bar al-demo-bar-top" : "al-demo-bar");
    row.dataset.label = prediction.label;
    const label = h("span", "al-demo-bar-label", prediction.label);
    label.title = prediction.label;
    const track = h("div", "al-bar-track");
    const fill = h("div", "al-bar-fill");
    fill.style.width = `${Math.max(0.5, 100 * prediction.probability).toFixed(1)}%`;
    track.appendChild(fill);
    row.append(label, track, h("span", "al-mono al-demo-bar-value", probability(prediction.probability)));
    box.appendChild(row);
  });
  return box;
}
