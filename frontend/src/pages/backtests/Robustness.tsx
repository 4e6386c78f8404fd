import Table from "@mui/material/Table";
import TableBody from "@mui/material/TableBody";
import TableCell from "@mui/material/TableCell";
import TableContainer from "@mui/material/TableContainer";
import TableHead from "@mui/material/TableHead";
import TablePagination from "@mui/material/TablePagination";
import TableRow from "@mui/material/TableRow";
import Typography from "@mui/material/Typography";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { researchApi, researchKeys } from "../../api/research";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Loading } from "../../components/Loading";
import { formatDateTime } from "../../lib/format";
import { formatUnitValue, metricTitle } from "../../lib/metrics";
import { MetricText } from "./BacktestMetricsGrid";

const PAGE = 10;
const RUN_METRICS = ["total_return", "sharpe", "max_drawdown", "trades"];
const PERCENTILES = ["p5", "p25", "p50", "p75", "p95"];
const BAND_UNITS: Record<string, string> = { total_return: "fraction", max_drawdown: "fraction", sharpe: "ratio" };

interface MonteCarlo {
  type: "monte_carlo";
  method?: string;
  n_sims?: number;
  seed?: number;
  bands?: Record<string, Record<string, number | null>>;
  prob_loss?: number | null;
  actual?: Record<string, number | null>;
  note?: string;
}

function MonteCarloBands({ mc }: { mc: MonteCarlo }) {
  return (
    <>
      <Typography variant="body2" sx={{ mb: 1 }}>
        {mc.method} · {mc.n_sims} paths · seed {mc.seed} · probability of loss{" "}
        {mc.prob_loss === null || mc.prob_loss === undefined ? "—" : `${(mc.prob_loss * 100).toFixed(1)}%`}
        {mc.note ? ` · ${mc.note}` : ""}
      </Typography>
      <Table size="small" aria-label="Monte Carlo bands">
        <TableHead>
          <TableRow>
            <TableCell>Metric</TableCell>
            {PERCENTILES.map((p) => (
              <TableCell key={p} align="right">
                {p}
              </TableCell>
            ))}
            <TableCell align="right">actual</TableCell>
          </TableRow>
        </TableHead>
        <TableBody>
          {Object.entries(mc.bands ?? {}).map(([name, band]) => {
            const unit = BAND_UNITS[name] ?? "ratio";
            return (
              <TableRow key={name}>
                <TableCell>{metricTitle(name)}</TableCell>
                {PERCENTILES.map((p) => (
                  <TableCell key={p} align="right">
                    {formatUnitValue(band[p], unit)}
                  </TableCell>
                ))}
                <TableCell align="right">{formatUnitValue(mc.actual?.[name], unit)}</TableCell>
              </TableRow>
            );
          })}
        </TableBody>
      </Table>
    </>
  );
}

function RunsTable({ id }: { id: string }) {
  const [page, setPage] = useState(0);
  const runs = useQuery({
    queryKey: researchKeys.runs(id, page * PAGE),
    queryFn: () => researchApi.backtests.runs(id, { limit: PAGE, offset: page * PAGE }),
    placeholderData: keepPreviousData,
  });
  if (runs.isPending) return <Loading label="Loading runs…" />;
  if (runs.isError) return <ErrorAlert error={runs.error} onRetry={() => void runs.refetch()} />;
  const wf = runs.data.kind === "walk_forward";
  return (
    <>
      <TableContainer>
        <Table size="small" aria-label={wf ? "Walk-forward windows" : "Sweep results"}>
          <TableHead>
            <TableRow>
              <TableCell>{wf ? "Window (test)" : "Rank"}</TableCell>
              <TableCell>Parameters</TableCell>
              {RUN_METRICS.map((m) => (
                <TableCell key={m} align="right">
                  {metricTitle(m)}
                  {wf ? " (out of sample)" : ""}
                </TableCell>
              ))}
              <TableCell>Error</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {runs.data.items.map((r, i) => (
              <TableRow key={i}>
                <TableCell>
                  {wf && r.window
                    ? `${formatDateTime(r.window.test_start_ts)} → ${formatDateTime(r.window.test_end_ts)}`
                    : (r.rank ?? "—")}
                </TableCell>
                <TableCell sx={{ fontFamily: "monospace", fontSize: 12 }}>{JSON.stringify(r.params)}</TableCell>
                {RUN_METRICS.map((m) => (
                  <TableCell key={m} align="right">
                    <MetricText metric={r.metrics?.[m]} />
                  </TableCell>
                ))}
                <TableCell>{r.error ?? ""}</TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      </TableContainer>
      <TablePagination
        component="div"
        count={runs.data.total}
        page={page}
        rowsPerPage={PAGE}
        rowsPerPageOptions={[PAGE]}
        onPageChange={(_, p) => setPage(p)}
      />
    </>
  );
}

/** The run kind's robustness output: Monte Carlo bands, or the sweep's / walk-forward's table from /runs. */
export function Robustness({ id, robustness }: { id: string; robustness: unknown }) {
  if (!robustness || typeof robustness !== "object") return null;
  const r = robustness as Record<string, unknown> & { type?: string };
  if (r.type === "monte_carlo") return <MonteCarloBands mc={r as unknown as MonteCarlo} />;
  const summary = Object.entries(r)
    .filter(([k, v]) => k !== "runs_url" && k !== "type" && (typeof v !== "object" || v === null))
    .map(([k, v]) => `${k.replace(/_/g, " ")} ${String(v)}`)
    .join(" · ");
  return (
    <>
      <Typography variant="body2" sx={{ mb: 1 }}>
        {summary}
        {r.best_params ? ` · best ${JSON.stringify(r.best_params)} (in-sample)` : ""}
      </Typography>
      <RunsTable id={id} />
    </>
  );
}
