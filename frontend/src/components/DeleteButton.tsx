import Button from "@mui/material/Button";
import Dialog from "@mui/material/Dialog";
import DialogActions from "@mui/material/DialogActions";
import DialogContent from "@mui/material/DialogContent";
import DialogContentText from "@mui/material/DialogContentText";
import DialogTitle from "@mui/material/DialogTitle";
import { useMutation, useQueryClient, type QueryKey } from "@tanstack/react-query";
import { useState } from "react";
import { useNavigate } from "react-router";
import { ErrorAlert } from "./ErrorAlert";

export interface DeleteButtonProps {
  /** What is deleted, in the confirmation: "the backtest “SMA 10/30”". */
  what: string;
  /** Extra consequences to spell out (what else goes with it). */
  consequences?: string;
  remove: () => Promise<void>;
  /** Queries that listed the object (invalidated) and the object's own (removed from the cache). */
  listKey: QueryKey;
  detailKey: QueryKey;
  /** Where to go once it is gone. */
  afterwards: string;
}

/** Delete with a confirmation step; the server's refusal (403, 404, 409 ...) is shown in the dialog. */
export function DeleteButton({ what, consequences, remove, listKey, detailKey, afterwards }: DeleteButtonProps) {
  const [open, setOpen] = useState(false);
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const mutation = useMutation({
    mutationFn: remove,
    onSuccess: async () => {
      queryClient.removeQueries({ queryKey: detailKey });
      await queryClient.invalidateQueries({ queryKey: listKey });
      setOpen(false);
      await navigate(afterwards, { replace: true });
    },
  });
  const close = () => {
    if (!mutation.isPending) {
      setOpen(false);
      mutation.reset();
    }
  };
  return (
    <>
      <Button color="error" variant="outlined" size="small" onClick={() => setOpen(true)}>
        Delete
      </Button>
      <Dialog open={open} onClose={close} aria-labelledby="delete-title">
        <DialogTitle id="delete-title">Delete {what}?</DialogTitle>
        <DialogContent>
          <DialogContentText>
            {consequences ? `${consequences} ` : ""}This cannot be undone; the audit log keeps a record of it.
          </DialogContentText>
          {mutation.isError ? <ErrorAlert error={mutation.error} title="Not deleted" /> : null}
        </DialogContent>
        <DialogActions>
          <Button onClick={close} disabled={mutation.isPending}>
            Keep it
          </Button>
          <Button color="error" variant="contained" onClick={() => mutation.mutate()} disabled={mutation.isPending}>
            {mutation.isPending ? "Deleting…" : "Delete"}
          </Button>
        </DialogActions>
      </Dialog>
    </>
  );
}
