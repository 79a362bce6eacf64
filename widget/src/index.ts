// The BrowserDevice anywidget: `initialize` connects the model to this browser's WebGPU once per
// model; `render` draws a view of it (as many views as the notebook shows).
import type { AnyWidget } from "@anywidget/types";
import "./browser_device.css";
import { DeviceState, Session } from "./session";
import { renderView } from "./view";

const widget: AnyWidget<DeviceState> = {
  async initialize({ model }) {
    const session = new Session(model);
    model.on("msg:custom", (content: unknown, buffers: DataView[]) => session.receive(content, buffers));
    await session.start();
    return () => session.dispose();
  },
  render({ model, el }) {
    return renderView(model, el);
  },
};

export default widget;
