import Chip from "@mui/material/Chip";
import Tooltip from "@mui/material/Tooltip";
import { ageSeconds, formatDateTime, formatDuration } from "../lib/format";

/** The visible mark of data the server flagged stale (served from its cache after a source failure). */
export function StaleBadge({ asOf, nowMs }: { asOf: string | number | null; nowMs: number }) {
  const age = ageSeconds(asOf, nowMs);
  const label = age === null ? "stale" : `stale · ${formatDuration(age)} old`;
  return (
    <Tooltip title={`Last good value as of ${formatDateTime(asOf)}`}>
      <Chip size="small" color="warning" variant="outlined" label={label} data-testid="stale-badge" />
    </Tooltip>
  );
}
