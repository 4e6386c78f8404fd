import Alert from "@mui/material/Alert";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Card from "@mui/material/Card";
import CardContent from "@mui/material/CardContent";
import CardHeader from "@mui/material/CardHeader";
import Chip from "@mui/material/Chip";
import Grid from "@mui/material/Grid";
import Link from "@mui/material/Link";
import Stack from "@mui/material/Stack";
import Table from "@mui/material/Table";
import TableBody from "@mui/material/TableBody";
import TableCell from "@mui/material/TableCell";
import TableHead from "@mui/material/TableHead";
import TablePagination from "@mui/material/TablePagination";
import TableRow from "@mui/material/TableRow";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { lazy, Suspense, useMemo, useState } from "react";
import { Link as RouterLink, useParams } from "react-router";
import { researchApi, researchKeys, type Model, type Prediction, type PredictResponse } from "../../api/research";
import { useAuth } from "../../auth/AuthContext";
import { ErrorAlert } from "../../components/ErrorAlert";
import { JobProgressBar } from "../../components/JobsTable";
import { Empty, Loading } from "../../components/Loading";
import { NullableValue } from "../../components/NullableValue";
import { DeleteButton } from "../../components/DeleteButton";
import { PageHeader } from "../../components/PageHeader";
import { formatDateTime, formatNumber } from "../../lib/format";
import { formatModelMetric, shortHash } from "../../lib/metrics";
import { isJobActive } from "../../realtime/cacheUpdates";
import { useLiveJob } from "../../realtime/useLiveJob";
import { modelStatusColor } from "./ModelsPage";
import { ModelMetricsTable } from "./ModelMetricsTable";

const LineChart = lazy(() => import("../../components/LineChart"));
const PAGE = 10;

function fmtValue(v: number | null | undefined, digits = 2) {
  return v === null || v === undefined ? null : formatNumber(v, digits);
}

function Spec({ model }: { model: Model }) {
  const t = model.training;
  const pm = model.performance_metrics;
  const rows: [string, string][] = [
    ["Algorithm", `${model.algorithm_name} (${model.algorithm}${model.requested_algorithm && model.requested_algorithm !== model.algorithm ? `, asked for ${model.requested_algorithm}` : ""})`],
    ["Data", `${t.dataset ?? `${model.symbols.join(",")} stored candles${t.candle_source ? ` (${t.candle_source})` : ""}`} · ${model.target_timeframe}`],
    ["Target", `${t.target}, horizon ${t.horizon} bar(s), ${Math.round(t.interval_level * 100)}% interval, seed ${t.seed}`],
    ["Evaluation", `${t.evaluation.method}, test fraction ${t.evaluation.test_fraction}${t.evaluation.method === "walk_forward" ? `, ${t.evaluation.folds} folds` : ""}`],
    ["Parameters", JSON.stringify(model.parameters)],
  ];
  if (pm?.training_window)
    rows.push(["Training window", `${formatDateTime(pm.training_window.start_ts)} → ${formatDateTime(pm.training_window.end_ts)} (${pm.training_window.n_bars} bars)`]);
  if (pm?.test_window)
    rows.push(["Test origins", `${formatDateTime(pm.test_window.first_origin_ts)} → ${formatDateTime(pm.test_window.last_origin_ts)} (${pm.test_window.n_origins})`]);
  if (pm?.data_fingerprint) rows.push(["Data fingerprint", pm.data_fingerprint]);
  return (
    <Table size="small" aria-label="Model specification">
      <TableBody>
        {rows.map(([k, v]) => (
          <TableRow key={k}>
            <TableCell sx={{ width: 160, color: "text.secondary" }}>{k}</TableCell>
            <TableCell sx={{ whiteSpace: "normal", wordBreak: "break-all", fontFamily: k.includes("ingerprint") || k === "Parameters" ? "monospace" : undefined }}>
              {v}
            </TableCell>
          </TableRow>
        ))}
      </TableBody>
    </Table>
  );
}

