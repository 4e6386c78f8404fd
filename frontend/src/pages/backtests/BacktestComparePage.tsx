import Card from "@mui/material/Card";
import CardContent from "@mui/material/CardContent";
import CardHeader from "@mui/material/CardHeader";
import Link from "@mui/material/Link";
import Table from "@mui/material/Table";
import TableBody from "@mui/material/TableBody";
import TableCell from "@mui/material/TableCell";
import TableContainer from "@mui/material/TableContainer";
import TableHead from "@mui/material/TableHead";
import TableRow from "@mui/material/TableRow";
import { useQuery } from "@tanstack/react-query";
import { lazy, Suspense, useMemo } from "react";
import { Link as RouterLink, useSearchParams } from "react-router";
import { researchApi, researchKeys } from "../../api/research";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Empty, Loading } from "../../components/Loading";
import { PageHeader } from "../../components/PageHeader";
import { metricTitle, shortHash } from "../../lib/metrics";
import { MetricText } from "./BacktestMetricsGrid";

const LineChart = lazy(() => import("../../components/LineChart"));
const COLORS = ["#90caf9", "#ffb74d", "#a5d6a7", "#ce93d8", "#ef9a9a", "#80deea", "#fff59d", "#bcaaa4", "#f48fb1", "#b0bec5"];

export function BacktestComparePage() {
  const [params] = useSearchParams();
  const ids = (params.get("ids") ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const compare = useQuery({
    queryKey: researchKeys.compare(ids),
    queryFn: () => researchApi.backtests.compare(ids),
    enabled: ids.length > 0,
  });
  const lines = useMemo(
    () =>
      (compare.data?.items ?? [])
        .filter((it) => it.equity)
        .map((it, i) => ({ name: it.name, color: COLORS[i % COLORS.length] as string, ts: it.equity?.ts ?? [], values: it.equity?.values ?? [] })),
    [compare.data],
  );
  const back = (
    <Link component={RouterLink} to="/backtests">
      ← All backtests
    </Link>
  );
  return (
    <>
      <PageHeader title="Compare backtests" subtitle={back} />
      {ids.length === 0 ? (
        <Empty>Select two or more backtests in the list to compare them.</Empty>
      ) : compare.isPending ? (
        <Loading />
      ) : compare.isError ? (
        <ErrorAlert error={compare.error} onRetry={() => void compare.refetch()} />
      ) : (
        <>
          <Card variant="outlined" sx={{ mb: 2 }}>
            <TableContainer>
              <Table size="small" aria-label="Comparison">
                <TableHead>
                  <TableRow>
                    <TableCell>Metric</TableCell>
                    {compare.data.items.map((it) => (
                      <TableCell key={String(it.id)} align="right">
                        <Link component={RouterLink} to={`/backtests/${encodeURIComponent(String(it.id))}`}>
                          {it.name}
                        </Link>
                      </TableCell>
                    ))}
                  </TableRow>
                  <TableRow>
                    <TableCell sx={{ color: "text.secondary" }}>Run</TableCell>
                    {compare.data.items.map((it) => (
                      <TableCell key={String(it.id)} align="right" sx={{ color: "text.secondary", fontSize: 12 }}>
                        {it.strategy} · {it.symbols.join(",")} {it.timeframe} · {it.range_start.slice(0, 10)}→{it.range_end.slice(0, 10)} ·{" "}
                        <span style={{ fontFamily: "monospace" }} title={it.fingerprint}>
                          {shortHash(it.fingerprint, 8)}
                        </span>
                      </TableCell>
                    ))}
                  </TableRow>
                </TableHead>
                <TableBody>
                  {Object.entries(compare.data.metrics).map(([name, values]) => (
                    <TableRow key={name} hover>
                      <TableCell>{metricTitle(name)}</TableCell>
                      {values.map((v, i) => (
                        <TableCell key={i} align="right" sx={{ fontVariantNumeric: "tabular-nums" }}>
                          <MetricText metric={v} />
                        </TableCell>
                      ))}
                    </TableRow>
                  ))}
                </TableBody>
              </Table>
            </TableContainer>
          </Card>
          <Card variant="outlined">
            <CardHeader title="Equity curves" />
            <CardContent>
              {lines.length ? (
                <Suspense fallback={<Loading label="Loading chart…" />}>
                  <LineChart lines={lines} label="Equity curves compared" />
                </Suspense>
              ) : (
                <Empty>No equity series.</Empty>
              )}
            </CardContent>
          </Card>
        </>
      )}
    </>
  );
}

export default BacktestComparePage;
