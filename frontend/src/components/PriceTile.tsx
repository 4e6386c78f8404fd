import Box from "@mui/material/Box";
import Card from "@mui/material/Card";
import CardContent from "@mui/material/CardContent";
import Skeleton from "@mui/material/Skeleton";
import Stack from "@mui/material/Stack";
import Typography from "@mui/material/Typography";
import type { Price } from "../api/types";
import { ageSeconds, formatDateTime, formatDuration, formatPct, formatPrice } from "../lib/format";
import { DOWN_COLOR, UP_COLOR } from "../theme";
import { StaleBadge } from "./StaleBadge";

export interface PriceTileProps {
  symbol: string;
  /** Undefined while loading, null when the server's answer did not include this symbol. */
  price: Price | null | undefined;
  nowMs: number;
}

export function PriceTile({ symbol, price, nowMs }: PriceTileProps) {
  const change = price?.change_24h_pct ?? null;
  const changeColor = change === null ? "text.secondary" : change >= 0 ? UP_COLOR : DOWN_COLOR;
  const age = price ? ageSeconds(price.as_of, nowMs) : null;
  return (
    <Card variant="outlined" sx={{ height: "100%" }} aria-label={`${symbol} price`} data-testid={`price-tile-${symbol}`}>
      <CardContent>
        <Stack direction="row" sx={{ justifyContent: "space-between", alignItems: "center", mb: 1, gap: 1, minHeight: 24 }}>
          <Typography variant="subtitle2" color="text.secondary">
            {symbol}
          </Typography>
          {price?.stale ? <StaleBadge asOf={price.as_of} nowMs={nowMs} /> : null}
        </Stack>
        {price === undefined ? (
          <>
            <Skeleton variant="text" width="70%" height={40} />
            <Skeleton variant="text" width="40%" />
          </>
        ) : price === null ? (
          <Typography color="text.secondary">The server returned no price for {symbol}.</Typography>
        ) : (
          <>
            <Typography variant="h5" component="p" data-testid="price-value" sx={{ fontVariantNumeric: "tabular-nums" }}>
              {formatPrice(price.price)}
            </Typography>
            <Typography variant="body2" sx={{ color: changeColor, fontVariantNumeric: "tabular-nums" }}>
              {formatPct(change)} 24h
            </Typography>
            <Box sx={{ mt: 1 }}>
              <Typography variant="caption" color="text.secondary" title={formatDateTime(price.as_of)}>
                {price.source} · {age === null ? "time unknown" : `${formatDuration(age)} ago`}
              </Typography>
            </Box>
          </>
        )}
      </CardContent>
    </Card>
  );
}
