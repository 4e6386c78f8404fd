import Box from "@mui/material/Box";
import {
  CandlestickSeries,
  ColorType,
  createChart,
  type CandlestickData,
  type IChartApi,
  type ISeriesApi,
  type UTCTimestamp,
} from "lightweight-charts";
import { useEffect, useRef } from "react";
import type { Candle } from "../api/types";
import { DOWN_COLOR, UP_COLOR } from "../theme";

export interface LiveBar {
  /** Open time, epoch ms. */
  t: number;
  o: number;
  h: number;
  l: number;
  c: number;
}

function toBar(c: LiveBar): CandlestickData<UTCTimestamp> {
  return { time: Math.floor(c.t / 1000) as UTCTimestamp, open: c.o, high: c.h, low: c.l, close: c.c };
}

export interface CandleChartProps {
  candles: readonly Candle[];
  /** The newest bar as updated from live ticks; drawn with series.update() without resetting the view. */
  liveBar: LiveBar | null;
  height?: number;
}

/** A lightweight-charts candlestick chart. Its attribution logo stays on (Apache-2.0 NOTICE requirement). */
export function CandleChart({ candles, liveBar, height = 420 }: CandleChartProps) {
  const container = useRef<HTMLDivElement | null>(null);
  const chartRef = useRef<IChartApi | null>(null);
  const seriesRef = useRef<ISeriesApi<"Candlestick"> | null>(null);

  useEffect(() => {
    const el = container.current;
    if (!el) return;
    const chart = createChart(el, {
      autoSize: true,
      layout: {
        background: { type: ColorType.Solid, color: "transparent" },
        textColor: "rgba(255,255,255,0.7)",
      },
      grid: {
        vertLines: { color: "rgba(255,255,255,0.06)" },
        horzLines: { color: "rgba(255,255,255,0.06)" },
      },
      timeScale: { timeVisible: true, secondsVisible: false, borderColor: "rgba(255,255,255,0.2)" },
      rightPriceScale: { borderColor: "rgba(255,255,255,0.2)" },
    });
    const series = chart.addSeries(CandlestickSeries, {
      upColor: UP_COLOR,
      downColor: DOWN_COLOR,
      wickUpColor: UP_COLOR,
      wickDownColor: DOWN_COLOR,
      borderVisible: false,
    });
    chartRef.current = chart;
    seriesRef.current = series;
    return () => {
      chart.remove();
      chartRef.current = null;
      seriesRef.current = null;
    };
  }, []);

  const lastDrawnT = useRef<number | null>(null);

  useEffect(() => {
    const series = seriesRef.current;
    if (!series) return;
    series.setData(candles.map(toBar));
    lastDrawnT.current = candles[candles.length - 1]?.t ?? null;
    chartRef.current?.timeScale().fitContent();
  }, [candles]);

  // Only on a new live bar: fresh candles from the server must not be overdrawn by the previous live bar.
  useEffect(() => {
    const series = seriesRef.current;
    if (!series || !liveBar) return;
    // series.update() throws for a bar older than the last one drawn.
    if (lastDrawnT.current !== null && liveBar.t < lastDrawnT.current) return;
    series.update(toBar(liveBar));
    lastDrawnT.current = liveBar.t;
  }, [liveBar]);

  return <Box ref={container} sx={{ width: "100%", height }} data-testid="candle-chart" />;
}
