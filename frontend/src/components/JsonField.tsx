import TextField from "@mui/material/TextField";

export type JsonParse = { ok: true; value: Record<string, unknown> } | { ok: false; error: string };

/** Parses an object literal; the server validates the contents (its 422 detail is shown by the form). */
export function parseJsonObject(text: string): JsonParse {
  if (!text.trim()) return { ok: true, value: {} };
  try {
    const value: unknown = JSON.parse(text);
    if (value === null || typeof value !== "object" || Array.isArray(value)) return { ok: false, error: "Must be a JSON object" };
    return { ok: true, value: value as Record<string, unknown> };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : "Invalid JSON" };
  }
}

export function JsonField({
  label,
  value,
  onChange,
  helperText,
  minRows = 4,
}: {
  label: string;
  value: string;
  onChange: (text: string) => void;
  helperText?: string;
  minRows?: number;
}) {
  const parsed = parseJsonObject(value);
  return (
    <TextField
      label={label}
      value={value}
      onChange={(e) => onChange(e.target.value)}
      multiline
      minRows={minRows}
      fullWidth
      error={!parsed.ok}
      helperText={parsed.ok ? helperText : parsed.error}
      slotProps={{ htmlInput: { spellCheck: false, style: { fontFamily: "monospace", fontSize: 13 } } }}
    />
  );
}
