// The MemoryDashboard anywidget: a view of the kernel's sharing managers; its buttons send actions.
import type { AnyWidget } from "@anywidget/types";
import "../common/theme.css";
import "./dashboard.css";
import type { DashboardState } from "./state";
import { renderDashboard } from "./view";

const widget: AnyWidget<DashboardState> = {
  render({ model, el }) {
    return renderDashboard(model, el);
  },
};

export default widget;
