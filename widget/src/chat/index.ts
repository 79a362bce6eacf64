// The Chat anywidget: pickers, history, a streaming reply, stop, errors and failover notices.
// The kernel streams the reply as "delta" messages; the finished reply lands in `messages`.
import type { AnyModel, AnyWidget } from "@anywidget/types";
import { banner, button, h, redrawOn } from "../common/dom";
import "../common/theme.css";
import "./chat.css";

interface Message {
  role: string;
  content: string;
  by?: string;
}

interface ChatState {
  [key: string]: unknown;
  backends: string[];
  backend: string;
  model: string;
  messages: Message[];
  streaming: boolean;
  status: string;
  error: { kind?: string; text?: string };
  notice: string;
}

const ERROR_TITLES: Readonly<Record<string, string>> = {
  "rate-limit": "Rate limited",
  "circuit-open": "Circuit open",
  config: "Not configured",
  failover: "Every backend failed",
};

function bubble(message: Message): HTMLElement {
  const node = h("div", `al-chat-msg al-chat-${message.role}`);
  node.appendChild(h("div", "al-chat-role", message.role === "user" ? "you" : message.by || message.role));
  node.appendChild(h("div", "al-chat-text", message.content));
  return node;
}

function render(model: AnyModel<ChatState>, el: HTMLElement): () => void {
  const root = h("div", "al-widget al-chat");
  el.appendChild(root);

  const header = h("div", "al-header");
  const backendPicker = h("select", "al-select al-chat-backend");
  backendPicker.title = "backend (from get_available_backends())";
  const modelInput = h("input", "al-input al-chat-model");
  modelInput.placeholder = "default model";
  modelInput.title = "model (empty: the backend's default)";
  backendPicker.addEventListener("change", () => {
    model.set("backend", backendPicker.value);
    model.set("model", "");
    model.save_changes();
  });
  modelInput.addEventListener("change", () => {
    model.set("model", modelInput.value.trim());
    model.save_changes();
  });
  const clear = button("Clear", "forget the conversation", () => model.send({ kind: "clear" }));
  header.append(h("span", "al-title", "Chat"), backendPicker, modelInput, h("span", "al-spacer"), clear);

  const notices = h("div", "al-chat-notices");
  const history = h("div", "al-chat-history");
  const live = h("div", "al-chat-msg al-chat-assistant al-chat-live");
  const liveText = h("div", "al-chat-text");
  live.append(h("div", "al-chat-role", "…"), liveText);
  const progress = h("div", "al-progress al-indeterminate");
  progress.appendChild(h("div"));
  const status = h("div", "al-muted al-chat-status");

  const form = h("form", "al-chat-form");
  const input = h("textarea", "al-textarea al-chat-input");
  input.rows = 2;
  input.placeholder = "Ask something… (Enter sends, Shift+Enter for a new line)";
  const send = button("Send", "send the message", () => form.requestSubmit(), "al-button al-primary al-chat-send");
  const stop = button("Stop", "stop the reply", () => model.send({ kind: "stop" }), "al-button al-chat-stop");
  form.append(input, send, stop);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || model.get("streaming")) return;
    liveText.textContent = "";
    model.send({ kind: "ask", text });
    input.value = "";
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  root.append(header, notices, history, live, progress, status, form);

  const onMessage = (content: { kind?: string; text?: string }): void => {
    if (content.kind === "delta" && content.text) {
      liveText.textContent += content.text;
      history.scrollTop = history.scrollHeight;
    }
  };
  model.on("msg:custom", onMessage);

  const stops = [
    redrawOn(model, ["backends", "backend", "model"], () => {
      const names = model.get("backends") ?? [];
      const current = model.get("backend");
      backendPicker.replaceChildren(...(names.includes(current) ? names : [current, ...names]).map((name) => {
        const option = h("option", "", name);
        option.value = name;
        return option;
      }));
      backendPicker.value = current;
      modelInput.value = model.get("model") ?? "";
    }),
    redrawOn(model, ["messages"], () => {
      const messages = model.get("messages") ?? [];
      history.replaceChildren(...messages.map(bubble));
      if (messages.length === 0) history.appendChild(h("div", "al-muted al-chat-empty", "No messages yet: ask something below."));
      history.scrollTop = history.scrollHeight;
      liveText.textContent = "";
    }),
    redrawOn(model, ["streaming", "status"], () => {
      const streaming = model.get("streaming");
      root.dataset.streaming = String(streaming);
      live.style.display = streaming ? "" : "none";
      progress.style.display = streaming ? "" : "none";
      send.disabled = streaming;
      stop.disabled = !streaming;
      backendPicker.disabled = streaming;
      status.textContent = model.get("status") ?? "";
    }),
    redrawOn(model, ["error", "notice"], () => {
      notices.replaceChildren();
      const notice = model.get("notice");
      if (notice) notices.appendChild(banner("warning", notice));
      const error = model.get("error") ?? {};
      if (error.text) {
        const node = banner("error", "");
        node.dataset.kind = error.kind ?? "error";
        node.append(h("strong", "", `${ERROR_TITLES[error.kind ?? ""] ?? "Error"}: `), document.createTextNode(error.text));
        notices.appendChild(node);
      }
    }),
  ];
  return () => {
    model.off("msg:custom", onMessage);
    stops.forEach((s) => s());
  };
}

const widget: AnyWidget<ChatState> = {
  render({ model, el }) {
    return render(model, el);
  },
};

export default widget;
