/**
 * A thin typed fetch client for the aaiti API.
 *
 * Every call goes through `request()`, which attaches the in-memory access token, and on a 401 refreshes the
 * session once (single-flight: concurrent 401s share one refresh call) and retries the request once. A
 * second 401, or a refused refresh, ends the session; the route guard then sends the user to /login.
 * Transient refresh failures (network, 5xx, 429) surface as errors and leave the session in place.
 */

import { session } from "../auth/session";
import type {
  AuditLogEntry,
  CandleSeries,
  ChangePasswordBody,
  Credentials,
  ErrorBody,
  Health,
  Id,
  Job,
  MarketStatus,
  MarketSymbol,
  Page,
  Price,
  Readiness,
  TokenPair,
  User,
  UserPatch,
  ValidationIssue,
} from "./types";

/** An API answer that was not 2xx, or a request that never got an answer (`status` 0). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** The server's human-readable `detail`, or our own wording when the server could not be reached. */
  readonly detail: string;

  constructor(status: number, code: string, detail: string) {
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

export function isApiError(value: unknown): value is ApiError {
  return value instanceof ApiError;
}

/** The text to show a person for any thrown value. */
export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.detail;
  if (err instanceof Error) return err.message;
  return String(err);
}

type QueryValue = string | number | boolean | null | undefined;

export interface RequestOptions {
  method?: "GET" | "POST" | "PATCH" | "PUT" | "DELETE";
  query?: Record<string, QueryValue>;
  body?: unknown;
  signal?: AbortSignal;
  /** Attach the bearer token (default true). Off for login/register/refresh. */
  auth?: boolean;
  /** On a 401, refresh the session once and retry (default: same as `auth`). */
  refreshOn401?: boolean;
}

function buildUrl(path: string, query?: Record<string, QueryValue>): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== null && value !== undefined && value !== "") params.set(key, String(value));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

async function send(path: string, opts: RequestOptions, token: string | null): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const init: RequestInit = {
    method: opts.method ?? "GET",
    headers,
    credentials: "same-origin",
  };
  if (opts.body !== undefined) init.body = JSON.stringify(opts.body);
  if (opts.signal) init.signal = opts.signal;
  try {
    return await fetch(buildUrl(path, opts.query), init);
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", "Cannot reach the aaiti server. Check that it is running.");
  }
}

function describeValidation(issues: ValidationIssue[]): string {
  return issues
    .map((issue) => {
      const where = issue.loc.filter((part) => part !== "body").join(".");
      return where ? `${where}: ${issue.msg}` : issue.msg;
    })
    .join("; ");
}

async function toApiError(res: Response): Promise<ApiError> {
  let body: Partial<ErrorBody> | null = null;
  try {
    body = (await res.json()) as Partial<ErrorBody>;
  } catch {
    body = null;
  }
  let detail: string;
  if (body && typeof body.detail === "string" && body.detail) detail = body.detail;
  else if (body && Array.isArray(body.detail)) detail = describeValidation(body.detail);
  else detail = `${res.status} ${res.statusText || "error"}`.trim();
  const code = body && typeof body.error === "string" ? body.error : `http_${res.status}`;
  return new ApiError(res.status, code, detail);
}

