import Box from "@mui/material/Box";
import Chip from "@mui/material/Chip";
import Table from "@mui/material/Table";
import TableBody from "@mui/material/TableBody";
import TableCell from "@mui/material/TableCell";
import TableHead from "@mui/material/TableHead";
import TableRow from "@mui/material/TableRow";
import Typography from "@mui/material/Typography";
import type { EvaluationRow } from "../../api/research";
import { NullableValue } from "../../components/NullableValue";
import { formatModelMetric, modelMetricLabel } from "../../lib/metrics";

function reasonFor(reasons: Record<string, string> | undefined, side: "model" | "naive", metric: string) {
  return reasons?.[`${side}.${metric}`] ?? reasons?.[metric] ?? null;
}

function cell(metric: string, value: number | null, reason: string | null) {
  return <NullableValue text={value === null ? null : formatModelMetric(metric, value)} reason={reason} />;
}

/** Out-of-sample metrics, the model's beside the naive forecast's on the same test origins. */
export function ModelMetricsTable({
  rows,
  nullReasons,
}: {
  rows: readonly EvaluationRow[];
  nullReasons?: Record<string, string> | undefined;
}) {
  const notes = Object.entries(nullReasons ?? {});
  return (
    <>
    <Table size="small" aria-label="Out-of-sample metrics">
      <TableHead>
        <TableRow>
          <TableCell>Metric</TableCell>
          <TableCell align="right">model</TableCell>
          <TableCell align="right">naive</TableCell>
          <TableCell>Better</TableCell>
        </TableRow>
      </TableHead>
      <TableBody>
        {rows.map((row) => (
          <TableRow key={row.metric} data-testid={`metric-${row.metric}`}>
            <TableCell>{modelMetricLabel(row.metric)}</TableCell>
            <TableCell align="right" sx={{ fontVariantNumeric: "tabular-nums" }}>
              {cell(row.metric, row.model, reasonFor(nullReasons, "model", row.metric))}
            </TableCell>
            <TableCell align="right" sx={{ fontVariantNumeric: "tabular-nums" }}>
              {cell(row.metric, row.naive, reasonFor(nullReasons, "naive", row.metric))}
            </TableCell>
            <TableCell>
              {row.better ? (
                <Chip
                  size="small"
                  variant="outlined"
                  color={row.better === "model" ? "success" : row.better === "naive" ? "warning" : "default"}
                  label={row.better}
                />
              ) : (
                <Typography variant="body2" color="text.secondary">
                  —
                </Typography>
              )}
            </TableCell>
          </TableRow>
        ))}
      </TableBody>
    </Table>
    {notes.length > 0 ? (
      <Box component="ul" aria-label="Why some metrics are empty" sx={{ mt: 1, mb: 0, pl: 2, color: "text.secondary" }}>
        {notes.map(([key, reason]) => (
          <Typography key={key} component="li" variant="caption" sx={{ display: "list-item" }}>
            {key.replace(".", " · ")}: {reason}
          </Typography>
        ))}
      </Box>
    ) : null}
    </>
  );
}

/** The metric shown in lists: RMSE for value forecasts, else the first the server reported. */
export function headlineRow(rows: readonly EvaluationRow[] | null | undefined): EvaluationRow | null {
  if (!rows || rows.length === 0) return null;
  for (const name of ["rmse", "directional_accuracy", "brier"]) {
    const row = rows.find((r) => r.metric === name);
    if (row) return row;
  }
  return rows[0] ?? null;
}
