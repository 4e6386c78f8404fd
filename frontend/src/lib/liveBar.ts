import type { Candle } from "../api/types";
import type { LiveBar } from "../components/CandleChart";

/**
 * Folds one live price into the newest bar. A price in the last bar's period moves its high, low and close;
 * a price in the next period opens a new bar at that price. Older prices are ignored, and so are prices
 * further ahead: the bars in between are missing from the server's series, and a bar must not be drawn
 * across a gap it knows nothing about. Returns null when the tick changes nothing drawable.
 */
export function foldTick(
  last: LiveBar | Candle | null,
  price: number,
  atMs: number,
  periodMs: number,
): LiveBar | null {
  if (!last || !Number.isFinite(price) || !Number.isFinite(atMs)) return null;
  const bucket = Math.floor(atMs / periodMs) * periodMs;
  if (bucket < last.t || bucket > last.t + periodMs) return null;
  if (bucket === last.t) {
    return { t: last.t, o: last.o, h: Math.max(last.h, price), l: Math.min(last.l, price), c: price };
  }
  return { t: bucket, o: price, h: price, l: price, c: price };
}
