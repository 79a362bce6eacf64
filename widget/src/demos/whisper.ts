// WhisperDemo's view: choose an audio file or record the microphone; the kernel gets 16 kHz float32
// samples as binary buffers and the transcript grows as Whisper decodes each window.
import { banner, button, h, redrawOn } from "../common/dom";
import { dropTarget, filePicker } from "./media";
import { decodeTo16k, Microphone } from "./microphone";
import type { Model, WhisperState } from "./state";

export function renderWhisper(model: Model<WhisperState>, body: HTMLElement): () => void {
  const controls = h("div", "al-demo-controls");
  const player = h("audio", "al-demo-player");
  player.controls = true;
  player.hidden = true;
  const problems = h("div");
  let url = "";
  const onFile = (file: File): void => {
    problems.replaceChildren();
    if (url) URL.revokeObjectURL(url);
    url = URL.createObjectURL(file);
    player.src = url;
    player.hidden = false;
    void file
      .arrayBuffer()
      .then(decodeTo16k)
      .then((samples) => model.send({ kind: "audio", name: file.name }, undefined, [samples]))
      .catch((error: unknown) => problems.replaceChildren(banner("error", `${file.name}: the browser cannot decode it (${String(error)})`)));
  };
  const microphone = new Microphone((samples) => model.send({ kind: "pcm" }, undefined, [samples]));
  const record = button("● Record", "transcribe the microphone while you speak", () => {
    if (model.get("recording")) {
      void microphone.stop().then(() => model.send({ kind: "mic", state: "stop" }));
      return;
    }
    problems.replaceChildren();
    player.hidden = true;
    model.send({ kind: "mic", state: "start" });
    microphone.start().catch((error: unknown) => {
      model.send({ kind: "mic", state: "stop" });
      problems.replaceChildren(banner("error", `microphone: ${String(error)}`));
    });
  }, "al-button al-demo-record");
  controls.append(filePicker("Choose audio…", "audio/*", onFile), record, player);

  const transcriptBox = h("div", "al-demo-transcript-box");
  const source = h("div", "al-muted al-demo-audio-name");
  const transcript = h("div", "al-demo-transcript");
  transcriptBox.append(source, transcript);
  dropTarget(transcriptBox, onFile);
  body.append(controls, problems, transcriptBox);

  const stops = [
    redrawOn(model, ["transcript", "busy", "recording"], () => {
      const text = model.get("transcript") ?? "";
      const live = model.get("busy") === "running" || model.get("recording");
      transcript.textContent = text || (live ? "" : "Choose or drop an audio file, or record: the words show here as Whisper decodes them.");
      transcript.classList.toggle("al-muted", !text && !live);
      transcript.classList.toggle("al-demo-live", live);
    }),
    redrawOn(model, ["audio_name", "audio_seconds", "recording"], () => {
      const name = model.get("audio_name");
      const recording = model.get("recording");
      source.textContent = name ? `${recording ? "● recording · " : ""}${name} · ${model.get("audio_seconds").toFixed(1)} s` : "";
      record.textContent = recording ? "■ Stop" : "● Record";
      record.classList.toggle("al-demo-recording", recording);
    }),
  ];
  return () => {
    stops.forEach((s) => s());
    if (model.get("recording")) void microphone.stop();
    if (url) URL.revokeObjectURL(url);
  };
}
