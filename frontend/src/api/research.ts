/**
 * Models (docs/models.md) and backtests (docs/backtests.md): shapes as the server sends them, and typed calls.
 * Numbers are never computed here; every value shown on these pages is one of these fields.
 */

import { request, type PageParams } from "./client";
import type { Id, Job } from "./types";

export interface Paged<T> {
  items: T[];
  total: number;
  limit?: number;
  offset?: number;
}

type JsonSchema = Record<string, unknown> & { properties?: Record<string, Record<string, unknown>> };

// --- models ---------------------------------------------------------------------------------------------

export interface Algorithm {
  id: string;
  name: string;
  family: string;
  kind: string;
  description: string;
  engine: string;
  available: boolean;
  reason: string | null;
  aliases: string[];
  params_schema: JsonSchema;
  defaults: Record<string, unknown>;
}

export interface AlgorithmList {
  items: Algorithm[];
  seed_aliases: Record<string, string>;
}

/** One row of the detail's `evaluation`: the model and the naive forecast on the same test origins. */
export interface EvaluationRow {
  metric: string;
  model: number | null;
  naive: number | null;
  better: "model" | "naive" | "tie" | null | (string & {});
}

export interface ModelEvaluation {
  n_test?: number;
  up_rate?: number | null;
  model?: Record<string, number | null>;
  naive?: Record<string, number | null>;
  /** Keyed "model.<metric>" / "naive.<metric>" (or a bare metric name). */
  null_reasons?: Record<string, string>;
  method?: string;
  target?: string;
  horizon?: number;
  level?: number;
  folds?: unknown[];
}

export interface LiveAccuracy {
  version?: number;
  window?: number;
  n_resolved?: number;
  n_directional?: number;
  directional_accuracy: number | null;
  mae: number | null;
  coverage: number | null;
  evaluation?: { directional_accuracy?: number | null; mae?: number | null; coverage?: number | null };
  drift: boolean | null;
  drift_reason?: string | null;
  updated_at?: string;
}

export interface PerformanceMetrics {
  version?: number;
  evaluation?: ModelEvaluation;
  training_window?: { start_ts: number; end_ts: number; n_bars: number };
  test_window?: { first_origin_ts: number; last_origin_ts: number; last_target_ts: number; n_origins: number };
  data_fingerprint?: string;
  live?: LiveAccuracy | null;
}

export interface ModelVersion {
  version: number;
  algorithm: string;
  created_at: string;
  artifact_format?: string;
  sha256: string;
  size: number;
  params?: Record<string, unknown>;
  metrics?: ModelEvaluation | null;
  data_fingerprint?: string | null;
  job_id?: Id | null;
}

export interface TrainingSpec {
  target: string;
  horizon: number;
  interval_level: number;
  seed: number;
  evaluation: { method: string; test_fraction: number; folds: number };
  start_ts: number | null;
  end_ts: number | null;
  source: string;
  dataset: string | null;
  candle_source: string | null;
}

export interface Model {
  id: Id;
  name: string;
  algorithm: string;
  algorithm_name: string;
  requested_algorithm?: string;
  family: string;
  kind: string;
  target_timeframe: string;
  symbols: string[];
  parameters: Record<string, unknown>;
  training: TrainingSpec;
  training_status: string;
  training_error: string | null;
  training_job: Job | null;
  performance_metrics: PerformanceMetrics | null;
  evaluation: EvaluationRow[] | null;
  latest_version: ModelVersion | null;
  created_at: string;
  last_trained: string | null;
}

export interface ModelCreateBody {
  name: string;
  algorithm: string;
  parameters: Record<string, unknown>;
  dataset?: string;
  symbols?: string[];
  target_timeframe?: string;
  candle_source?: string;
  target?: string;
  horizon?: number;
  interval_level?: number;
  seed?: number;
  evaluation?: { method: string; test_fraction?: number; folds?: number };
  start_ts?: number;
  end_ts?: number;
}

export interface TrainResponse {
  job: Job;
  model: Model;
  version: number;
}

export interface ForecastStep {
  step: number;
  ts: number;
  price?: number | null;
  price_lower?: number | null;
  price_upper?: number | null;
  log_return?: number | null;
  log_return_lower?: number | null;
  log_return_upper?: number | null;
  prob_up?: number | null;
  position?: number | null;
}

export interface Forecast {
  kind: string;
  target?: string;
  origin_ts: number;
  origin_close?: number;
  level?: number;
  direction?: string;
  prob_up?: number | null;
  steps: ForecastStep[];
}

