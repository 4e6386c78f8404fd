/**
 * One Socket.IO connection per signed-in tab, websocket transport only (no sticky sessions needed when the
 * API runs on several nodes, STACK.md §2a).
 *
 * The access token goes in the handshake `auth` payload, read fresh on every (re)connect. When the server
 * refuses the handshake or drops the socket (expired or revoked token), the client refreshes the session
 * once and reconnects; repeated refusals back off up to 30 s. Rooms are re-joined after every reconnect,
 * because the server forgets them with the old socket.
 */

import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import type { RefreshOutcome } from "../api/client";
import type { JobProgress, JobUpdate, MarketDataUpdate, PriceUpdate, SubscribeAck } from "../api/types";

export interface ServerEvents {
  price_update: (payload: PriceUpdate) => void;
  market_data_update: (payload: MarketDataUpdate) => void;
  job_progress: (payload: JobProgress) => void;
  job_update: (payload: JobUpdate) => void;
  system_health: (payload: Record<string, unknown>) => void;
}

export type ServerEventName = keyof ServerEvents;
const EVENTS: ServerEventName[] = ["price_update", "market_data_update", "job_progress", "job_update", "system_health"];

export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting" | "refused" | "closed";

export interface RealtimeSnapshot {
  state: ConnectionState;
  /** The last connection error, as the server or transport worded it. */
  error: string | null;
  /** Rooms the server declined to join, with its reason. */
  roomErrors: Readonly<Record<string, string>>;
}

export interface RealtimeOptions {
  getToken: () => string | null;
  refresh: () => Promise<RefreshOutcome>;
  /** Injected in tests; defaults to socket.io-client's `io`. */
  connect?: (opts: Partial<ManagerOptions & SocketOptions>) => Socket;
  ackTimeoutMs?: number;
}

type AnyHandler = (payload: never) => void;

export class RealtimeClient {
  private socket: Socket | null = null;
  private readonly rooms = new Map<string, number>();
  private readonly handlers = new Map<ServerEventName, Set<AnyHandler>>();
  private readonly listeners = new Set<() => void>();
  private snapshot: RealtimeSnapshot = { state: "idle", error: null, roomErrors: {} };
  private refusals = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  // The server's sequence numbers restart with it; drop only duplicates and reordering within one connection.
  private lastPriceSeq = new Map<string, number>();
  private lastSnapshotSeq = -Infinity;

  constructor(private readonly options: RealtimeOptions) {}

  start(): void {
    if (this.socket || this.closed) return;
    const factory = this.options.connect ?? ((opts: Partial<ManagerOptions & SocketOptions>) => io(opts));
    const socket = factory({
      transports: ["websocket"],
      autoConnect: false,
      // A function, so each reconnect sends the token current at that moment, not the one from start().
      auth: (cb: (data: object) => void) => cb({ token: this.options.getToken() }),
    });
    this.socket = socket;

    socket.on("connect", () => {
      this.refusals = 0;
      this.lastPriceSeq = new Map();
      this.lastSnapshotSeq = -Infinity;
      this.update({ state: "connected", error: null, roomErrors: {} });
      for (const room of this.rooms.keys()) void this.join(room);
    });
    socket.on("connect_error", (err: Error) => {
      // `active` stays true for transport failures, which socket.io retries by itself; false means the
      // server refused the handshake (bad or expired token), which only a new token can fix.
      if (socket.active) this.update({ state: "reconnecting", error: err.message });
      else void this.recoverFromRefusal(err.message || "connection refused");
    });
    socket.on("disconnect", (reason: string) => {
      if (this.closed) return;
      if (reason === "io server disconnect") void this.recoverFromRefusal("disconnected by the server");
      else if (reason !== "io client disconnect") this.update({ state: "reconnecting", error: reason });
    });

    socket.on("price_update", (payload: PriceUpdate) => {
      const last = this.lastPriceSeq.get(payload.symbol);
      if (typeof payload.seq === "number") {
        if (last !== undefined && payload.seq <= last) return;
        this.lastPriceSeq.set(payload.symbol, payload.seq);
      }
      this.dispatch("price_update", payload);
    });
    socket.on("market_data_update", (payload: MarketDataUpdate) => {
      if (typeof payload.seq === "number") {
        if (payload.seq <= this.lastSnapshotSeq) return;
        this.lastSnapshotSeq = payload.seq;
      }
      this.dispatch("market_data_update", payload);
    });
    for (const event of EVENTS) {
      if (event === "price_update" || event === "market_data_update") continue;
      socket.on(event, (payload: unknown) => this.dispatch(event, payload as never));
    }

    this.update({ state: "connecting", error: null });
    socket.connect();
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.socket?.removeAllListeners();
    this.socket?.disconnect();
    this.socket = null;
    this.update({ state: "closed", error: null, roomErrors: {} });
  }