function TrainingPanel({ model, canWrite }: { model: Model; canWrite: boolean }) {
  const queryClient = useQueryClient();
  const train = useMutation({
    mutationFn: () => researchApi.models.train(model.id),
    onSuccess: (res) => queryClient.setQueryData(researchKeys.model(model.id), res.model),
  });
  const jobId = model.training_job?.id ?? null;
  const job = useLiveJob(jobId, () => {
    void queryClient.invalidateQueries({ queryKey: researchKeys.models });
  });
  const current = job.data ?? model.training_job;
  const running = model.training_status === "training" || (current ? isJobActive(current) : false);
  return (
    <Stack spacing={1}>
      <Stack direction="row" spacing={1} sx={{ alignItems: "center" }}>
        <Chip variant="outlined" color={modelStatusColor(model.training_status)} label={model.training_status} />
        {canWrite ? (
          <Button variant="contained" disabled={running || train.isPending} onClick={() => train.mutate()}>
            {model.training_status === "trained" ? "Retrain" : "Train"}
          </Button>
        ) : null}
        {train.data ? <Typography variant="body2">Training version {train.data.version}</Typography> : null}
      </Stack>
      {current ? (
        <Box aria-label="Training job">
          <Typography variant="caption" color="text.secondary">
            Job {String(current.id)} · {current.status}
            {current.message ? ` · ${current.message}` : ""}
          </Typography>
          <JobProgressBar job={current} />
        </Box>
      ) : null}
      {model.training_error ? <Alert severity="error">{model.training_error}</Alert> : null}
      {train.isError ? <ErrorAlert error={train.error} title="Training refused" /> : null}
    </Stack>
  );
}

function ForecastView({ prediction }: { prediction: Prediction }) {
  const f = prediction.forecast;
  const steps = f?.steps ?? [];
  const isValue = steps.some((s) => s.price !== undefined && s.price !== null);
  const lines = useMemo(() => {
    if (!f || !isValue) return [];
    const ts = [f.origin_ts, ...steps.map((s) => s.ts)];
    const origin = f.origin_close ?? null;
    return [
      { name: "forecast", color: "#90caf9", ts, values: [origin, ...steps.map((s) => s.price ?? null)] },
      { name: "lower", color: "#ef9a9a", ts, values: [origin, ...steps.map((s) => s.price_lower ?? null)], dashed: true },
      { name: "upper", color: "#a5d6a7", ts, values: [origin, ...steps.map((s) => s.price_upper ?? null)], dashed: true },
    ];
  }, [f, steps, isValue]);
  return (
    <Stack spacing={2}>
      <Typography variant="body2">
        From {formatDateTime(prediction.origin_time)}
        {f?.origin_close !== undefined ? ` (close ${formatNumber(f.origin_close, 2)})` : ""} to {formatDateTime(prediction.target_time)}
        {f?.level ? ` · ${Math.round(f.level * 100)}% interval` : ""}
        {f?.direction ? ` · direction ${f.direction}` : ""}
        {prediction.confidence !== null ? ` · confidence ${(prediction.confidence * 100).toFixed(1)}%` : ""}
      </Typography>
      <Table size="small" aria-label="Forecast path">
        <TableHead>
          <TableRow>
            <TableCell>Step</TableCell>
            <TableCell>Bar open</TableCell>
            {isValue ? (
              <>
                <TableCell align="right">Price</TableCell>
                <TableCell align="right">Lower</TableCell>
                <TableCell align="right">Upper</TableCell>
                <TableCell align="right">Log return</TableCell>
              </>
            ) : (
              <>
                <TableCell align="right">P(up)</TableCell>
                <TableCell align="right">Position</TableCell>
              </>
            )}
          </TableRow>
        </TableHead>
        <TableBody>
          {steps.map((s) => (
            <TableRow key={s.step}>
              <TableCell>{s.step}</TableCell>
              <TableCell>{formatDateTime(s.ts)}</TableCell>
              {isValue ? (
                <>
                  <TableCell align="right">{fmtValue(s.price) ?? "—"}</TableCell>
                  <TableCell align="right">{fmtValue(s.price_lower) ?? "—"}</TableCell>
                  <TableCell align="right">{fmtValue(s.price_upper) ?? "—"}</TableCell>
                  <TableCell align="right">{fmtValue(s.log_return, 5) ?? "—"}</TableCell>
                </>
              ) : (
                <>
                  <TableCell align="right">{s.prob_up === null || s.prob_up === undefined ? "—" : `${(s.prob_up * 100).toFixed(1)}%`}</TableCell>
                  <TableCell align="right">{fmtValue(s.position, 0) ?? "—"}</TableCell>
                </>
              )}
            </TableRow>
          ))}
        </TableBody>
      </Table>
      {lines.length > 0 && steps.length > 0 ? (
        <Suspense fallback={<Loading label="Loading chart…" />}>
          <LineChart lines={lines} height={260} label="Forecast path with interval" />
        </Suspense>
      ) : null}
    </Stack>
  );
}

