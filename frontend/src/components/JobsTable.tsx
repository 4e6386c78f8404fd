import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Chip from "@mui/material/Chip";
import LinearProgress from "@mui/material/LinearProgress";
import Table from "@mui/material/Table";
import TableBody from "@mui/material/TableBody";
import TableCell from "@mui/material/TableCell";
import TableContainer from "@mui/material/TableContainer";
import TableHead from "@mui/material/TableHead";
import TableRow from "@mui/material/TableRow";
import Tooltip from "@mui/material/Tooltip";
import Typography from "@mui/material/Typography";
import type { Id, Job } from "../api/types";
import { formatDateTime } from "../lib/format";
import { isJobActive } from "../realtime/cacheUpdates";

// Start and finish times only where there is room, so the cancel button never needs horizontal scrolling.
const WIDE_ONLY = { display: { xs: "none", xl: "table-cell" } } as const;

type ChipColor = "default" | "primary" | "success" | "error" | "warning" | "info";

function statusColor(status: string): ChipColor {
  switch (status) {
    case "running":
      return "primary";
    case "succeeded":
    case "completed":
      return "success";
    case "failed":
      return "error";
    case "cancelled":
    case "canceled":
    case "interrupted":
      return "warning";
    case "queued":
      return "info";
    default:
      return "default";
  }
}

/** `progress` is a fraction 0..1 (contract); the bar shows it as a percentage. */
export function JobProgressBar({ job }: { job: Job }) {
  if (job.progress === null || job.progress === undefined) {
    return isJobActive(job) ? (
      <LinearProgress aria-label={`job ${job.id} progress unknown`} />
    ) : (
      <Typography variant="body2" color="text.secondary">
        —
      </Typography>
    );
  }
  const pct = Math.max(0, Math.min(100, job.progress * 100));
  return (
    <Box sx={{ display: "flex", alignItems: "center", gap: 1, minWidth: 140 }}>
      <LinearProgress
        variant="determinate"
        value={pct}
        sx={{ flexGrow: 1 }}
        aria-label={`job ${job.id} progress`}
      />
      <Typography variant="caption" sx={{ fontVariantNumeric: "tabular-nums", minWidth: 36 }}>
        {pct.toFixed(0)}%
      </Typography>
    </Box>
  );
}

export interface JobsTableProps {
  jobs: readonly Job[];
  onCancel?: (id: Id) => void;
  cancelling?: Id | null;
  compact?: boolean;
}

export function JobsTable({ jobs, onCancel, cancelling = null, compact = false }: JobsTableProps) {
  return (
    <TableContainer>
      <Table size="small" aria-label="Jobs">
        <TableHead>
          <TableRow>
            <TableCell>ID</TableCell>
            <TableCell>Kind</TableCell>
            <TableCell>Status</TableCell>
            <TableCell sx={{ minWidth: 160 }}>Progress</TableCell>
            <TableCell>Message</TableCell>
            <TableCell>Created</TableCell>
            {!compact ? <TableCell sx={WIDE_ONLY}>Started</TableCell> : null}
            {!compact ? <TableCell sx={WIDE_ONLY}>Finished</TableCell> : null}
            {onCancel ? <TableCell align="right">Actions</TableCell> : null}
          </TableRow>
        </TableHead>
        <TableBody>
          {jobs.map((job) => (
            <TableRow key={String(job.id)} data-testid={`job-row-${job.id}`}>
              <TableCell>{job.id}</TableCell>
              <TableCell>{job.kind}</TableCell>
              <TableCell>
                <Chip size="small" variant="outlined" color={statusColor(job.status)} label={job.status} />
              </TableCell>
              <TableCell>
                <JobProgressBar job={job} />
              </TableCell>
              <TableCell sx={{ whiteSpace: "normal", minWidth: 160, maxWidth: 360 }}>
                {job.error ? (
                  <Typography variant="body2" color="error">
                    {job.error}
                  </Typography>
                ) : (
                  (job.message ?? "")
                )}
              </TableCell>
              <TableCell>{formatDateTime(job.created_at)}</TableCell>
              {!compact ? <TableCell sx={WIDE_ONLY}>{formatDateTime(job.started_at)}</TableCell> : null}
              {!compact ? <TableCell sx={WIDE_ONLY}>{formatDateTime(job.finished_at)}</TableCell> : null}
              {onCancel ? (
                <TableCell align="right">
                  {isJobActive(job) ? (
                    <Tooltip title="Ask the worker to stop this job">
                      <span>
                        <Button
                          size="small"
                          color="warning"
                          variant="outlined"
                          disabled={cancelling !== null && String(cancelling) === String(job.id)}
                          onClick={() => onCancel(job.id)}
                        >
                          Cancel
                        </Button>
                      </span>
                    </Tooltip>
                  ) : null}
                </TableCell>
              ) : null}
            </TableRow>
          ))}
        </TableBody>
      </Table>
    </TableContainer>
  );
}
