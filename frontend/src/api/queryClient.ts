import { QueryClient } from "@tanstack/react-query";
import { ApiError } from "./client";

/** Retry only what can change by itself: network failures and 5xx other than 501 (not implemented). */
export function shouldRetry(failureCount: number, error: unknown): boolean {
  if (failureCount >= 2) return false;
  if (!(error instanceof ApiError)) return false;
  return error.status === 0 || (error.status >= 500 && error.status !== 501);
}

export function createQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: { retry: shouldRetry, staleTime: 10_000, refetchOnWindowFocus: true },
      mutations: { retry: false },
    },
  });
}

/** Query keys in one place so socket handlers and pages agree on them. */
export const keys = {
  me: ["auth", "me"] as const,
  prices: (symbols: readonly string[]) => ["market", "prices", symbols.join(",")] as const,
  pricesAll: ["market", "prices"] as const,
  candles: (symbol: string, timeframe: string) => ["market", "candles", symbol, timeframe] as const,
  symbols: ["market", "symbols"] as const,
  marketStatus: ["market", "status"] as const,
  jobs: (limit: number, offset: number) => ["jobs", "list", limit, offset] as const,
  jobsAll: ["jobs"] as const,
  auditLogs: (limit: number, offset: number) => ["audit-logs", limit, offset] as const,
  users: (limit: number, offset: number) => ["users", limit, offset] as const,
  usersAll: ["users"] as const,
};
