// The demos' synced state, as accelerate_lab/widgets/demos/ builds it.
import type { AnyModel } from "@anywidget/types";

export interface DeviceRow {
  name: string;
  available: boolean;
  reason: string;
  loaded: boolean;
}

export interface Timing {
  what: string;
  device: string;
  seconds: number;
}

export interface Prediction {
  label: string;
  probability: number;
}

export interface DemoState {
  [key: string]: unknown;
  kind: string;
  title: string;
  model_name: string;
  model_info: string;
  devices: DeviceRow[];
  device: string;
  loaded_on: string;
  busy: string;
  progress: { done?: number; total?: number };
  status: string;
  error: string;
  timings: Timing[];
}

export interface BertState extends DemoState {
  sentences: string[];
  compared: string[];
  similarity: number[][];
}

export interface ImageState extends DemoState {
  image: DataView | null;
  image_name: string;
  predictions: Prediction[];
}

export interface ClipState extends ImageState {
  labels: string[];
  template: string;
}

export interface WhisperState extends DemoState {
  transcript: string;
  audio_name: string;
  audio_seconds: number;
  recording: boolean;
}

export type Model<T extends DemoState> = AnyModel<T>;
