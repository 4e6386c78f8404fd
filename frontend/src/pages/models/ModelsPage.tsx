import Button from "@mui/material/Button";
import Card from "@mui/material/Card";
import Checkbox from "@mui/material/Checkbox";
import CardContent from "@mui/material/CardContent";
import Chip from "@mui/material/Chip";
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
import { Link as RouterLink, useNavigate } from "react-router";
import { researchApi, researchKeys, type Model } from "../../api/research";
import { useAuth } from "../../auth/AuthContext";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Empty, Loading } from "../../components/Loading";
import { NullableValue } from "../../components/NullableValue";
import { CompareButton, useCompareSelection } from "../../components/CompareSelection";
import { PageHeader } from "../../components/PageHeader";
import { Paginator } from "../../components/Paginator";
import { formatDateTime } from "../../lib/format";
import { formatModelMetric, modelMetricLabel } from "../../lib/metrics";
import { usePagination } from "../../lib/usePagination";
import { ModelCreateForm } from "./ModelCreateForm";
import { headlineRow } from "./ModelMetricsTable";

type ChipColor = "default" | "primary" | "success" | "error" | "warning";

export function modelStatusColor(status: string): ChipColor {
  return status === "trained" ? "success" : status === "training" ? "primary" : status === "failed" ? "error" : "default";
}

function Headline({ model }: { model: Model }) {
  const row = headlineRow(model.evaluation);
  if (!row) return <NullableValue text={null} reason={model.training_status === "trained" ? "no evaluation reported" : "not trained yet"} />;
  const reasons = model.performance_metrics?.evaluation?.null_reasons;
  return (
    <span>
      {modelMetricLabel(row.metric)}{" "}
      <NullableValue
        text={row.model === null ? null : formatModelMetric(row.metric, row.model)}
        reason={reasons?.[`model.${row.metric}`]}
      />{" "}
      <span style={{ opacity: 0.7 }}>
        vs naive{" "}
        <NullableValue
          text={row.naive === null ? null : formatModelMetric(row.metric, row.naive)}
          reason={reasons?.[`naive.${row.metric}`]}
        />
      </span>
    </span>
  );
}

export function ModelsPage() {
  const pagination = usePagination(25);
  const { limit, offset } = pagination;
  const navigate = useNavigate();
  const { user } = useAuth();
  const canWrite = user?.role !== "viewer";
  const [creating, setCreating] = useState(false);
  const { selected, toggle, isSelected } = useCompareSelection(20);
  const list = useQuery({
    queryKey: researchKeys.modelList(limit, offset),
    queryFn: () => researchApi.models.list({ limit, offset }),
    placeholderData: keepPreviousData,
    refetchInterval: (q) => (q.state.data?.items.some((m) => m.training_status === "training") ? 5_000 : false),
  });

  return (
    <>
      <PageHeader
        title="Models"
        subtitle="Forecasting models trained on real market history and scored out of sample against the naive forecast"
        actions={
          <>
            <CompareButton selected={selected} path="/models/compare" />
            {canWrite ? (
              <Button variant="contained" onClick={() => setCreating(true)}>
                New model
              </Button>
            ) : null}
          </>
        }
      />
      <Card variant="outlined">
        {list.isPending ? (
          <Loading label="Loading models…" />
        ) : list.isError ? (
          <CardContent>
            <ErrorAlert error={list.error} onRetry={() => void list.refetch()} />
          </CardContent>
        ) : list.data.items.length === 0 ? (
          <Empty>{offset > 0 ? "No models on this page." : "No models yet."}</Empty>
        ) : (
          <TableContainer>
            <Table size="small" aria-label="Models">
              <TableHead>
                <TableRow>
                  <TableCell padding="checkbox" />
                  <TableCell>Name</TableCell>
                  <TableCell>Algorithm</TableCell>
                  <TableCell>Data</TableCell>
                  <TableCell>Status</TableCell>
                  <TableCell>Last trained</TableCell>
                  <TableCell>Out of sample (model vs naive)</TableCell>
                </TableRow>
              </TableHead>
              <TableBody>
                {list.data.items.map((m) => (
                  <TableRow key={String(m.id)} hover>
                    <TableCell padding="checkbox">
                      {m.training_status === "trained" ? (
                        <Checkbox
                          size="small"
                          checked={isSelected(String(m.id))}
                          onChange={() => toggle(String(m.id))}
                          slotProps={{ input: { "aria-label": `select ${m.name} for comparison` } }}
                        />
                      ) : null}
                    </TableCell>
                    <TableCell>
                      <Link component={RouterLink} to={`/models/${encodeURIComponent(String(m.id))}`}>
                        {m.name}
                      </Link>
                    </TableCell>
                    <TableCell>{m.algorithm_name ?? m.algorithm}</TableCell>
                    <TableCell>
                      {m.symbols.join(",")} {m.target_timeframe} · h={m.training?.horizon}
                    </TableCell>
                    <TableCell>
                      <Chip size="small" variant="outlined" color={modelStatusColor(m.training_status)} label={m.training_status} />
                    </TableCell>
                    <TableCell>{formatDateTime(m.last_trained)}</TableCell>
                    <TableCell>
                      <Headline model={m} />
                    </TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
          </TableContainer>
        )}
        {list.data && list.data.total > 0 ? <Paginator total={list.data.total} {...pagination} /> : null}
      </Card>
      <Dialog open={creating} onClose={() => setCreating(false)} maxWidth="md" fullWidth>
        <DialogTitle>New model</DialogTitle>
        <DialogContent>
          {creating ? (
            <ModelCreateForm
              onCancel={() => setCreating(false)}
              onCreated={(m) => {
                setCreating(false);
                void navigate(`/models/${encodeURIComponent(String(m.id))}`);
              }}
            />
          ) : null}
        </DialogContent>
      </Dialog>
    </>
  );
}

export default ModelsPage;
