import { createTheme } from "@mui/material/styles";

export const theme = createTheme({
  palette: {
    mode: "dark",
    primary: { main: "#4fc3f7" },
    secondary: { main: "#b39ddb" },
    success: { main: "#26a69a" },
    error: { main: "#ef5350" },
    warning: { main: "#ffb74d" },
    background: { default: "#0e1117", paper: "#161b22" },
  },
  shape: { borderRadius: 8 },
  typography: {
    fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif',
    h4: { fontWeight: 600 },
    h5: { fontWeight: 600 },
  },
  components: {
    MuiPaper: { styleOverrides: { root: { backgroundImage: "none" } } },
    MuiTableCell: { styleOverrides: { root: { whiteSpace: "nowrap" } } },
  },
});

/** Candle colours shared by the chart and the change figures. */
export const UP_COLOR = "#26a69a";
export const DOWN_COLOR = "#ef5350";
