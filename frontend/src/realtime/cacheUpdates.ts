/** Pure functions that fold Socket.IO events into TanStack Query cache entries (used with setQueryData). */

import type { Job, JobProgress, Page, Price } from "../api/types";
import { parseTimestamp } from "../lib/format";

export interface PriceList {
  items: Price[];
}

function sameId(a: unknown, b: unknown): boolean {
  return String(a) === String(b);
}

function pickPrice(p: Price): Price {
  return {
    symbol: p.symbol,
    price: p.price,
    change_24h_pct: p.change_24h_pct,
    as_of: p.as_of,
    stale: p.stale,
    source: p.source,
  };
}

/**
 * Replaces the entry for `update.symbol` unless the cached one is newer (a REST answer can overtake a
 * queued socket event). Symbols the list does not hold are ignored: the list is what the page asked for.
 */
export function applyPrice(data: PriceList | undefined, update: Price): PriceList | undefined {
  if (!data) return data;
  let changed = false;
  const items = data.items.map((item) => {
    if (item.symbol !== update.symbol) return item;
    const cachedAt = parseTimestamp(item.as_of);
    const newAt = parseTimestamp(update.as_of);
    if (!Number.isNaN(cachedAt) && !Number.isNaN(newAt) && newAt < cachedAt) return item;
    changed = true;
    return pickPrice(update);
  });
  return changed ? { ...data, items } : data;
}

export function applyPrices(data: PriceList | undefined, updates: readonly Price[]): PriceList | undefined {
  return updates.reduce<PriceList | undefined>((acc, u) => applyPrice(acc, u), data);
}

export function applyJobProgress(data: Page<Job> | undefined, ev: JobProgress): Page<Job> | undefined {
  if (!data || !data.items.some((job) => sameId(job.id, ev.job_id))) return data;
  return {
    ...data,
    items: data.items.map((job) =>
      sameId(job.id, ev.job_id)
        ? { ...job, progress: ev.progress, message: ev.message ?? job.message }
        : job,
    ),
  };
}

/** Returns the new page and whether the job was on it (if not, the caller refetches the list). */
export function applyJobUpdate(data: Page<Job> | undefined, job: Job): { data: Page<Job> | undefined; found: boolean } {
  if (!data) return { data, found: false };
  const found = data.items.some((item) => sameId(item.id, job.id));
  if (!found) return { data, found };
  return { data: { ...data, items: data.items.map((item) => (sameId(item.id, job.id) ? { ...item, ...job } : item)) }, found };
}

export const TERMINAL_JOB_STATUSES: ReadonlySet<string> = new Set([
  "succeeded",
  "completed",
  "failed",
  "cancelled",
  "canceled",
  "interrupted",
]);

export function isJobActive(job: Job): boolean {
  return !TERMINAL_JOB_STATUSES.has(job.status) && !job.finished_at;
}
