import Card from "@mui/material/Card";
import Table from "@mui/material/Table";
import TableBody from "@mui/material/TableBody";
import TableCell from "@mui/material/TableCell";
import TableContainer from "@mui/material/TableContainer";
import TableHead from "@mui/material/TableHead";
import TableRow from "@mui/material/TableRow";
import Tooltip from "@mui/material/Tooltip";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import { keys } from "../api/queryClient";
import type { AuditLogEntry } from "../api/types";
import { ErrorAlert } from "../components/ErrorAlert";
import { Empty, Loading } from "../components/Loading";
import { PageHeader } from "../components/PageHeader";
import { Paginator } from "../components/Paginator";
import { formatDateTime } from "../lib/format";
import { usePagination } from "../lib/usePagination";

function detailsText(details: unknown): string {
  if (details === null || details === undefined || details === "") return "";
  return typeof details === "string" ? details : JSON.stringify(details);
}

function resource(entry: AuditLogEntry): string {
  if (!entry.resource_type) return entry.resource_id !== null && entry.resource_id !== undefined ? String(entry.resource_id) : "";
  return entry.resource_id !== null && entry.resource_id !== undefined
    ? `${entry.resource_type} ${entry.resource_id}`
    : entry.resource_type;
}

export default function AuditLogPage() {
  const pagination = usePagination(50);
  const { limit, offset } = pagination;
  const logs = useQuery({
    queryKey: keys.auditLogs(limit, offset),
    queryFn: () => api.auditLogs.list({ limit, offset }),
    placeholderData: keepPreviousData,
  });

  return (
    <>
      <PageHeader title="Audit log" subtitle="Every change made through the API, newest first" />
      <Card variant="outlined">
        {logs.isPending ? (
          <Loading label="Loading audit log…" />
        ) : logs.isError ? (
          <ErrorAlert error={logs.error} onRetry={() => void logs.refetch()} />
        ) : logs.data.items.length === 0 ? (
          <Empty>No audit entries{offset > 0 ? " on this page" : " yet"}.</Empty>
        ) : (
          <TableContainer>
            <Table size="small" aria-label="Audit log">
              <TableHead>
                <TableRow>
                  <TableCell>Time</TableCell>
                  <TableCell>User</TableCell>
                  <TableCell>Action</TableCell>
                  <TableCell>Resource</TableCell>
                  <TableCell>IP</TableCell>
                  <TableCell>Details</TableCell>
                </TableRow>
              </TableHead>
              <TableBody>
                {logs.data.items.map((entry) => {
                  const details = detailsText(entry.details);
                  return (
                    <TableRow key={String(entry.id)}>
                      <TableCell>{formatDateTime(entry.timestamp ?? entry.created_at)}</TableCell>
                      <TableCell>{entry.user_id ?? "—"}</TableCell>
                      <TableCell>{entry.action}</TableCell>
                      <TableCell>{resource(entry)}</TableCell>
                      <TableCell>{entry.ip_address ?? ""}</TableCell>
                      <TableCell sx={{ maxWidth: 420, overflow: "hidden", textOverflow: "ellipsis" }}>
                        {details ? (
                          <Tooltip title={<pre style={{ margin: 0, whiteSpace: "pre-wrap" }}>{details}</pre>}>
                            <span style={{ fontFamily: "monospace", fontSize: 12 }}>{details}</span>
                          </Tooltip>
                        ) : null}
                      </TableCell>
                    </TableRow>
                  );
                })}
              </TableBody>
            </Table>
          </TableContainer>
        )}
        {logs.data && logs.data.total > 0 ? <Paginator total={logs.data.total} {...pagination} /> : null}
      </Card>
    </>
  );
}
