import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Grid from "@mui/material/Grid";
import Link from "@mui/material/Link";
import ListItemText from "@mui/material/ListItemText";
import MenuItem from "@mui/material/MenuItem";
import Stack from "@mui/material/Stack";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link as RouterLink } from "react-router";
import { researchApi, researchKeys, schemaDefaults, type BacktestBody, type BacktestSubmitted } from "../../api/research";
import { ErrorAlert } from "../../components/ErrorAlert";
import { JobProgressBar } from "../../components/JobsTable";
import { JsonField, parseJsonObject } from "../../components/JsonField";
import { Loading } from "../../components/Loading";
import { useLiveJob } from "../../realtime/useLiveJob";

function num(value: string): number | undefined {
  if (value.trim() === "") return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

function SubmittedJob({ submitted }: { submitted: BacktestSubmitted }) {
  const queryClient = useQueryClient();
  const job = useLiveJob(submitted.job_id, () => void queryClient.invalidateQueries({ queryKey: researchKeys.backtests }));
  const j = job.data;
  return (
    <Box sx={{ mt: 2 }} aria-label="Backtest job">
      <Typography variant="body2">
        Job {String(submitted.job_id)} · {submitted.bars} bars · {j?.status ?? submitted.status}
        {j?.message ? ` · ${j.message}` : ""}
      </Typography>
      {j ? <JobProgressBar job={j} /> : null}
      {j?.error ? <Typography color="error">{j.error}</Typography> : null}
      {j?.status === "succeeded" ? (
        <Link component={RouterLink} to={`/backtests/${encodeURIComponent(String(submitted.backtest_id))}`}>
          Open the result →
        </Link>
      ) : null}
    </Box>
  );
}

export function BacktestRunForm({ onCancel }: { onCancel: () => void }) {
  const catalogue = useQuery({ queryKey: researchKeys.strategies, queryFn: researchApi.backtests.strategies, staleTime: 300_000 });
  const [name, setName] = useState("");
  const [symbols, setSymbols] = useState("BTC");
  const [timeframe, setTimeframe] = useState("1d");
  const [start, setStart] = useState("2017-01-01");
  const [end, setEnd] = useState("2018-01-01");
  const [strategy, setStrategy] = useState("");
  const [params, setParams] = useState("{}");
  const [cash, setCash] = useState("");
  const [taker, setTaker] = useState("");
  const [maker, setMaker] = useState("");
  const [slippage, setSlippage] = useState("");
  const [stopLoss, setStopLoss] = useState("");
  const [takeProfit, setTakeProfit] = useState("");
  const [engine, setEngine] = useState("auto");
  const [kind, setKind] = useState("single");
  const [kindSettings, setKindSettings] = useState("{}");

  const run = useMutation({ mutationFn: (body: BacktestBody) => researchApi.backtests.run(body) });

  if (catalogue.isPending) return <Loading label="Loading strategies…" />;
  if (catalogue.isError) return <ErrorAlert error={catalogue.error} onRetry={() => void catalogue.refetch()} />;
  const cat = catalogue.data;
  const configDefaults = schemaDefaults(cat.config_schema);
  const defaultFees = (configDefaults.fees ?? {}) as Record<string, unknown>;
  const defaultSlip = (configDefaults.slippage ?? {}) as Record<string, unknown>;
  const selected = cat.strategies.find((s) => s.name === strategy);
  const parsed = parseJsonObject(params);
  const parsedKind = parseJsonObject(kindSettings);
  const kindSchema = (cat.run_kinds[kind] ?? {}) as { required?: string[]; properties?: Record<string, Record<string, unknown>> };

  /** The kind's schema defaults; a grid starts from the strategy's own defaults, one value each. */
  const kindTemplate = (k: string, strategyParams: Record<string, unknown>) => {
    const schema = (cat.run_kinds[k] ?? {}) as { properties?: Record<string, Record<string, unknown>> };
    const out = schemaDefaults(schema);
    if (schema.properties && "grid" in schema.properties) {
      out.grid = Object.fromEntries(
        Object.entries(strategyParams)
          .filter(([, v]) => typeof v === "number")
          .map(([key, v]) => [key, [v]]),
      );
    }
    return JSON.stringify(out, null, 2);
  };

  const pick = (nameValue: string) => {
    setStrategy(nameValue);
    const s = cat.strategies.find((x) => x.name === nameValue);
    const defaults = schemaDefaults(s?.params_schema);
    setParams(JSON.stringify(defaults, null, 2));
    if (kind !== "single") setKindSettings(kindTemplate(kind, defaults));
  };

  const pickKind = (k: string) => {
    setKind(k);
    setKindSettings(k === "single" ? "{}" : kindTemplate(k, parsed.ok ? parsed.value : {}));
  };

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!parsed.ok || !parsedKind.ok) return;
    const config: Record<string, unknown> = {};
    const c = num(cash);
    if (c !== undefined) config.initial_cash = c;
    const fees: Record<string, number> = {};
    const t = num(taker);
    const m = num(maker);
    if (t !== undefined) fees.taker_bps = t;
    if (m !== undefined) fees.maker_bps = m;
    if (Object.keys(fees).length) config.fees = fees;
    const sl = num(slippage);
    if (sl !== undefined) config.slippage = { bps: sl };
    const stops: Record<string, number> = {};
    const stop = num(stopLoss);
    const tp = num(takeProfit);
    if (stop !== undefined) stops.stop_loss = stop;
    if (tp !== undefined) stops.take_profit = tp;
    if (Object.keys(stops).length) config.stops = stops;
    const body: BacktestBody = {
      name: name.trim() || `${strategy} ${symbols}`,
      symbols: symbols.split(",").map((s) => s.trim()).filter(Boolean),
      timeframe,
      start: `${start}T00:00:00Z`,
      end: `${end}T00:00:00Z`,
      strategy,
      params: parsed.value,
      config,
      engine,
      kind,
    };
    if (kind === "sweep" || kind === "walk_forward" || kind === "monte_carlo") body[kind] = parsedKind.value;
    run.mutate(body);
  };

  const hint = (v: unknown) => (v === undefined ? undefined : `default ${String(v)}`);

  return (
    <form onSubmit={submit} aria-label="Run backtest">
      <Grid container spacing={2}>
        <Grid size={{ xs: 12, md: 6 }}>
          <TextField label="Name" value={name} onChange={(e) => setName(e.target.value)} fullWidth />
        </Grid>
        <Grid size={{ xs: 12, md: 6 }}>
          <TextField label="Symbols (comma-separated)" value={symbols} onChange={(e) => setSymbols(e.target.value)} required fullWidth />
        </Grid>
        <Grid size={{ xs: 4 }}>
          <TextField select label="Timeframe" value={timeframe} onChange={(e) => setTimeframe(e.target.value)} fullWidth>
            {cat.timeframes.map((tf) => (
              <MenuItem key={tf} value={tf}>
                {tf}
              </MenuItem>
            ))}
          </TextField>
        </Grid>
        <Grid size={{ xs: 4 }}>
          <TextField label="Start (UTC)" type="date" value={start} onChange={(e) => setStart(e.target.value)} required fullWidth slotProps={{ inputLabel: { shrink: true } }} />
        </Grid>
        <Grid size={{ xs: 4 }}>
          <TextField label="End (UTC, exclusive)" type="date" value={end} onChange={(e) => setEnd(e.target.value)} required fullWidth slotProps={{ inputLabel: { shrink: true } }} />
        </Grid>
        <Grid size={{ xs: 12, md: 6 }}>
          <TextField
            select
            label="Strategy"
            value={strategy}
            onChange={(e) => pick(e.target.value)}
            required
            fullWidth
            helperText={selected?.description}
          >
            {cat.strategies.map((s) => (
              <MenuItem key={s.name} value={s.name}>
                <ListItemText primary={s.title} secondary={s.name} />
              </MenuItem>
            ))}
          </TextField>
        </Grid>
        <Grid size={{ xs: 6, md: 3 }}>
          <TextField select label="Run kind" value={kind} onChange={(e) => pickKind(e.target.value)} fullWidth>
            {Object.keys(cat.run_kinds).map((k) => (
              <MenuItem key={k} value={k}>
                {k}
              </MenuItem>
            ))}
          </TextField>
        </Grid>
        <Grid size={{ xs: 6, md: 3 }}>
          <TextField select label="Engine" value={engine} onChange={(e) => setEngine(e.target.value)} fullWidth>
            {["auto", "vectorized", "event"].map((x) => (
              <MenuItem key={x} value={x}>
                {x}
              </MenuItem>
            ))}
          </TextField>
        </Grid>
        <Grid size={12}>
          <JsonField label="Strategy parameters (JSON)" value={params} onChange={setParams} helperText="Prefilled from the strategy's schema defaults; the server validates bounds." />
        </Grid>
        {kind !== "single" ? (
          <Grid size={12}>
            <JsonField
              label={`${kind} settings (JSON)`}
              value={kindSettings}
              onChange={setKindSettings}
              helperText={`Schema defaults filled in${kindSchema.required?.length ? `; required: ${kindSchema.required.join(", ")}` : ""}. The server checks the limits.`}
            />
          </Grid>
        ) : null}
        <Grid size={{ xs: 6, md: 4 }}>
          <TextField label="Initial cash" type="number" value={cash} onChange={(e) => setCash(e.target.value)} fullWidth helperText={hint(configDefaults.initial_cash)} />
        </Grid>
        <Grid size={{ xs: 6, md: 4 }}>
          <TextField label="Taker fee (bps)" type="number" value={taker} onChange={(e) => setTaker(e.target.value)} fullWidth helperText={hint(defaultFees.taker_bps)} />
        </Grid>
        <Grid size={{ xs: 6, md: 4 }}>
          <TextField label="Maker fee (bps)" type="number" value={maker} onChange={(e) => setMaker(e.target.value)} fullWidth helperText={hint(defaultFees.maker_bps)} />
        </Grid>
        <Grid size={{ xs: 6, md: 4 }}>
          <TextField label="Slippage (bps)" type="number" value={slippage} onChange={(e) => setSlippage(e.target.value)} fullWidth helperText={hint(defaultSlip.bps)} />
        </Grid>
        <Grid size={{ xs: 6, md: 4 }}>
          <TextField label="Stop loss (fraction)" type="number" value={stopLoss} onChange={(e) => setStopLoss(e.target.value)} fullWidth slotProps={{ htmlInput: { step: "any" } }} helperText="e.g. 0.08; empty = none" />
        </Grid>
        <Grid size={{ xs: 6, md: 4 }}>
          <TextField label="Take profit (fraction)" type="number" value={takeProfit} onChange={(e) => setTakeProfit(e.target.value)} fullWidth slotProps={{ htmlInput: { step: "any" } }} helperText="empty = none" />
        </Grid>
      </Grid>
      {run.isError ? (
        <Box sx={{ mt: 2 }}>
          <ErrorAlert error={run.error} title="The server refused this run" />
        </Box>
      ) : null}
      {run.data ? <SubmittedJob key={String(run.data.job_id)} submitted={run.data} /> : null}
      <Stack direction="row" spacing={1} sx={{ mt: 2, justifyContent: "flex-end" }}>
        <Button onClick={onCancel}>Close</Button>
        <Button type="submit" variant="contained" disabled={run.isPending || !parsed.ok || !parsedKind.ok || !strategy}>
          Run backtest
        </Button>
      </Stack>
    </form>
  );
}