export interface Prediction {
  id: Id;
  model_id: Id;
  version: number | null;
  symbol: string;
  timestamp: string;
  prediction_value: number;
  confidence: number | null;
  horizon: number | null;
  origin_time: string | null;
  target_time: string | null;
  lower_value: number | null;
  upper_value: number | null;
  forecast: Forecast | null;
  actual_value: number | null;
  resolved_at: string | null;
  outcome: Record<string, unknown> | null;
}

export interface PredictResponse {
  prediction: Prediction;
  resolved: number;
  live: LiveAccuracy | null;
}

// --- backtests ------------------------------------------------------------------------------------------

/** A metric as the server reports it: `value` null means it could not be computed, and `reason` says why. */
export interface MetricValue {
  value: number | null;
  reason: string | null;
  unit: string;
}

export interface Strategy {
  name: string;
  title: string;
  description: string;
  uses_forecast: boolean;
  params_schema: JsonSchema;
}

export interface StrategyCatalogue {
  strategies: Strategy[];
  config_schema: JsonSchema;
  run_kinds: Record<string, unknown>;
  timeframes: string[];
  sortable_metrics: string[];
  limits: Record<string, number>;
}

export interface Series {
  ts: number[];
  values: number[];
}

export interface BacktestSummary {
  id: Id;
  name: string;
  kind: string;
  strategy: string;
  strategy_params: Record<string, unknown>;
  symbols: string[];
  timeframe: string;
  range_start: string;
  range_end: string;
  engine: string;
  bars: number;
  num_trades: number;
  initial_capital: string;
  final_capital: string;
  total_return: number | null;
  headline: Record<string, MetricValue>;
  fingerprint: string;
  job_id: Id | null;
  created_at: string;
}

export interface Trade {
  seq: number;
  symbol: string;
  side: string;
  qty: number;
  entry_time: string;
  entry_bar: number;
  entry_price: number;
  entry_reason: string;
  exit_time: string | null;
  exit_bar: number | null;
  exit_price: number | null;
  exit_reason: string | null;
  fees: number;
  pnl: number;
  return: number | null;
}

export interface BacktestDetail extends BacktestSummary {
  metrics: Record<string, MetricValue>;
  config: Record<string, unknown>;
  run_options: Record<string, unknown>;
  data_sources: Record<string, unknown>[];
  fingerprint_parts: Record<string, string | null>;
  equity: Series | null;
  drawdown: Series | null;
  benchmark: Series | null;
  robustness: unknown;
  trades: Paged<Trade>;
}

export interface BacktestSubmitted {
  job_id: Id;
  backtest_id: Id;
  status: string;
  bars: number;
  links: { job: string; backtest: string };
}

export interface BacktestBody {
  name: string;
  symbols: string[];
  timeframe: string;
  start: string;
  end: string;
  strategy: string;
  params: Record<string, unknown>;
  config: Record<string, unknown>;
  engine?: string;
  kind?: string;
  sweep?: Record<string, unknown>;
  walk_forward?: Record<string, unknown>;
  monte_carlo?: Record<string, unknown>;
}

export interface RobustnessRun {
  rank?: number;
  params: Record<string, unknown>;
  metrics: Record<string, MetricValue> | null;
  in_sample?: Record<string, MetricValue> | null;
  window?: { train: [number, number]; test: [number, number]; train_start_ts?: number; test_start_ts?: number; test_end_ts?: number };
  error?: string | null;
}

export interface RobustnessRuns extends Paged<RobustnessRun> {
  kind: string;
  sort: string;
  order: string;
}

export interface BacktestCompare {
  items: (Pick<BacktestSummary, "id" | "name" | "kind" | "strategy" | "strategy_params" | "symbols" | "timeframe" | "range_start" | "range_end" | "fingerprint"> & {
    config?: Record<string, unknown>;
    equity: Series | null;
  })[];
  metrics: Record<string, MetricValue[]>;
}

/** POST /api/models/compare: models trained on the same data, ranked on the same out-of-sample window. */
export const MODEL_COMPARE_METRICS = [
  "rmse",
  "mae",
  "mape",
  "r2",
  "mase",
  "theil_u",
  "rmse_skill",
  "directional_accuracy",
  "precision_up",
  "recall_up",
  "f1_up",
  "coverage",
  "interval_width",
  "brier",
] as const;
export type ModelCompareMetric = (typeof MODEL_COMPARE_METRICS)[number];