  /** Joins `room` (reference-counted: several components may want the same room). Returns the release. */
  subscribe(room: string): () => void {
    const count = this.rooms.get(room) ?? 0;
    this.rooms.set(room, count + 1);
    if (count === 0 && this.socket?.connected) void this.join(room);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.rooms.get(room) ?? 1) - 1;
      if (left > 0) {
        this.rooms.set(room, left);
        return;
      }
      this.rooms.delete(room);
      if (room in this.snapshot.roomErrors) {
        const { [room]: _dropped, ...rest } = this.snapshot.roomErrors;
        this.update({ roomErrors: rest });
      }
      if (this.socket?.connected) this.socket.emit("unsubscribe", { room });
    };
  }

  on<E extends ServerEventName>(event: E, handler: ServerEvents[E]): () => void {
    let set = this.handlers.get(event);
    if (!set) {
      set = new Set();
      this.handlers.set(event, set);
    }
    set.add(handler as AnyHandler);
    return () => {
      set.delete(handler as AnyHandler);
    };
  }

  getSnapshot = (): RealtimeSnapshot => this.snapshot;

  subscribeState = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };

  private dispatch<E extends ServerEventName>(event: E, payload: Parameters<ServerEvents[E]>[0]): void {
    const set = this.handlers.get(event);
    if (!set) return;
    for (const handler of set) (handler as (p: typeof payload) => void)(payload);
  }

  private async join(room: string): Promise<void> {
    const socket = this.socket;
    if (!socket) return;
    let ack: SubscribeAck;
    try {
      ack = (await socket
        .timeout(this.options.ackTimeoutMs ?? 5000)
        .emitWithAck("subscribe", { room })) as SubscribeAck;
    } catch {
      ack = { ok: false, error: "the server did not acknowledge the subscription" };
    }
    if (!this.rooms.has(room)) return;
    const { [room]: _previous, ...rest } = this.snapshot.roomErrors;
    this.update({ roomErrors: ack.ok ? rest : { ...rest, [room]: ack.error || "subscription refused" } });
  }

  private async recoverFromRefusal(reason: string): Promise<void> {
    if (this.closed) return;
    this.refusals += 1;
    this.update({ state: "refused", error: reason });
    let retry: boolean;
    try {
      retry = (await this.options.refresh()) === "refreshed";
    } catch {
      retry = true; // a transient refresh failure keeps the session: try again after the backoff
    }
    // A rejected refresh ends the session and the app returns to the login page: nothing to reconnect.
    if (this.closed || !retry) return;
    // First refusal: reconnect at once with the new token. Repeated ones: 1 s, 2 s, 4 s ... up to 30 s.
    const delay = this.refusals <= 1 ? 0 : Math.min(30_000, 1000 * 2 ** (this.refusals - 2));
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.closed && this.socket && !this.socket.connected) {
        this.update({ state: "reconnecting" });
        this.socket.connect();
      }
    }, delay);
  }

  private update(patch: Partial<RealtimeSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...patch };
    for (const listener of this.listeners) listener();
  }
}
