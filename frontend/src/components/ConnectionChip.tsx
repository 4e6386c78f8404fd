import Chip from "@mui/material/Chip";
import Tooltip from "@mui/material/Tooltip";
import { useRealtimeStatus } from "../realtime/RealtimeProvider";

const LABELS = {
  idle: ["offline", "default"],
  connecting: ["connecting", "default"],
  connected: ["live", "success"],
  reconnecting: ["reconnecting", "warning"],
  refused: ["refused", "error"],
  closed: ["offline", "default"],
} as const;

/** Whether live updates are flowing; when not, pages fall back to periodic fetches. */
export function ConnectionChip() {
  const status = useRealtimeStatus();
  const [label, color] = LABELS[status.state];
  return (
    <Tooltip title={status.error ? `Live updates: ${status.error}` : "Live updates (Socket.IO)"}>
      <Chip size="small" variant="outlined" color={color} label={label} data-testid="connection-state" />
    </Tooltip>
  );
}
