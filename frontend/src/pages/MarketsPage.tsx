import Card from "@mui/material/Card";
import CardContent from "@mui/material/CardContent";
import Grid from "@mui/material/Grid";
import MenuItem from "@mui/material/MenuItem";
import Stack from "@mui/material/Stack";
import TextField from "@mui/material/TextField";
import ToggleButton from "@mui/material/ToggleButton";
import ToggleButtonGroup from "@mui/material/ToggleButtonGroup";
import Typography from "@mui/material/Typography";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { useSearchParams } from "react-router";
import { api } from "../api/client";
import { keys } from "../api/queryClient";
import { CandleChart, type LiveBar } from "../components/CandleChart";
import { ErrorAlert } from "../components/ErrorAlert";
import { DEFAULT_SYMBOLS, LivePrices } from "../components/LivePrices";
import { Empty, Loading } from "../components/Loading";
import { MarketStatusPanel } from "../components/MarketStatusPanel";
import { PageHeader } from "../components/PageHeader";
import { formatDateTime, formatPrice, parseTimestamp } from "../lib/format";
import { foldTick } from "../lib/liveBar";
import { TIMEFRAMES, isTimeframe, timeframeMs } from "../lib/timeframe";
import { useRealtimeEvent, useRooms } from "../realtime/RealtimeProvider";

const CANDLE_LIMIT = 500;

export default function MarketsPage() {
  const [params, setParams] = useSearchParams();
  const symbol = (params.get("symbol") ?? "BTC").toUpperCase();
  const tfParam = params.get("tf");
  const timeframe = isTimeframe(tfParam) ? tfParam : "1h";
  const queryClient = useQueryClient();

  const symbols = useQuery({ queryKey: keys.symbols, queryFn: api.market.symbols, staleTime: 10 * 60_000 });
  const symbolOptions = symbols.data?.items.map((s) => s.symbol) ?? [...DEFAULT_SYMBOLS];
  if (!symbolOptions.includes(symbol)) symbolOptions.push(symbol);

  const candles = useQuery({
    queryKey: keys.candles(symbol, timeframe),
    queryFn: () => api.market.candles(symbol, timeframe, CANDLE_LIMIT),
    refetchOnWindowFocus: false,
  });

  // Live ticks move the newest bar; a refetch (new data from the server) starts over from its last bar.
  const [liveBar, setLiveBar] = useState<LiveBar | null>(null);
  const liveRef = useRef<LiveBar | null>(null);
  const items = candles.data?.items;
  useEffect(() => {
    liveRef.current = null;
    setLiveBar(null);
  }, [items]);

  const period = timeframeMs(timeframe);
  const refetchTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(() => () => {
    if (refetchTimer.current) clearTimeout(refetchTimer.current);
  }, []);

  useRooms([`prices:${symbol}`]);
  useRealtimeEvent("price_update", (update) => {
    // A stale tick repeats an old cached price: it says nothing about the current bar.
    if (update.symbol !== symbol || update.stale || !items || items.length === 0 || period === null) return;
    const base = liveRef.current ?? items[items.length - 1] ?? null;
    const next = foldTick(base, update.price, parseTimestamp(update.as_of), period);
    if (!next) return;
    const opened = base !== null && next.t > base.t;
    liveRef.current = next;
    setLiveBar(next);
    if (opened && !refetchTimer.current) {
      // A new period began: fetch the server's closed bar to replace the one built from ticks.
      refetchTimer.current = setTimeout(() => {
        refetchTimer.current = null;
        void queryClient.invalidateQueries({ queryKey: keys.candles(symbol, timeframe) });
      }, 5_000);
    }
  });

  const setParam = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    next.set(key, value);
    setParams(next, { replace: true });
  };

  const lastClose = liveBar?.c ?? items?.[items.length - 1]?.c ?? null;

  return (
    <>
      <PageHeader title="Markets" subtitle="Live prices and candles from the server's active data source" />
      <LivePrices />
      <Grid container spacing={2} sx={{ mt: 1 }}>
        <Grid size={{ xs: 12, lg: 8 }}>
          <Card variant="outlined">
            <CardContent>
              <Stack direction={{ xs: "column", sm: "row" }} spacing={2} sx={{ mb: 2, alignItems: { sm: "center" } }}>
                <TextField
                  select
                  size="small"
                  label="Symbol"
                  value={symbol}
                  onChange={(e) => setParam("symbol", e.target.value)}
                  sx={{ minWidth: 120 }}
                >
                  {symbolOptions.map((s) => (
                    <MenuItem key={s} value={s}>
                      {s}
                    </MenuItem>
                  ))}
                </TextField>
                <ToggleButtonGroup
                  size="small"
                  exclusive
                  value={timeframe}
                  onChange={(_, value: string | null) => value && setParam("tf", value)}
                  aria-label="Timeframe"
                >
                  {TIMEFRAMES.map((tf) => (
                    <ToggleButton key={tf} value={tf}>
                      {tf}
                    </ToggleButton>
                  ))}
                </ToggleButtonGroup>
                {candles.data ? (
                  <Typography variant="caption" color="text.secondary">
                    {candles.data.items.length} bars · source {candles.data.source} · granularity{" "}
                    {candles.data.granularity} · last close {formatPrice(lastClose)}
                    {items && items.length > 0 ? ` · last bar opened ${formatDateTime(items[items.length - 1]?.t)}` : ""}
                  </Typography>
                ) : null}
              </Stack>
              {candles.isPending ? (
                <Loading label="Loading candles…" />
              ) : candles.isError ? (
                <ErrorAlert error={candles.error} onRetry={() => void candles.refetch()} />
              ) : candles.data.items.length === 0 ? (
                <Empty>
                  No {timeframe} candles for {symbol} from {candles.data.source}.
                </Empty>
              ) : (
                <CandleChart candles={candles.data.items} liveBar={liveBar} />
              )}
            </CardContent>
          </Card>
        </Grid>
        <Grid size={{ xs: 12, lg: 4 }}>
          <MarketStatusPanel />
        </Grid>
      </Grid>
    </>
  );
}
