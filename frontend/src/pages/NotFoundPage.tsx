import Button from "@mui/material/Button";
import Stack from "@mui/material/Stack";
import Typography from "@mui/material/Typography";
import { Link as RouterLink, useLocation } from "react-router";

export default function NotFoundPage() {
  const { pathname } = useLocation();
  return (
    <Stack spacing={2} sx={{ alignItems: "flex-start" }}>
      <Typography variant="h5" component="h1">
        Page not found
      </Typography>
      <Typography color="text.secondary">Nothing lives at {pathname}.</Typography>
      <Button component={RouterLink} to="/" variant="outlined">
        Back to the dashboard
      </Button>
    </Stack>
  );
}
