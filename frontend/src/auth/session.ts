/**
 * The token store. The access token lives only in this module's memory (never in storage, so an XSS
 * payload cannot lift it from localStorage and it is gone when the tab closes).
 *
 * The refresh token never reaches JavaScript (RELIABILITY.md TOK-09): the server sets it as the HttpOnly
 * `__Host-aaiti_refresh` cookie at login and rotates it on every refresh. A page reload therefore starts with
 * no access token and asks `/api/auth/refresh` for one; the cookie decides whether that works.
 */

import type { TokenPair } from "../api/types";

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

  /** Stores a login/refresh answer (the refresh token itself stays in the cookie). */
  setTokens(pair: TokenPair, nowMs: number = Date.now()): void {
    emit({
      accessToken: pair.access_token,
      expiresAt: Number.isFinite(pair.expires_in) ? nowMs + pair.expires_in * 1000 : null,
      endedBecause: null,
    });
  },

  /** Forgets the access token (the server clears the cookie on logout). `reason` is shown on the login page. */
  clear(reason: ExpiryReason | null = null): void {
    generation += 1;
    emit({ accessToken: null, expiresAt: null, endedBecause: reason });
  },

  subscribe(listener: Listener): () => void {
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
    };
  },
};