export interface RankedModel {
  rank: number | null;
  model_id: string;
  name: string;
  algorithm: string;
  version: number;
  value: number | null;
  naive_value: number | null;
  null_reason: string | null;
  metrics: Record<string, unknown>;
}

export interface ModelCompare {
  metric: string;
  order: "lower_is_better" | "higher_is_better" | "closest_to_level";
  data_fingerprint: string;
  target: string;
  horizon: number;
  test_window: { first_origin_ts?: number; last_origin_ts?: number; n_origins?: number };
  naive: Record<string, unknown>;
  ranking: RankedModel[];
}

const seg = (id: Id) => encodeURIComponent(String(id));

export const researchApi = {
  jobs: {
    get: (id: Id) => request<Job>(`/api/jobs/${seg(id)}`),
  },
  models: {
    algorithms: () => request<AlgorithmList>("/api/models/algorithms"),
    list: (page: PageParams) => request<Paged<Model>>("/api/models", { query: { ...page } }),
    get: (id: Id) => request<Model>(`/api/models/${seg(id)}`),
    create: (body: ModelCreateBody) => request<Model>("/api/models", { method: "POST", body }),
    remove: (id: Id) => request<void>(`/api/models/${seg(id)}`, { method: "DELETE" }),
    train: (id: Id) => request<TrainResponse>(`/api/models/${seg(id)}/train`, { method: "POST" }),
    versions: (id: Id, page: PageParams) =>
      request<Paged<ModelVersion>>(`/api/models/${seg(id)}/versions`, { query: { ...page } }),
    predict: (id: Id, body: { horizon?: number; as_of?: number }) =>
      request<PredictResponse>(`/api/models/${seg(id)}/predict`, { method: "POST", body }),
    predictions: (id: Id, page: PageParams) =>
      request<Paged<Prediction>>(`/api/models/${seg(id)}/predictions`, { query: { ...page } }),
    compare: (ids: readonly string[], metric: ModelCompareMetric) =>
      request<ModelCompare>("/api/models/compare", { method: "POST", body: { model_ids: ids, metric } }),
  },
  backtests: {
    strategies: () => request<StrategyCatalogue>("/api/backtests/strategies"),
    list: (page: PageParams) => request<Paged<BacktestSummary>>("/api/backtests", { query: { ...page } }),
    get: (id: Id) => request<BacktestDetail>(`/api/backtests/${seg(id)}`, { query: { trades_limit: 1 } }),
    trades: (id: Id, page: PageParams) =>
      request<Paged<Trade>>(`/api/backtests/${seg(id)}/trades`, { query: { ...page } }),
    runs: (id: Id, page: PageParams) =>
      request<RobustnessRuns>(`/api/backtests/${seg(id)}/runs`, { query: { ...page } }),
    run: (body: BacktestBody) => request<BacktestSubmitted>("/api/backtests", { method: "POST", body }),
    compare: (ids: readonly string[]) =>
      request<BacktestCompare>("/api/backtests/compare", { query: { ids: ids.join(",") } }),
    remove: (id: Id) => request<void>(`/api/backtests/${seg(id)}`, { method: "DELETE" }),
  },
};

export const researchKeys = {
  job: (id: Id) => ["job", String(id)] as const,
  algorithms: ["models", "algorithms"] as const,
  models: ["models"] as const,
  modelList: (limit: number, offset: number) => ["models", "list", limit, offset] as const,
  model: (id: Id) => ["models", "detail", String(id)] as const,
  versions: (id: Id, offset: number) => ["models", "versions", String(id), offset] as const,
  predictions: (id: Id, offset: number) => ["models", "predictions", String(id), offset] as const,
  strategies: ["backtests", "strategies"] as const,
  backtests: ["backtests"] as const,
  backtestList: (limit: number, offset: number) => ["backtests", "list", limit, offset] as const,
  backtest: (id: Id) => ["backtests", "detail", String(id)] as const,
  trades: (id: Id, limit: number, offset: number) => ["backtests", "trades", String(id), limit, offset] as const,
  runs: (id: Id, offset: number) => ["backtests", "runs", String(id), offset] as const,
  compare: (ids: readonly string[]) => ["backtests", "compare", ids.join(",")] as const,
  modelCompare: (ids: readonly string[], metric: string) => ["models", "compare", ids.join(","), metric] as const,
};

/** Default values from a JSON Schema's top-level `properties` (what the server would fill in). */
export function schemaDefaults(schema: JsonSchema | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, prop] of Object.entries(schema?.properties ?? {})) {
    if (prop && "default" in prop) out[key] = prop.default;
  }
  return out;
}
