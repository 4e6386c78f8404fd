import Alert from "@mui/material/Alert";
import Button from "@mui/material/Button";
import Card from "@mui/material/Card";
import CardContent from "@mui/material/CardContent";
import CardHeader from "@mui/material/CardHeader";
import Grid from "@mui/material/Grid";
import Stack from "@mui/material/Stack";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { useMutation } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useNavigate } from "react-router";
import { api, errorMessage } from "../api/client";
import { useAuth } from "../auth/AuthContext";
import { validateNewPassword } from "../auth/validation";
import { PageHeader } from "../components/PageHeader";
import { formatDateTime } from "../lib/format";

interface PasswordErrors {
  current?: string;
  next?: string;
  confirm?: string;
}

export default function AccountPage() {
  const { user, endAfterPasswordChange } = useAuth();
  const navigate = useNavigate();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [confirm, setConfirm] = useState("");
  const [errors, setErrors] = useState<PasswordErrors>({});

  const change = useMutation({
    mutationFn: () => api.auth.changePassword({ current_password: current, new_password: next }),
    onSuccess: () => {
      // The server has revoked every token of this user, ours included.
      endAfterPasswordChange();
      navigate("/login", { replace: true });
    },
  });

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    const found: PasswordErrors = {};
    if (!current) found.current = "Enter your current password.";
    const nextError = validateNewPassword(next);
    if (nextError) found.next = nextError;
    else if (next === current) found.next = "Choose a password different from the current one.";
    if (confirm !== next) found.confirm = "The passwords do not match.";
    setErrors(found);
    if (Object.keys(found).length === 0) change.mutate();
  };

  return (
    <>
      <PageHeader title="Account" />
      <Grid container spacing={2}>
        <Grid size={{ xs: 12, md: 5 }}>
          <Card variant="outlined">
            <CardHeader title="Profile" slotProps={{ title: { variant: "subtitle1" } }} />
            <CardContent sx={{ pt: 0 }}>
              {user ? (
                <Stack spacing={1}>
                  <Typography>
                    <Typography component="span" color="text.secondary">
                      Email:{" "}
                    </Typography>
                    {user.email}
                  </Typography>
                  <Typography>
                    <Typography component="span" color="text.secondary">
                      Role:{" "}
                    </Typography>
                    {user.role}
                  </Typography>
                  <Typography>
                    <Typography component="span" color="text.secondary">
                      Member since:{" "}
                    </Typography>
                    {formatDateTime(user.created_at)}
                  </Typography>
                  <Typography>
                    <Typography component="span" color="text.secondary">
                      Last login:{" "}
                    </Typography>
                    {formatDateTime(user.last_login)}
                  </Typography>
                </Stack>
              ) : null}
            </CardContent>
          </Card>
        </Grid>
        <Grid size={{ xs: 12, md: 7 }}>
          <Card variant="outlined">
            <CardHeader title="Change password" slotProps={{ title: { variant: "subtitle1" } }} />
            <CardContent sx={{ pt: 0 }}>
              <Stack component="form" noValidate spacing={2} onSubmit={onSubmit} aria-label="Change password">
                {/* Lets password managers tie the new password to the account. */}
                <input type="text" name="username" autoComplete="username" value={user?.email ?? ""} readOnly hidden />
                <Alert severity="info">Changing the password signs you out everywhere, this browser included.</Alert>
                {change.isError ? <Alert severity="error">{errorMessage(change.error)}</Alert> : null}
                <TextField
                  label="Current password"
                  type="password"
                  autoComplete="current-password"
                  value={current}
                  onChange={(e) => setCurrent(e.target.value)}
                  error={Boolean(errors.current)}
                  helperText={errors.current}
                />
                <TextField
                  label="New password"
                  type="password"
                  autoComplete="new-password"
                  value={next}
                  onChange={(e) => setNext(e.target.value)}
                  error={Boolean(errors.next)}
                  helperText={errors.next}
                />
                <TextField
                  label="Confirm new password"
                  type="password"
                  autoComplete="new-password"
                  value={confirm}
                  onChange={(e) => setConfirm(e.target.value)}
                  error={Boolean(errors.confirm)}
                  helperText={errors.confirm}
                />
                <div>
                  <Button type="submit" variant="contained" disabled={change.isPending}>
                    {change.isPending ? "Changing…" : "Change password"}
                  </Button>
                </div>
              </Stack>
            </CardContent>
          </Card>
        </Grid>
      </Grid>
    </>
  );
}