async function parseBody<T>(res: Response): Promise<T> {
  if (res.status === 204 || res.headers.get("content-length") === "0") return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export type RefreshOutcome = "refreshed" | "rejected";

let refreshing: Promise<RefreshOutcome> | null = null;

/**
 * Runs `work` while holding a lock shared by every tab of this origin. The refresh cookie is shared by the
 * tabs and rotates on every use; two tabs refreshing at once would present the same cookie twice, which the
 * server treats as theft (the whole session is revoked). Serialised, each refresh sends the cookie the
 * previous one set. Without the Web Locks API (old browsers, tests) the call just runs.
 */
async function acrossTabs<T>(work: () => Promise<T>): Promise<T> {
  const locks = typeof navigator === "undefined" ? undefined : navigator.locks;
  if (!locks) return work();
  return await locks.request("aaiti.refresh", work);
}

async function doRefresh(): Promise<RefreshOutcome> {
  const startedIn = session.generation();
  // No body: the HttpOnly cookie is the refresh token (same-origin fetches send it and an Origin header).
  const res = await acrossTabs(() => send("/api/auth/refresh", { method: "POST" }, null));
  if (session.generation() !== startedIn) return "rejected";
  if (res.ok) {
    session.setTokens(await parseBody<TokenPair>(res));
    return "refreshed";
  }
  if (res.status === 429 || res.status >= 500) throw await toApiError(res);
  // A visitor who never signed in (no cookie) is not told that a session expired.
  if (session.getAccessToken() !== null) session.clear("expired");
  return "rejected";
}

/**
 * Exchanges the refresh token for a new pair. Concurrent callers share one request, because the server
 * rotates refresh tokens and treats reuse of a rotated one as theft (the whole family is revoked).
 */
export function refreshSession(): Promise<RefreshOutcome> {
  refreshing ??= doRefresh().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

export async function request<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const auth = opts.auth ?? true;
  const refreshOn401 = opts.refreshOn401 ?? auth;
  const usedToken = auth ? session.getAccessToken() : null;
  let res = await send(path, opts, usedToken);

  if (res.status === 401 && refreshOn401) {
    const current = session.getAccessToken();
    // Another request may already have refreshed while this one was in flight: just retry with the new token.
    const retry = current !== null && current !== usedToken ? true : (await refreshSession()) === "refreshed";
    if (retry) res = await send(path, opts, session.getAccessToken());
    if (res.status === 401) {
      const error = await toApiError(res);
      if (session.getAccessToken() !== null) session.clear("expired");
      throw error;
    }
  }
  if (!res.ok) throw await toApiError(res);
  return parseBody<T>(res);
}

export interface PageParams {
  limit: number;
  offset: number;
}

export const api = {
  auth: {
    login: (body: Credentials) =>
      request<TokenPair>("/api/auth/login", { method: "POST", body: { ...body, refresh_cookie: true }, auth: false }),
    register: (body: Credentials) =>
      request<User>("/api/auth/register", { method: "POST", body, auth: false }),
    /** Ends every session of the user server-side and clears the refresh cookie (refreshing first if the
     *  access token has expired, so that the server-side session really ends). */
    logout: () => request<void>("/api/auth/logout", { method: "POST" }),
    me: (signal?: AbortSignal) => request<User>("/api/auth/me", signal ? { signal } : {}),
    changePassword: (body: ChangePasswordBody) =>
      request<void>("/api/auth/change-password", { method: "POST", body }),
  },
  users: {
    list: (page: PageParams) => request<Page<User>>("/api/users", { query: { ...page } }),
    update: (id: Id, patch: UserPatch) =>
      request<User>(`/api/users/${encodeURIComponent(String(id))}`, { method: "PATCH", body: patch }),
  },
  jobs: {
    list: (page: PageParams) => request<Page<Job>>("/api/jobs", { query: { ...page } }),
    cancel: (id: Id) => request<Job | undefined>(`/api/jobs/${encodeURIComponent(String(id))}/cancel`, { method: "POST" }),
  },
  auditLogs: {
    list: (page: PageParams) => request<Page<AuditLogEntry>>("/api/audit-logs", { query: { ...page } }),
  },
  market: {
    prices: (symbols: readonly string[]) =>
      request<{ items: Price[] }>("/api/market/prices", { query: { symbols: symbols.join(",") } }),
    candles: (symbol: string, timeframe: string, limit: number) =>
      request<CandleSeries>("/api/market/candles", { query: { symbol, timeframe, limit } }),
    symbols: () => request<{ items: MarketSymbol[] }>("/api/market/symbols"),
    status: () => request<MarketStatus>("/api/market/status"),
  },
  health: {
    live: () => request<Health>("/api/health", { auth: false }),
    ready: () => request<Readiness>("/api/health/ready", { auth: false }),
  },
};
