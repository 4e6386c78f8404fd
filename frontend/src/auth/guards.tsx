import Alert from "@mui/material/Alert";
import Box from "@mui/material/Box";
import { Navigate, Outlet, useLocation } from "react-router";
import { ErrorAlert } from "../components/ErrorAlert";
import { Loading } from "../components/Loading";
import { useAuth } from "./AuthContext";

/** Renders the child routes for a signed-in user; otherwise sends them to /login and back afterwards. */
export function RequireAuth() {
  const auth = useAuth();
  const location = useLocation();
  if (auth.status === "loading") return <Loading label="Checking your session…" fullPage />;
  if (auth.status === "error") {
    return (
      <Box sx={{ maxWidth: 560, mx: "auto", mt: 12, px: 2 }}>
        <ErrorAlert error={auth.error} title="Could not check your session" onRetry={auth.retry} />
      </Box>
    );
  }
  if (auth.status === "signed_out") {
    return <Navigate to="/login" replace state={{ from: `${location.pathname}${location.search}` }} />;
  }
  return <Outlet />;
}

/** The admin screens; the server enforces the same rule (403), this only avoids a useless round trip. */
export function RequireAdmin() {
  const { isAdmin } = useAuth();
  if (!isAdmin) return <Alert severity="warning">This page is for administrators.</Alert>;
  return <Outlet />;
}
