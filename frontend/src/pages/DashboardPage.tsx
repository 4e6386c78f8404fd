import Button from "@mui/material/Button";
import Card from "@mui/material/Card";
import CardContent from "@mui/material/CardContent";
import CardHeader from "@mui/material/CardHeader";
import Grid from "@mui/material/Grid";
import { useQuery } from "@tanstack/react-query";
import { Link as RouterLink } from "react-router";
import { api } from "../api/client";
import { keys } from "../api/queryClient";
import { ErrorAlert } from "../components/ErrorAlert";
import { JobsTable } from "../components/JobsTable";
import { LivePrices } from "../components/LivePrices";
import { Empty, Loading } from "../components/Loading";
import { MarketStatusPanel } from "../components/MarketStatusPanel";
import { PageHeader } from "../components/PageHeader";
import { isJobActive } from "../realtime/cacheUpdates";
import { useRealtimeStatus, useRooms } from "../realtime/RealtimeProvider";

const RECENT_JOBS = 5;

export default function DashboardPage() {
  const live = useRealtimeStatus().state === "connected";
  const jobs = useQuery({
    queryKey: keys.jobs(RECENT_JOBS, 0),
    queryFn: () => api.jobs.list({ limit: RECENT_JOBS, offset: 0 }),
    refetchInterval: (query) => (!live && query.state.data?.items.some(isJobActive) ? 5_000 : false),
  });
  useRooms((jobs.data?.items.filter(isJobActive) ?? []).map((job) => `job:${job.id}`));

  return (
    <>
      <PageHeader
        title="Dashboard"
        actions={
          <Button component={RouterLink} to="/markets" variant="outlined" size="small">
            Open charts
          </Button>
        }
      />
      <LivePrices />
      <Grid container spacing={2} sx={{ mt: 1 }}>
        <Grid size={{ xs: 12, lg: 8 }}>
          <Card variant="outlined">
            <CardHeader
              title="Recent jobs"
              slotProps={{ title: { variant: "subtitle1" } }}
              action={
                <Button component={RouterLink} to="/jobs" size="small">
                  All jobs
                </Button>
              }
            />
            <CardContent sx={{ pt: 0 }}>
              {jobs.isPending ? (
                <Loading />
              ) : jobs.isError ? (
                <ErrorAlert error={jobs.error} onRetry={() => void jobs.refetch()} />
              ) : jobs.data.items.length === 0 ? (
                <Empty>No jobs yet.</Empty>
              ) : (
                <JobsTable jobs={jobs.data.items} compact />
              )}
            </CardContent>
          </Card>
        </Grid>
        <Grid size={{ xs: 12, lg: 4 }}>
          <MarketStatusPanel />
        </Grid>
      </Grid>
    </>
  );
}
