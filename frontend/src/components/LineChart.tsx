import Box from "@mui/material/Box";
import Stack from "@mui/material/Stack";
import Typography from "@mui/material/Typography";
import { ColorType, LineSeries, LineStyle, createChart, type LineData, type UTCTimestamp } from "lightweight-charts";
import { useEffect, useRef } from "react";

export interface LineSpec {
  name: string;
  color: string;
  /** Epoch ms, ascending. */
  ts: readonly number[];
  values: readonly (number | null)[];
  dashed?: boolean;
}

function toData(spec: LineSpec): LineData<UTCTimestamp>[] {
  const out: LineData<UTCTimestamp>[] = [];
  let last = -Infinity;
  spec.ts.forEach((t, i) => {
    const v = spec.values[i];
    const time = Math.floor(t / 1000);
    // lightweight-charts needs strictly ascending times; thinned series may repeat a bucket's timestamp.
    if (v === null || v === undefined || !Number.isFinite(v) || time <= last) return;
    last = time;
    out.push({ time: time as UTCTimestamp, value: v });
  });
  return out;
}

/** Line series over time (lightweight-charts; its attribution logo stays on). */
export function LineChart({ lines, height = 320, label }: { lines: readonly LineSpec[]; height?: number; label: string }) {
  const container = useRef<HTMLDivElement | null>(null);

  useEffect(() => {
    const el = container.current;
    if (!el) return;
    const chart = createChart(el, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: "transparent" }, textColor: "rgba(255,255,255,0.7)" },
      grid: { vertLines: { color: "rgba(255,255,255,0.06)" }, horzLines: { color: "rgba(255,255,255,0.06)" } },
      timeScale: { timeVisible: true, secondsVisible: false, borderColor: "rgba(255,255,255,0.2)" },
      rightPriceScale: { borderColor: "rgba(255,255,255,0.2)" },
    });
    for (const spec of lines) {
      const series = chart.addSeries(LineSeries, {
        color: spec.color,
        lineWidth: 2,
        lineStyle: spec.dashed ? LineStyle.Dashed : LineStyle.Solid,
        priceLineVisible: false,
      });
      series.setData(toData(spec));
    }
    chart.timeScale().fitContent();
    return () => chart.remove();
  }, [lines]);

  return (
    <Box>
      <Stack direction="row" spacing={2} sx={{ mb: 1 }}>
        {lines.map((l) => (
          <Stack key={l.name} direction="row" spacing={0.5} sx={{ alignItems: "center" }}>
            <Box sx={{ width: 14, height: 3, bgcolor: l.color }} />
            <Typography variant="caption">{l.name}</Typography>
          </Stack>
        ))}
      </Stack>
      <Box ref={container} sx={{ width: "100%", height }} role="img" aria-label={label} />
    </Box>
  );
}

export default LineChart;
