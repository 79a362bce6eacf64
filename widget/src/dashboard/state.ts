// The dashboard's synced state, as accelerate_lab/widgets/_memory_state.py builds it.

export interface BudgetRow {
  manager: number;
  label: string;
  device: string;
  current: number;
  peak: number;
  budget: number | null;
  evictions: number;
  refusals: number;
  saved: number;
}

export interface ModelRow {
  manager: number;
  model: string;
  bytes: number;
  exclusive: number;
  shared: number;
  tensors: number;
}

export interface DeviceRow {
  name: string;
  label: string;
  description: string;
  allocated: number;
  peak: number;
  limit: number | null;
  shared: number;
}

export interface TensorRow {
  manager: number;
  name: string;
  shape: number[];
  dtype: string;
  device: string;
  bytes: number;
  references: number;
  producer: string | null;
  consumers: string[];
  pinned: boolean;
  views: number;
}

export interface HistoryPoint {
  t: number;
  device: string;
  bytes: number;
}

export interface RecommendationRow {
  manager: number;
  action: string;
  tensors: string[];
  more: number;
  models: string[];
  bytes_saved: number;
  how: string;
}

export interface Notice {
  kind?: string;
  text?: string;
  seq?: number;
}

export interface DashboardState {
  [key: string]: unknown;
  budgets: BudgetRow[];
  models: ModelRow[];
  devices: DeviceRow[];
  tensors: TensorRow[];
  tensor_count: number;
  history: HistoryPoint[];
  recommendations: RecommendationRow[];
  last_event: string;
  notice: Notice;
  managers_count: number;
}

/** What the buttons ask the kernel to do. */
export type Action =
  | { action: "optimize" }
  | { action: "refresh" }
  | { action: "release"; model: string; manager: number }
  | { action: "unpin"; tensor: string; manager: number };
