import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Grid from "@mui/material/Grid";
import ListItemText from "@mui/material/ListItemText";
import MenuItem from "@mui/material/MenuItem";
import Stack from "@mui/material/Stack";
import TextField from "@mui/material/TextField";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { researchApi, researchKeys, type Model, type ModelCreateBody } from "../../api/research";
import { ErrorAlert } from "../../components/ErrorAlert";
import { JsonField, parseJsonObject } from "../../components/JsonField";
import { Loading } from "../../components/Loading";

/** Bundled datasets the server ships (docs/models.md, "Data sources"). */
export const BUNDLED_DATASETS = [
  "BTC-USD_1d",
  "ETH-USD_1d",
  "LTC-USD_1d",
  "BTC-USD_1h",
  "BTC-USD_1d_coinbase",
  "BTC-USD_1h_coinbase",
];

const STORED = "__stored__";

function dateToMs(value: string, endOfDay: boolean): number | undefined {
  if (!value) return undefined;
  const ms = Date.parse(`${value}T${endOfDay ? "23:59:59.999" : "00:00:00"}Z`);
  return Number.isNaN(ms) ? undefined : ms;
}

export function ModelCreateForm({ onCreated, onCancel }: { onCreated: (model: Model) => void; onCancel: () => void }) {
  const queryClient = useQueryClient();
  const algorithms = useQuery({ queryKey: researchKeys.algorithms, queryFn: researchApi.models.algorithms, staleTime: 300_000 });
  const [name, setName] = useState("");
  const [algorithm, setAlgorithm] = useState("");
  const [params, setParams] = useState("{}");
  const [dataset, setDataset] = useState(BUNDLED_DATASETS[0] as string);
  const [symbol, setSymbol] = useState("BTC");
  const [timeframe, setTimeframe] = useState("1d");
  const [target, setTarget] = useState("price");
  const [horizon, setHorizon] = useState("1");
  const [level, setLevel] = useState("0.9");
  const [seed, setSeed] = useState("0");
  const [method, setMethod] = useState("holdout");
  const [testFraction, setTestFraction] = useState("0.2");
  const [folds, setFolds] = useState("3");
  const [start, setStart] = useState("");
  const [end, setEnd] = useState("");

  const create = useMutation({
    mutationFn: (body: ModelCreateBody) => researchApi.models.create(body),
    onSuccess: (model) => {
      void queryClient.invalidateQueries({ queryKey: researchKeys.models });
      onCreated(model);
    },
  });

  const selected = algorithms.data?.items.find((a) => a.id === algorithm);
  const parsed = parseJsonObject(params);

  const pickAlgorithm = (id: string) => {
    setAlgorithm(id);
    const algo = algorithms.data?.items.find((a) => a.id === id);
    setParams(JSON.stringify(algo?.defaults ?? {}, null, 2));
  };

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!parsed.ok) return;
    const body: ModelCreateBody = {
      name: name.trim(),
      algorithm,
      parameters: parsed.value,
      target,
      horizon: Number(horizon),
      interval_level: Number(level),
      seed: Number(seed),
      evaluation: { method, test_fraction: Number(testFraction), folds: Number(folds) },
    };
    if (dataset === STORED) {
      body.symbols = [symbol.trim()];
      body.target_timeframe = timeframe.trim();
    } else body.dataset = dataset;
    const startTs = dateToMs(start, false);
    const endTs = dateToMs(end, true);
    if (startTs !== undefined) body.start_ts = startTs;
    if (endTs !== undefined) body.end_ts = endTs;
    create.mutate(body);
  };

  if (algorithms.isPending) return <Loading label="Loading algorithms…" />;
  if (algorithms.isError) return <ErrorAlert error={algorithms.error} onRetry={() => void algorithms.refetch()} />;

  return (
    <form onSubmit={submit} aria-label="Create model">
      <Grid container spacing={2}>
        <Grid size={{ xs: 12, md: 6 }}>
          <TextField label="Name" value={name} onChange={(e) => setName(e.target.value)} required fullWidth />
        </Grid>
        <Grid size={{ xs: 12, md: 6 }}>
          <TextField
            select
            label="Algorithm"
            value={algorithm}
            onChange={(e) => pickAlgorithm(e.target.value)}
            required
            fullWidth
            helperText={selected ? selected.description : "Unavailable algorithms say why"}
          >
            {algorithms.data.items.map((a) => (
              <MenuItem key={a.id} value={a.id} disabled={!a.available}>
                <ListItemText
                  primary={`${a.name} (${a.id})${a.available ? "" : " — unavailable"}`}
                  secondary={a.available ? `${a.family} · ${a.engine}` : a.reason}
                />
              </MenuItem>
            ))}
          </TextField>
        </Grid>
        <Grid size={12}>
          <JsonField
            label="Parameters (JSON)"
            value={params}
            onChange={setParams}
            helperText="Prefilled with the algorithm's defaults; the server validates against its schema."
          />
        </Grid>
        <Grid size={{ xs: 12, md: 4 }}>
          <TextField select label="Data" value={dataset} onChange={(e) => setDataset(e.target.value)} fullWidth>
            {BUNDLED_DATASETS.map((d) => (
              <MenuItem key={d} value={d}>
                {d} (bundled)
              </MenuItem>
            ))}
            <MenuItem value={STORED}>Stored candles…</MenuItem>
          </TextField>
        </Grid>
        {dataset === STORED ? (
          <>
            <Grid size={{ xs: 6, md: 4 }}>
              <TextField label="Symbol" value={symbol} onChange={(e) => setSymbol(e.target.value)} required fullWidth />
            </Grid>
            <Grid size={{ xs: 6, md: 4 }}>
              <TextField label="Timeframe" value={timeframe} onChange={(e) => setTimeframe(e.target.value)} required fullWidth />
            </Grid>
          </>
        ) : (
          <Grid size={{ xs: 12, md: 8 }} />
        )}
        <Grid size={{ xs: 6, md: 3 }}>
          <TextField select label="Target" value={target} onChange={(e) => setTarget(e.target.value)} fullWidth>
            <MenuItem value="price">price</MenuItem>
            <MenuItem value="log_return">log_return</MenuItem>
          </TextField>
        </Grid>
        <Grid size={{ xs: 6, md: 3 }}>
          <TextField label="Horizon (bars)" type="number" value={horizon} onChange={(e) => setHorizon(e.target.value)} fullWidth />
        </Grid>
        <Grid size={{ xs: 6, md: 3 }}>
          <TextField label="Interval level" type="number" value={level} onChange={(e) => setLevel(e.target.value)} fullWidth slotProps={{ htmlInput: { step: "any" } }} />
        </Grid>
        <Grid size={{ xs: 6, md: 3 }}>
          <TextField label="Seed" type="number" value={seed} onChange={(e) => setSeed(e.target.value)} fullWidth />
        </Grid>
        <Grid size={{ xs: 6, md: 3 }}>
          <TextField select label="Evaluation" value={method} onChange={(e) => setMethod(e.target.value)} fullWidth>
            <MenuItem value="holdout">holdout</MenuItem>
            <MenuItem value="walk_forward">walk_forward</MenuItem>
          </TextField>
        </Grid>
        <Grid size={{ xs: 6, md: 3 }}>
          <TextField label="Test fraction" type="number" value={testFraction} onChange={(e) => setTestFraction(e.target.value)} fullWidth slotProps={{ htmlInput: { step: "any" } }} />
        </Grid>
        <Grid size={{ xs: 6, md: 2 }}>
          <TextField label="Folds" type="number" value={folds} onChange={(e) => setFolds(e.target.value)} fullWidth disabled={method !== "walk_forward"} />
        </Grid>
        <Grid size={{ xs: 6, md: 2 }}>
          <TextField label="Start (UTC)" type="date" value={start} onChange={(e) => setStart(e.target.value)} fullWidth slotProps={{ inputLabel: { shrink: true } }} />
        </Grid>
        <Grid size={{ xs: 6, md: 2 }}>
          <TextField label="End (UTC)" type="date" value={end} onChange={(e) => setEnd(e.target.value)} fullWidth slotProps={{ inputLabel: { shrink: true } }} />
        </Grid>
      </Grid>
      {create.isError ? (
        <Box sx={{ mt: 2 }}>
          <ErrorAlert error={create.error} title="The server refused this model" />
        </Box>
      ) : null}
      <Stack direction="row" spacing={1} sx={{ mt: 2, justifyContent: "flex-end" }}>
        <Button onClick={onCancel}>Cancel</Button>
        <Button type="submit" variant="contained" disabled={create.isPending || !parsed.ok || !algorithm || !name.trim()}>
          Create model
        </Button>
      </Stack>
    </form>
  );
}