function PredictPanel({ model, canWrite }: { model: Model; canWrite: boolean }) {
  const queryClient = useQueryClient();
  const [horizon, setHorizon] = useState(String(model.training.horizon));
  const [result, setResult] = useState<PredictResponse | null>(null);
  const predict = useMutation({
    mutationFn: () => researchApi.models.predict(model.id, horizon ? { horizon: Number(horizon) } : {}),
    onSuccess: (res) => {
      setResult(res);
      void queryClient.invalidateQueries({ queryKey: ["models", "predictions", String(model.id)] });
    },
  });
  const live = result?.live ?? model.performance_metrics?.live ?? null;
  return (
    <Stack spacing={2}>
      {canWrite ? (
        <Stack direction="row" spacing={1} sx={{ alignItems: "center" }}>
          <TextField size="small" label="Horizon" type="number" value={horizon} onChange={(e) => setHorizon(e.target.value)} sx={{ width: 120 }} />
          <Button variant="contained" disabled={model.training_status !== "trained" || predict.isPending} onClick={() => predict.mutate()}>
            Predict
          </Button>
          {model.training_status !== "trained" ? (
            <Typography variant="body2" color="text.secondary">
              Train the model first.
            </Typography>
          ) : null}
        </Stack>
      ) : null}
      {predict.isError ? <ErrorAlert error={predict.error} title="Prediction refused" /> : null}
      {result ? <ForecastView prediction={result.prediction} /> : null}
      {live ? (
        <Table size="small" aria-label="Live accuracy">
          <TableHead>
            <TableRow>
              <TableCell>Live (last {live.window ?? "—"} resolved)</TableCell>
              <TableCell align="right">live</TableCell>
              <TableCell align="right">evaluation</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {(["directional_accuracy", "mae", "coverage"] as const).map((m) => (
              <TableRow key={m}>
                <TableCell>{m.replace(/_/g, " ")}</TableCell>
                <TableCell align="right">
                  <NullableValue text={live[m] === null ? null : formatModelMetric(m, live[m])} reason={`${live.n_resolved ?? 0} resolved predictions so far`} />
                </TableCell>
                <TableCell align="right">{formatModelMetric(m, live.evaluation?.[m] ?? null)}</TableCell>
              </TableRow>
            ))}
            <TableRow>
              <TableCell>drift</TableCell>
              <TableCell align="right" colSpan={2}>
                <NullableValue text={live.drift === null ? null : live.drift ? "drift detected" : "no drift"} reason={live.drift_reason} />
              </TableCell>
            </TableRow>
          </TableBody>
        </Table>
      ) : null}
    </Stack>
  );
}

