import Alert from "@mui/material/Alert";
import Button from "@mui/material/Button";
import Link from "@mui/material/Link";
import Stack from "@mui/material/Stack";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { useState, type FormEvent } from "react";
import { Navigate, Link as RouterLink, useLocation, useNavigate } from "react-router";
import { errorMessage } from "../api/client";
import { useAuth } from "../auth/AuthContext";
import type { ExpiryReason } from "../auth/session";
import { hasErrors, validateLogin, type FieldErrors } from "../auth/validation";

const ENDED: Record<ExpiryReason, string> = {
  expired: "Your session has expired. Please sign in again.",
  logged_out: "You have been signed out.",
  password_changed: "Your password was changed and every session was ended. Sign in with the new password.",
};

interface LocationState {
  from?: string;
  registered?: string;
}

export function LoginPage() {
  const auth = useAuth();
  const navigate = useNavigate();
  const location = useLocation();
  const state = (location.state ?? {}) as LocationState;
  const [email, setEmail] = useState(state.registered ?? "");
  const [password, setPassword] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [submitError, setSubmitError] = useState<string | null>(null);
  const [submitting, setSubmitting] = useState(false);

  const target = state.from && state.from.startsWith("/") && !state.from.startsWith("//") ? state.from : "/";
  if (auth.status === "signed_in") return <Navigate to={target} replace />;

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    const found = validateLogin({ email, password });
    setErrors(found);
    setSubmitError(null);
    if (hasErrors(found)) return;
    setSubmitting(true);
    try {
      await auth.login({ email: email.trim(), password });
      navigate(target, { replace: true });
    } catch (err) {
      setSubmitError(errorMessage(err));
      setSubmitting(false);
    }
  };

  return (
    <Stack component="form" noValidate onSubmit={(e) => void onSubmit(e)} spacing={2} aria-label="Sign in">
      {auth.endedBecause && !submitError ? <Alert severity="info">{ENDED[auth.endedBecause]}</Alert> : null}
      {state.registered && !submitError ? (
        <Alert severity="success">Account created. Sign in to continue.</Alert>
      ) : null}
      {submitError ? (
        <Alert severity="error" role="alert">
          {submitError}
        </Alert>
      ) : null}
      <TextField
        label="Email"
        type="email"
        autoComplete="username"
        value={email}
        onChange={(e) => setEmail(e.target.value)}
        error={Boolean(errors.email)}
        helperText={errors.email}
        autoFocus
        fullWidth
      />
      <TextField
        label="Password"
        type="password"
        autoComplete="current-password"
        value={password}
        onChange={(e) => setPassword(e.target.value)}
        error={Boolean(errors.password)}
        helperText={errors.password}
        fullWidth
      />
      <Button type="submit" variant="contained" size="large" disabled={submitting}>
        {submitting ? "Signing in…" : "Sign in"}
      </Button>
      <Typography variant="body2" color="text.secondary">
        No account?{" "}
        <Link component={RouterLink} to="/register">
          Create one
        </Link>
      </Typography>
    </Stack>
  );
}
