import Button from "@mui/material/Button";
import Card from "@mui/material/Card";
import CardContent from "@mui/material/CardContent";
import Checkbox from "@mui/material/Checkbox";
import Dialog from "@mui/material/Dialog";
import DialogContent from "@mui/material/DialogContent";
import DialogTitle from "@mui/material/DialogTitle";
import Link from "@mui/material/Link";
import Table from "@mui/material/Table";
import TableBody from "@mui/material/TableBody";
import TableCell from "@mui/material/TableCell";
import TableContainer from "@mui/material/TableContainer";
import TableHead from "@mui/material/TableHead";
import TableRow from "@mui/material/TableRow";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link as RouterLink } from "react-router";
import { researchApi, researchKeys } from "../../api/research";
import { useAuth } from "../../auth/AuthContext";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Empty, Loading } from "../../components/Loading";
import { CompareButton, useCompareSelection } from "../../components/CompareSelection";
import { PageHeader } from "../../components/PageHeader";
import { Paginator } from "../../components/Paginator";
import { formatDateTime } from "../../lib/format";
import { usePagination } from "../../lib/usePagination";
import { MetricText } from "./BacktestMetricsGrid";
import { BacktestRunForm } from "./BacktestRunForm";

export function BacktestsPage() {
  const pagination = usePagination(25);
  const { limit, offset } = pagination;
  const { user } = useAuth();
  const canWrite = user?.role !== "viewer";
  const [running, setRunning] = useState(false);
  const { selected, toggle, isSelected } = useCompareSelection(10);
  const list = useQuery({
    queryKey: researchKeys.backtestList(limit, offset),
    queryFn: () => researchApi.backtests.list({ limit, offset }),
    placeholderData: keepPreviousData,
  });

  return (
    <>
      <PageHeader
        title="Backtests"
        subtitle="Strategy runs over stored candles, with fees, slippage and reproducible fingerprints"
        actions={
          <>
            <CompareButton selected={selected} path="/backtests/compare" />
            {canWrite ? (
              <Button variant="contained" onClick={() => setRunning(true)}>
                Run backtest
              </Button>
            ) : null}
          </>
        }
      />
      <Card variant="outlined">
        {list.isPending ? (
          <Loading label="Loading backtests…" />
        ) : list.isError ? (
          <CardContent>
            <ErrorAlert error={list.error} onRetry={() => void list.refetch()} />
          </CardContent>
        ) : list.data.items.length === 0 ? (
          <Empty>{offset > 0 ? "No backtests on this page." : "No backtests yet."}</Empty>
        ) : (
          <TableContainer>
            <Table size="small" aria-label="Backtests">
              <TableHead>
                <TableRow>
                  <TableCell padding="checkbox" />
                  <TableCell>Name</TableCell>
                  <TableCell>Strategy</TableCell>
                  <TableCell>Symbols</TableCell>
                  <TableCell>Range</TableCell>
                  <TableCell align="right">Total return</TableCell>
                  <TableCell align="right">Sharpe</TableCell>
                  <TableCell align="right">Max drawdown</TableCell>
                  <TableCell align="right">Trades</TableCell>
                  <TableCell>Created</TableCell>
                </TableRow>
              </TableHead>
              <TableBody>
                {list.data.items.map((b) => {
                  const id = String(b.id);
                  return (
                    <TableRow key={id} hover>
                      <TableCell padding="checkbox">
                        <Checkbox
                          size="small"
                          checked={isSelected(id)}
                          onChange={() => toggle(id)}
                          slotProps={{ input: { "aria-label": `select ${b.name} for comparison` } }}
                        />
                      </TableCell>
                      <TableCell>
                        <Link component={RouterLink} to={`/backtests/${encodeURIComponent(id)}`}>
                          {b.name}
                        </Link>
                      </TableCell>
                      <TableCell>
                        {b.strategy}
                        {b.kind !== "single" ? ` (${b.kind})` : ""}
                      </TableCell>
                      <TableCell>
                        {b.symbols.join(", ")} · {b.timeframe}
                      </TableCell>
                      <TableCell>
                        {b.range_start.slice(0, 10)} → {b.range_end.slice(0, 10)}
                      </TableCell>
                      <TableCell align="right">
                        <MetricText metric={b.headline.total_return} />
                      </TableCell>
                      <TableCell align="right">
                        <MetricText metric={b.headline.sharpe} />
                      </TableCell>
                      <TableCell align="right">
                        <MetricText metric={b.headline.max_drawdown} />
                      </TableCell>
                      <TableCell align="right">{b.num_trades}</TableCell>
                      <TableCell>{formatDateTime(b.created_at)}</TableCell>
                    </TableRow>
                  );
                })}
              </TableBody>
            </Table>
          </TableContainer>
        )}
        {list.data && list.data.total > 0 ? <Paginator total={list.data.total} {...pagination} /> : null}
      </Card>
      <Dialog open={running} onClose={() => setRunning(false)} maxWidth="md" fullWidth>
        <DialogTitle>Run a backtest</DialogTitle>
        <DialogContent>{running ? <BacktestRunForm onCancel={() => setRunning(false)} /> : null}</DialogContent>
      </Dialog>
    </>
  );
}

export default BacktestsPage;
