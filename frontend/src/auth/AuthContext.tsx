import { useQuery, useQueryClient } from "@tanstack/react-query";
import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  useSyncExternalStore,
  type ReactNode,
} from "react";
import { api, ApiError, refreshSession } from "../api/client";
import { keys } from "../api/queryClient";
import type { Credentials, User } from "../api/types";
import { session, type ExpiryReason } from "./session";

export type AuthStatus = "loading" | "signed_in" | "signed_out" | "error";

export interface AuthContextValue {
  status: AuthStatus;
  user: User | null;
  isAdmin: boolean;
  /** Set when the status is "error": the server could not confirm the session (not a rejection). */
  error: unknown;
  /** Why the previous session ended, for the login page. */
  endedBecause: ExpiryReason | null;
  login: (credentials: Credentials) => Promise<void>;
  register: (credentials: Credentials) => Promise<User>;
  logout: () => Promise<void>;
  /** The server revokes every token on a password change; drop the local session to match. */
  endAfterPasswordChange: () => void;
  retry: () => void;
}

const AuthContext = createContext<AuthContextValue | null>(null);

export function useSession() {
  return useSyncExternalStore(session.subscribe, session.getSnapshot, session.getSnapshot);
}

export function AuthProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const snap = useSession();
  // A reload loses the access token (memory) but not the HttpOnly refresh cookie: trade one for the other.
  // Whether a cookie exists is invisible to script, so a signed-out visitor costs one refused refresh.
  const [restoring, setRestoring] = useState(() => snap.accessToken === null);
  const [restoreError, setRestoreError] = useState<unknown>(null);

  const restore = useCallback(() => {
    setRestoring(true);
    setRestoreError(null);
    refreshSession()
      .catch((err: unknown) => setRestoreError(err))
      .finally(() => setRestoring(false));
  }, []);

  useEffect(() => {
    if (restoring) restore();
    // Only on mount: later refreshes are driven by 401s in the API client.
  }, []);

  const signedIn = snap.accessToken !== null;
  const me = useQuery({
    queryKey: keys.me,
    queryFn: ({ signal }) => api.auth.me(signal),
    enabled: signedIn,
    staleTime: 60_000,
  });

  // Whatever ended the session (logout, expiry, refused refresh), no data of that user may stay cached.
  const wasSignedIn = useRef(signedIn);
  useEffect(() => {
    if (wasSignedIn.current && !signedIn) queryClient.clear();
    wasSignedIn.current = signedIn;
  }, [signedIn, queryClient]);

  const login = useCallback(
    async (credentials: Credentials) => {
      const pair = await api.auth.login(credentials);
      queryClient.clear();
      session.setTokens(pair);
    },
    [queryClient],
  );

  const register = useCallback((credentials: Credentials) => api.auth.register(credentials), []);

  const logout = useCallback(async () => {
    try {
      if (session.getAccessToken() !== null) await api.auth.logout();
    } catch {
      // The local session ends regardless; the server-side token then simply expires.
    } finally {
      session.clear("logged_out");
    }
  }, []);

  const endAfterPasswordChange = useCallback(() => session.clear("password_changed"), []);

  const value = useMemo<AuthContextValue>(() => {
    let status: AuthStatus;
    let error: unknown = null;
    if (restoring) status = "loading";
    else if (!signedIn) {
      status = restoreError ? "error" : "signed_out";
      error = restoreError;
    } else if (me.data) status = "signed_in";
    else if (me.isError) {
      // A 401 here has already cleared the session (the client refreshes once, then gives up).
      status = me.error instanceof ApiError && me.error.status === 401 ? "signed_out" : "error";
      error = me.error;
    } else status = "loading";
    const user = status === "signed_in" ? (me.data ?? null) : null;
    return {
      status,
      user,
      isAdmin: user?.role === "admin",
      error,
      endedBecause: snap.endedBecause,
      login,
      register,
      logout,
      endAfterPasswordChange,
      retry: () => (signedIn ? void me.refetch() : restore()),
    };
  }, [restoring, signedIn, restoreError, me, snap.endedBecause, login, register, logout, endAfterPasswordChange, restore]);

  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthContextValue {
  const value = useContext(AuthContext);
  if (!value) throw new Error("useAuth must be used inside <AuthProvider>");
  return value;
}
