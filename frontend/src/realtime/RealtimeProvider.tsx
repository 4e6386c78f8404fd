import { useQueryClient } from "@tanstack/react-query";
import {
  createContext,
  useContext,
  useEffect,
  useRef,
  useState,
  useSyncExternalStore,
  type ReactNode,
} from "react";
import { refreshSession } from "../api/client";
import { keys } from "../api/queryClient";
import type { Job, Page } from "../api/types";
import { session } from "../auth/session";
import { useSession } from "../auth/AuthContext";
import { applyJobProgress, applyJobUpdate, applyPrice, applyPrices, type PriceList } from "./cacheUpdates";
import { RealtimeClient, type RealtimeSnapshot, type ServerEventName, type ServerEvents } from "./RealtimeClient";

const RealtimeContext = createContext<RealtimeClient | null>(null);

/**
 * Opens the socket while signed in and folds server events into the query cache, so every page showing
 * prices or jobs updates without knowing about sockets.
 */
export function RealtimeProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const signedIn = useSession().accessToken !== null;
  const [client, setClient] = useState<RealtimeClient | null>(null);

  useEffect(() => {
    if (!signedIn) return;
    const rt = new RealtimeClient({ getToken: session.getAccessToken, refresh: refreshSession });
    const offs = [
      rt.on("price_update", (update) => {
        queryClient.setQueriesData<PriceList>({ queryKey: keys.pricesAll }, (data) => applyPrice(data, update));
      }),
      rt.on("market_data_update", (snapshot) => {
        queryClient.setQueriesData<PriceList>({ queryKey: keys.pricesAll }, (data) =>
          applyPrices(data, snapshot.items),
        );
      }),
      rt.on("job_progress", (progress) => {
        queryClient.setQueriesData<Page<Job>>({ queryKey: keys.jobsAll }, (data) => applyJobProgress(data, progress));
      }),
      rt.on("job_update", ({ job }) => {
        let seen = false;
        queryClient.setQueriesData<Page<Job>>({ queryKey: keys.jobsAll }, (data) => {
          const result = applyJobUpdate(data, job);
          seen ||= result.found;
          return result.data;
        });
        // A job that no cached page shows yet (just submitted): the list order and total changed.
        if (!seen) void queryClient.invalidateQueries({ queryKey: keys.jobsAll });
      }),
    ];
    rt.start();
    setClient(rt);
    return () => {
      for (const off of offs) off();
      rt.close();
      setClient(null);
    };
  }, [signedIn, queryClient]);

  return <RealtimeContext.Provider value={client}>{children}</RealtimeContext.Provider>;
}

export function useRealtime(): RealtimeClient | null {
  return useContext(RealtimeContext);
}

const IDLE: RealtimeSnapshot = { state: "idle", error: null, roomErrors: {} };
const noop = () => () => {};

export function useRealtimeStatus(): RealtimeSnapshot {
  const client = useRealtime();
  return useSyncExternalStore(
    client ? client.subscribeState : noop,
    client ? client.getSnapshot : () => IDLE,
    client ? client.getSnapshot : () => IDLE,
  );
}

/** Joins the given rooms while mounted (and while the list stays the same). */
export function useRooms(rooms: readonly string[]): void {
  const client = useRealtime();
  const key = [...rooms].sort().join("|");
  useEffect(() => {
    if (!client || !key) return;
    const releases = key.split("|").map((room) => client.subscribe(room));
    return () => {
      for (const release of releases) release();
    };
  }, [client, key]);
}

/** Calls `handler` for each `event`; the latest handler is used without re-registering. */
export function useRealtimeEvent<E extends ServerEventName>(event: E, handler: ServerEvents[E]): void {
  const client = useRealtime();
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => {
    if (!client) return;
    const forward = ((payload: never) => (ref.current as (p: never) => void)(payload)) as ServerEvents[E];
    return client.on(event, forward);
  }, [client, event]);
}