function VersionsTable({ modelId }: { modelId: string }) {
  const [page, setPage] = useState(0);
  const versions = useQuery({
    queryKey: researchKeys.versions(modelId, page * PAGE),
    queryFn: () => researchApi.models.versions(modelId, { limit: PAGE, offset: page * PAGE }),
    placeholderData: keepPreviousData,
  });
  if (versions.isPending) return <Loading />;
  if (versions.isError) return <ErrorAlert error={versions.error} />;
  if (versions.data.items.length === 0) return <Empty>No versions yet.</Empty>;
  return (
    <>
      <Table size="small" aria-label="Versions">
        <TableHead>
          <TableRow>
            <TableCell>Version</TableCell>
            <TableCell>Created</TableCell>
            <TableCell align="right">RMSE model</TableCell>
            <TableCell align="right">RMSE naive</TableCell>
            <TableCell>SHA-256</TableCell>
            <TableCell align="right">Size</TableCell>
          </TableRow>
        </TableHead>
        <TableBody>
          {versions.data.items.map((v) => (
            <TableRow key={v.version}>
              <TableCell>v{v.version}</TableCell>
              <TableCell>{formatDateTime(v.created_at)}</TableCell>
              <TableCell align="right">{formatModelMetric("rmse", v.metrics?.model?.rmse ?? null)}</TableCell>
              <TableCell align="right">{formatModelMetric("rmse", v.metrics?.naive?.rmse ?? null)}</TableCell>
              <TableCell sx={{ fontFamily: "monospace" }} title={v.sha256}>
                {shortHash(v.sha256)}
              </TableCell>
              <TableCell align="right">{formatNumber(v.size, 0)} B</TableCell>
            </TableRow>
          ))}
        </TableBody>
      </Table>
      <TablePagination component="div" count={versions.data.total} page={page} rowsPerPage={PAGE} rowsPerPageOptions={[PAGE]} onPageChange={(_, p) => setPage(p)} />
    </>
  );
}

function PredictionsTable({ modelId }: { modelId: string }) {
  const [page, setPage] = useState(0);
  const preds = useQuery({
    queryKey: researchKeys.predictions(modelId, page * PAGE),
    queryFn: () => researchApi.models.predictions(modelId, { limit: PAGE, offset: page * PAGE }),
    placeholderData: keepPreviousData,
  });
  if (preds.isPending) return <Loading />;
  if (preds.isError) return <ErrorAlert error={preds.error} />;
  if (preds.data.items.length === 0) return <Empty>No predictions yet.</Empty>;
  return (
    <>
      <Table size="small" aria-label="Predictions">
        <TableHead>
          <TableRow>
            <TableCell>Made</TableCell>
            <TableCell>Version</TableCell>
            <TableCell>Target bar</TableCell>
            <TableCell align="right">Prediction</TableCell>
            <TableCell align="right">Interval</TableCell>
            <TableCell align="right">Actual</TableCell>
            <TableCell>Outcome</TableCell>
          </TableRow>
        </TableHead>
        <TableBody>
          {preds.data.items.map((p) => (
            <TableRow key={String(p.id)}>
              <TableCell>{formatDateTime(p.timestamp)}</TableCell>
              <TableCell>{p.version === null ? "—" : `v${p.version}`}</TableCell>
              <TableCell>{formatDateTime(p.target_time)}</TableCell>
              <TableCell align="right">{formatNumber(p.prediction_value, 4)}</TableCell>
              <TableCell align="right">
                {p.lower_value === null || p.upper_value === null ? "—" : `${formatNumber(p.lower_value, 2)} – ${formatNumber(p.upper_value, 2)}`}
              </TableCell>
              <TableCell align="right">
                <NullableValue text={fmtValue(p.actual_value, 4)} reason="the target bar has not closed yet" />
              </TableCell>
              <TableCell sx={{ fontFamily: "monospace", fontSize: 12 }}>{p.outcome ? JSON.stringify(p.outcome) : "—"}</TableCell>
            </TableRow>
          ))}
        </TableBody>
      </Table>
      <TablePagination component="div" count={preds.data.total} page={page} rowsPerPage={PAGE} rowsPerPageOptions={[PAGE]} onPageChange={(_, p) => setPage(p)} />
    </>
  );
}

