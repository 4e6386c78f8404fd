import Box from "@mui/material/Box";
import Typography from "@mui/material/Typography";
import type { MetricValue } from "../../api/research";
import { NullableValue } from "../../components/NullableValue";
import { formatUnitValue, metricTitle } from "../../lib/metrics";

/** Every metric the server reported, in its order; a null shows "—" with the server's reason. */
export function BacktestMetricsGrid({ metrics }: { metrics: Record<string, MetricValue> }) {
  return (
    <Box
      role="list"
      aria-label="Metrics"
      sx={{ display: "grid", gridTemplateColumns: "repeat(auto-fill, minmax(170px, 1fr))", gap: 1.5 }}
    >
      {Object.entries(metrics).map(([name, m]) => (
        <Box key={name} role="listitem" data-testid={`bt-metric-${name}`} sx={{ p: 1, border: 1, borderColor: "divider", borderRadius: 1 }}>
          <Typography variant="caption" color="text.secondary">
            {metricTitle(name)}
          </Typography>
          <Typography variant="body1" sx={{ fontVariantNumeric: "tabular-nums" }}>
            <NullableValue text={m.value === null ? null : formatUnitValue(m.value, m.unit)} reason={m.reason} />
          </Typography>
        </Box>
      ))}
    </Box>
  );
}

export function MetricText({ metric }: { metric: MetricValue | undefined }) {
  if (!metric) return <NullableValue text={null} reason="not reported" />;
  return <NullableValue text={metric.value === null ? null : formatUnitValue(metric.value, metric.unit)} reason={metric.reason} />;
}
