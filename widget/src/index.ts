// The BrowserDevice anywidget: `initialize` connects the model to this browser's WebGPU once per
// model, in a dedicated worker (./host.ts, ./worker.ts); `render` draws a view of it (as many views
// as the notebook shows).
import type { AnyWidget } from "@anywidget/types";
import "./browser_device.css";
import { startWorker } from "./host";
import type { DeviceState } from "./session";
import { renderView } from "./view";

const widget: AnyWidget<DeviceState> = {
  initialize({ model }) {
    return startWorker(model);
  },
  render({ model, el }) {
    return renderView(model, el);
  },
};

export default widget;
