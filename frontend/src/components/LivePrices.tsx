import Grid from "@mui/material/Grid";
import { useQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import { keys } from "../api/queryClient";
import { useNow } from "../lib/useNow";
import { useRealtimeStatus, useRooms } from "../realtime/RealtimeProvider";
import { ErrorAlert } from "./ErrorAlert";
import { PriceTile } from "./PriceTile";

export const DEFAULT_SYMBOLS = ["BTC", "ETH", "LTC"] as const;

/**
 * Price tiles: one GET /api/market/prices, then live `price_update` events from the `prices:<SYMBOL>`
 * rooms. While the socket is down the list is re-fetched every 30 s instead.
 */
export function LivePrices({ symbols = DEFAULT_SYMBOLS }: { symbols?: readonly string[] }) {
  const live = useRealtimeStatus().state === "connected";
  const prices = useQuery({
    queryKey: keys.prices(symbols),
    queryFn: () => api.market.prices(symbols),
    refetchInterval: live ? false : 30_000,
  });
  useRooms(symbols.map((s) => `prices:${s}`));
  const now = useNow(1000);

  return (
    <>
      {prices.isError ? (
        <ErrorAlert error={prices.error} onRetry={() => void prices.refetch()} title="Prices unavailable" />
      ) : null}
      <Grid container spacing={2} sx={{ mt: prices.isError ? 2 : 0 }}>
        {symbols.map((symbol) => {
          const price = prices.data ? (prices.data.items.find((p) => p.symbol === symbol) ?? null) : undefined;
          if (prices.isError && !prices.data) return null;
          return (
            <Grid key={symbol} size={{ xs: 12, sm: 6, md: 4 }}>
              <PriceTile symbol={symbol} price={price} nowMs={now} />
            </Grid>
          );
        })}
      </Grid>
    </>
  );
}
