import { describe, expect, it } from "vitest";
import type { Job, Price } from "../api/types";
import { foldTick } from "../lib/liveBar";
import { applyJobProgress, applyJobUpdate, applyPrice, isJobActive } from "./cacheUpdates";

const btc: Price = { symbol: "BTC", price: 100, change_24h_pct: 1, as_of: "2026-11-24T12:00:00Z", stale: false, source: "coingecko" };
const eth: Price = { ...btc, symbol: "ETH", price: 10 };

const job: Job = {
  id: 3,
  kind: "backtest",
  status: "running",
  progress: 0.1,
  message: "bar 10/100",
  error: null,
  created_at: "2026-11-24T12:00:00Z",
  started_at: "2026-11-24T12:00:01Z",
  finished_at: null,
};

describe("applyPrice", () => {
  it("replaces the symbol's entry with the newer tick and leaves the others", () => {
    const next = applyPrice({ items: [btc, eth] }, { ...btc, price: 101, as_of: "2026-11-24T12:00:05Z", stale: true });
    expect(next?.items).toEqual([{ ...btc, price: 101, as_of: "2026-11-24T12:00:05Z", stale: true }, eth]);
  });

  it("ignores a tick older than the cached value", () => {
    const data = { items: [{ ...btc, as_of: "2026-11-24T12:00:10Z" }] };
    expect(applyPrice(data, { ...btc, price: 99 })).toBe(data);
  });

  it("ignores symbols the cached list does not hold", () => {
    const data = { items: [btc] };
    expect(applyPrice(data, eth)).toBe(data);
  });
});

describe("job events", () => {
  it("moves the progress of the matching job, whatever the id's JSON type", () => {
    const next = applyJobProgress({ items: [job], total: 1 }, { job_id: "3", progress: 0.5, message: null });
    expect(next?.items[0]).toMatchObject({ progress: 0.5, message: "bar 10/100" });
  });

  it("replaces a finished job and says whether the page held it", () => {
    const done = { ...job, status: "succeeded", progress: 1, finished_at: "2026-11-24T12:01:00Z" };
    const result = applyJobUpdate({ items: [job], total: 1 }, done);
    expect(result.found).toBe(true);
    expect(result.data?.items[0]).toEqual(done);
    expect(isJobActive(done)).toBe(false);
    expect(applyJobUpdate({ items: [], total: 0 }, done).found).toBe(false);
  });
});

describe("foldTick", () => {
  const H = 3_600_000;
  const last = { t: 10 * H, o: 100, h: 105, l: 95, c: 101 };

  it("moves high, low and close inside the bar's period", () => {
    expect(foldTick(last, 110, 10 * H + 60_000, H)).toEqual({ t: 10 * H, o: 100, h: 110, l: 95, c: 110 });
    expect(foldTick(last, 90, 10 * H + 60_000, H)).toEqual({ t: 10 * H, o: 100, h: 105, l: 90, c: 90 });
  });

  it("opens a new bar at the tick's price in the next period", () => {
    expect(foldTick(last, 102, 11 * H + 5, H)).toEqual({ t: 11 * H, o: 102, h: 102, l: 102, c: 102 });
  });

  it("ignores older ticks and ticks beyond a gap of missing bars", () => {
    expect(foldTick(last, 102, 9 * H, H)).toBeNull();
    expect(foldTick(last, 102, 12 * H, H)).toBeNull();
  });
});
