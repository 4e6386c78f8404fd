/**
 * The token store. The access token lives only in this module's memory (never in storage, so an XSS
 * payload cannot lift it from localStorage and it is gone when the tab closes).
 *
 * The refresh token is kept in sessionStorage so that a page reload in the same tab stays signed in.
 * That is weaker than the HttpOnly `__Host-` cookie RELIABILITY.md TOK-09 asks for (script on the page can
 * read it); it is the interim choice until the backend sets the refresh cookie, at which point
 * `readRefreshToken`/`writeRefreshToken` go away and the refresh call sends `credentials: "same-origin"`.
 */

import type { TokenPair } from "../api/types";

const REFRESH_KEY = "aaiti.refresh_token";

export type ExpiryReason = "expired" | "logged_out" | "password_changed";

export interface SessionSnapshot {
  accessToken: string | null;
  /** Epoch ms when the access token stops being accepted, from `expires_in`. */
  expiresAt: number | null;
  /** Why the last session ended, for the login page to explain; null while signed in or never signed in. */
  endedBecause: ExpiryReason | null;
}

type Listener = () => void;

let snapshot: SessionSnapshot = { accessToken: null, expiresAt: null, endedBecause: null };
const listeners = new Set<Listener>();
// Bumped on every clear(), so a refresh that was in flight when the user logged out cannot sign them back in.
let generation = 0;

function emit(next: SessionSnapshot): void {
  snapshot = next;
  for (const listener of listeners) listener();
}

function storage(): Storage | null {
  try {
    return typeof window === "undefined" ? null : window.sessionStorage;
  } catch {
    // Storage can throw when disabled by the browser's privacy settings; the session then lasts one page.
    return null;
  }
}

export function readRefreshToken(): string | null {
  return storage()?.getItem(REFRESH_KEY) ?? null;
}

function writeRefreshToken(token: string | null): void {
  const s = storage();
  if (!s) return;
  if (token === null) s.removeItem(REFRESH_KEY);
  else s.setItem(REFRESH_KEY, token);
}

export const session = {
  getSnapshot(): SessionSnapshot {
    return snapshot;
  },

  getAccessToken(): string | null {
    return snapshot.accessToken;
  },

  generation(): number {
    return generation;
  },

  hasRefreshToken(): boolean {
    return readRefreshToken() !== null;
  },

  /** Stores a login/refresh answer. The refresh token rotates on every use, so the new one replaces the old. */
  setTokens(pair: TokenPair, nowMs: number = Date.now()): void {
    writeRefreshToken(pair.refresh_token);
    emit({
      accessToken: pair.access_token,
      expiresAt: Number.isFinite(pair.expires_in) ? nowMs + pair.expires_in * 1000 : null,
      endedBecause: null,
    });
  },

  /** Forgets both tokens. `reason` is shown on the login page. */
  clear(reason: ExpiryReason | null = null): void {
    generation += 1;
    writeRefreshToken(null);
    emit({ accessToken: null, expiresAt: null, endedBecause: reason });
  },

  subscribe(listener: Listener): () => void {
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
    };
  },
};
