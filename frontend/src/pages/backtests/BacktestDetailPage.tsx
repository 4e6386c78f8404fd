import Card from "@mui/material/Card";
import CardContent from "@mui/material/CardContent";
import CardHeader from "@mui/material/CardHeader";
import Grid from "@mui/material/Grid";
import Link from "@mui/material/Link";
import Table from "@mui/material/Table";
import TableBody from "@mui/material/TableBody";
import TableCell from "@mui/material/TableCell";
import TableContainer from "@mui/material/TableContainer";
import TableHead from "@mui/material/TableHead";
import TableRow from "@mui/material/TableRow";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { lazy, Suspense, useMemo } from "react";
import { Link as RouterLink, useParams } from "react-router";
import { researchApi, researchKeys, type BacktestDetail } from "../../api/research";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Empty, Loading } from "../../components/Loading";
import { useAuth } from "../../auth/AuthContext";
import { DeleteButton } from "../../components/DeleteButton";
import { PageHeader } from "../../components/PageHeader";
import { Paginator } from "../../components/Paginator";
import { formatDateTime, formatNumber, formatPrice } from "../../lib/format";
import { usePagination } from "../../lib/usePagination";
import { BacktestMetricsGrid } from "./BacktestMetricsGrid";
import { Robustness } from "./Robustness";

const LineChart = lazy(() => import("../../components/LineChart"));

function Fingerprint({ bt }: { bt: BacktestDetail }) {
  const parts = Object.entries(bt.fingerprint_parts ?? {}).filter(([, v]) => v !== null);
  return (
    <Table size="small" aria-label="Fingerprint">
      <TableBody>
        <TableRow>
          <TableCell sx={{ width: 120, color: "text.secondary" }}>combined</TableCell>
          <TableCell sx={{ fontFamily: "monospace", wordBreak: "break-all", whiteSpace: "normal" }}>{bt.fingerprint}</TableCell>
        </TableRow>
        {parts
          .filter(([k]) => k !== "combined")
          .map(([k, v]) => (
            <TableRow key={k}>
              <TableCell sx={{ color: "text.secondary" }}>{k}</TableCell>
              <TableCell sx={{ fontFamily: "monospace", wordBreak: "break-all", whiteSpace: "normal" }}>{v}</TableCell>
            </TableRow>
          ))}
      </TableBody>
    </Table>
  );
}

