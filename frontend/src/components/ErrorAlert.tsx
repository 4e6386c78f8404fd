import Alert from "@mui/material/Alert";
import AlertTitle from "@mui/material/AlertTitle";
import Button from "@mui/material/Button";
import { ApiError, errorMessage } from "../api/client";

export interface ErrorAlertProps {
  error: unknown;
  title?: string;
  onRetry?: () => void;
}

/** Shows the server's `detail` for an API error, with its status and code for support. */
export function ErrorAlert({ error, title, onRetry }: ErrorAlertProps) {
  const api = error instanceof ApiError ? error : null;
  const notAvailable = api !== null && (api.status === 404 || api.status === 501);
  const heading =
    title ??
    (api?.status === 0
      ? "Server unreachable"
      : api?.status === 403
        ? "Not allowed"
        : api?.status === 429
          ? "Too many requests"
          : api?.status === 503
            ? "Temporarily unavailable"
            : notAvailable
              ? "Not available"
              : "Request failed");
  return (
    <Alert
      severity={notAvailable ? "info" : "error"}
      action={
        onRetry ? (
          <Button color="inherit" size="small" onClick={onRetry}>
            Retry
          </Button>
        ) : undefined
      }
    >
      <AlertTitle>{heading}</AlertTitle>
      {errorMessage(error)}
      {api && api.status > 0 ? (
        <span style={{ opacity: 0.7 }}>
          {" "}
          (HTTP {api.status}
          {api.code ? `, ${api.code}` : ""})
        </span>
      ) : null}
    </Alert>
  );
}
