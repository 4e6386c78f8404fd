/** Display of metric values as the API reports them; nothing is derived here beyond unit scaling for display. */

import { formatNumber, formatPrice } from "./format";

const DASH = "—";

/** Model-evaluation metrics that are shares (0..1) and read best as percentages. */
const SHARE_METRICS = new Set([
  "directional_accuracy",
  "precision_up",
  "recall_up",
  "f1_up",
  "up_rate",
  "coverage",
  "hit_rate",
  "exposure",
]);

export const MODEL_METRIC_LABELS: Record<string, string> = {
  mae: "MAE",
  rmse: "RMSE",
  mape: "MAPE",
  r2: "R²",
  mase: "MASE",
  theil_u: "Theil's U2",
  rmse_skill: "RMSE skill (1 − U2)",
  directional_accuracy: "Directional accuracy",
  precision_up: "Precision (up)",
  recall_up: "Recall (up)",
  f1_up: "F1 (up)",
  up_rate: "Up rate",
  coverage: "Interval coverage",
  interval_width: "Interval width",
  brier: "Brier score",
};

export function modelMetricLabel(metric: string): string {
  return MODEL_METRIC_LABELS[metric] ?? metric.replace(/_/g, " ");
}

/** A model-evaluation value in the target's units (shares as %, MAPE already in percent). */
export function formatModelMetric(metric: string, value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return DASH;
  if (SHARE_METRICS.has(metric)) return `${(value * 100).toFixed(1)}%`;
  if (metric === "mape") return `${value.toFixed(2)}%`;
  const abs = Math.abs(value);
  return formatNumber(value, abs >= 100 ? 2 : abs >= 1 ? 3 : 4);
}

/** A backtest metric by its `unit` (fraction, ratio, currency, percent, count, days). */
export function formatUnitValue(value: number | null | undefined, unit: string): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return DASH;
  switch (unit) {
    case "fraction":
      return `${(value * 100).toFixed(2)}%`;
    case "percent":
      return `${value.toFixed(2)}%`;
    case "currency":
      return formatPrice(value);
    case "count":
      return formatNumber(value, 0);
    case "days":
      return `${formatNumber(value, 1)} d`;
    default:
      return formatNumber(value, 3);
  }
}

export function metricTitle(name: string): string {
  const special: Record<string, string> = {
    cagr: "CAGR",
    var: "VaR",
    cvar: "CVaR",
    sqn: "SQN",
  };
  if (special[name]) return special[name];
  const words = name.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function shortHash(hash: string | null | undefined, n = 12): string {
  return hash ? hash.slice(0, n) : DASH;
}
