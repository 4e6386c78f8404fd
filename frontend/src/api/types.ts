/**
 * Response and request shapes of the aaiti API, written by hand from docs/api-contract-draft.md.
 * When the backend publishes /openapi.json these can be generated with openapi-typescript instead.
 *
 * Timestamps: `*_at`, `as_of`, `last_login`, `last_success` are ISO 8601 strings with a UTC offset.
 * Candle `t` is the bar's open time in epoch milliseconds (UTC).
 */

export type Id = number | string;

/** The error body every non-2xx answer carries: `{"error": code, "detail": message}`. */
export interface ErrorBody {
  error: string;
  /** FastAPI's own validation errors put a list here instead of a string. */
  detail: string | ValidationIssue[];
}

export interface ValidationIssue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

export interface Page<T> {
  items: T[];
  total: number;
}

// --- auth -----------------------------------------------------------------------------------------------

export type Role = "admin" | "trader" | (string & {});

export interface User {
  id: Id;
  email: string;
  role: Role;
  is_active: boolean;
  created_at: string;
  last_login: string | null;
}

export interface TokenPair {
  access_token: string;
  /** Null for the dashboard: its refresh token is the HttpOnly cookie. */
  refresh_token: string | null;
  token_type: "bearer";
  /** Lifetime of the access token in seconds. */
  expires_in: number;
  /** Seconds until the session ends (absolute; rotation does not extend it). */
  refresh_expires_in: number;
}

export interface Credentials {
  email: string;
  password: string;
}

export interface ChangePasswordBody {
  current_password: string;
  new_password: string;
}

export interface UserPatch {
  role?: Role;
  is_active?: boolean;
}

// --- health ---------------------------------------------------------------------------------------------

export interface Health {
  status: string;
}

export interface Readiness {
  status: string;
  checks: Record<string, unknown>;
}

// --- jobs -----------------------------------------------------------------------------------------------

export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled" | "interrupted" | (string & {});

export interface Job {
  id: Id;
  kind: string;
  status: JobStatus;
  /** Fraction done, 0..1. */
  progress: number | null;
  message: string | null;
  error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

// --- audit log ------------------------------------------------------------------------------------------

/** The contract leaves audit entries open; these are the seed's audit_logs columns. */
export interface AuditLogEntry {
  id: Id;
  user_id?: Id | null;
  action: string;
  resource_type?: string | null;
  resource_id?: Id | null;
  details?: unknown;
  ip_address?: string | null;
  user_agent?: string | null;
  timestamp?: string;
  created_at?: string;
}

// --- market ---------------------------------------------------------------------------------------------

export interface Price {
  symbol: string;
  price: number;
  change_24h_pct: number | null;
  as_of: string;
  stale: boolean;
  source: string;
}

export interface Candle {
  /** Open time, epoch milliseconds UTC. */
  t: number;
  o: number;
  h: number;
  l: number;
  c: number;
  v: number | null;
}

export interface CandleSeries {
  symbol: string;
  timeframe: string;
  source: string;
  granularity: string;
  items: Candle[];
}

export interface MarketSymbol {
  symbol: string;
  name: string;
  coingecko_id: string;
}

export interface MarketStatus {
  source: string;
  last_success: string | null;
  data_age_s: number | null;
  stale: boolean;
  breaker_state: string;
  budget_used: number | null;
  budget_limit: number | null;
}

// --- Socket.IO payloads ---------------------------------------------------------------------------------

export interface PriceUpdate extends Price {
  seq: number;
}

export interface MarketDataUpdate {
  items: Price[];
  as_of: string;
  source: string;
  seq: number;
}

export interface JobProgress {
  job_id: Id;
  progress: number;
  message: string | null;
}

export interface JobUpdate {
  job: Job;
}

export type SubscribeAck = { ok: true } | { ok: false; error: string };

