import Card from "@mui/material/Card";
import CardContent from "@mui/material/CardContent";
import Link from "@mui/material/Link";
import Table from "@mui/material/Table";
import TableBody from "@mui/material/TableBody";
import TableCell from "@mui/material/TableCell";
import TableContainer from "@mui/material/TableContainer";
import TableHead from "@mui/material/TableHead";
import TableRow from "@mui/material/TableRow";
import Typography from "@mui/material/Typography";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Link as RouterLink, useParams } from "react-router";
import { api, type ResourceKind } from "../api/client";
import { keys } from "../api/queryClient";
import type { Resource } from "../api/types";
import { ErrorAlert } from "../components/ErrorAlert";
import { Empty, Loading } from "../components/Loading";
import { PageHeader } from "../components/PageHeader";
import { Paginator } from "../components/Paginator";
import { usePagination } from "../lib/usePagination";

export const RESOURCES: Record<ResourceKind, { title: string; singular: string; description: string }> = {
  backtests: {
    title: "Backtests",
    singular: "Backtest",
    description: "Strategy runs over stored candles, with fees, slippage and reproducible fingerprints",
  },
  models: {
    title: "Models",
    singular: "Model",
    description: "Forecasting models trained on real market history and scored out of sample",
  },
  bots: {
    title: "Bots",
    singular: "Bot",
    description: "Paper and shadow trading bots acting on live prices",
  },
};

const MAX_COLUMNS = 8;

type Scalar = string | number | boolean | null;

function isScalar(value: unknown): value is Scalar {
  return value === null || ["string", "number", "boolean"].includes(typeof value);
}

/** Columns are whatever scalar fields the server sent (id first), until these schemas are fixed. */
function columnsOf(items: readonly Resource[]): string[] {
  const seen = new Set<string>(["id"]);
  for (const item of items) {
    for (const [key, value] of Object.entries(item)) if (isScalar(value)) seen.add(key);
  }
  return [...seen].slice(0, MAX_COLUMNS);
}

function show(value: unknown): string {
  if (value === null || value === undefined) return "—";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

export function ResourceListPage({ kind }: { kind: ResourceKind }) {
  const meta = RESOURCES[kind];
  const pagination = usePagination(25);
  const { limit, offset } = pagination;
  const list = useQuery({
    queryKey: keys.resources(kind, limit, offset),
    queryFn: () => api.resources.list(kind, { limit, offset }),
    placeholderData: keepPreviousData,
  });
  const items = list.data && Array.isArray(list.data.items) ? list.data.items : null;
  const columns = items ? columnsOf(items) : [];

  return (
    <>
      <PageHeader title={meta.title} subtitle={meta.description} />
      <Card variant="outlined">
        {list.isPending ? (
          <Loading label={`Loading ${meta.title.toLowerCase()}…`} />
        ) : list.isError ? (
          <CardContent>
            <ErrorAlert error={list.error} onRetry={() => void list.refetch()} />
          </CardContent>
        ) : items === null ? (
          <CardContent>
            <ErrorAlert error={new Error(`GET /api/${kind} did not answer with {items, total}.`)} title="Unexpected response" />
          </CardContent>
        ) : items.length === 0 ? (
          <Empty>No {meta.title.toLowerCase()} yet.</Empty>
        ) : (
          <TableContainer>
            <Table size="small" aria-label={meta.title}>
              <TableHead>
                <TableRow>
                  {columns.map((c) => (
                    <TableCell key={c}>{c}</TableCell>
                  ))}
                </TableRow>
              </TableHead>
              <TableBody>
                {items.map((item) => (
                  <TableRow key={String(item.id)} hover>
                    {columns.map((c) => (
                      <TableCell key={c}>
                        {c === "id" ? (
                          <Link component={RouterLink} to={`/${kind}/${encodeURIComponent(String(item.id))}`}>
                            {String(item.id)}
                          </Link>
                        ) : (
                          show(item[c])
                        )}
                      </TableCell>
                    ))}
                  </TableRow>
                ))}
              </TableBody>
            </Table>
          </TableContainer>
        )}
        {list.data && typeof list.data.total === "number" && list.data.total > 0 ? (
          <Paginator total={list.data.total} {...pagination} />
        ) : null}
      </Card>
    </>
  );
}

export function ResourceDetailPage({ kind }: { kind: ResourceKind }) {
  const meta = RESOURCES[kind];
  const { id = "" } = useParams();
  const detail = useQuery({ queryKey: keys.resource(kind, id), queryFn: () => api.resources.get(kind, id) });

  return (
    <>
      <PageHeader
        title={`${meta.singular} ${id}`}
        subtitle={
          <Link component={RouterLink} to={`/${kind}`}>
            ← All {meta.title.toLowerCase()}
          </Link>
        }
      />
      <Card variant="outlined">
        <CardContent>
          {detail.isPending ? (
            <Loading />
          ) : detail.isError ? (
            <ErrorAlert error={detail.error} onRetry={() => void detail.refetch()} />
          ) : (
            <Table size="small" aria-label={`${meta.singular} ${id}`}>
              <TableBody>
                {Object.entries(detail.data).map(([key, value]) => (
                  <TableRow key={key}>
                    <TableCell sx={{ width: 200, color: "text.secondary" }}>{key}</TableCell>
                    <TableCell sx={{ whiteSpace: "normal" }}>
                      {isScalar(value) ? (
                        show(value)
                      ) : (
                        <Typography component="pre" variant="body2" sx={{ m: 0, fontFamily: "monospace", whiteSpace: "pre-wrap" }}>
                          {JSON.stringify(value, null, 2)}
                        </Typography>
                      )}
                    </TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
          )}
        </CardContent>
      </Card>
    </>
  );
}

export const BotsPage = () => <ResourceListPage kind="bots" />;
export const BotDetailPage = () => <ResourceDetailPage kind="bots" />;
