import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { session } from "../auth/session";
import { json, mockFetch } from "../test/http";
import { ApiError, api, refreshSession, request } from "./client";

function pair(n: number) {
  return {
    access_token: `access-${n}`,
    refresh_token: null,
    token_type: "bearer" as const,
    expires_in: 900,
    refresh_expires_in: 604800,
  };
}

/**
 * A server where only the newest access token is valid and refresh rotates the session. The refresh token
 * is the HttpOnly cookie, which the browser sends with same-origin credentials; the dashboard sends no body.
 */
function fakeServer(opts: { refreshStatus?: number; rejectAfterRefresh?: boolean } = {}) {
  let generation = 1;
  let refreshes = 0;
  const mock = mockFetch((call) => {
    if (call.url === "/api/auth/refresh") {
      refreshes += 1;
      if (call.body !== undefined || call.credentials !== "same-origin") {
        return json(400, { error: "bad_request", detail: "the dashboard refreshes by cookie only" });
      }
      if (opts.refreshStatus && opts.refreshStatus !== 200) {
        return json(opts.refreshStatus, { error: "unauthorized", detail: "refresh token revoked" });
      }
      generation += 1;
      return json(200, pair(generation));
    }
    if (opts.rejectAfterRefresh && refreshes > 0) {
      return json(401, { error: "unauthorized", detail: "token revoked" });
    }
    if (call.authorization !== `Bearer access-${generation}`) {
      return json(401, { error: "unauthorized", detail: "expired token" });
    }
    return json(200, { status: "ok", url: call.url });
  });
  return { ...mock, refreshCount: () => refreshes };
}

describe("request() refresh-once logic", () => {
  beforeEach(() => {
    session.clear();
  });
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it("refreshes on a 401, keeps the rotated pair and retries the request once", async () => {
    const server = fakeServer();
    session.setTokens({ ...pair(1), access_token: "access-expired" });

    const result = await request<{ status: string }>("/api/jobs");

    expect(result.status).toBe("ok");
    expect(server.refreshCount()).toBe(1);
    expect(session.getAccessToken()).toBe("access-2");
    const jobCalls = server.calls.filter((c) => c.url === "/api/jobs");
    expect(jobCalls.map((c) => c.authorization)).toEqual(["Bearer access-expired", "Bearer access-2"]);
  });

  it("shares one refresh call between concurrent 401s (a rotated token must never be replayed)", async () => {
    const server = fakeServer();
    session.setTokens({ ...pair(1), access_token: "access-expired" });

    const results = await Promise.all([request("/api/jobs"), request("/api/users"), request("/api/audit-logs")]);

    expect(results).toHaveLength(3);
    expect(server.refreshCount()).toBe(1);
    expect(server.calls.filter((c) => c.url === "/api/auth/refresh")).toHaveLength(1);
  });

  it("gives up after one refresh: a second 401 ends the session without another refresh", async () => {
    const server = fakeServer({ rejectAfterRefresh: true });
    session.setTokens({ ...pair(1), access_token: "access-expired" });

    const error = await request("/api/jobs").catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(401);
    expect((error as ApiError).detail).toBe("token revoked");
    expect(server.refreshCount()).toBe(1);
    expect(server.calls.filter((c) => c.url === "/api/jobs")).toHaveLength(2);
    expect(session.getAccessToken()).toBeNull();
    expect(session.getSnapshot().endedBecause).toBe("expired");
  });

  it("ends the session when the server refuses the refresh token", async () => {
    const server = fakeServer({ refreshStatus: 401 });
    session.setTokens({ ...pair(1), access_token: "access-expired" });

    await expect(request("/api/jobs")).rejects.toMatchObject({ status: 401 });

    expect(server.refreshCount()).toBe(1);
    expect(server.calls.filter((c) => c.url === "/api/jobs")).toHaveLength(1);
    expect(session.getAccessToken()).toBeNull();
    expect(session.getSnapshot().endedBecause).toBe("expired");
  });

  it("keeps the session when the refresh fails for a transient reason (503)", async () => {
    fakeServer({ refreshStatus: 503 });
    session.setTokens({ ...pair(1), access_token: "access-expired" });

    await expect(request("/api/jobs")).rejects.toMatchObject({ status: 503, detail: "refresh token revoked" });

    expect(session.getAccessToken()).toBe("access-expired");
    expect(session.getSnapshot().endedBecause).toBeNull();
  });

  it("does not refresh for unauthenticated calls such as login", async () => {
    const server = mockFetch(() => json(401, { error: "unauthorized", detail: "Incorrect email or password" }));

    await expect(api.auth.login({ email: "a@b.co", password: "x" })).rejects.toMatchObject({
      status: 401,
      detail: "Incorrect email or password",
    });

    expect(server.calls).toHaveLength(1);
    expect(server.calls[0]?.authorization).toBeNull();
  });

  it("ignores a refresh answer that arrives after logout", async () => {
    let release: (r: Response) => void = () => {};
    mockFetch((call) =>
      call.url === "/api/auth/refresh" ? new Promise<Response>((resolve) => (release = resolve)) : json(200, {}),
    );
    session.setTokens(pair(1));

    const pending = refreshSession();
    session.clear("logged_out");
    release(json(200, pair(2)));

    await expect(pending).resolves.toBe("rejected");
    expect(session.getAccessToken()).toBeNull();
  });

  it("asks the server for the refresh cookie at login and never stores a refresh token", async () => {
    const server = mockFetch(() => json(200, pair(1)));

    const answer = await api.auth.login({ email: "a@b.co", password: "secret passphrase" });

    expect(answer.refresh_token).toBeNull();
    expect(server.calls[0]?.body).toEqual({ email: "a@b.co", password: "secret passphrase", refresh_cookie: true });
    expect(server.calls[0]?.credentials).toBe("same-origin");
    expect(JSON.stringify({ ...window.localStorage, ...window.sessionStorage })).not.toContain("refresh");
  });

  it("serialises refreshes across tabs with a Web Lock (the shared cookie rotates on every use)", async () => {
    const held: string[] = [];
    vi.stubGlobal("navigator", {
      ...navigator,
      locks: {
        request: async (name: string, work: () => Promise<unknown>) => {
          held.push(name);
          return work();
        },
      },
    });
    const server = fakeServer();
    session.setTokens({ ...pair(1), access_token: "access-expired" });

    await request("/api/jobs");

    expect(held).toEqual(["aaiti.refresh"]);
    expect(server.refreshCount()).toBe(1);
    expect(session.getAccessToken()).toBe("access-2");
  });

  it("reports FastAPI validation errors as readable text", async () => {
    mockFetch(() =>
      json(422, {
        detail: [{ loc: ["body", "email"], msg: "value is not a valid email address", type: "value_error" }],
      }),
    );
    await expect(api.auth.register({ email: "x", password: "y" })).rejects.toMatchObject({
      status: 422,
      detail: "email: value is not a valid email address",
    });
  });
});
