import Box from "@mui/material/Box";
import Card from "@mui/material/Card";
import CardContent from "@mui/material/CardContent";
import Typography from "@mui/material/Typography";
import type { ReactNode } from "react";

export function AuthLayout({ title, children }: { title: string; children: ReactNode }) {
  return (
    <Box sx={{ minHeight: "100vh", display: "flex", alignItems: "center", justifyContent: "center", p: 2 }}>
      <Card variant="outlined" sx={{ width: "100%", maxWidth: 420 }}>
        <CardContent sx={{ p: 4 }}>
          <Typography variant="h5" component="div" sx={{ fontWeight: 700, letterSpacing: 1, mb: 0.5 }}>
            aaiti
          </Typography>
          <Typography variant="h6" component="h1" sx={{ mb: 3 }} color="text.secondary">
            {title}
          </Typography>
          {children}
        </CardContent>
      </Card>
    </Box>
  );
}
