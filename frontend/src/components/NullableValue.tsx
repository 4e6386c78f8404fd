import Box from "@mui/material/Box";
import Tooltip from "@mui/material/Tooltip";

export interface NullableValueProps {
  /** The formatted value, or null when the API sent null. */
  text: string | null;
  /** Why the API could not compute it. */
  reason?: string | null | undefined;
}

/** A value, or "—" whose tooltip (and accessible name) is the server's reason for the null. */
export function NullableValue({ text, reason }: NullableValueProps) {
  if (text !== null) return <>{text}</>;
  const why = reason ?? "not reported";
  return (
    <Tooltip title={why}>
      <Box component="span" aria-label={why} sx={{ cursor: "help", color: "text.secondary", borderBottom: "1px dotted" }}>
        —
      </Box>
    </Tooltip>
  );
}
