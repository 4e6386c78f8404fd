import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef } from "react";
import { researchApi, researchKeys } from "../api/research";
import type { Id, Job } from "../api/types";
import { isJobActive } from "./cacheUpdates";
import { useRealtimeEvent, useRealtimeStatus, useRooms } from "./RealtimeProvider";

function same(a: unknown, b: unknown): boolean {
  return String(a) === String(b);
}

/**
 * One job, live: GET /api/jobs/{id}, then `job_progress` / `job_update` from room `job:{id}` while it runs.
 * Without a socket it polls. `onFinished` runs once when the job reaches a terminal status.
 */
export function useLiveJob(jobId: Id | null | undefined, onFinished?: (job: Job) => void) {
  const queryClient = useQueryClient();
  const connected = useRealtimeStatus().state === "connected";
  const key = researchKeys.job(jobId ?? "");
  const job = useQuery({
    queryKey: key,
    queryFn: () => researchApi.jobs.get(jobId as Id),
    enabled: jobId !== null && jobId !== undefined && jobId !== "",
    staleTime: 0,
    refetchInterval: (query) => {
      const data = query.state.data;
      if (!data || !isJobActive(data)) return false;
      return connected ? 10_000 : 2_000;
    },
  });
  const active = job.data ? isJobActive(job.data) : jobId !== null && jobId !== undefined;
  useRooms(active && jobId ? [`job:${jobId}`] : []);

  useRealtimeEvent("job_progress", (ev) => {
    if (!jobId || !same(ev.job_id, jobId)) return;
    queryClient.setQueryData<Job>(key, (prev) =>
      prev ? { ...prev, progress: ev.progress, message: ev.message ?? prev.message } : prev,
    );
  });
  useRealtimeEvent("job_update", ({ job: next }) => {
    if (!jobId || !same(next.id, jobId)) return;
    queryClient.setQueryData<Job>(key, (prev) => ({ ...(prev ?? {}), ...next }));
  });

  const finishedFor = useRef<string | null>(null);
  const finish = useRef(onFinished);
  finish.current = onFinished;
  useEffect(() => {
    const data = job.data;
    if (!data || isJobActive(data) || finishedFor.current === String(data.id)) return;
    finishedFor.current = String(data.id);
    finish.current?.(data);
  }, [job.data]);

  return job;
}
