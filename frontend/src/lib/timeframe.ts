/** Timeframes offered by the chart, and their bar length. Buckets align to UTC epoch multiples. */
export const TIMEFRAMES = ["1h", "4h", "1d"] as const;
export type Timeframe = (typeof TIMEFRAMES)[number];

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

export function timeframeMs(tf: string): number | null {
  const match = /^(\d+)([mhd])$/.exec(tf);
  if (!match) return null;
  const [, n, unit] = match;
  const ms = UNIT_MS[unit ?? ""];
  return ms === undefined ? null : Number(n) * ms;
}

export function isTimeframe(value: string | null): value is Timeframe {
  return value !== null && (TIMEFRAMES as readonly string[]).includes(value);
}
