import Card from "@mui/material/Card";
import CardContent from "@mui/material/CardContent";
import CardHeader from "@mui/material/CardHeader";
import Chip from "@mui/material/Chip";
import LinearProgress from "@mui/material/LinearProgress";
import Stack from "@mui/material/Stack";
import Typography from "@mui/material/Typography";
import { useQuery } from "@tanstack/react-query";
import type { ReactNode } from "react";
import { api } from "../api/client";
import { keys } from "../api/queryClient";
import { formatDateTime, formatDuration } from "../lib/format";
import { ErrorAlert } from "./ErrorAlert";
import { Loading } from "./Loading";

function breakerColor(state: string): "success" | "warning" | "error" | "default" {
  const s = state.toLowerCase();
  if (s === "closed") return "success";
  if (s === "half_open" || s === "half-open") return "warning";
  if (s === "open") return "error";
  return "default";
}

function Row({ label, children }: { label: string; children: ReactNode }) {
  return (
    <Stack direction="row" sx={{ justifyContent: "space-between", gap: 2, py: 0.5 }}>
      <Typography variant="body2" color="text.secondary">
        {label}
      </Typography>
      <Typography variant="body2" component="div" sx={{ textAlign: "right" }}>
        {children}
      </Typography>
    </Stack>
  );
}

/** Where market data comes from and how fresh it is (GET /api/market/status), refreshed every 15 s. */
export function MarketStatusPanel() {
  const status = useQuery({ queryKey: keys.marketStatus, queryFn: api.market.status, refetchInterval: 15_000 });
  const s = status.data;
  const budgetPct =
    s && s.budget_used !== null && s.budget_limit !== null && s.budget_limit > 0
      ? Math.min(100, (s.budget_used / s.budget_limit) * 100)
      : null;
  return (
    <Card variant="outlined">
      <CardHeader title="Market data status" slotProps={{ title: { variant: "subtitle1" } }} />
      <CardContent sx={{ pt: 0 }}>
        {status.isPending ? (
          <Loading />
        ) : status.isError ? (
          <ErrorAlert error={status.error} onRetry={() => void status.refetch()} />
        ) : s ? (
          <>
            <Row label="Source">{s.source}</Row>
            <Row label="Freshness">
              {s.stale ? (
                <Chip size="small" color="warning" label="stale" />
              ) : (
                <Chip size="small" color="success" variant="outlined" label="fresh" />
              )}
            </Row>
            <Row label="Data age">{formatDuration(s.data_age_s)}</Row>
            <Row label="Last success">{formatDateTime(s.last_success)}</Row>
            <Row label="Circuit breaker">
              <Chip size="small" color={breakerColor(s.breaker_state)} variant="outlined" label={s.breaker_state} />
            </Row>
            <Row label="Request budget">
              {s.budget_used !== null && s.budget_limit !== null ? `${s.budget_used} / ${s.budget_limit}` : "—"}
            </Row>
            {budgetPct !== null ? (
              <LinearProgress
                variant="determinate"
                value={budgetPct}
                color={budgetPct > 90 ? "error" : budgetPct > 70 ? "warning" : "primary"}
                aria-label="request budget used"
                sx={{ mt: 1 }}
              />
            ) : null}
          </>
        ) : null}
      </CardContent>
    </Card>
  );
}