export function ModelDetailPage() {
  const { id = "" } = useParams();
  const { user } = useAuth();
  const canWrite = user?.role !== "viewer";
  const detail = useQuery({
    queryKey: researchKeys.model(id),
    queryFn: () => researchApi.models.get(id),
    refetchInterval: (q) => (q.state.data?.training_status === "training" ? 3_000 : false),
  });
  const back = (
    <Link component={RouterLink} to="/models">
      ← All models
    </Link>
  );
  if (detail.isPending) return <><PageHeader title="Model" subtitle={back} /><Loading /></>;
  if (detail.isError)
    return (
      <>
        <PageHeader title="Model" subtitle={back} />
        <ErrorAlert error={detail.error} onRetry={() => void detail.refetch()} />
      </>
    );
  const model = detail.data;
  const evaluation = model.performance_metrics?.evaluation;
  return (
    <>
      <PageHeader
        title={model.name}
        subtitle={back}
        actions={
          canWrite ? (
            <DeleteButton
              what={`the model “${model.name}”`}
              consequences="Its versions, artefacts and stored predictions go with it; a running training is cancelled. A model that backtests used cannot be deleted until they are."
              remove={() => researchApi.models.remove(id)}
              listKey={researchKeys.models}
              detailKey={researchKeys.model(id)}
              afterwards="/models"
            />
          ) : null
        }
      />
      <Grid container spacing={2}>
        <Grid size={{ xs: 12, lg: 6 }}>
          <Card variant="outlined">
            <CardHeader title="Specification" />
            <CardContent>
              <Spec model={model} />
            </CardContent>
          </Card>
        </Grid>
        <Grid size={{ xs: 12, lg: 6 }}>
          <Card variant="outlined">
            <CardHeader title="Training" />
            <CardContent>
              <TrainingPanel model={model} canWrite={canWrite} />
            </CardContent>
          </Card>
        </Grid>
        <Grid size={12}>
          <Card variant="outlined">
            <CardHeader
              title="Out-of-sample evaluation"
              subheader={
                evaluation
                  ? `${evaluation.method ?? ""} · ${evaluation.n_test ?? "—"} test origins · target ${evaluation.target ?? model.training.target}, h=${evaluation.horizon ?? model.training.horizon}${evaluation.level ? ` · ${Math.round(evaluation.level * 100)}% interval` : ""}${evaluation.up_rate !== undefined && evaluation.up_rate !== null ? ` · up rate ${(evaluation.up_rate * 100).toFixed(1)}%` : ""}`
                  : undefined
              }
            />
            <CardContent>
              {model.evaluation && model.evaluation.length > 0 ? (
                <ModelMetricsTable rows={model.evaluation} nullReasons={evaluation?.null_reasons} />
              ) : (
                <Empty>Not evaluated yet: train the model to score it against the naive forecast.</Empty>
              )}
            </CardContent>
          </Card>
        </Grid>
        <Grid size={12}>
          <Card variant="outlined">
            <CardHeader title="Predict" subheader="Forecast from the latest candle of the model's series with the latest version" />
            <CardContent>
              <PredictPanel model={model} canWrite={canWrite} />
            </CardContent>
          </Card>
        </Grid>
        <Grid size={{ xs: 12, lg: 6 }}>
          <Card variant="outlined">
            <CardHeader title="Versions" />
            <VersionsTable modelId={id} />
          </Card>
        </Grid>
        <Grid size={{ xs: 12, lg: 6 }}>
          <Card variant="outlined">
            <CardHeader title="Predictions" />
            <PredictionsTable modelId={id} />
          </Card>
        </Grid>
      </Grid>
    </>
  );
}

export default ModelDetailPage;