function Trades({ id, total }: { id: string; total: number }) {
  const pagination = usePagination(25);
  const { limit, offset } = pagination;
  const trades = useQuery({
    queryKey: researchKeys.trades(id, limit, offset),
    queryFn: () => researchApi.backtests.trades(id, { limit, offset }),
    placeholderData: keepPreviousData,
  });
  if (trades.isPending) return <Loading label="Loading trades…" />;
  if (trades.isError) return <ErrorAlert error={trades.error} onRetry={() => void trades.refetch()} />;
  if (trades.data.items.length === 0 && total === 0) return <Empty>No trades.</Empty>;
  return (
    <>
      <TableContainer>
        <Table size="small" aria-label="Trades">
          <TableHead>
            <TableRow>
              <TableCell>#</TableCell>
              <TableCell>Symbol</TableCell>
              <TableCell>Side</TableCell>
              <TableCell align="right">Qty</TableCell>
              <TableCell>Entry</TableCell>
              <TableCell align="right">Entry price</TableCell>
              <TableCell>Exit</TableCell>
              <TableCell align="right">Exit price</TableCell>
              <TableCell>Exit reason</TableCell>
              <TableCell align="right">Fees</TableCell>
              <TableCell align="right">P&amp;L</TableCell>
              <TableCell align="right">Return</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {trades.data.items.map((t) => (
              <TableRow key={t.seq}>
                <TableCell>{t.seq}</TableCell>
                <TableCell>{t.symbol}</TableCell>
                <TableCell>{t.side}</TableCell>
                <TableCell align="right">{formatNumber(t.qty, 6)}</TableCell>
                <TableCell>{formatDateTime(t.entry_time)}</TableCell>
                <TableCell align="right">{formatPrice(t.entry_price)}</TableCell>
                <TableCell>{formatDateTime(t.exit_time)}</TableCell>
                <TableCell align="right">{formatPrice(t.exit_price)}</TableCell>
                <TableCell>{t.exit_reason ?? "—"}</TableCell>
                <TableCell align="right">{formatPrice(t.fees)}</TableCell>
                <TableCell align="right" sx={{ color: t.pnl >= 0 ? "success.main" : "error.main" }}>
                  {formatPrice(t.pnl)}
                </TableCell>
                <TableCell align="right">{t.return === null ? "—" : `${(t.return * 100).toFixed(2)}%`}</TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      </TableContainer>
      <Paginator total={trades.data.total} {...pagination} />
    </>
  );
}

export function BacktestDetailPage() {
  const { id = "" } = useParams();
  const { user } = useAuth();
  const canWrite = user?.role !== "viewer";
  const detail = useQuery({ queryKey: researchKeys.backtest(id), queryFn: () => researchApi.backtests.get(id) });
  const bt = detail.data;
  const equityLines = useMemo(() => {
    if (!bt) return [];
    const lines = [];
    if (bt.equity) lines.push({ name: "strategy equity", color: "#90caf9", ts: bt.equity.ts, values: bt.equity.values });
    if (bt.benchmark) lines.push({ name: "buy & hold benchmark", color: "#ffb74d", ts: bt.benchmark.ts, values: bt.benchmark.values });
    return lines;
  }, [bt]);
  const ddLines = useMemo(
    () => (bt?.drawdown ? [{ name: "drawdown", color: "#ef5350", ts: bt.drawdown.ts, values: bt.drawdown.values }] : []),
    [bt],
  );
  const back = (
    <Link component={RouterLink} to="/backtests">
      ← All backtests
    </Link>
  );
  if (detail.isPending)
    return (
      <>
        <PageHeader title="Backtest" subtitle={back} />
        <Loading />
      </>
    );
  if (detail.isError || !bt)
    return (
      <>
        <PageHeader title="Backtest" subtitle={back} />
        <ErrorAlert error={detail.error} onRetry={() => void detail.refetch()} />
      </>
    );
  return (
    <>
      <PageHeader
        title={bt.name}
        subtitle={back}
        actions={
          canWrite ? (
            <DeleteButton
              what={`the backtest “${bt.name}”`}
              consequences="Its trades and equity curves go with it."
              remove={() => researchApi.backtests.remove(id)}
              listKey={researchKeys.backtests}
              detailKey={researchKeys.backtest(id)}
              afterwards="/backtests"
            />
          ) : null
        }
      />
      <Grid container spacing={2}>
        <Grid size={12}>
          <Card variant="outlined">
            <CardHeader
              title="Run"
              subheader={`${bt.strategy} ${JSON.stringify(bt.strategy_params)} · ${bt.symbols.join(", ")} ${bt.timeframe} · ${formatDateTime(bt.range_start)} → ${formatDateTime(bt.range_end)} · ${bt.bars} bars · ${bt.engine} engine · ${bt.kind}`}
            />
            <CardContent>
              <BacktestMetricsGrid metrics={bt.metrics} />
            </CardContent>
          </Card>
        </Grid>
        <Grid size={{ xs: 12, lg: 8 }}>
          <Card variant="outlined">
            <CardHeader title="Equity vs benchmark" />
            <CardContent>
              {equityLines.length ? (
                <Suspense fallback={<Loading label="Loading chart…" />}>
                  <LineChart lines={equityLines} label="Equity and benchmark" />
                </Suspense>
              ) : (
                <Empty>No equity series stored.</Empty>
              )}
            </CardContent>
          </Card>
        </Grid>
        <Grid size={{ xs: 12, lg: 4 }}>
          <Card variant="outlined">
            <CardHeader title="Drawdown" />
            <CardContent>
              {ddLines.length ? (
                <Suspense fallback={<Loading label="Loading chart…" />}>
                  <LineChart lines={ddLines} label="Drawdown" />
                </Suspense>
              ) : (
                <Empty>No drawdown series stored.</Empty>
              )}
            </CardContent>
          </Card>
        </Grid>
        {bt.robustness ? (
          <Grid size={12}>
            <Card variant="outlined">
              <CardHeader title={`Robustness: ${bt.kind.replace(/_/g, " ")}`} />
              <CardContent>
                <Robustness id={id} robustness={bt.robustness} />
              </CardContent>
            </Card>
          </Grid>
        ) : null}
        <Grid size={12}>
          <Card variant="outlined">
            <CardHeader title="Trades" subheader={`${bt.num_trades} closed trades`} />
            <Trades id={id} total={bt.num_trades} />
          </Card>
        </Grid>
        <Grid size={{ xs: 12, lg: 6 }}>
          <Card variant="outlined">
            <CardHeader title="Fingerprint" subheader="Same request, data and code give the same hashes" />
            <CardContent>
              <Fingerprint bt={bt} />
            </CardContent>
          </Card>
        </Grid>
        <Grid size={{ xs: 12, lg: 6 }}>
          <Card variant="outlined">
            <CardHeader title="Data sources and config" />
            <CardContent>
              <Table size="small" aria-label="Data sources">
                <TableBody>
                  {bt.data_sources.map((d, i) => (
                    <TableRow key={i}>
                      <TableCell>{String(d.symbol)}</TableCell>
                      <TableCell>
                        {String(d.source)} {d.dataset ? `(${String(d.dataset)})` : ""} · {String(d.stored_timeframe)}
                        {d.resampled ? " resampled" : ""}
                      </TableCell>
                      <TableCell>
                        {formatDateTime(d.first_bar as string)} → {formatDateTime(d.last_bar as string)}
                      </TableCell>
                    </TableRow>
                  ))}
                </TableBody>
              </Table>
              <pre style={{ fontSize: 12, whiteSpace: "pre-wrap", marginBottom: 0 }}>
                {JSON.stringify({ config: bt.config, run_options: bt.run_options }, null, 2)}
              </pre>
            </CardContent>
          </Card>
        </Grid>
      </Grid>
    </>
  );
}

export default BacktestDetailPage;
