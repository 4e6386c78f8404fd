import Alert from "@mui/material/Alert";
import Card from "@mui/material/Card";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, errorMessage } from "../api/client";
import { keys } from "../api/queryClient";
import type { Id, Job } from "../api/types";
import { ErrorAlert } from "../components/ErrorAlert";
import { JobsTable } from "../components/JobsTable";
import { Empty, Loading } from "../components/Loading";
import { PageHeader } from "../components/PageHeader";
import { Paginator } from "../components/Paginator";
import { usePagination } from "../lib/usePagination";
import { applyJobUpdate, isJobActive } from "../realtime/cacheUpdates";
import { useRealtimeStatus, useRooms } from "../realtime/RealtimeProvider";

export default function JobsPage() {
  const pagination = usePagination(25);
  const { limit, offset } = pagination;
  const queryClient = useQueryClient();
  const live = useRealtimeStatus().state === "connected";

  const jobs = useQuery({
    queryKey: keys.jobs(limit, offset),
    queryFn: () => api.jobs.list({ limit, offset }),
    placeholderData: keepPreviousData,
    // Progress arrives by socket; without one, poll while anything on the page is still moving.
    refetchInterval: (query) =>
      !live && query.state.data?.items.some(isJobActive) ? 5_000 : false,
  });

  const active = jobs.data?.items.filter(isJobActive) ?? [];
  useRooms(active.map((job) => `job:${job.id}`));

  const cancel = useMutation({
    mutationFn: (id: Id) => api.jobs.cancel(id),
    onSuccess: (job) => {
      if (job && typeof job === "object" && "id" in job) {
        queryClient.setQueriesData<{ items: Job[]; total: number }>({ queryKey: keys.jobsAll }, (data) =>
          applyJobUpdate(data, job).data,
        );
      }
      void queryClient.invalidateQueries({ queryKey: keys.jobsAll });
    },
  });

  return (
    <>
      <PageHeader
        title="Jobs"
        subtitle="Model training, backtests and imports running in worker processes"
      />
      {cancel.isError ? (
        <Alert severity="error" sx={{ mb: 2 }} onClose={() => cancel.reset()}>
          Could not cancel job {String(cancel.variables)}: {errorMessage(cancel.error)}
        </Alert>
      ) : null}
      <Card variant="outlined">
        {jobs.isPending ? (
          <Loading label="Loading jobs…" />
        ) : jobs.isError ? (
          <ErrorAlert error={jobs.error} onRetry={() => void jobs.refetch()} />
        ) : jobs.data.items.length === 0 ? (
          <>
            <Empty>
              {offset > 0 ? "No jobs on this page." : "No jobs yet. Training a model or running a backtest starts one."}
            </Empty>
            {jobs.data.total > 0 ? <Paginator total={jobs.data.total} {...pagination} /> : null}
          </>
        ) : (
          <>
            <JobsTable
              jobs={jobs.data.items}
              onCancel={(id) => cancel.mutate(id)}
              cancelling={cancel.isPending ? (cancel.variables ?? null) : null}
            />
            <Paginator total={jobs.data.total} {...pagination} />
          </>
        )}
      </Card>
    </>
  );
}
