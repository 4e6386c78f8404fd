import Card from "@mui/material/Card";
import CardContent from "@mui/material/CardContent";
import CardHeader from "@mui/material/CardHeader";
import Link from "@mui/material/Link";
import MenuItem from "@mui/material/MenuItem";
import Table from "@mui/material/Table";
import TableBody from "@mui/material/TableBody";
import TableCell from "@mui/material/TableCell";
import TableContainer from "@mui/material/TableContainer";
import TableHead from "@mui/material/TableHead";
import TableRow from "@mui/material/TableRow";
import TextField from "@mui/material/TextField";
import { useQuery } from "@tanstack/react-query";
import { Link as RouterLink, useSearchParams } from "react-router";
import { MODEL_COMPARE_METRICS, researchApi, researchKeys, type ModelCompareMetric } from "../../api/research";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Empty, Loading } from "../../components/Loading";
import { NullableValue } from "../../components/NullableValue";
import { PageHeader } from "../../components/PageHeader";
import { formatDateTime } from "../../lib/format";
import { formatModelMetric, modelMetricLabel, shortHash } from "../../lib/metrics";

const ORDER_TEXT = {
  lower_is_better: "lower is better",
  higher_is_better: "higher is better",
  closest_to_level: "closest to the interval level is best",
} as const;

function isMetric(value: string | null): value is ModelCompareMetric {
  return value !== null && (MODEL_COMPARE_METRICS as readonly string[]).includes(value);
}

/** Ranks models by one out-of-sample metric; the server refuses (422) models not scored on the same data. */
export function ModelComparePage() {
  const [params, setParams] = useSearchParams();
  const ids = (params.get("ids") ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const asked = params.get("metric");
  const metric: ModelCompareMetric = isMetric(asked) ? asked : "rmse";
  const compare = useQuery({
    queryKey: researchKeys.modelCompare(ids, metric),
    queryFn: () => researchApi.models.compare(ids, metric),
    enabled: ids.length >= 2,
  });
  const back = (
    <Link component={RouterLink} to="/models">
      ← All models
    </Link>
  );
  const chooser = (
    <TextField
      select
      size="small"
      label="Rank by"
      value={metric}
      onChange={(e) => {
        const next = new URLSearchParams(params);
        next.set("metric", e.target.value);
        setParams(next, { replace: true });
      }}
      sx={{ minWidth: 220 }}
    >
      {MODEL_COMPARE_METRICS.map((m) => (
        <MenuItem key={m} value={m}>
          {modelMetricLabel(m)}
        </MenuItem>
      ))}
    </TextField>
  );
  if (ids.length < 2)
    return (
      <>
        <PageHeader title="Compare models" subtitle={back} />
        <Empty>Select two or more trained models in the list to compare them.</Empty>
      </>
    );
  return (
    <>
      <PageHeader title="Compare models" subtitle={back} actions={chooser} />
      {compare.isPending ? (
        <Loading />
      ) : compare.isError ? (
        <ErrorAlert error={compare.error} title="Cannot compare these models" onRetry={() => void compare.refetch()} />
      ) : (
        <Card variant="outlined">
          <CardHeader
            title={`${modelMetricLabel(compare.data.metric)} on the shared test window (${ORDER_TEXT[compare.data.order]})`}
            subheader={`target ${compare.data.target}, horizon ${compare.data.horizon} · data ${shortHash(compare.data.data_fingerprint)} · test origins ${formatDateTime(compare.data.test_window.first_origin_ts)} → ${formatDateTime(compare.data.test_window.last_origin_ts)} (${compare.data.test_window.n_origins ?? "?"})`}
          />
          <CardContent sx={{ pt: 0 }}>
            <TableContainer>
              <Table size="small" aria-label="Model ranking">
                <TableHead>
                  <TableRow>
                    <TableCell>Rank</TableCell>
                    <TableCell>Model</TableCell>
                    <TableCell>Algorithm</TableCell>
                    <TableCell align="right">Version</TableCell>
                    <TableCell align="right">{modelMetricLabel(compare.data.metric)}</TableCell>
                    <TableCell align="right">Naive forecast</TableCell>
                  </TableRow>
                </TableHead>
                <TableBody>
                  {compare.data.ranking.map((r) => (
                    <TableRow key={r.model_id} data-testid={`rank-${r.model_id}`}>
                      <TableCell>{r.rank ?? "—"}</TableCell>
                      <TableCell>
                        <Link component={RouterLink} to={`/models/${encodeURIComponent(r.model_id)}`}>
                          {r.name}
                        </Link>
                      </TableCell>
                      <TableCell>{r.algorithm}</TableCell>
                      <TableCell align="right">{r.version}</TableCell>
                      <TableCell align="right">
                        <NullableValue
                          text={r.value === null ? null : formatModelMetric(compare.data.metric, r.value)}
                          reason={r.null_reason ?? undefined}
                        />
                      </TableCell>
                      <TableCell align="right">{formatModelMetric(compare.data.metric, r.naive_value)}</TableCell>
                    </TableRow>
                  ))}
                </TableBody>
              </Table>
            </TableContainer>
          </CardContent>
        </Card>
      )}
    </>
  );
}

export default ModelComparePage;
