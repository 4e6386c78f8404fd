import Button from "@mui/material/Button";
import { useState } from "react";
import { useNavigate } from "react-router";

/** Ids ticked in a list for comparison; the oldest drops out past `max` (the server's compare limit). */
export function useCompareSelection(max: number) {
  const [selected, setSelected] = useState<string[]>([]);
  const toggle = (id: string) =>
    setSelected((prev) => (prev.includes(id) ? prev.filter((x) => x !== id) : [...prev, id].slice(-max)));
  return { selected, toggle, isSelected: (id: string) => selected.includes(id) };
}

/** Opens `${path}?ids=...` once two or more are selected. */
export function CompareButton({ selected, path }: { selected: readonly string[]; path: string }) {
  const navigate = useNavigate();
  return (
    <Button
      variant="outlined"
      disabled={selected.length < 2}
      onClick={() => void navigate(`${path}?ids=${selected.map(encodeURIComponent).join(",")}`)}
    >
      Compare {selected.length >= 2 ? `(${selected.length})` : ""}
    </Button>
  );
}
