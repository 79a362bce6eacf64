// The model demos' anywidget: one bundle for BertDemo, VitDemo, ClipDemo and WhisperDemo; `kind` picks
// the view that goes inside the shared frame (device picker, loading progress, timings).
import type { AnyWidget } from "@anywidget/types";
import "../common/theme.css";
import "./demos.css";
import { renderBert } from "./heatmap";
import { renderClip, renderVit } from "./image";
import { shell } from "./shell";
import type { BertState, ClipState, DemoState, ImageState, Model, WhisperState } from "./state";
import { renderWhisper } from "./whisper";

type View = (model: Model<DemoState>, body: HTMLElement) => () => void;

const VIEWS: Readonly<Record<string, View>> = {
  bert: (model, body) => renderBert(model as Model<BertState>, body),
  vit: (model, body) => renderVit(model as Model<ImageState>, body),
  clip: (model, body) => renderClip(model as Model<ClipState>, body),
  whisper: (model, body) => renderWhisper(model as Model<WhisperState>, body),
};

const widget: AnyWidget<DemoState> = {
  render({ model, el }) {
    const view = VIEWS[model.get("kind")];
    if (!view) throw new Error(`accelerate_lab: no demo view for kind ${JSON.stringify(model.get("kind"))}`);
    const frame = shell(model, el);
    const stop = view(model, frame.body);
    return () => {
      stop();
      frame.stop();
    };
  },
};

export default widget;
