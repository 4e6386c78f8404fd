import Alert from "@mui/material/Alert";
import Button from "@mui/material/Button";
import Link from "@mui/material/Link";
import Stack from "@mui/material/Stack";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { useState, type FormEvent } from "react";
import { Navigate, Link as RouterLink, useNavigate } from "react-router";
import { errorMessage } from "../api/client";
import { useAuth } from "../auth/AuthContext";
import { PASSWORD_MIN, hasErrors, validateRegistration, type FieldErrors } from "../auth/validation";

export function RegisterPage() {
  const auth = useAuth();
  const navigate = useNavigate();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [submitError, setSubmitError] = useState<string | null>(null);
  const [submitting, setSubmitting] = useState(false);

  if (auth.status === "signed_in") return <Navigate to="/" replace />;

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    const found = validateRegistration({ email, password, confirm });
    setErrors(found);
    setSubmitError(null);
    if (hasErrors(found)) return;
    setSubmitting(true);
    const credentials = { email: email.trim(), password };
    try {
      await auth.register(credentials);
    } catch (err) {
      setSubmitError(errorMessage(err));
      setSubmitting(false);
      return;
    }
    try {
      await auth.login(credentials);
      navigate("/", { replace: true });
    } catch {
      // The account exists; let the login page explain whatever stops the sign-in (e.g. awaiting activation).
      navigate("/login", { replace: true, state: { registered: credentials.email } });
    }
  };

  return (
    <Stack component="form" noValidate onSubmit={(e) => void onSubmit(e)} spacing={2} aria-label="Create account">
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
        autoComplete="new-password"
        value={password}
        onChange={(e) => setPassword(e.target.value)}
        error={Boolean(errors.password)}
        helperText={errors.password ?? `At least ${PASSWORD_MIN} characters; the server also rejects weak passwords.`}
        fullWidth
      />
      <TextField
        label="Confirm password"
        type="password"
        autoComplete="new-password"
        value={confirm}
        onChange={(e) => setConfirm(e.target.value)}
        error={Boolean(errors.confirm)}
        helperText={errors.confirm}
        fullWidth
      />
      <Button type="submit" variant="contained" size="large" disabled={submitting}>
        {submitting ? "Creating account…" : "Create account"}
      </Button>
      <Typography variant="body2" color="text.secondary">
        Already registered?{" "}
        <Link component={RouterLink} to="/login">
          Sign in
        </Link>
      </Typography>
    </Stack>
  );
}
