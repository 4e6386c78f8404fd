import type { Socket } from "socket.io-client";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { PriceUpdate } from "../api/types";
import type { RefreshOutcome } from "../api/client";
import { RealtimeClient } from "./RealtimeClient";

/** Just enough of a socket.io-client Socket to drive the client's state machine by hand. */
class FakeSocket {
  connected = false;
  active = false;
  connectCalls = 0;
  emitted: { event: string; payload: unknown }[] = [];
  acks: Record<string, unknown> = {};
  private handlers = new Map<string, ((...args: unknown[]) => void)[]>();
  constructor(readonly opts: { auth: (cb: (data: object) => void) => void }) {}

  on(event: string, handler: (...args: unknown[]) => void) {
    this.handlers.set(event, [...(this.handlers.get(event) ?? []), handler]);
    return this;
  }
  fire(event: string, ...args: unknown[]) {
    for (const h of this.handlers.get(event) ?? []) h(...args);
  }
  connect() {
    this.connectCalls += 1;
    this.active = true;
    return this;
  }
  /** The server accepted the handshake. */
  accept() {
    this.connected = true;
    this.fire("connect");
  }
  /** The server refused the handshake (connect handler raised ConnectionRefusedError). */
  refuse(message: string) {
    this.connected = false;
    this.active = false;
    this.fire("connect_error", new Error(message));
  }
  handshakeToken(): unknown {
    let sent: unknown;
    this.opts.auth((data) => (sent = (data as { token: unknown }).token));
    return sent;
  }
  timeout() {
    return this;
  }
  async emitWithAck(event: string, payload: { room: string }) {
    this.emitted.push({ event, payload });
    return this.acks[payload.room] ?? { ok: true };
  }
  emit(event: string, payload: unknown) {
    this.emitted.push({ event, payload });
    return this;
  }
  removeAllListeners() {
    this.handlers.clear();
    return this;
  }
  disconnect() {
    this.connected = false;
    this.active = false;
    return this;
  }
}

function setup(refresh = vi.fn(async (): Promise<RefreshOutcome> => "refreshed")) {
  let token = "t1";
  let socket: FakeSocket | null = null;
  const client = new RealtimeClient({
    getToken: () => token,
    refresh,
    connect: (opts) => {
      socket = new FakeSocket(opts as never);
      return socket as unknown as Socket;
    },
  });
  client.start();
  return {
    client,
    refresh,
    socket: () => socket as unknown as FakeSocket,
    setToken: (t: string) => (token = t),
  };
}

function tick(symbol: string, seq: number, price: number): PriceUpdate {
  return { symbol, seq, price, change_24h_pct: 0, as_of: "2026-11-24T12:00:00Z", stale: false, source: "replay" };
}

afterEach(() => vi.useRealTimers());

describe("RealtimeClient", () => {
  it("sends the current access token in the handshake and connects over websocket only", () => {
    const { socket, setToken } = setup();
    expect(socket().opts).toMatchObject({ transports: ["websocket"] });
    expect(socket().handshakeToken()).toBe("t1");
    setToken("t2");
    expect(socket().handshakeToken()).toBe("t2");
  });

  it("refreshes the session once when the handshake is refused, then reconnects", async () => {
    vi.useFakeTimers();
    const { client, socket, refresh } = setup();
    expect(socket().connectCalls).toBe(1);

    socket().refuse("unauthorized");
    expect(client.getSnapshot()).toMatchObject({ state: "refused", error: "unauthorized" });
    await vi.runAllTimersAsync();

    expect(refresh).toHaveBeenCalledTimes(1);
    expect(socket().connectCalls).toBe(2);
    socket().accept();
    expect(client.getSnapshot().state).toBe("connected");
  });

  it("does not reconnect when the refresh is rejected (the session is over)", async () => {
    vi.useFakeTimers();
    const { socket, refresh } = setup(vi.fn(async (): Promise<RefreshOutcome> => "rejected"));
    socket().refuse("unauthorized");
    await vi.runAllTimersAsync();
    expect(refresh).toHaveBeenCalledTimes(1);
    expect(socket().connectCalls).toBe(1);
  });

  it("backs off when refusals repeat", async () => {
    vi.useFakeTimers();
    const { socket } = setup();
    socket().refuse("unauthorized");
    await vi.advanceTimersByTimeAsync(0);
    expect(socket().connectCalls).toBe(2);
    socket().refuse("unauthorized");
    await vi.advanceTimersByTimeAsync(500);
    expect(socket().connectCalls).toBe(2);
    await vi.advanceTimersByTimeAsync(600);
    expect(socket().connectCalls).toBe(3);
  });

  it("joins rooms on connect, re-joins them after a reconnect and reports refused rooms", async () => {
    const { client, socket } = setup();
    const release = client.subscribe("prices:BTC");
    client.subscribe("job:7");
    socket().acks["job:7"] = { ok: false, error: "not your job" };
    socket().accept();
    await vi.waitFor(() => expect(client.getSnapshot().roomErrors).toEqual({ "job:7": "not your job" }));
    const joins = () => socket().emitted.filter((e) => e.event === "subscribe").map((e) => (e.payload as { room: string }).room);
    expect(joins()).toEqual(["prices:BTC", "job:7"]);

    socket().fire("disconnect", "transport close");
    socket().accept();
    await vi.waitFor(() => expect(joins()).toEqual(["prices:BTC", "job:7", "prices:BTC", "job:7"]));

    release();
    expect(socket().emitted.at(-1)).toEqual({ event: "unsubscribe", payload: { room: "prices:BTC" } });
  });

  it("keeps a room while another subscriber still needs it", () => {
    const { client, socket } = setup();
    socket().accept();
    const a = client.subscribe("prices:ETH");
    client.subscribe("prices:ETH");
    a();
    expect(socket().emitted.filter((e) => e.event === "unsubscribe")).toHaveLength(0);
  });

  it("drops duplicate and out-of-order price ticks, per symbol, within one connection", () => {
    const { client, socket } = setup();
    const seen: string[] = [];
    client.on("price_update", (p) => seen.push(`${p.symbol}:${p.seq}`));
    socket().accept();
    socket().fire("price_update", tick("BTC", 5, 1));
    socket().fire("price_update", tick("BTC", 5, 1));
    socket().fire("price_update", tick("BTC", 4, 1));
    socket().fire("price_update", tick("ETH", 3, 1));
    socket().fire("price_update", tick("BTC", 6, 1));
    // A new connection may talk to a restarted server whose counter began again.
    socket().accept();
    socket().fire("price_update", tick("BTC", 1, 1));
    expect(seen).toEqual(["BTC:5", "ETH:3", "BTC:6", "BTC:1"]);
  });
});
